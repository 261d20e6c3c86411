"""Solving the two-MM game exactly: a Markov equilibrium by backward induction through stage games, and the cartel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.exact.game.evaluation import NashConv, certificates, joint_tables, moments, start_index
from agents.exact.game.model import TOLERANCE, Stage, Tree, game_unsolvable_reason
from mm_env.params import CompetitionParams

_EXHAUSTIVE_CHUNK = 4096  # stage games searched exhaustively at once (each takes a few arrays of every tick)


@dataclass(frozen=True)
class GameSolution:
    """A joint policy the exact tools computed (an equilibrium or the cartel), with its values and certificates."""

    params: CompetitionParams
    kind: str
    """``"equilibrium"`` or ``"cartel"``."""
    bid: np.ndarray
    """Bid offsets ``(2, T, N, N)``, on the tick grid."""
    ask: np.ndarray
    value: np.ndarray
    """Each market maker's value, ``(2, T + 1, N, N)``."""
    std: np.ndarray
    """The standard deviation of each market maker's episode return from the start, ``(2,)``."""
    no_pure_equilibrium: int
    """Stage games (state and side with traders) without a pure equilibrium (0 for the cartel)."""
    largest_stage_gain: float
    """The largest deviation gain of a stage game's chosen pair (0 for a pure equilibrium everywhere)."""
    nash_conv: NashConv | None
    """The certificates (``None`` when the solve was asked not to compute them)."""

    @property
    def start_value(self) -> np.ndarray:
        """Each market maker's expected return from ``(0, 0, 0)``, ``(2,)``."""
        i = self.params.market.I_max
        return self.value[:, 0, i, i].copy()

    @property
    def mean_return(self) -> float:
        """The mean per-MM return from the start (the ``Π`` of the collusion index)."""
        return float(self.start_value.mean())


# --------------------------------------------------------------------------------------------------------------------
# the equilibrium


def _grid_reservation(stage: Stage, j: int) -> np.ndarray:
    """The highest tick at which ``j`` prefers the other executing to tying and to undercutting (``lo − 1``: none).

    Preferring losing to tying is ``δ ≤ r_j``; preferring it to undercutting by a tick is, below ``j``'s own optimum,
    ``p(δ)·c^lose ≥ p(δ − tick)·(m·(δ − tick) + c^win)``, a bound in closed form. The estimate is then corrected by
    checking the definition at the neighbouring ticks; where it is off by more, the candidate built on it fails its
    exact verification and the exhaustive search decides.
    """
    tree = stage.tree
    mean, win, lose = stage.safe_mean[j], stage.win[j], stage.lose[j]
    tie_bound = np.floor((lose - win) / mean / tree.tick)
    undercut_bound = 1.0 + np.floor((lose * np.exp(-tree.k * tree.tick) - win) / mean / tree.tick)
    estimate = np.clip(np.minimum(tie_bound, undercut_bound), tree.lo - 1.0, tree.hi)

    def content(x: np.ndarray) -> np.ndarray:
        losing = stage.losing(j, x)
        _, undercut = stage.best_tick(stage.mean[j], win, x - 1.0)
        return (x >= tree.lo) & (x <= tree.hi) & (losing >= stage.tying(j, x)) & (losing >= undercut)

    for _ in range(2):
        estimate = np.where(content(estimate + 1.0), estimate + 1.0, estimate)
    for _ in range(3):
        estimate = np.where((estimate >= tree.lo) & ~content(estimate), estimate - 1.0, estimate)
    return estimate


