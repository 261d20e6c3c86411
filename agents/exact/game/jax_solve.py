"""The two-MM equilibrium on JAX: the stage games of each step, the value update and the certificates compiled.

:func:`solve_equilibrium` here returns what :func:`agents.exact.game.solve.solve_equilibrium` returns — the same
tables and values bit for bit, the same counts of stage games without a pure equilibrium, the same moments and
certificates to rounding — in a fraction of the time. The NumPy solver spends its time in thousands of small array
operations per step (the stage games' candidates, the grid reservations, the best responses that verify them, and the
certificates' two best-response passes and moments); XLA fuses each step's operations into a few loops over the
states.

What stays in NumPy: the outcome tree (:class:`~agents.exact.game.model.Tree`), the rare exhaustive search of a stage
game whose candidates fail (:func:`agents.exact.game.solve._exhaustive`, on the few games that need it, step by step),
the forward pass over reachable states, and the final tables.

Bit-for-bit equality holds because every formula of the backward pass is the NumPy solver's, in the same order of
operations: sums over trader sizes run in NumPy's order (:func:`_numpy_sum`), fill odds are looked up in the same
table, and products are rounded on their own (:func:`_product`), where XLA would fuse them with the sums they feed.
It matters: where stage games without a pure equilibrium have several pairs with the same largest gain, a last-bit
difference selects another pair. The tests compare the two solvers' tables and values exactly.

The solve computes in float64 under ``jax.enable_x64(True)`` (a context manager: the process's own JAX setting is
left as it was). Requires the ``jax`` extra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from agents.exact.game.evaluation import NashConv, start_index
from agents.exact.game.model import TOLERANCE, Stage, Tree, game_unsolvable_reason
from agents.exact.game.solve import _EXHAUSTIVE_CHUNK, GameSolution, _exhaustive, _finish_tables
from mm_env.params import CompetitionParams

Array = jax.Array


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["lo", "hi", "tick", "inverse_k", "undercut", "arrive", "idle", "probs", "zero"],
    meta_fields=["n_levels", "sizes", "quiet"],
)
@dataclass(frozen=True)
class _Scalars:
    """The game's scalars, and what is static to the compiled functions.

    The numbers are arguments of the compiled functions; the grid, the trader sizes and whether a step may pass
    without a trader are static to them (one compilation for each).
    """

    lo: float
    hi: float
    tick: float
    inverse_k: float
    """``1/k``, as NumPy computes it."""
    undercut: float
    """``exp(−k·tick)``, as NumPy computes it."""
    arrive: tuple[float, float]
    idle: float
    probs: tuple[float, ...]
    zero: int
    """0, an argument (not a constant) of the compiled functions: see :func:`_product`."""
    n_levels: int
    sizes: tuple[int, ...]
    quiet: bool
    """Whether ``idle > 0`` (a step may pass without a trader on either side)."""


def _scalars(tree: Tree) -> _Scalars:
    return _Scalars(
        lo=tree.lo,
        hi=tree.hi,
        tick=float(tree.tick),
        inverse_k=1.0 / tree.k,
        undercut=float(np.exp(-tree.k * tree.tick)),
        arrive=(float(tree.arrive[0]), float(tree.arrive[1])),
        idle=float(tree.idle),
        probs=tuple(float(p) for p in tree.probs),
        zero=0,
        n_levels=tree.n_levels,
        sizes=tuple(int(size) for size in tree.params.market.flow.sizes),
        quiet=tree.idle > 0.0,
    )


def _product(s: _Scalars, a: Array | float, b: Array | float) -> Array:
    """``a·b``, rounded on its own as NumPy rounds it.

    XLA on CPU contracts a product and the sum it feeds into one fused multiply-add, rounded once, where NumPy rounds
    twice; the last bit then differs, and the stage games' exact comparisons (ties between reservations, equal
    deviation gains) could select another equilibrium than the NumPy solver. An exclusive-or of the product's bits with
    :attr:`_Scalars.zero`, which the compiler cannot see is 0, keeps the two operations apart at no other cost.
    """
    bits = lax.bitcast_convert_type(jnp.multiply(a, b), jnp.int64) ^ s.zero
    return lax.bitcast_convert_type(bits, jnp.float64)


def _constants(tree: Tree) -> dict[str, Array]:
    """The outcome tree's arrays on the device, states as a grid ``(…, N, N)`` (``[…, I_1 + I_max, I_2 + I_max]``).

    A grid rather than flat states: XLA then indexes a state by its two levels with no division by ``N``.
    """
    names = (
        "fill_mean",
        "stay_reward",
        "idle_reward",
        "mean_executed",
        "can",
        "fill_odds",
        "terminal",
        "fill_square",
        "weighted_reward",
        "fill_cross",
        "executed_square",
        "weighted_executed",
        "stay_var",
        "idle_var",
    )
    n = tree.n_levels
    arrays = {name: getattr(tree, name) for name in names}
    grids = {name: array.reshape(*array.shape[:-1], n, n) for name, array in arrays.items() if name != "fill_odds"}
    return {name: jnp.asarray(array) for name, array in {**arrays, **grids}.items()}


# --------------------------------------------------------------------------------------------------------------------
# the outcome tree's sums (as Tree's methods)


def _after_both(s: _Scalars, values: Array, w: int, q: int) -> Array:
    """Value tables ``(k, N, N)`` at the next state when ``w`` executes a trader of size index ``q``: ``(k, 2, N, N)``.

    The ``next_state`` of :class:`~agents.exact.game.model.Tree` as shifted slices (which XLA fuses, unlike a
    gather), per side (ask, bid): on the ask ``w`` sells ``min(Q, I_w + I_max)``, so its level index becomes
    ``max(i − Q, 0)``; on the bid it buys ``min(Q, I_max − I_w)``, so ``min(i + Q, N − 1)``.
    """
    n = s.n_levels
    axis = values.ndim - 2 + w
    shift = min(s.sizes[q], n - 1)
    low = lax.slice_in_dim(values, 0, 1, axis=axis)
    high = lax.slice_in_dim(values, n - 1, n, axis=axis)
    ask = jnp.concatenate([jnp.repeat(low, shift, axis=axis), lax.slice_in_dim(values, 0, n - shift, axis=axis)], axis)
    bid = jnp.concatenate([lax.slice_in_dim(values, shift, n, axis=axis), jnp.repeat(high, shift, axis=axis)], axis)
    return jnp.stack([ask, bid], axis=-3)


def _numpy_sum(terms: list[Array]) -> Array:
    """``sum(terms)`` in NumPy's order for a sum along a contiguous axis (its pairwise summation).

    :meth:`Tree.continuation` sums over the trader sizes, the axis its gathered values hold contiguously, so NumPy
    adds them pairwise: one after the other below 8 terms, in 8 running sums up to 128, halves above.
    """
    n = len(terms)
    if n < 8:
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total
    if n <= 128:
        sums, end = list(terms[:8]), n - n % 8
        for start in range(8, end, 8):
            sums = [sums[k] + terms[start + k] for k in range(8)]
        total = ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
        for term in terms[end:]:
            total = total + term
        return total
    half = n // 2 - (n // 2) % 8
    return _numpy_sum(terms[:half]) + _numpy_sum(terms[half:])


def _continuations(s: _Scalars, fill_mean: Array, values: Array, w: int) -> Array:
    """:meth:`Tree.continuation` for ``k`` market makers at once, ``(k, 2, N, N)``.

    ``values`` are their value tables ``(k, N, N)``, ``fill_mean`` their ``fill_mean[w, j]``, ``(k, 2, N, N)``.
    """
    terms = [_product(s, _after_both(s, values, w, q), s.probs[q]) for q in range(len(s.sizes))]
    return fill_mean + _numpy_sum(terms)


def _stay(c: dict[str, Array], value: Array, j: int) -> Array:
    return c["stay_reward"][j] + value[j]


def _combine(s: _Scalars, c: dict[str, Array], value: Array, j: int, side_value: Array) -> Array:
    """:meth:`Tree.combine`."""
    result = _product(s, s.arrive[0], side_value[0]) + _product(s, s.arrive[1], side_value[1])
    if s.quiet:
        result = result + _product(s, s.idle, c["idle_reward"][j] + value[j])
    return result


# --------------------------------------------------------------------------------------------------------------------
# a batch of stage games (as model.Stage)


def _opposite(j: int | slice | Array) -> int | slice | Array:
    """The other market maker's index: ``1 − j``, or both reversed for ``j = slice(None)`` (both at once)."""
    return slice(None, None, -1) if isinstance(j, slice) else 1 - j


