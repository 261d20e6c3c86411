"""Solving the two-MM game exactly: a Markov equilibrium by backward induction through stage games, and the cartel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.exact.game.evaluation import NashConv, certificates, joint_tables, moments, reachable, start_index
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
    """Stage games (step, state and side with traders) without a pure equilibrium (0 for the cartel)."""
    no_pure_on_path: int
    """How many of those the solution's own play reaches with positive probability from ``(0, 0, 0)``. Where any is
    (``> 0``), the solution is only an ε-equilibrium from the start, and its NashConv says how far."""
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


_EQUAL = -1
"""``lower`` where the two reservations are equal: neither market maker's is the lower."""


def _lower_reservation(reservation: np.ndarray) -> np.ndarray:
    """Per stage game, the market maker with the lower reservation (0 or 1), or ``_EQUAL``.

    Reservations are compared exactly as computed (``MODEL.md`` §8), with no tolerance: two reservations that differ in
    the last bit have a lower one. That is meaningful because the formulas treat the two market makers alike and
    ``I → −I`` alike (the tests check both symmetries bitwise), so a reservation equal to the other's, or to 0, by
    symmetry is computed exactly so.
    """
    return np.where(reservation[0] < reservation[1], 0, np.where(reservation[1] < reservation[0], 1, _EQUAL))


def _grid_reservation(stage: Stage, j: int) -> np.ndarray:
    """The highest tick at which ``j`` prefers the other executing to tying and to undercutting (``lo − 1``: none).

    Preferring losing to tying is ``δ ≤ r_j``; preferring it to undercutting by a tick is, below ``j``'s own optimum,
    ``p(δ)·c^lose ≥ p(δ − tick)·(m·(δ − tick) + c^win)``, a bound in closed form. Both conditions hold on every tick
    up to a threshold and on none above it (the first is linear in ``δ``; in the second ``p(δ)·c^lose`` falls with
    ``δ`` where ``c^lose ≥ 0`` while the best payoff below ``δ`` rises, and where ``c^lose < 0`` every payoff below
    ``δ`` must be negative, where it rises like the closed form). So the estimate is corrected by checking the
    definition at the neighbouring ticks, and where the result is still not the last tick of the threshold (the
    estimate was off by more), a bisection over the whole grid finds it.
    """
    tree = stage.tree
    mean, win, lose = stage.safe_mean[j], stage.win[j], stage.lose[j]
    tie_bound = np.floor((lose - win) / mean / tree.tick)
    undercut_bound = 1.0 + np.floor((lose * np.exp(-tree.k * tree.tick) - win) / mean / tree.tick)
    estimate = np.clip(np.minimum(tie_bound, undercut_bound), tree.lo - 1.0, tree.hi)

    def content(games: Stage, x: np.ndarray) -> np.ndarray:
        losing = games.losing(j, x)
        _, undercut = games.best_tick(games.mean[j], games.win[j], x - 1.0)
        return (x >= tree.lo) & (x <= tree.hi) & (losing >= games.tying(j, x)) & (losing >= undercut)

    for _ in range(2):
        estimate = np.where(content(stage, estimate + 1.0), estimate + 1.0, estimate)
    for _ in range(3):
        estimate = np.where((estimate >= tree.lo) & ~content(stage, estimate), estimate - 1.0, estimate)
    exact = ((estimate < tree.lo) | content(stage, estimate)) & ~content(stage, estimate + 1.0)
    if not exact.all():
        rows = ~exact
        games = stage.take(rows)
        # Bisection on the threshold: content at ``low`` (``lo − 1`` counts as content), not at ``high``.
        low, high = np.full(int(rows.sum()), tree.lo - 1.0), np.full(int(rows.sum()), tree.hi + 1.0)
        while np.any(high - low > 1.0):
            middle = np.floor(0.5 * (low + high))
            inside = content(games, middle)
            low, high = np.where(inside, middle, low), np.where(inside, high, middle)
        estimate[rows] = low
    return estimate