def _exhaustive(stage: Stage, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pure profile of stage games where both can trade: the selected pair (ticks) and its largest gain.

    Profiles are ``j`` executing at ``x`` with the other above it, or a tie at ``x``; their gains need only, per
    ``x``, the best responses to each tick and a running minimum over the loser's quotes above ``x``. Selection: the
    first kind in ``order`` (per game, a permutation of 0 = MM 1 executes, 1 = tie, 2 = MM 2 executes) that has a
    pure equilibrium, at its highest tick for an execution and its lowest for a tie, the loser at the lowest tick
    above that keeps it an equilibrium; without one, the pair with the smallest largest gain.
    """
    tree = stage.tree
    ticks = np.arange(tree.lo, tree.hi + 1.0)
    x = ticks[None, :]

    payoff_win, payoff_lose, payoff_tie, response = [], [], [], []
    for j in range(2):
        win = stage.gain(stage.mean[j][:, None], stage.win[j][:, None], x)
        lose = stage.prob(x) * stage.lose[j][:, None]
        tie = 0.5 * (win + lose)
        below = np.concatenate([np.full((len(win), 1), -np.inf), np.maximum.accumulate(win, axis=1)[:, :-1]], axis=1)
        lose_option = np.concatenate([lose[:, :-1], np.full((len(win), 1), -np.inf)], axis=1)
        payoff_win.append(win)
        payoff_lose.append(lose)
        payoff_tie.append(tie)
        response.append(np.maximum(np.maximum(below, tie), lose_option))
    gains = []
    for w in range(2):
        o = 1 - w
        # The lowest best-response value of w over the other's quotes y > x.
        suffix = np.minimum.accumulate(response[w][:, ::-1], axis=1)[:, ::-1]
        lowest_above = np.concatenate([suffix[:, 1:], np.full((len(suffix), 1), np.inf)], axis=1)
        gains.append(np.maximum(response[o] - payoff_lose[o], lowest_above - payoff_win[w]))
    tie_gain = np.maximum(response[0] - payoff_tie[0], response[1] - payoff_tie[1])
    by_kind = np.stack([gains[0], tie_gain, gains[1]], axis=1)  # (F, 3, K): MM 1 executes, tie, MM 2 executes
    rows = np.arange(len(by_kind))
    pure = by_kind <= TOLERANCE
    # Per kind the preferred equilibrium: the highest tick where one executes (the winner prices up to what the
    # loser tolerates, as the candidate does), the lowest tick of a tie (one tick above the reservations).
    highest = len(ticks) - 1 - np.argmax(pure[:, :, ::-1], axis=2)
    lowest = np.argmax(pure, axis=2)
    chosen = np.where(np.array([True, False, True])[None, :], highest, lowest)  # (F, 3)
    exists = pure.any(axis=2)
    ranked = np.take_along_axis(exists, order, axis=1)
    first = np.argmax(ranked, axis=1)
    kind = order[rows, first]
    best = chosen[rows, kind]
    # Without a pure equilibrium: the profile with the smallest largest gain (lowest tick first, then kinds in order).
    has_pure = ranked.any(axis=1)
    fallback = np.take_along_axis(by_kind, order[:, :, None], axis=1).transpose(0, 2, 1).reshape(len(rows), -1)
    pick = np.argmin(fallback, axis=1)
    kind = np.where(has_pure, kind, order[rows, pick % 3])
    best = np.where(has_pure, best, pick // 3)
    gain = by_kind[rows, kind, best]
    x_best = ticks[best]
    # The loser's quote: the lowest tick above at which the winner's gain stays within the selected one.
    x0, x1 = x_best.copy(), x_best.copy()
    for w, kind_w in ((0, 0), (1, 2)):
        rows_w = np.flatnonzero(kind == kind_w)
        if len(rows_w) == 0:
            continue
        win_here = payoff_win[w][rows_w, best[rows_w]]
        fits = (response[w][rows_w] - win_here[:, None] <= gain[rows_w, None] + TOLERANCE) & (x > x_best[rows_w, None])
        loser = ticks[np.argmax(fits, axis=1)]
        (x1 if w == 0 else x0)[rows_w] = loser
    return x0, x1, gain


def _equilibrium_stage(stage: Stage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pure equilibrium of every stage game (or the pair with the smallest largest gain): ticks and that gain.

    The selection rule: among the pure equilibria, the market maker with the lower reservation
    ``r_j = (c_j^lose − c_j^win)/m_j`` executes (MM 1 at equal reservations) at the highest tick it can, the loser
    one tick above; else a tie at the lowest tick it can; else the other executes. When both reservations fall in
    the same tick (every symmetric state) a tie comes first. Alone on a side a market maker quotes its optimum.

    Candidates first (§8), each verified against both exact stage best responses: the lower reservation executes at
    min(its own optimum, the loser's grid reservation, one below the highest tick), or the tie one tick above the
    higher reservation tick. Where none verifies, the stage game is searched exhaustively (:func:`_exhaustive`)
    with the same rule; the tests check that the candidates are what the search selects.
    """
    tree = stage.tree
    can0, can1 = stage.can
    both = can0 & can1
    alone = [stage.best_tick(stage.mean[j], stage.win[j], tree.hi)[0] for j in range(2)]
    x0 = np.where(can0 & ~can1, alone[0], tree.hi)
    x1 = np.where(can1 & ~can0, alone[1], tree.hi)
    gain = np.zeros(x0.shape)
    if not both.any():
        return x0, x1, gain
    sub = stage.take(both)
    reservation = (sub.lose - sub.win) / sub.safe_mean
    reservation_tick = np.floor(reservation / tree.tick)
    same = reservation_tick[0] == reservation_tick[1]
    first_wins = reservation[0] <= reservation[1]  # equal reservations: MM 1 first
    own = [alone[j][both] for j in range(2)]
    grid = [_grid_reservation(sub, j) for j in range(2)]
    winning = np.where(first_wins, np.minimum(own[0], grid[1]), np.minimum(own[1], grid[0]))
    winning = np.clip(np.minimum(winning, tree.hi - 1.0), tree.lo, None)
    losing = winning + 1.0
    asymmetric = (np.where(first_wins, winning, losing), np.where(first_wins, losing, winning))
    tie_tick = np.clip(np.maximum(reservation_tick[0], reservation_tick[1]) + 1.0, tree.lo, tree.hi)
    tied = (tie_tick, tie_tick)
    asymmetric_ok = sub.largest_gain(*asymmetric) <= TOLERANCE
    tie_ok = sub.largest_gain(*tied) <= TOLERANCE
    # Same reservation tick: the tie only (where it fails, the search below). Otherwise the asymmetric candidate,
    # then the tie one tick above the higher reservation tick (where the winner would rather tie with the loser's
    # quote than win one tick below it, and so no execution is an equilibrium).
    use_tie = tie_ok & (same | ~asymmetric_ok)
    use_asymmetric = ~same & asymmetric_ok
    s0 = np.where(use_tie, tied[0], asymmetric[0])
    s1 = np.where(use_tie, tied[1], asymmetric[1])
    s_gain = np.zeros(s0.shape)
    search = ~(use_tie | use_asymmetric)
    if search.any():
        rows = np.flatnonzero(search)
        # Kinds by preference: the lower reservation executes (MM 1 at equal ones), a tie, the other executes; with
        # the reservations in the same tick the tie first. The same rule the candidates follow.
        lower_first = np.where(first_wins[rows, None], np.array([0, 1, 2]), np.array([2, 1, 0]))
        order = np.where(same[rows, None], lower_first[:, [1, 0, 2]], lower_first)
        for begin in range(0, len(rows), _EXHAUSTIVE_CHUNK):
            part = rows[begin : begin + _EXHAUSTIVE_CHUNK]
            chunk = Stage(tree, sub.mean[:, part], sub.win[:, part], sub.lose[:, part], sub.can[:, part])
            s0[part], s1[part], s_gain[part] = _exhaustive(chunk, order[begin : begin + _EXHAUSTIVE_CHUNK])
    x0[both], x1[both], gain[both] = s0, s1, np.maximum(s_gain, 0.0)
    return x0, x1, gain


def _finish(
    tree: Tree,
    kind: str,
    ticks: tuple[np.ndarray, np.ndarray],
    value: np.ndarray,
    no_pure: int,
    largest_stage_gain: float,
    certify: bool,
) -> GameSolution:
    bid, ask = joint_tables(tree, *ticks)
    mean, moment = moments(tree, ticks, second=True)
    start = start_index(tree)
    std = np.sqrt(np.maximum(moment[:, 0, start] - mean[:, 0, start] ** 2, 0.0))
    certificate = certificates(tree, ticks, mean) if certify else None
    # The solver's own values: the evaluation recomputes them by another route, the tests compare the two.
    shaped = value.reshape(2, tree.T + 1, tree.n_levels, tree.n_levels)
    return GameSolution(tree.params, kind, bid, ask, shaped, std, no_pure, largest_stage_gain, certificate)


def _backward_tables(tree: Tree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty tables for a backward pass: the values ``(2, T + 1, N²)`` (terminal filled in) and each MM's ticks."""
    value = np.empty((2, tree.T + 1, tree.n_levels**2))
    value[:, tree.T] = tree.terminal
    x0 = np.empty((tree.T, 2, tree.n_levels**2))
    return value, x0, np.empty_like(x0)


def solve_equilibrium(params: CompetitionParams, certify: bool = True) -> GameSolution | None:
    """A Markov equilibrium by backward induction: a pure equilibrium of every stage game ``(t, I_1, I_2, side)``.

    The selection rule is that of ``MODEL.md`` §8 (see :func:`_equilibrium_stage`); stage games without a pure
    equilibrium (they occur under ``mtm``, off the equilibrium path) take the pair with the smallest largest
    deviation gain, and the solution counts them.

    Args:
        params: the game.
        certify: also compute the certificates (:class:`NashConv`), two best-response passes.

    Returns:
        The solution, or ``None`` when :func:`game_unsolvable_reason` says the tools do not cover the game.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = Tree(params)
    value, x0, x1 = _backward_tables(tree)
    traded_sides = (tree.arrive > 0.0)[:, None]
    no_pure = 0
    largest = 0.0
    for t in range(tree.T - 1, -1, -1):
        following = value[:, t + 1]
        stage = tree.stage(following)
        x0[t], x1[t], gain = _equilibrium_stage(stage)
        counted = (gain > TOLERANCE) & traded_sides
        no_pure += int(counted.sum())
        if counted.any():
            largest = max(largest, float(gain[counted].max()))
        for j in range(2):
            value[j, t] = tree.combine(following, j, tree.stay(following, j) + stage.payoff(j, x0[t], x1[t]))
    return _finish(tree, "equilibrium", (x0, x1), value, no_pure, largest, certify)


def solve_cartel(params: CompetitionParams, certify: bool = True) -> GameSolution | None:
    """The joint optimum of ``V_1 + V_2``: per state and side, the trade goes to the better market maker.

    Routing to ``j`` at ``δ`` is worth ``p(δ)·(m_j·δ + c_j^win + c_o^lose)`` to the pair, unimodal like a monopoly's
    objective; the other quotes the highest tick. Both at the highest tick tie (the trade is split). Where routing to
    either is worth the same at the same tick, both quote it (a tie worth the same, and symmetric).

    Returns ``None`` when :func:`game_unsolvable_reason` says the tools do not cover the game.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = Tree(params)
    value, x0, x1 = _backward_tables(tree)
    hi = tree.hi
    for t in range(tree.T - 1, -1, -1):
        following = value[:, t + 1]
        stage = tree.stage(following)
        can0, can1 = stage.can
        both = can0 & can1
        routes = []
        for j in range(2):
            joint = stage.win[j] + stage.lose[1 - j]
            # With the other able to trade, j must quote below it (the other at the highest tick).
            upper = np.where(both, hi - 1.0, hi)
            tick, worth = stage.best_tick(stage.mean[j], joint, upper)
            routes.append((tick, np.where(stage.can[j], worth, -np.inf)))
        split = 0.5 * (
            stage.gain(stage.mean[0], stage.win[0] + stage.lose[1], hi)
            + stage.gain(stage.mean[1], stage.win[1] + stage.lose[0], hi)
        )
        split = np.where(both, split, -np.inf)
        (tick0, worth0), (tick1, worth1) = routes
        first = worth0 >= worth1
        best_worth = np.where(first, worth0, worth1)
        use_split = split > best_worth
        x0[t] = np.where(first, tick0, hi)
        x1[t] = np.where(first, hi, tick1)
        same = (worth0 == worth1) & (tick0 == tick1) & both
        x0[t] = np.where(same, tick0, x0[t])
        x1[t] = np.where(same, tick1, x1[t])
        idle = use_split | ~(can0 | can1)
        x0[t] = np.where(idle, hi, x0[t])
        x1[t] = np.where(idle, hi, x1[t])
        for j in range(2):
            value[j, t] = tree.combine(following, j, tree.stay(following, j) + stage.payoff(j, x0[t], x1[t]))
    return _finish(tree, "cartel", (x0, x1), value, 0, 0.0, certify)