class _Games:
    """:class:`~agents.exact.game.model.Stage` on JAX arrays: ``m_j``, ``c_j^win``, ``c_j^lose``, who can trade."""

    def __init__(self, s: _Scalars, odds: Array, mean: Array, win: Array, lose: Array, can: Array) -> None:
        self.s, self.odds, self.mean, self.win, self.lose, self.can = s, odds, mean, win, lose, can
        self.safe_mean = jnp.where(mean > 0.0, mean, 1.0)

    def prob(self, x: Array) -> Array:
        index = jnp.clip(x - self.s.lo, 0, self.odds.shape[0] - 1).astype(jnp.int64)
        return self.odds[index]

    def gain(self, mean: Array, change: Array, x: Array) -> Array:
        s = self.s
        return _product(s, self.prob(x), _product(s, mean, x * s.tick) + change)

    def winning(self, j: int | slice | Array, x: Array) -> Array:
        return self.gain(self.mean[j], self.win[j], x)

    def losing(self, j: int | slice | Array, x: Array) -> Array:
        return _product(self.s, self.prob(x), self.lose[j])

    def tying(self, j: int | slice | Array, x: Array) -> Array:
        return 0.5 * (self.winning(j, x) + self.losing(j, x))

    def best_tick(self, mean: Array, change: Array, upper: Array | float) -> tuple[Array, Array]:
        """:meth:`Stage.best_tick`."""
        s = self.s
        safe = jnp.where(mean > 0.0, mean, 1.0)
        peak = jnp.floor((s.inverse_k - change / safe) / s.tick)
        lower = jnp.minimum(jnp.maximum(peak, s.lo), upper)
        upper_tick = jnp.minimum(jnp.maximum(peak + 1.0, s.lo), upper)
        low_value, high_value = self.gain(mean, change, lower), self.gain(mean, change, upper_tick)
        better = high_value > low_value
        best = jnp.where(better, upper_tick, lower)
        value = jnp.where(better, high_value, low_value)
        return best, jnp.where(jnp.asarray(upper) >= s.lo, value, -jnp.inf)

    def response(self, j: int | slice | Array, other: Array) -> tuple[Array, Array]:
        """:meth:`Stage.response` (``j = slice(None)``: both market makers, ``other`` stacked per market maker)."""
        hi = self.s.hi
        o = _opposite(j)
        below, below_value = self.best_tick(self.mean[j], self.win[j], other - 1.0)
        tie_value = self.tying(j, other)
        lose_value = jnp.where(other < hi, self.losing(j, other), -jnp.inf)
        tick = jnp.where(tie_value > below_value, other, below)
        value = jnp.maximum(tie_value, below_value)
        tick = jnp.where(lose_value > value, hi, tick)
        value = jnp.maximum(value, lose_value)
        alone, alone_value = self.best_tick(self.mean[j], self.win[j], hi)
        can_j, can_o = self.can[j], self.can[o]
        tick = jnp.where(can_j, jnp.where(can_o, tick, alone), hi)
        value = jnp.where(can_j, jnp.where(can_o, value, alone_value), jnp.where(can_o, self.losing(j, other), 0.0))
        return tick, value

    def shares(self, x0: Array, x1: Array) -> tuple[Array, Array, Array]:
        can0, can1 = self.can[0], self.can[1]
        win0 = can0 & (~can1 | (x0 < x1))
        win1 = can1 & (~can0 | (x1 < x0))
        tie = can0 & can1 & (x0 == x1)
        return win0 + 0.5 * tie, win1 + 0.5 * tie, jnp.where(win0 | tie, x0, x1)

    def payoff(self, j: int | slice, x0: Array, x1: Array) -> Array:
        share0, share1, best = self.shares(x0, x1)
        shares = jnp.stack([share0, share1])
        return shares[j] * self.winning(j, best) + shares[_opposite(j)] * self.losing(j, best)

    def largest_gain(self, x0: Array, x1: Array) -> Array:
        """The larger of the two market makers' best deviation gains at ``(x0, x1)`` (both computed at once)."""
        both = slice(None)
        gains = self.response(both, jnp.stack([x1, x0]))[1] - self.payoff(both, x0, x1)
        return jnp.maximum(gains[0], gains[1])