def _exhaustive(stage: Stage, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pure profile of stage games where both can trade: the selected pair (ticks) and its largest gain.

    Profiles are ``j`` executing at ``x`` with the other above it, or a tie at ``x``; their gains need only, per
    ``x``, the best responses to each tick and a running minimum over the loser's quotes above ``x``.

    The selection of ``MODEL.md`` §8 among the pure equilibria: the one whose winner is the market maker with the
    lower reservation (``lower``: 0, 1 or ``_EQUAL``), then the lower winning offset. In full, by rank: the
    lower-reservation market maker executes (with equal reservations: either does), then a tie, then the other
    executes; within a rank the lowest tick; at an equal tick, market maker 1 first. The loser quotes the lowest tick
    above that keeps the pair an equilibrium. Without a pure equilibrium: the pair with the smallest largest gain
    (equal gains ranked the same way).
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
    count, n_ticks = len(by_kind), len(ticks)
    rows = np.arange(count)
    # The rank of each kind per game, then one score per profile: rank, then tick, then kind (MM 1 first).
    rank = np.where(
        (lower == 0)[:, None], np.array([0, 1, 2]), np.where((lower == 1)[:, None], np.array([2, 1, 0]), [0, 1, 0])
    )
    score = ((rank[:, :, None] * n_ticks + np.arange(n_ticks)) * 3 + np.arange(3)[:, None]).reshape(count, -1)
    flat = by_kind.reshape(count, -1)
    pure = flat <= TOLERANCE
    # Without a pure equilibrium, the profiles with the smallest largest gain compete instead.
    eligible = np.where(np.any(pure, axis=1)[:, None], pure, flat == flat.min(axis=1, keepdims=True))
    pick = np.argmin(np.where(eligible, score, np.iinfo(score.dtype).max), axis=1)
    kind, best = pick // n_ticks, pick % n_ticks
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

    The rule of ``MODEL.md`` §8. Alone on a side a market maker quotes its optimum. Where both can trade, with the
    reservations ``r_j = (c_j^lose − c_j^win)/m_j`` compared exactly:

    * both reservations in the same tick: the candidate is a tie one tick above;
    * otherwise the lower reservation executes at min(its own optimum, the loser's grid reservation, one below the
      highest tick), the loser one tick above;
    * the candidate is kept where it verifies against both exact stage best responses (the tolerance there is
      :data:`~agents.exact.game.model.TOLERANCE`, float noise); elsewhere the stage game is searched exhaustively
      (:func:`_exhaustive`): among its pure equilibria, the lower reservation's execution, then the lower winning
      offset.

    One shortcut saves most of those searches and selects what the search would. With the reservations in different
    ticks and the candidate failing, the tie one tick above the higher reservation tick is kept where it verifies,
    the tie one tick below does not, and no execution by the lower reservation can be an equilibrium. That is certain
    where the loser's grid reservation is below the grid (the loser never prefers the other executing) or the
    candidate's tick is below the winner's own optimum: a winner at ``x`` below its optimum must have the loser at
    ``x + 1``, and preferring that execution to tying or losing at ``x + 1`` holds on every tick from a threshold up,
    so failing at the candidate's tick it fails below. (At its own optimum the winner could keep the loser further
    up: those games are searched.) No lower tie is an equilibrium: at least a whole tick below the higher
    reservation, the market maker holding it strictly prefers losing. And ties rank before the other's executions.
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
    lower = _lower_reservation(reservation)
    first_wins = lower != 1  # equal reservations lie in the same tick, where the candidate is the tie
    own = [alone[j][both] for j in range(2)]
    grid = [_grid_reservation(sub, j) for j in range(2)]
    winner_own = np.where(first_wins, own[0], own[1])
    loser_grid = np.where(first_wins, grid[1], grid[0])
    winning = np.clip(np.minimum(np.minimum(winner_own, loser_grid), tree.hi - 1.0), tree.lo, None)
    losing = winning + 1.0
    asymmetric = (np.where(first_wins, winning, losing), np.where(first_wins, losing, winning))
    tie_tick = np.clip(np.maximum(reservation_tick[0], reservation_tick[1]) + 1.0, tree.lo, tree.hi)
    use_asymmetric = ~same & (sub.largest_gain(*asymmetric) <= TOLERANCE)
    tie_ok = sub.largest_gain(tie_tick, tie_tick) <= TOLERANCE
    # The shortcut (see above): only where the search would select this same tie.
    no_execution = (loser_grid < tree.lo) | (winning < winner_own) | (winner_own >= tree.hi - 1.0)
    shortcut = ~same & ~use_asymmetric & tie_ok & no_execution
    check = shortcut & (tie_tick > tree.lo)  # no tie one tick lower may be an equilibrium
    below = tie_tick[check] - 1.0
    shortcut[check] = sub.take(check).largest_gain(below, below) > TOLERANCE
    use_tie = (same & tie_ok) | shortcut
    s0 = np.where(use_tie, tie_tick, asymmetric[0])
    s1 = np.where(use_tie, tie_tick, asymmetric[1])
    s_gain = np.zeros(s0.shape)
    search = ~(use_tie | use_asymmetric)
    if search.any():
        rows = np.flatnonzero(search)
        for begin in range(0, len(rows), _EXHAUSTIVE_CHUNK):
            part = rows[begin : begin + _EXHAUSTIVE_CHUNK]
            chunk = Stage(tree, sub.mean[:, part], sub.win[:, part], sub.lose[:, part], sub.can[:, part])
            s0[part], s1[part], s_gain[part] = _exhaustive(chunk, lower[part])
    x0[both], x1[both], gain[both] = s0, s1, np.maximum(s_gain, 0.0)
    return x0, x1, gain


