"""The market dynamics of ``MODEL.md`` §2 and §5: the one implementation behind every front-end.

Every function here is written with arithmetic and comparisons only, so the same code runs on Python scalars (one
environment, where NumPy's per-call overhead would dominate) and on NumPy arrays (a batch of environments). All
randomness comes from an explicit ``numpy.random.Generator`` and is drawn in :func:`sample_draws`; :func:`transition`
is a pure function of the state, the quotes and those draws, so tests can feed it any draws they like.

Draw layout per step (identical for one environment and for a batch, so a batch of one reproduces a single
environment exactly): three uniforms, for the trader's arrival and side, its size and the fill; then, if
``sigma > 0``, a standard normal for the mid noise.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from mm_env.params import MarketParams

Number = Any  # a Python scalar or a NumPy array of them: the functions below accept either


class MarketState(NamedTuple):
    """The state of one environment (scalars) or of a batch (arrays of equal length)."""

    t: Number
    """Steps taken in the episode."""
    inventory: Number
    """The market maker's inventory ``I`` (positive = long)."""
    mid: Number
    """The mid price ``P``."""
    cash: Number
    """The market maker's cash ``X``."""
    mid_change: Number
    """``P_t − P_{t−1}`` over the last step (0 at the start)."""
    traded: Number
    """Units the trader bought from the market maker in the last step (negative: sold to it); ``I`` fell by this."""


class Draws(NamedTuple):
    """The random inputs of one step."""

    side: Number
    """Side of the arriving trader: +1 buys (lifts the ask), −1 sells (hits the bid), 0 no trader."""
    size: Number
    """Size of the arriving trader (0 when none arrived)."""
    fill: Number
    """A uniform draw: the quote on the trader's side fills when ``fill < A·exp(−k·δ)``."""
    noise: Number
    """A standard normal draw for the mid noise (0 when ``sigma = 0``)."""


class Outcome(NamedTuple):
    """What one step did, besides the new state."""

    reward: Number
    executed: Number
    """Executed size ``Q'`` (0 when nothing traded)."""
    offset: Number
    """Offset ``δ_S`` of the quote on the trader's side."""
    spread_captured: Number
    """``Q'·δ_S`` (article mode: ``Q'·(δ_b + δ_a)``, the full quoted spread)."""
    inventory_penalty: Number
    """``λ·I'²``, plus ``α·I'²`` on the last step."""
    terminated: Number


def initial_state(params: MarketParams, n: int | None = None) -> MarketState:
    """The start of an episode: no inventory, no cash, the mid at ``P0`` (scalars, or arrays of length ``n``)."""
    if n is None:
        return MarketState(0, 0, params.P0, 0.0, 0.0, 0)
    zeros = np.zeros(n)
    return MarketState(zeros.copy(), zeros.copy(), np.full(n, params.P0), zeros.copy(), zeros.copy(), zeros)


def sample_draws(rng: np.random.Generator, params: MarketParams, n: int | None = None) -> Draws:
    """Draw the random inputs of one step for one environment (``n=None``) or ``n`` of them."""
    pi = params.pi
    # u < pi/2 ⇔ u <= below_half: the form the batched sign trick below needs, used by both paths alike.
    below_half = params.below_half_pi
    if n is None:
        u_side, u_size, fill = rng.random(3).tolist()
        side = (1 if u_side <= below_half else -1) if u_side < pi else 0
        if not side:
            size = 0
        elif params.uniform_sizes:
            size = params.sizes[int(u_size * len(params.sizes))]
        else:
            size = _sample_size(u_size, params)
        noise = rng.standard_normal() if params.sigma > 0.0 else 0.0
        return Draws(side, size, fill, noise)
    uniforms = rng.random((3, n))
    u_side, u_size, fill = uniforms
    arrived = u_side < pi if pi < 1.0 else None
    # The draws are ours, so side and size overwrite their uniforms: fewer fresh arrays keep a large batch in cache.
    side = np.copysign(1.0, np.subtract(below_half, u_side, out=u_side), out=u_side)
    size = _sample_size(u_size, params, out=u_size)
    if arrived is not None:
        side = np.where(arrived, side, 0.0)
        size = np.where(arrived, size, 0.0)
    noise = rng.standard_normal(n) if params.sigma > 0.0 else 0.0
    return Draws(side, size, fill, noise)