def _stage(s: _Scalars, c: dict[str, Array], value: Array) -> _Games:
    """:meth:`Tree.stage`: the stage games of one step given the next step's values ``(2, N, N)``."""
    executes = [_continuations(s, c["fill_mean"][w], value, w) for w in range(2)]
    stay = c["stay_reward"] + value[:, None]
    win = jnp.stack([executes[0][0], executes[1][1]]) - stay
    lose = jnp.stack([executes[1][0], executes[0][1]]) - stay
    return _Games(s, c["fill_odds"], c["mean_executed"], win, lose, c["can"])


# --------------------------------------------------------------------------------------------------------------------
# the equilibrium's stage (as solve._grid_reservation and solve._equilibrium_stage)


def _grid_reservation(games: _Games, j: int | slice, both: Array) -> Array:
    """:func:`agents.exact.game.solve._grid_reservation` on every game (``both`` marks those that count).

    Where the corrected estimate is not exact (never at the defaults), every game is bisected, as the NumPy solver
    bisects those games: the result there is the same, game by game.
    """
    s = games.s
    mean, win, lose = games.safe_mean[j], games.win[j], games.lose[j]
    tie_bound = jnp.floor((lose - win) / mean / s.tick)
    undercut_bound = 1.0 + jnp.floor((_product(s, lose, s.undercut) - win) / mean / s.tick)
    estimate = jnp.minimum(jnp.maximum(jnp.minimum(tie_bound, undercut_bound), s.lo - 1.0), s.hi)

    def content(x: Array) -> Array:
        losing = games.losing(j, x)
        _, undercut = games.best_tick(games.mean[j], games.win[j], x - 1.0)
        return (x >= s.lo) & (x <= s.hi) & (losing >= games.tying(j, x)) & (losing >= undercut)

    for _ in range(2):
        estimate = jnp.where(content(estimate + 1.0), estimate + 1.0, estimate)
    for _ in range(3):
        estimate = jnp.where((estimate >= s.lo) & ~content(estimate), estimate - 1.0, estimate)
    exact = ((estimate < s.lo) | content(estimate)) & ~content(estimate + 1.0)

    def bisect(estimate: Array) -> Array:
        # Content at ``low`` (``lo − 1`` counts as content), not at ``high``; every game halves the same width.
        def halve(bounds: tuple[Array, Array]) -> tuple[Array, Array]:
            low, high = bounds
            middle = jnp.floor(0.5 * (low + high))
            inside = content(middle)
            return jnp.where(inside, middle, low), jnp.where(inside, high, middle)

        low = jnp.full(estimate.shape, s.lo - 1.0)
        high = jnp.full(estimate.shape, s.hi + 1.0)
        low, _ = lax.while_loop(lambda bounds: jnp.any(bounds[1] - bounds[0] > 1.0), halve, (low, high))
        return jnp.where(exact, estimate, low)

    # The conditional also makes XLA compute the reservations once, not again inside each of their uses.
    return lax.cond(jnp.all(exact | ~both), lambda e: e, bisect, estimate)