def _finish(
    tree: Tree,
    kind: str,
    ticks: tuple[np.ndarray, np.ndarray],
    value: np.ndarray,
    no_pure: np.ndarray | None,
    largest_stage_gain: float,
    certify: bool,
) -> GameSolution:
    """The solution of the tables ``ticks``, with its moments and (``certify``) its certificates.

    ``no_pure`` marks the stage games without a pure equilibrium, ``(T, 2, N²)`` (``None``: there are none).
    """
    mean, moment = moments(tree, ticks, second=True)
    certificate = certificates(tree, ticks, mean) if certify else None
    return _finish_tables(tree, kind, ticks, value, no_pure, largest_stage_gain, mean, moment, certificate)


def _finish_tables(
    tree: Tree,
    kind: str,
    ticks: tuple[np.ndarray, np.ndarray],
    value: np.ndarray,
    no_pure: np.ndarray | None,
    largest_stage_gain: float,
    mean: np.ndarray,
    moment: np.ndarray,
    certificate: NashConv | None,
    tables: tuple[np.ndarray, np.ndarray] | None = None,
) -> GameSolution:
    """The solution of the tables ``ticks`` given their moments ``(2, T + 1, N²)`` and certificates.

    ``tables``: the offset tables ``(bid, ask)`` of :func:`joint_tables`, where the caller has them.
    """
    bid, ask = joint_tables(tree, *ticks) if tables is None else tables
    start = start_index(tree)
    std = np.sqrt(np.maximum(moment[:, 0, start] - mean[:, 0, start] ** 2, 0.0))
    # The solver's own values: the evaluation recomputes them by another route, the tests compare the two.
    shaped = value.reshape(2, tree.T + 1, tree.n_levels, tree.n_levels)
    count = on_path = 0
    if no_pure is not None and no_pure.any():
        count = int(no_pure.sum())
        # A stage game is played where its state is reached (``no_pure`` marks only sides where traders come).
        on_path = int((no_pure & reachable(tree, ticks)[:, None, :]).sum())
    return GameSolution(tree.params, kind, bid, ask, shaped, std, count, on_path, largest_stage_gain, certificate)


def _backward_tables(tree: Tree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty tables for a backward pass: the values ``(2, T + 1, N²)`` (terminal filled in) and each MM's ticks."""
    value = np.empty((2, tree.T + 1, tree.n_levels**2))
    value[:, tree.T] = tree.terminal
    x0 = np.empty((tree.T, 2, tree.n_levels**2))
    return value, x0, np.empty_like(x0)


def solve_equilibrium(params: CompetitionParams, certify: bool = True) -> GameSolution | None:
    """A Markov equilibrium by backward induction: a pure equilibrium of every stage game ``(t, I_1, I_2, side)``.

    The selection rule is that of ``MODEL.md`` §8 (see :func:`_equilibrium_stage`). Stage games without a pure
    equilibrium (they occur under ``mtm``) take the pair with the smallest largest deviation gain. The solution
    counts them (:attr:`GameSolution.no_pure_equilibrium`) and says how many its own play reaches from ``(0, 0, 0)``
    (:attr:`GameSolution.no_pure_on_path`, by a forward pass over the states reached with positive probability).
    Where one is reached, the solution is an ε-equilibrium from the start, and its NashConv says how far. At the
    defaults none is: under ``mtm`` the solution is then a Nash equilibrium from the start (NashConv ≈ 1e−14) but not
    Markov perfect.

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
    no_pure = np.zeros(x0.shape, dtype=bool)  # (T, 2, N²): a stage game without a pure equilibrium, with traders
    largest = 0.0
    for t in range(tree.T - 1, -1, -1):
        following = value[:, t + 1]
        stage = tree.stage(following)
        x0[t], x1[t], gain = _equilibrium_stage(stage)
        # The tolerance verifies an equilibrium: a gain within float noise of a stage payoff is none.
        no_pure[t] = (gain > TOLERANCE) & traded_sides
        if no_pure[t].any():
            largest = max(largest, float(gain[no_pure[t]].max()))
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
    return _finish(tree, "cartel", (x0, x1), value, None, 0.0, certify)
