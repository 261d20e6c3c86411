"""Exact tools for two competing market makers (``MODEL.md`` §8) on the state ``(t, I_1, I_2)``.

Two market makers share the mid and one trader per step. On the trader's side ``S`` the market makers that can trade
there (capacity ``I_max + S·I_j > 0``) compete by price priority: the lowest offset in whole ticks wins, a tie is split
½–½, and the trader accepts that offset ``δ°`` with probability ``p(δ°) = A·e^{−kδ°}``. Everything a market maker is
paid is a function of ``(t, I_1, I_2)`` and the step's outcome (under ``mtm`` through the mean mid move, as in the
one-MM DP of §7.3), so the game's value tables live on that grid.

Per state and side the game is a two-player stage game. With ``c_j^win`` (``c_j^lose``) the expected change of
``j``'s step reward plus continuation value when ``j`` (the other) executes, relative to no trade, and ``m_j`` the
mean size ``j`` executes, ``j`` winning at ``δ`` earns ``W_j(δ) = p(δ)·(m_j·δ + c_j^win)``, the other winning at
``δ'`` gives ``j`` the externality ``L_j(δ') = p(δ')·c_j^lose``, and a tie ``(W_j + L_j)/2``. ``W_j`` is unimodal in
``δ`` with its peak at ``1/k − c_j^win/m_j``, so the best tick below any bound is one of the two ticks around that
peak, clipped: best responses are exact in closed form.

* :func:`evaluate_joint` — each market maker's exact mean and standard deviation of a joint Markov policy;
* :func:`best_response` — one market maker's exact best response to the other's fixed tables;
* :func:`nash_conv` — the two certificates of §8 (NashConv from the start, the largest gain over all states);
* :func:`solve_equilibrium` — backward induction through pure stage-game equilibria (the selection rule of §8);
* :func:`solve_cartel` — the joint optimum of ``V_1 + V_2``;
* :func:`collusion_index` — ``Δ = (Π − Π_eq)/(Π_cartel − Π_eq)``;
* :class:`GamePolicy` — a joint Markov policy from tables, quoting for the environment's batched state.

Tables are indexed ``[j, t, I_1 + I_max, I_2 + I_max]`` (absolute inventories, not own/other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from agents.dp import MAX_TABLE_BYTES, inventory_grid, side_outcomes
from mm_env.competition.params import CompetitionParams
from mm_env.model.fill import ExponentialFill

__all__ = [
    "BestResponse",
    "GamePolicy",
    "GameSolution",
    "JointEvaluation",
    "NashConv",
    "best_response",
    "collusion_index",
    "evaluate_joint",
    "game_unsolvable_reason",
    "nash_conv",
    "solve_cartel",
    "solve_equilibrium",
]

TOLERANCE = 1e-12
"""A stage-game deviation gain at most this counts as none (the float noise of a stage payoff is about 1e-15)."""
_TABLES_PER_SOLVE = 12  # (T, N, N) float64 arrays alive at once: quotes, values, second moments, best responses
_EXHAUSTIVE_CHUNK = 4096  # stage games searched exhaustively at once (each takes a few arrays of every tick)
_SIGNS = np.array([1.0, -1.0])  # the trader's side S per side index: ask (it buys), bid (it sells)


# --------------------------------------------------------------------------------------------------------------------
# what the exact tools cover


def game_unsolvable_reason(params: CompetitionParams) -> str | None:
    """Why the exact tools do not cover this game, in one sentence, or ``None`` when they do.

    They cover two market makers on the state ``(t, I_1, I_2)``: the base model with either reward, any side and size
    law, arrivals, noise, jumps, power-law impact, a terminal penalty, and informed traders (exact under ``mtm`` too:
    their news moves the mid by a known mean). Not covered: other numbers of market makers, momentum (the state needs
    the last side ``L``), transient impact or mean reversion under ``mtm`` (the state needs the mid), the article's
    fill mode (every order fills, so the price-priority game is not the one of §8) and tables too large for memory.
    """
    if not isinstance(params, CompetitionParams):
        return f"params={params!r} is not a CompetitionParams"
    if params.num_market_makers != 2:
        return f"the exact game tools cover two market makers, not num_market_makers={params.num_market_makers}"
    market = params.market
    if not market.fill.quotes_matter:
        return "mode='article' fills every order whatever the quotes: the exact game tools need the exponential fill"
    if market.flow.momentum != 0.0:
        return (
            "momentum puts the last trade's side L into the state (t, I_1, I_2, L), which the exact game tools do not "
            "carry: compare policies by Monte Carlo"
        )
    if market.objective.reads_mid and market.impact.transient:
        return (
            "under the mtm reward transient impact puts its decaying part D of the mid into the state, so the game "
            "has no exact solution: compare policies by Monte Carlo"
        )
    if market.objective.reads_mid and market.noise.mean_reversion > 0.0:
        return (
            "under the mtm reward mean reversion puts the mid P into the state, so the game has no exact solution: "
            "compare policies by Monte Carlo"
        )
    n_levels = 2 * market.I_max + 1
    size = _TABLES_PER_SOLVE * market.T * n_levels**2 * 8
    if size > MAX_TABLE_BYTES:
        return (
            f"the tables over (t, I_1, I_2) would take about {size / 2**30:.1f} GiB (T={market.T}, "
            f"I_max={market.I_max}), more than {MAX_TABLE_BYTES / 2**30:.0f} GiB"
        )
    return None


# --------------------------------------------------------------------------------------------------------------------
# the outcome tree of one step, the same at every t


class _Tree:
    """Constants of one step over every state and side.

    States are flattened, ``st = (I_1 + I_max)·N + (I_2 + I_max)``; stage-game arrays have shape ``(2, N²)`` (side
    index: ask, bid), per-size arrays ``(m, 2, N²)``. ``w`` indexes the market maker that executes, ``j`` the one
    paid. Every formula treats the two market makers alike, so that a symmetric game gives bitwise symmetric tables.
    """

    def __init__(self, params: CompetitionParams) -> None:
        market = params.market
        flow, objective, impact, noise = market.flow, market.objective, market.impact, market.noise
        fill = market.fill
        assert isinstance(fill, ExponentialFill)  # game_unsolvable_reason, checked first, refuses mode='article'
        self.params = params
        self.T = market.T
        self.I_max = market.I_max
        self.n_levels = n = 2 * market.I_max + 1
        self.tick = params.tick
        self.lo, self.hi = float(params.lowest_tick), float(params.highest_tick)
        self.A, self.k = fill.A, fill.k
        self.probs = np.asarray(flow.probs)
        self.arrive = np.array(flow.side_law(0)[:2])  # w_s, (2,)
        self.idle = max(1.0 - float(self.arrive.sum()), 0.0)
        informed_share = np.array(flow.side_law(0)[2:])
        reads_mid = objective.reads_mid
        news = (flow.info_jump * informed_share) if reads_mid else np.zeros(2)  # mean move of the news, J·η_s
        news_var = (flow.info_jump**2 * informed_share * (1.0 - informed_share)) if reads_mid else np.zeros(2)
        noise_var = (noise.sigma**2 + noise.jump_prob * noise.jump_size**2) if reads_mid else 0.0

        levels = inventory_grid(market)
        own = (np.repeat(levels, n), np.tile(levels, n))  # I_1 and I_2 per flat state
        index = (np.repeat(np.arange(n), n), np.tile(np.arange(n), n))
        outcomes = side_outcomes(market)
        executed = outcomes.executed.transpose(2, 0, 1)  # (m, 2, N)
        next_index = outcomes.next_index.transpose(2, 0, 1)
        sign = _SIGNS[:, None]
        # Per executing market maker w: its executed size, the next flat state, and every market maker's inventory.
        self.executed = np.stack([executed[:, :, index[w]] for w in range(2)])  # (2, m, 2, N²)
        self.next_state = np.stack(
            [next_index[:, :, index[0]] * n + index[1], index[0] * n + next_index[:, :, index[1]]]
        )
        after = np.empty((2, 2, *self.executed.shape[1:]))  # [w, j]: I_j after w executes
        for w in range(2):
            for j in range(2):
                after[w, j] = own[j] - sign * self.executed[w] if j == w else np.broadcast_to(own[j], after.shape[2:])
        self.mean_executed = np.stack([(self.executed[j] * self.probs[:, None, None]).sum(axis=0) for j in range(2)])
        self.can = np.stack([market.I_max + sign * own[j] > 0 for j in range(2)])  # (2, 2, N²)

        # Rewards less the spread Q'·δ: −λ·I_j'² and, under mtm, I_j'·ΔP with the mean move S·(g(Q'_w) + J·η_s).
        lam = objective.lam
        self.fill_reward = -lam * after**2
        self.stay_reward = np.stack([np.broadcast_to(-lam * own[j] ** 2, (2, n * n)) for j in range(2)]).copy()
        if reads_mid:
            move = sign * (impact.permanent_size(self.executed) + news[:, None])  # (2, m, 2, N²) per w
            self.fill_reward = self.fill_reward + after * move[:, None]
            self.stay_reward = self.stay_reward + np.stack([own[j] * sign * news[:, None] for j in range(2)])
        self.idle_reward = np.stack([-lam * own[j] ** 2 for j in range(2)])  # (2, N²)
        # Variances of the zero-mean part of I_j'·ΔP: exogenous noise and, on a side, whether the trader is informed.
        side_var = noise_var + news_var[:, None]
        self.fill_var = after**2 * side_var
        self.stay_var = np.stack([own[j] ** 2 * side_var for j in range(2)])
        self.idle_var = np.stack([own[j] ** 2 * noise_var for j in range(2)])
        self.terminal = np.stack([-objective.alpha * own[j] ** 2 for j in range(2)])

        # Sums over sizes that do not depend on t (the evaluation's moments reuse them at every step).
        self.weight = self.probs[:, None, None]
        self.fill_mean = (self.fill_reward * self.weight).sum(axis=2)  # (2, 2, 2, N²)
        self.weighted_reward = self.fill_reward * self.weight
        self.fill_square = ((self.fill_reward**2 + self.fill_var) * self.weight).sum(axis=2)
        own_reward = np.stack([self.fill_reward[w, w] for w in range(2)])
        self.fill_cross = (2.0 * own_reward * self.executed * self.weight).sum(axis=1)  # (2, 2, N²)
        self.executed_square = (self.executed**2 * self.weight).sum(axis=1)
        self.weighted_executed = self.executed * self.weight
        # p(δ) per tick from the lowest: the same product A·exp(−k·δ) the environment computes for δ = ticks·tick.
        self.fill_odds = self.A * np.exp(-self.k * (np.arange(self.lo, self.hi + 1.0) * self.tick))

    def table_shape(self) -> tuple[int, int, int, int]:
        """``(2, T, N, N)``."""
        return (2, self.T, self.n_levels, self.n_levels)

    def continuation(self, value: np.ndarray, w: int, j: int) -> np.ndarray:
        """``E_Q[reward less the spread + V_j(next)]`` when ``w`` executes, per side and state, ``(2, N²)``.

        The sum over sizes runs in a fixed order (``sum`` over the leading axis), so it is the same bitwise for the
        two market makers at mirrored states.
        """
        return self.fill_mean[w, j] + (value[j][self.next_state[w]] * self.weight).sum(axis=0)

    def stay(self, value: np.ndarray, j: int) -> np.ndarray:
        """Reward and continuation of ``j`` when nothing trades on a side, ``(2, N²)``."""
        return self.stay_reward[j] + value[j]

    def combine(self, value: np.ndarray, j: int, side_value: np.ndarray) -> np.ndarray:
        """``V_j(t)`` from the value of each side (``stay + stage payoff``, ``(2, N²)``) and a step without trader."""
        result = self.arrive[0] * side_value[0] + self.arrive[1] * side_value[1]
        if self.idle > 0.0:
            result = result + self.idle * (self.idle_reward[j] + value[j])
        return result

    def stage(self, value: np.ndarray, players: tuple[int, ...] = (0, 1)) -> _Stage:
        """The stage games of one step given the next step's values ``(2, N²)`` (for ``players`` only)."""
        win = np.zeros((2, 2, self.n_levels**2))
        lose = np.zeros_like(win)
        for j in players:
            stay = self.stay(value, j)
            win[j] = self.continuation(value, j, j) - stay
            lose[j] = self.continuation(value, 1 - j, j) - stay
        return _Stage(self, self.mean_executed, win, lose, self.can)

    def ticks(self, offsets: np.ndarray) -> np.ndarray:
        """Offset tables as whole ticks (float), on the grid as the environment rounds them."""
        return self.params.to_ticks(offsets)