class _StageChoice(NamedTuple):
    x0: Array
    x1: Array
    search: Array
    """The games whose candidates failed: :func:`~agents.exact.game.solve._exhaustive` decides them."""
    lower: Array
    win: Array
    lose: Array


def _equilibrium_candidates(s: _Scalars, c: dict[str, Array], following: Array) -> _StageChoice:
    """:func:`agents.exact.game.solve._equilibrium_stage` up to its exhaustive search, on every game at once."""
    games = _stage(s, c, following)
    can0, can1 = games.can[0], games.can[1]
    both = can0 & can1
    alone = games.best_tick(games.mean, games.win, s.hi)[0]
    x0 = jnp.where(can0 & ~can1, alone[0], s.hi)
    x1 = jnp.where(can1 & ~can0, alone[1], s.hi)
    reservation = (games.lose - games.win) / games.safe_mean
    reservation_tick = jnp.floor(reservation / s.tick)
    same = reservation_tick[0] == reservation_tick[1]
    lower = jnp.where(reservation[0] < reservation[1], 0, jnp.where(reservation[1] < reservation[0], 1, -1))
    lower = lower.astype(jnp.int32)
    first_wins = lower != 1

    # Only the loser's grid reservation is used: compute that one alone (the NumPy solver computes both).
    def loser(array: Array) -> Array:
        return jnp.where(first_wins, array[1], array[0])[None]

    losers = _Games(s, games.odds, loser(games.mean), loser(games.win), loser(games.lose), games.can)
    loser_grid = _grid_reservation(losers, 0, both)
    winner_own = jnp.where(first_wins, alone[0], alone[1])
    winning = jnp.maximum(jnp.minimum(jnp.minimum(winner_own, loser_grid), s.hi - 1.0), s.lo)
    losing = winning + 1.0
    asymmetric = (jnp.where(first_wins, winning, losing), jnp.where(first_wins, losing, winning))
    tie_tick = jnp.minimum(jnp.maximum(jnp.maximum(reservation_tick[0], reservation_tick[1]) + 1.0, s.lo), s.hi)
    use_asymmetric = ~same & (games.largest_gain(*asymmetric) <= TOLERANCE)
    tie_ok = games.largest_gain(tie_tick, tie_tick) <= TOLERANCE
    no_execution = (loser_grid < s.lo) | (winning < winner_own) | (winner_own >= s.hi - 1.0)
    shortcut = ~same & ~use_asymmetric & tie_ok & no_execution
    check = shortcut & (tie_tick > s.lo)
    below = tie_tick - 1.0
    shortcut = jnp.where(check, games.largest_gain(below, below) > TOLERANCE, shortcut)
    use_tie = (same & tie_ok) | shortcut
    x0 = jnp.where(both, jnp.where(use_tie, tie_tick, asymmetric[0]), x0)
    x1 = jnp.where(both, jnp.where(use_tie, tie_tick, asymmetric[1]), x1)
    search = both & ~(use_tie | use_asymmetric)
    return _StageChoice(x0, x1, search, lower, games.win, games.lose)