def _sample_size(u: Number, params: MarketParams, out: np.ndarray | None = None) -> Number:
    # Inverse-CDF sampling. Uniform sizes take the index floor(u·m), cheaper than a search and the same floating-point
    # rule as sample_draws' scalar path (which inlines it, so scalars here have non-uniform sizes), and the two agree
    # draw for draw. `out` may receive the result (it can be `u` itself).
    if not isinstance(u, np.ndarray):
        return params.sizes[_bisect_right(params.size_cdf, u)]
    if params.consecutive_sizes:  # sizes s0, s0 + 1, …: the size is floor(u·m) + s0, computed without a table
        size = np.floor(np.multiply(u, len(params.sizes), out=out), out=out)
        size += params.sizes[0]
        return size
    sizes_array, cdf_array = _size_tables(params)
    if params.uniform_sizes:
        return sizes_array.take((u * len(params.sizes)).astype(np.intp))
    return sizes_array.take(np.searchsorted(cdf_array, u, side="right"))


def _bisect_right(cdf: tuple[float, ...], u: float) -> int:
    # The scalar twin of np.searchsorted(..., side="right"), capped at the last index for u rounding to 1.
    for index, bound in enumerate(cdf):
        if u < bound:
            return index
    return len(cdf) - 1


@functools.lru_cache(maxsize=64)
def _size_tables(params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
    # The sizes and their CDF as arrays, built once per parameter set rather than at every batched step.
    return np.asarray(params.sizes, dtype=np.float64), np.asarray(params.size_cdf)


def _select(condition: bool, if_true: float, if_false: float) -> float:
    return if_true if condition else if_false


_SCALAR_OPS = (min, math.exp, _select)
_ARRAY_OPS = (np.minimum, np.exp, np.where)


def transition(
    state: MarketState, bid_offset: Number, ask_offset: Number, draws: Draws, params: MarketParams
) -> tuple[MarketState, Outcome]:
    """Apply one step of ``MODEL.md`` §2 (or §5 in article mode) to the state, given the quotes and the draws.

    ``bid_offset`` and ``ask_offset`` are the offsets ``δ_b, δ_a`` from the mid, already within
    ``[delta_min, delta_max]``.
    """
    t, inventory, mid, cash, _, _ = state
    side, size, fill, noise = draws
    minimum, exp, select = _ARRAY_OPS if isinstance(inventory, np.ndarray) else _SCALAR_OPS
    offset = select(side > 0, ask_offset, bid_offset)
    # The limit |I| ≤ I_max cuts the executed size: a trader who buys can take at most I + I_max units.
    executed = minimum(size, params.I_max + side * inventory)
    if not params.article:
        executed = executed * (fill < params.A * exp(-params.k * offset))
    traded = side * executed
    earned = executed * offset  # the fill's distance from the mid times its size
    new_inventory = inventory - traded
    new_cash = cash + traded * mid + earned
    mid_change = params.kappa * traded
    if params.sigma > 0.0:
        mid_change = mid_change + params.sigma * noise
    new_mid = mid + mid_change
    new_t = t + 1
    terminated = new_t >= params.T
    squared = new_inventory * new_inventory
    penalty = params.lam * squared
    if params.alpha > 0.0:
        penalty = penalty + params.alpha * squared * terminated
    captured = executed * (bid_offset + ask_offset) if params.article else earned
    if params.reward == "mtm":
        reward = (new_cash + new_inventory * new_mid) - (cash + inventory * mid) - penalty
    else:
        reward = captured - penalty
    new_state = MarketState(new_t, new_inventory, new_mid, new_cash, mid_change, traded)
    return new_state, Outcome(reward, executed, offset, captured, penalty, terminated)
