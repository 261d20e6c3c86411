"""The two-MM game as the exact tools see it (``MODEL.md`` §8).

Which games they cover, the outcome tree of a step on the grid ``(t, I_1, I_2)``, and batches of stage games.

See :mod:`agents.exact.game` for the tools themselves.
"""

from __future__ import annotations

import numpy as np

from agents.exact.dp import MAX_TABLE_BYTES, inventory_grid, side_outcomes
from mm_env.model.fill import ExponentialFill
from mm_env.params import CompetitionParams

TOLERANCE = 1e-12
"""A stage-game deviation gain at most this counts as none (the float noise of a stage payoff is about 1e-15)."""
_TABLES_PER_SOLVE = 12  # (T, N, N) float64 arrays alive at once: quotes, values, second moments, best responses
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


class Tree:
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
        self.quiet = flow.pi < 1.0  # a step without trader has positive probability (``idle`` may be a residue)
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

    def stage(self, value: np.ndarray, players: tuple[int, ...] = (0, 1)) -> Stage:
        """The stage games of one step given the next step's values ``(2, N²)`` (for ``players`` only)."""
        win = np.zeros((2, 2, self.n_levels**2))
        lose = np.zeros_like(win)
        for j in players:
            stay = self.stay(value, j)
            win[j] = self.continuation(value, j, j) - stay
            lose[j] = self.continuation(value, 1 - j, j) - stay
        return Stage(self, self.mean_executed, win, lose, self.can)

    def ticks(self, offsets: np.ndarray) -> np.ndarray:
        """Offset tables as whole ticks (float), on the grid as the environment rounds them."""
        return self.params.to_ticks(offsets)


class Stage:
    """A batch of two-player stage games: ``m_j``, ``c_j^win``, ``c_j^lose`` and who can trade, each ``(2, ...)``."""

    def __init__(self, tree: Tree, mean: np.ndarray, win: np.ndarray, lose: np.ndarray, can: np.ndarray) -> None:
        self.tree, self.mean, self.win, self.lose, self.can = tree, mean, win, lose, can
        self.safe_mean = np.where(mean > 0.0, mean, 1.0)

    def take(self, mask: np.ndarray) -> Stage:
        """The stage games where ``mask`` (over the trailing axes) is true, flattened."""
        return Stage(self.tree, self.mean[:, mask], self.win[:, mask], self.lose[:, mask], self.can[:, mask])

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