def _advance(
    s: _Scalars, c: dict[str, Array], following: Array, choice: _StageChoice, x0: Array, x1: Array, first: Array
) -> tuple[Array, _StageChoice]:
    """Both market makers' values one step earlier, and the candidates of the step before that.

    ``x0``, ``x1``: the step's quotes ``(2, N, N)`` in ticks; ``first``: return ``following`` itself and its
    candidates (those of the last step).
    """
    games = _Games(s, c["fill_odds"], c["mean_executed"], choice.win, choice.lose, c["can"])
    value = jnp.stack(
        [_combine(s, c, following, j, _stay(c, following, j) + games.payoff(j, x0, x1)) for j in range(2)]
    )
    value = jnp.where(first, following, value)
    return value, _equilibrium_candidates(s, c, value)


_advance_jit = jax.jit(_advance)


# --------------------------------------------------------------------------------------------------------------------
# certificates and moments (as evaluation.best_response_ticks and evaluation.moments)


def _best_response_values(s: _Scalars, c: dict[str, Array], other: Array, player: Array) -> Array:
    """The player's best-response values ``(T + 1, N, N)`` against the other's ticks ``(T, 2, N, N)``.

    ``player`` (0 or 1) is an array, so that one compilation serves both market makers.
    """
    fill_mean = c["fill_mean"][:, player]  # per executing market maker w, (2, 2, N, N)
    first = player == 0

    def step(following: Array, other_t: Array) -> tuple[Array, Array]:
        stay = c["stay_reward"][player] + following
        executes = [_continuations(s, fill_mean[w][None], following[None], w)[0] for w in range(2)]
        win = jnp.where(first, executes[0], executes[1]) - stay
        lose = jnp.where(first, executes[1], executes[0]) - stay
        zeros = jnp.zeros_like(win)
        games = _Games(
            s,
            c["fill_odds"],
            c["mean_executed"],
            jnp.where(first, jnp.stack([win, zeros]), jnp.stack([zeros, win])),
            jnp.where(first, jnp.stack([lose, zeros]), jnp.stack([zeros, lose])),
            c["can"],
        )
        _, payoff = games.response(player, other_t)
        side_value = stay + payoff
        value = _product(s, s.arrive[0], side_value[0]) + _product(s, s.arrive[1], side_value[1])
        if s.quiet:
            value = value + _product(s, s.idle, c["idle_reward"][player] + following)
        return value, value

    terminal = c["terminal"][player]
    _, values = lax.scan(step, terminal, other, reverse=True)
    return jnp.concatenate([values, terminal[None]])


_best_response_jit = jax.jit(_best_response_values)