class _Stage:
    """A batch of two-player stage games: ``m_j``, ``c_j^win``, ``c_j^lose`` and who can trade, each ``(2, ...)``."""

    def __init__(self, tree: _Tree, mean: np.ndarray, win: np.ndarray, lose: np.ndarray, can: np.ndarray) -> None:
        self.tree, self.mean, self.win, self.lose, self.can = tree, mean, win, lose, can
        self.safe_mean = np.where(mean > 0.0, mean, 1.0)

    def take(self, mask: np.ndarray) -> _Stage:
        """The stage games where ``mask`` (over the trailing axes) is true, flattened."""
        return _Stage(self.tree, self.mean[:, mask], self.win[:, mask], self.lose[:, mask], self.can[:, mask])

    def prob(self, x: np.ndarray | float) -> np.ndarray:
        """``p(δ)`` at ``x`` ticks (meaningless outside the grid, where callers mask it)."""
        tree = self.tree
        index = np.clip(np.asarray(x) - tree.lo, 0, len(tree.fill_odds) - 1).astype(np.intp)
        return tree.fill_odds[index]

    def gain(self, mean: np.ndarray, change: np.ndarray, x: np.ndarray | float) -> np.ndarray:
        """``p(δ)·(m·δ + c)`` at ``x`` ticks."""
        return self.prob(x) * (mean * (x * self.tree.tick) + change)

    def winning(self, j: int, x: np.ndarray) -> np.ndarray:
        """``W_j``: ``j``'s stage payoff when it executes at ``x`` ticks."""
        return self.gain(self.mean[j], self.win[j], x)

    def losing(self, j: int, x: np.ndarray) -> np.ndarray:
        """``L_j``: ``j``'s stage payoff when the other executes at ``x`` ticks."""
        return self.prob(x) * self.lose[j]

    def tying(self, j: int, x: np.ndarray) -> np.ndarray:
        """``j``'s stage payoff when both quote ``x`` ticks and both can trade."""
        return 0.5 * (self.winning(j, x) + self.losing(j, x))

    def best_tick(self, mean: np.ndarray, change: np.ndarray, upper: np.ndarray | float) -> tuple[np.ndarray, ...]:
        """The tick in ``[lo, upper]`` maximising ``p(δ)·(m·δ + c)``, and the maximum (−inf where the range is empty).

        The objective rises up to ``δ* = 1/k − c/m`` and falls after it, so the best tick is one of the two ticks
        around ``δ*``, clipped into the range. On equal values the lower tick.
        """
        tree = self.tree
        safe = np.where(mean > 0.0, mean, 1.0)
        peak = np.floor((1.0 / tree.k - change / safe) / tree.tick)
        lower = np.clip(peak, tree.lo, upper)
        upper_tick = np.clip(peak + 1.0, tree.lo, upper)
        low_value, high_value = self.gain(mean, change, lower), self.gain(mean, change, upper_tick)
        better = high_value > low_value
        best = np.where(better, upper_tick, lower)
        value = np.where(better, high_value, low_value)
        return best, np.where(np.asarray(upper) >= tree.lo, value, -np.inf)

    def response(self, j: int, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``j``'s exact best response (tick, stage payoff) to the other quoting ``other`` ticks.

        Candidates: win below it (the best tick up to one below), tie at it, or let it trade (quote the highest tick,
        possible only below it); alone on the side, the best tick overall; unable to trade, the highest tick.
        """
        tree = self.tree
        o = 1 - j
        below, below_value = self.best_tick(self.mean[j], self.win[j], other - 1.0)
        tie_value = self.tying(j, other)
        lose_value = np.where(other < tree.hi, self.losing(j, other), -np.inf)
        tick = np.where(tie_value > below_value, other, below)
        value = np.maximum(tie_value, below_value)
        tick = np.where(lose_value > value, tree.hi, tick)
        value = np.maximum(value, lose_value)
        alone, alone_value = self.best_tick(self.mean[j], self.win[j], tree.hi)
        can_j, can_o = self.can[j], self.can[o]
        tick = np.where(can_j, np.where(can_o, tick, alone), tree.hi)
        value = np.where(can_j, np.where(can_o, value, alone_value), np.where(can_o, self.losing(j, other), 0.0))
        return tick, value

    def shares(self, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Who executes under the quotes ``(x0, x1)`` in ticks: each one's share (0, ½ or 1) and the best tick."""
        can0, can1 = self.can
        win0 = can0 & (~can1 | (x0 < x1))
        win1 = can1 & (~can0 | (x1 < x0))
        tie = can0 & can1 & (x0 == x1)
        share0 = win0 + 0.5 * tie
        share1 = win1 + 0.5 * tie
        return share0, share1, np.where(win0 | tie, x0, x1)

    def payoff(self, j: int, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """``j``'s stage payoff under the quotes ``(x0, x1)`` in ticks."""
        share0, share1, best = self.shares(x0, x1)
        shares = (share0, share1)
        return shares[j] * self.winning(j, best) + shares[1 - j] * self.losing(j, best)

    def largest_gain(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """The larger of the two market makers' best deviation gains at ``(x0, x1)``."""
        gains = [self.response(j, (x1, x0)[j])[1] - self.payoff(j, x0, x1) for j in range(2)]
        return np.maximum(gains[0], gains[1])


# --------------------------------------------------------------------------------------------------------------------
# results


class JointEvaluation(NamedTuple):
    """Exact moments of each market maker's episode return under a joint Markov policy, from ``(0, 0, 0)``."""

    mean: np.ndarray
    """``(2,)``."""
    std: np.ndarray
    """``(2,)``."""
    value: np.ndarray
    """``E[return from t | I_1, I_2]`` per market maker, ``(2, T + 1, N, N)``."""


class BestResponse(NamedTuple):
    """One market maker's exact best response to the other's fixed tables."""

    player: int
    bid: np.ndarray
    """Joint tables ``(2, T, N, N)``: the player's best response, the other's tables unchanged (on the grid)."""
    ask: np.ndarray
    value: np.ndarray
    """The player's value of its best response, ``(T + 1, N, N)``."""
    start_value: float
    """Its value at ``(0, 0, 0)``."""


class NashConv(NamedTuple):
    """The two certificates of ``MODEL.md`` §8 for a joint policy."""

    nash_conv: float
    """``Σ_j [V_j(best response_j) − V_j(policy)]`` at ``(0, 0, 0)``: zero for a Nash equilibrium from the start."""
    largest_gain: float
    """The largest ``V_j(best response_j) − V_j(policy)`` over every market maker and state ``(t, I_1, I_2)``: zero
    for a Markov perfect equilibrium."""
    largest_gain_at: tuple[int, int, int, int]
    """Where: ``(j, t, I_1, I_2)``."""
    policy_value: np.ndarray
    """``V_j(policy)`` at the start, ``(2,)``."""
    best_response_value: np.ndarray
    """``V_j(best response_j)`` at the start, ``(2,)``."""


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

    def policy(self) -> GamePolicy:
        """The solution as a :class:`GamePolicy`."""
        return GamePolicy(self.bid, self.ask, name=self.kind)


# --------------------------------------------------------------------------------------------------------------------
# evaluation and best responses


def _check_tables(tree: _Tree, bid: Any, ask: Any) -> tuple[np.ndarray, np.ndarray]:
    shape = tree.table_shape()
    bid, ask = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
    if bid.shape != shape or ask.shape != shape:
        raise ValueError(
            f"joint tables must have shape (2, T, N, N) = {shape}, indexed [j, t, I_1 + I_max, I_2 + I_max]; got "
            f"{bid.shape} and {ask.shape}"
        )
    # Per side index (ask, bid) in whole ticks: (2 players, T, 2 sides, N²).
    n2 = tree.n_levels**2
    ticks = np.stack([tree.ticks(ask).reshape(2, tree.T, n2), tree.ticks(bid).reshape(2, tree.T, n2)], axis=2)
    return ticks[0], ticks[1]


def _evaluate(tree: _Tree, ticks: tuple[np.ndarray, np.ndarray], second: bool) -> tuple[np.ndarray, np.ndarray]:
    """Means (and second moments) of both market makers' returns from every state, ``(2, T + 1, N²)`` each.

    Per side the trader goes to the best quote (a tie: to either with probability ½), accepts with ``p(δ°)``, and
    every size leads to a next state; the executing market maker also earns ``Q'·δ°``. Second moments add the
    variance of the zero-mean mid moves that the rewards see, as in :func:`agents.dp.evaluate_tables`.
    """
    n2 = tree.n_levels**2
    mean = np.empty((2, tree.T + 1, n2))
    moment = np.empty_like(mean)
    mean[:, tree.T] = tree.terminal
    moment[:, tree.T] = tree.terminal**2
    empty = np.zeros((2, 2, n2))
    stage = _Stage(tree, tree.mean_executed, empty, empty, tree.can)
    for t in range(tree.T - 1, -1, -1):
        value, value2 = mean[:, t + 1], moment[:, t + 1]
        share0, share1, best = stage.shares(ticks[0][t], ticks[1][t])
        p = stage.prob(best)
        offset = best * tree.tick
        filled = (p * share0, p * share1)
        declined = 1.0 - filled[0] - filled[1]
        for j in range(2):
            first = declined * tree.stay(value, j)
            if second:
                stay_reward = tree.stay_reward[j]
                squares = declined * (stay_reward * (stay_reward + 2.0 * value[j]) + value2[j] + tree.stay_var[j])
            for w in range(2):
                after = value[j][tree.next_state[w]]
                outcome = tree.fill_mean[w, j] + np.einsum("q,qsn->sn", tree.probs, after)
                if w == j:
                    outcome = outcome + offset * tree.mean_executed[w]
                first = first + filled[w] * outcome
                if second:
                    after2 = value2[j][tree.next_state[w]]
                    outcome2 = (
                        tree.fill_square[w, j]
                        + 2.0 * np.einsum("qsn,qsn->sn", tree.weighted_reward[w, j], after)
                        + np.einsum("q,qsn->sn", tree.probs, after2)
                    )
                    if w == j:
                        # r = base + Q'·δ: (base + Q'·δ)² + 2·(base + Q'·δ)·V' expands into t-independent sums.
                        outcome2 = outcome2 + offset * tree.fill_cross[w] + offset**2 * tree.executed_square[w]
                        outcome2 = outcome2 + 2.0 * offset * np.einsum("qsn,qsn->sn", tree.weighted_executed[w], after)
                    squares = squares + filled[w] * outcome2
            mean[j, t] = tree.combine(value, j, first)
            if second:
                idle = tree.idle_reward[j]
                moment[j, t] = tree.arrive[0] * squares[0] + tree.arrive[1] * squares[1]
                if tree.idle > 0.0:
                    moment[j, t] += tree.idle * (idle * (idle + 2.0 * value[j]) + value2[j] + tree.idle_var[j])
    return mean, moment


def _start(tree: _Tree) -> int:
    return tree.I_max * tree.n_levels + tree.I_max


def evaluate_joint(params: CompetitionParams, bid: Any, ask: Any) -> JointEvaluation | None:
    """Exact mean and standard deviation of each market maker's episode return under a joint Markov policy.

    Args:
        params: the game.
        bid: bid offsets ``(2, T, N, N)``, indexed ``[j, t, I_1 + I_max, I_2 + I_max]``; rounded to the tick grid
            as the environment rounds them.
        ask: ask offsets, the same shape.

    Returns:
        The moments from ``(0, 0, 0)`` and the value tables, or ``None`` when :func:`game_unsolvable_reason` says
        the tools do not cover the game.

    Raises:
        ValueError: on tables of the wrong shape.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = _Tree(params)
    mean, moment = _evaluate(tree, _check_tables(tree, bid, ask), second=True)
    start = _start(tree)
    expected = mean[:, 0, start]
    std = np.sqrt(np.maximum(moment[:, 0, start] - expected**2, 0.0))
    return JointEvaluation(expected.copy(), std, mean.reshape(2, tree.T + 1, tree.n_levels, tree.n_levels))


def _best_response(tree: _Tree, ticks: tuple[np.ndarray, np.ndarray], player: int) -> tuple[np.ndarray, np.ndarray]:
    """The player's best-response ticks ``(T, 2, N²)`` and values ``(T + 1, N²)`` against the other's ticks."""
    n2 = tree.n_levels**2
    value = np.zeros((2, tree.T + 1, n2))
    value[player, tree.T] = tree.terminal[player]
    response = np.empty((tree.T, 2, n2))
    other = ticks[1 - player]
    for t in range(tree.T - 1, -1, -1):
        following = value[:, t + 1]
        stage = tree.stage(following, players=(player,))
        response[t], payoff = stage.response(player, other[t])
        value[player, t] = tree.combine(following, player, tree.stay(following, player) + payoff)
    return response, value[player]


def _joint_tables(tree: _Tree, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset tables ``(2, T, N, N)`` (bid, ask) from ticks ``(T, 2, N²)`` per market maker."""
    ticks = np.stack([x0, x1])  # (2, T, 2, N²)
    offsets = ticks * tree.tick
    shape = tree.table_shape()
    return offsets[:, :, 1].reshape(shape), offsets[:, :, 0].reshape(shape)


def best_response(params: CompetitionParams, bid: Any, ask: Any, player: int) -> BestResponse | None:
    """The exact best response of market maker ``player`` (0 or 1) to the other's fixed Markov tables.

    Per state and side, against the other's quote ``d``: the best tick below ``d`` (one of the two ticks around the
    unconstrained optimum, clipped), a tie at ``d``, or letting the other trade (the highest tick); alone on a side,
    the best tick overall; unable to trade, the highest tick (the quote does not matter).

    Returns ``None`` when :func:`game_unsolvable_reason` says the tools do not cover the game.
    """
    if player not in (0, 1):
        raise ValueError(f"player={player!r} is invalid: must be 0 or 1")
    if game_unsolvable_reason(params) is not None:
        return None
    tree = _Tree(params)
    ticks = _check_tables(tree, bid, ask)
    response, value = _best_response(tree, ticks, player)
    x0, x1 = (response, ticks[1]) if player == 0 else (ticks[0], response)
    joint_bid, joint_ask = _joint_tables(tree, x0, x1)
    value = value.reshape(tree.T + 1, tree.n_levels, tree.n_levels)
    return BestResponse(player, joint_bid, joint_ask, value, float(value[0, tree.I_max, tree.I_max]))


def _nash_conv(tree: _Tree, ticks: tuple[np.ndarray, np.ndarray], policy_value: np.ndarray) -> NashConv:
    start = _start(tree)
    gains = np.empty_like(policy_value)
    responses = np.empty(2)
    for j in range(2):
        _, value = _best_response(tree, ticks, j)
        gains[j] = value - policy_value[j]
        responses[j] = value[0, start]
    where = np.unravel_index(int(np.argmax(gains)), gains.shape)
    j, t, state = (int(i) for i in where)
    at = (j, t, state // tree.n_levels - tree.I_max, state % tree.n_levels - tree.I_max)
    values = policy_value[:, 0, start].copy()
    return NashConv(float((responses - values).sum()), float(gains.max()), at, values, responses)


def nash_conv(params: CompetitionParams, bid: Any, ask: Any) -> NashConv | None:
    """The certificates of a joint Markov policy (tables as in :func:`evaluate_joint`): see :class:`NashConv`.

    Returns ``None`` when :func:`game_unsolvable_reason` says the tools do not cover the game.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = _Tree(params)
    ticks = _check_tables(tree, bid, ask)
    mean, _ = _evaluate(tree, ticks, second=False)
    return _nash_conv(tree, ticks, mean)


# --------------------------------------------------------------------------------------------------------------------
# the equilibrium


def _grid_reservation(stage: _Stage, j: int) -> np.ndarray:
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


def _exhaustive(stage: _Stage, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _equilibrium_stage(stage: _Stage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            chunk = _Stage(tree, sub.mean[:, part], sub.win[:, part], sub.lose[:, part], sub.can[:, part])
            s0[part], s1[part], s_gain[part] = _exhaustive(chunk, order[begin : begin + _EXHAUSTIVE_CHUNK])
    x0[both], x1[both], gain[both] = s0, s1, np.maximum(s_gain, 0.0)
    return x0, x1, gain


def _finish(
    tree: _Tree,
    kind: str,
    ticks: tuple[np.ndarray, np.ndarray],
    value: np.ndarray,
    no_pure: int,
    largest_stage_gain: float,
    certify: bool,
) -> GameSolution:
    bid, ask = _joint_tables(tree, *ticks)
    mean, moment = _evaluate(tree, ticks, second=True)
    start = _start(tree)
    std = np.sqrt(np.maximum(moment[:, 0, start] - mean[:, 0, start] ** 2, 0.0))
    certificate = _nash_conv(tree, ticks, mean) if certify else None
    # The solver's own values: the evaluation recomputes them by another route, the tests compare the two.
    shaped = value.reshape(2, tree.T + 1, tree.n_levels, tree.n_levels)
    return GameSolution(tree.params, kind, bid, ask, shaped, std, no_pure, largest_stage_gain, certificate)


def _backward_tables(tree: _Tree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    tree = _Tree(params)
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
    tree = _Tree(params)
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


def collusion_index(profit: Any, equilibrium_profit: Any, cartel_profit: Any) -> float:
    """The collusion index ``Δ = (Π − Π_eq)/(Π_cartel − Π_eq)`` (Calvano et al., 2020).

    Each argument is the mean per-MM return, or the per-MM returns (their mean is taken): 0 at the equilibrium, 1 at
    the cartel, below 0 for policies worse than competing.
    """
    profit, equilibrium, cartel = (float(np.mean(value)) for value in (profit, equilibrium_profit, cartel_profit))
    if cartel == equilibrium:
        raise ValueError("the cartel and the equilibrium earn the same: the collusion index is undefined")
    return (profit - equilibrium) / (cartel - equilibrium)


# --------------------------------------------------------------------------------------------------------------------
# the joint policy


class GamePolicy:
    """A joint Markov policy of two market makers: offset tables ``(2, T, N, N)`` over ``(t, I_1, I_2)``."""

    def __init__(self, bid: Any, ask: Any, name: str = "game policy") -> None:
        self.bid_table = np.asarray(bid, dtype=np.float64)
        self.ask_table = np.asarray(ask, dtype=np.float64)
        shape = self.bid_table.shape
        if shape != self.ask_table.shape or len(shape) != 4 or shape[0] != 2 or shape[2] != shape[3]:
            raise ValueError(
                f"bid and ask tables must have one shape (2, T, N, N); got {shape}, {self.ask_table.shape}"
            )
        self.name = name

    @classmethod
    def from_one_mm(cls, params: CompetitionParams, policy: Any, name: str | None = None) -> GamePolicy:
        """Each market maker applies a one-MM policy to its own inventory.

        ``policy`` is a pair of one-MM tables ``(bid, ask)`` of shape ``(T, N)`` (``[t, I + I_max]``), an object with
        ``bid`` and ``ask`` tables (an :class:`agents.dp.DPSolution`), a one-MM policy with ``tables(market)``
        (:class:`agents.policies.Policy`), or a function ``(t, I) -> (bid, ask)`` of arrays.
        """
        market = params.market
        if isinstance(policy, tuple):
            bid, ask = policy
        elif hasattr(policy, "bid") and hasattr(policy, "ask"):
            bid, ask = policy.bid, policy.ask
        elif hasattr(policy, "tables"):
            bid, ask = policy.tables(market)
        elif callable(policy):
            t, inventory = np.meshgrid(np.arange(market.T, dtype=np.float64), inventory_grid(market), indexing="ij")
            bid, ask = (np.broadcast_to(np.asarray(side, dtype=np.float64), t.shape) for side in policy(t, inventory))
        else:
            raise ValueError(f"policy={policy!r} is not one-MM tables, a DP solution, a Policy or a function")
        bid, ask = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
        shape = (market.T, 2 * market.I_max + 1)
        if bid.shape != shape or ask.shape != shape:
            raise ValueError(f"one-MM tables must have shape (T, N) = {shape}; got {bid.shape} and {ask.shape}")

        def joint(table: np.ndarray) -> np.ndarray:
            n = shape[1]
            first = np.broadcast_to(table[:, :, None], (*shape, n))  # MM 1 reads I_1
            second = np.broadcast_to(table[:, None, :], (*shape, n))  # MM 2 reads I_2
            return np.stack([first, second])

        label = name or f"both quote {getattr(policy, 'name', 'a one-MM policy')}"
        return cls(joint(bid), joint(ask), name=label)

    @classmethod
    def from_solution(cls, solution: GameSolution) -> GamePolicy:
        """The policy of an equilibrium or cartel solution."""
        return solution.policy()

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the bid and ask tables."""
        return self.bid_table.copy(), self.ask_table.copy()

    def quote(self, state: Any, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets ``(n, 2)`` (bid, ask) on the tick grid for a batched state.

        ``state.t`` has shape ``(n,)`` and ``state.inventory`` ``(n, 2)``; ``t`` is capped at the last row so that
        terminal states still get a quote.
        """
        market = params.market
        if self.bid_table.shape[1:] != (market.T, 2 * market.I_max + 1, 2 * market.I_max + 1):
            raise ValueError(f"tables of shape {self.bid_table.shape} do not fit this game's grid")
        t = np.minimum(np.asarray(state.t, dtype=np.intp), market.T - 1)
        inventory = (np.asarray(state.inventory) + market.I_max).astype(np.intp)
        index = (t[:, None], inventory[:, 0:1], inventory[:, 1:2])
        players = np.arange(2)[None, :]
        bid = self.bid_table[(players, *index)]
        ask = self.ask_table[(players, *index)]
        return params.on_grid(bid), params.on_grid(ask)

    def __repr__(self) -> str:
        return self.name