def _moments(s: _Scalars, c: dict[str, Array], x0: Array, x1: Array) -> tuple[Array, Array]:
    """:func:`agents.exact.game.evaluation.moments` with second moments: ``(2, T + 1, N, N)`` each.

    Both market makers and both moments at once (one stack ``(2 moments, 2 market makers, N, N)``), so that XLA
    runs a few large loops per step rather than many small ones.
    """
    games = _Games(s, c["fill_odds"], c["mean_executed"], jnp.zeros((2, 2, 1, 1)), jnp.zeros((2, 2, 1, 1)), c["can"])
    stay_reward, stay_var, idle_reward, idle_var = c["stay_reward"], c["stay_var"], c["idle_reward"], c["idle_var"]

    def step(carry: Array, ticks: tuple[Array, Array]) -> tuple[Array, Array]:
        value, value2 = carry[0], carry[1]  # (2 market makers j, N, N) each
        share0, share1, best = games.shares(*ticks)
        p = games.prob(best)
        offset = best * s.tick  # (2 sides, N, N)
        filled = (p * share0, p * share1)
        declined = 1.0 - filled[0] - filled[1]
        first = declined * (stay_reward + value[:, None])  # (2 j, 2 sides, N, N)
        squares = declined * (stay_reward * (stay_reward + 2.0 * value[:, None]) + value2[:, None] + stay_var)
        for w in range(2):
            mean_after = square_after = reward_after = jnp.zeros_like(first)
            executed_after = jnp.zeros_like(offset)
            for q in range(len(s.sizes)):
                after = _after_both(s, carry, w, q)  # (2 moments, 2 j, 2 sides, N, N)
                mean_after = mean_after + s.probs[q] * after[0]
                square_after = square_after + s.probs[q] * after[1]
                reward_after = reward_after + c["weighted_reward"][w, :, q] * after[0]
                executed_after = executed_after + c["weighted_executed"][w, q] * after[0, w]
            outcome = c["fill_mean"][w] + mean_after
            outcome2 = c["fill_square"][w] + 2.0 * reward_after + square_after
            # The executing market maker also earns Q'·δ°.
            outcome = outcome.at[w].add(offset * c["mean_executed"][w])
            own = offset * c["fill_cross"][w] + offset**2 * c["executed_square"][w] + 2.0 * offset * executed_after
            outcome2 = outcome2.at[w].add(own)
            first = first + filled[w] * outcome
            squares = squares + filled[w] * outcome2
        mean = s.arrive[0] * first[:, 0] + s.arrive[1] * first[:, 1]
        second = s.arrive[0] * squares[:, 0] + s.arrive[1] * squares[:, 1]
        if s.quiet:
            mean = mean + s.idle * (idle_reward + value)
            second = second + s.idle * (idle_reward * (idle_reward + 2.0 * value) + value2 + idle_var)
        carry = jnp.stack([mean, second])
        return carry, carry

    terminal = c["terminal"]
    last = jnp.stack([terminal, terminal**2])
    _, moments = lax.scan(step, last, (x0, x1), reverse=True)  # (T, 2 moments, 2 j, N, N)
    moments = jnp.concatenate([moments, last[None]])
    return jnp.moveaxis(moments[:, 0], 0, 1), jnp.moveaxis(moments[:, 1], 0, 1)


_moments_jit = jax.jit(_moments)


def _certificates(tree: Tree, responses: list[Array], policy_value: np.ndarray) -> NashConv:
    """:func:`agents.exact.game.evaluation.certificates` from each market maker's best-response values."""
    start = start_index(tree)
    gains = np.empty_like(policy_value)
    starts = np.empty(2)
    for j, response in enumerate(responses):
        value = np.asarray(response).reshape(tree.T + 1, -1)
        gains[j] = value - policy_value[j]
        starts[j] = value[0, start]
    where = np.unravel_index(int(np.argmax(gains)), gains.shape)
    j, t, state = (int(i) for i in where)
    at = (j, t, state // tree.n_levels - tree.I_max, state % tree.n_levels - tree.I_max)
    values = policy_value[:, 0, start].copy()
    return NashConv(float((starts - values).sum()), float(gains.max()), at, values, starts)


# --------------------------------------------------------------------------------------------------------------------
# the solver


def _search(tree: Tree, choice: _StageChoice, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Decide the games the candidates left open by the exhaustive search, in place; return every game's gain."""
    gain = np.zeros(x0.shape)
    search = np.asarray(choice.search).reshape(x0.shape)
    if not search.any():
        return gain
    mean, can = tree.mean_executed[:, search], tree.can[:, search]
    win = np.asarray(choice.win).reshape(2, *x0.shape)[:, search]
    lose = np.asarray(choice.lose).reshape(2, *x0.shape)[:, search]
    lower = np.asarray(choice.lower).reshape(x0.shape)[search]
    s0, s1, s_gain = np.empty(len(lower)), np.empty(len(lower)), np.empty(len(lower))
    for begin in range(0, len(lower), _EXHAUSTIVE_CHUNK):
        part = slice(begin, begin + _EXHAUSTIVE_CHUNK)
        stage = Stage(tree, mean[:, part], win[:, part], lose[:, part], can[:, part])
        s0[part], s1[part], s_gain[part] = _exhaustive(stage, lower[part])
    x0[search], x1[search], gain[search] = s0, s1, np.maximum(s_gain, 0.0)
    return gain


def solve_equilibrium(params: CompetitionParams, certify: bool = True) -> GameSolution | None:
    """:func:`agents.exact.game.solve.solve_equilibrium`, compiled with JAX: the same solution, faster.

    The tables, the values, the counts of stage games without a pure equilibrium and the certificates are those of the
    NumPy solver (the tables and values bit for bit; the moments and certificates to rounding). It computes in float64
    under ``jax.enable_x64(True)``. The first call for a game of a new shape compiles (a few seconds); later calls
    reuse the compiled code.

    Args:
        params: the game.
        certify: also compute the certificates (:class:`~agents.exact.game.evaluation.NashConv`), two best-response
            passes.

    Returns:
        The solution, or ``None`` when :func:`~agents.exact.game.model.game_unsolvable_reason` says the tools do not
        cover the game.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = Tree(params)
    s = _scalars(tree)
    n, n2 = tree.n_levels, tree.n_levels**2
    value = np.empty((2, tree.T + 1, n2))
    value[:, tree.T] = tree.terminal
    ticks = np.empty((2, tree.T, 2, n2))
    traded_sides = (tree.arrive > 0.0)[:, None]
    no_pure = np.zeros((tree.T, 2, n2), dtype=bool)
    largest = 0.0
    with jax.enable_x64(True):
        c = _constants(tree)
        following = c["terminal"]
        # The candidates of the last step: _advance with ``first`` (a zero choice stands in for the step after it).
        n_shape = (2, n, n)
        zero = jnp.zeros(n_shape)
        start = _StageChoice(
            zero,
            zero,
            jnp.zeros(n_shape, dtype=bool),
            jnp.zeros(n_shape, dtype=jnp.int32),
            *(jnp.zeros((2, *n_shape)),) * 2,
        )
        following, choice = _advance_jit(s, c, following, start, zero, zero, jnp.asarray(True))
        for t in range(tree.T - 1, -1, -1):
            x0, x1 = np.array(choice.x0).reshape(2, n2), np.array(choice.x1).reshape(2, n2)
            gain = _search(tree, choice, x0, x1)
            no_pure[t] = (gain > TOLERANCE) & traded_sides
            if no_pure[t].any():
                largest = max(largest, float(gain[no_pure[t]].max()))
            ticks[0, t], ticks[1, t] = x0, x1
            # The values of step t, and the candidates of step t − 1 (unused after the first step).
            x0_grid, x1_grid = jnp.asarray(x0.reshape(2, n, n)), jnp.asarray(x1.reshape(2, n, n))
            following, choice = _advance_jit(s, c, following, choice, x0_grid, x1_grid, jnp.asarray(False))
            value[:, t] = np.asarray(following).reshape(2, n2)
        x0_all, x1_all = (jnp.asarray(ticks[j].reshape(tree.T, 2, n, n)) for j in range(2))
        # Dispatched together (JAX runs them asynchronously, on several cores where it has them), then awaited.
        moments = _moments_jit(s, c, x0_all, x1_all)
        responses = [_best_response_jit(s, c, other, jnp.asarray(j)) for j, other in ((0, x1_all), (1, x0_all))]
        mean, moment = (np.asarray(array).reshape(2, tree.T + 1, n2) for array in moments)
        certificate = _certificates(tree, responses, mean) if certify else None
    # The offset tables of evaluation.joint_tables, without its copies: ticks[j, t, side] per market maker.
    shape = tree.table_shape()
    tables = (ticks[:, :, 1] * tree.tick).reshape(shape), (ticks[:, :, 0] * tree.tick).reshape(shape)
    return _finish_tables(
        tree, "equilibrium", (ticks[0], ticks[1]), value, no_pure, largest, mean, moment, certificate, tables
    )
