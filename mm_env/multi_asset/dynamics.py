"""One step of the multi-asset model (``MODEL.md`` §9.2), a pure function of the state, the quotes and the draws.

:func:`sample_draws` takes a step's raw random numbers from an explicit ``numpy.random.Generator``: three uniforms
(the trader's asset and side, its size, the fill), then ``d`` standard normals when some ``σ_i > 0``; for a batch of
``n``, a ``(3, n)`` block of uniforms, then a ``(d, n)`` block of normals. The draws never depend on the state or the
quotes (common random numbers). With ``d = 1`` they are the one-asset model's (:func:`mm_env.dynamics.sample_draws`),
so one seed gives the same episodes in both models.

:func:`transition` turns the draws into events with each asset's one-asset components (its order flow's size law,
its fill law, its price impact) and calls array functions only through the namespace ``xp`` (:mod:`mm_env.xp`).
For a batch (the namespace :data:`~mm_env.xp.NUMPY`) per-asset fields are arrays ``(n, d)`` and the time and the
cash arrays ``(n,)``. For one environment (:data:`~mm_env.xp.SCALAR`, where NumPy's per-call overhead would dominate
the step) they are Python numbers, the per-asset fields tuples of ``d`` numbers, the quotes a list of ``d`` pairs and
the draws lists; one environment can also be stepped as arrays ``(d,)`` with :data:`~mm_env.xp.NUMPY`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeAlias

import numpy as np

from mm_env.multi_asset.params import MultiAssetParams
from mm_env.xp import NUMPY, ArrayNamespace, Number

PerAsset: TypeAlias = Number | tuple[Number, ...]
"""A per-asset field: an array with a last axis of ``d``, or a tuple of ``d`` numbers (one environment)."""
Quotes: TypeAlias = np.ndarray | list[tuple[Number, Number]]
"""The offsets: an array ``(..., d, 2)``, or a list of ``d`` pairs ``(bid, ask)`` of numbers (one environment)."""
Block: TypeAlias = np.ndarray | Sequence[float]
"""Draws: an array (a batch's rows) or a list of numbers (one environment's)."""

__all__ = [
    "MultiAssetDraws",
    "MultiAssetOutcome",
    "MultiAssetState",
    "initial_state",
    "penalty_form",
    "sample_draws",
    "transition",
    "wealth",
]


class MultiAssetState(NamedTuple):
    """The state of one environment or of a batch.

    Per-asset fields are tuples of ``d`` numbers (or arrays ``(d,)``) for one environment, arrays ``(n, d)`` for a
    batch; ``t`` and ``cash`` are numbers, or arrays ``(n,)``.
    """

    t: Number
    """Steps taken in the episode."""
    inventory: PerAsset
    """The inventory vector ``I`` (positive = long), one entry per asset."""
    mid: PerAsset
    """The mids ``P``, one per asset."""
    cash: Number
    """The market maker's one cash account ``X``."""


class MultiAssetDraws(NamedTuple):
    """The raw random numbers of one step (``MODEL.md`` §9.2)."""

    uniforms: Block
    """``u_1`` (the trader's asset and side), ``u_2`` (its size), ``u_3`` (the fill): 3 numbers, or ``(3, n)``."""
    normals: Block | None = None
    """``d`` independent standard normals, or ``(d, n)`` (``None`` when every ``σ_i = 0``)."""


class MultiAssetOutcome(NamedTuple):
    """What one step did, besides the new state (numbers for one environment, arrays ``(n,)`` for a batch)."""

    reward: Number
    """The step's reward."""
    executed: Number
    """The executed size ``Q'`` (0 when nothing traded)."""
    offset: Number
    """The offset ``δ_S,i`` of the quote the trader met (0 when no trader came)."""
    spread_captured: Number
    """``Q'·δ_S,i``: the distance of the fill from the mid times its size."""
    inventory_penalty: Number
    """``λ·I'ᵀC·I'``, plus ``α·I'ᵀC·I'`` on the last step."""
    terminated: Number
    trader_asset: Number
    """The asset the trader came to, ``0 … d−1``, or −1 when none came."""
    trader_side: Number
    """+1 the trader bought (lifted the ask), −1 it sold, 0 none came."""
    trader_size: Number
    """The size the trader wanted (0 when none came)."""


def initial_state(params: MultiAssetParams, n: int | None = None) -> MultiAssetState:
    """The start of an episode: no inventory, no cash, the mids at ``P0`` (one environment, or ``n`` of them)."""
    if n is None:
        return MultiAssetState(0, (0,) * params.d, params.P0, 0.0)
    mids = np.tile(np.array(params.P0, dtype=np.float64), (n, 1))
    return MultiAssetState(np.zeros(n), np.zeros((n, params.d)), mids, np.zeros(n))


def sample_draws(rng: np.random.Generator, params: MultiAssetParams, n: int | None = None) -> MultiAssetDraws:
    """Draw one step's random numbers for one environment (``n=None``: lists) or ``n`` of them, in §9.2's order."""
    uniforms = rng.random(3) if n is None else rng.random((3, n))  # the uniforms first, then the normals
    normals = rng.standard_normal(params.d if n is None else (params.d, n)) if params.draws_normal else None
    if n is None:
        return MultiAssetDraws(uniforms.tolist(), None if normals is None else normals.tolist())
    return MultiAssetDraws(uniforms, normals)


def column(values: PerAsset, i: int) -> Number:
    """Asset ``i``'s entry of a per-asset field: ``values[..., i]`` of an array, ``values[i]`` of a tuple."""
    return values[i] if isinstance(values, tuple) else values[..., i]  # type: ignore[index]


def _quotes(offsets: Quotes, i: int) -> tuple[Number, Number]:
    """Asset ``i``'s bid and ask offsets: ``offsets[..., i, :]`` of an array, the ``i``-th pair of a sequence."""
    if isinstance(offsets, list):
        return offsets[i]
    return offsets[..., i, 0], offsets[..., i, 1]


def _per_asset(values: list[Number], xp: ArrayNamespace) -> PerAsset:
    """Per-asset values as a field: an array with a last axis of ``d`` for arrays, else a tuple."""
    return xp.stack(values, axis=-1) if xp.is_array else tuple(values)


def _total(values: Sequence[Number]) -> Number:
    """The sum of the values in their order (at most one is non-zero where they are per-asset trade values)."""
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def penalty_form(inventory: Sequence[Number], risk_matrix: Sequence[Sequence[float]]) -> Number:
    """``Iᵀ·C·I`` of an inventory given asset by asset (numbers or arrays), ``Σ_i I_i·(Σ_j C_ij·I_j)``."""
    terms = []
    for i, row in enumerate(risk_matrix):
        weighted = _total([c * inventory[j] for j, c in enumerate(row) if c != 0.0] or [0.0])
        terms.append(inventory[i] * weighted)
    return _total(terms)


def transition(
    state: MultiAssetState,
    offsets: Quotes,
    draws: MultiAssetDraws,
    params: MultiAssetParams,
    xp: ArrayNamespace = NUMPY,
) -> tuple[MultiAssetState, MultiAssetOutcome]:
    """Apply one step of ``MODEL.md`` §9.2 to the state, given the quotes and the draws.

    ``offsets`` holds the bid and the ask offset of each asset, already within ``[delta_min, delta_max]``: ``d``
    pairs of numbers for one environment (an array ``(d, 2)`` with :data:`~mm_env.xp.NUMPY`), ``(n, d, 2)`` for a
    batch. The trader is in asset ``i`` when
    ``Π_{i−1} ≤ u_1 < Π_i`` (:attr:`MultiAssetParams.arrival_bounds`) and buys when ``u_1 < Π_{i−1} + π_i·½``; its
    size is asset ``i``'s size law at ``u_2``; its quote fills when ``u_3`` is below asset ``i``'s fill probability.
    The executed size is cut at the asset's inventory limit; the trade moves that asset's mid by its impact; then
    every mid moves by the correlated noise ``σ_j·(L_R·ε)_j``.
    """
    u_trader, u_size, u_fill = draws.uniforms[0], draws.uniforms[1], draws.uniforms[2]
    bounds = params.arrival_bounds
    new_inventory, new_mid = [], []
    sides, sizes, executions, offsets_met, earnings, trade_values, assets = [], [], [], [], [], [], []
    for i in range(params.d):
        inventory, mid = column(state.inventory, i), column(state.mid, i)
        flow, fill, impact = params.flows[i], params.fills[i], params.impacts[i]
        here = (bounds[i] <= u_trader) & (u_trader < bounds[i + 1])
        side = xp.pick(here, xp.sign_of(u_trader < bounds[i] + flow.pi * 0.5), 0.0)
        size = xp.pick(here, flow.size(u_size, xp), 0.0)
        bid, ask = _quotes(offsets, i)
        offset = xp.pick(side > 0, ask, bid)
        # The limit |I_i| ≤ I_max_i: selling to a buyer gives at most I_i + I_max_i units.
        capacity = params.I_max[i] + side * inventory
        executed = xp.minimum(size, capacity) * fill.filled(u_fill, offset, xp)
        traded = side * executed
        earned = executed * offset  # the fill's distance from the mid times its size
        new_inventory.append(inventory - traded)
        new_mid.append(mid + _mid_move(i, impact.permanent_move(traded, executed, xp), draws, params))
        sides.append(side)
        sizes.append(size)
        executions.append(executed)
        offsets_met.append(xp.pick(here, offset, 0.0))
        earnings.append(earned)
        trade_values.append(traded * mid)
        assets.append((i + 1.0) * here)
    earned = _total(earnings)
    new_cash = state.cash + _total(trade_values) + earned
    new_t = state.t + 1
    terminated = new_t >= params.T
    quadratic = penalty_form(new_inventory, params.risk_matrix)
    penalty: Number = params.lam * quadratic
    if params.alpha > 0.0:
        penalty = penalty + params.alpha * quadratic * terminated
    if params.reward == "mtm":  # the change of wealth X + Σ_i I_i·P_i
        before = wealth(state, params)
        gained = (new_cash + _total([new_inventory[i] * new_mid[i] for i in range(params.d)])) - before
    else:
        gained = earned
    new_state = MultiAssetState(new_t, _per_asset(new_inventory, xp), _per_asset(new_mid, xp), new_cash)
    outcome = MultiAssetOutcome(
        reward=gained - penalty,
        executed=_total(executions),
        offset=_total(offsets_met),
        spread_captured=earned,
        inventory_penalty=penalty,
        terminated=terminated,
        trader_asset=_total(assets) - 1,
        trader_side=_total(sides),
        trader_size=_total(sizes),
    )
    return new_state, outcome


def _mid_move(i: int, impact: Number, draws: MultiAssetDraws, params: MultiAssetParams) -> Number:
    """Asset ``i``'s mid move: its trade's impact plus its share ``σ_i·(L_R·ε)_i`` of the correlated noise."""
    sigma = params.sigma[i]
    if sigma == 0.0 or draws.normals is None:
        return impact
    row = params.noise_factor[i]
    correlated = _total([row[j] * draws.normals[j] for j in range(i + 1) if row[j] != 0.0] or [0.0])
    return impact + sigma * correlated


def wealth(state: MultiAssetState, params: MultiAssetParams) -> Number:
    """The mark-to-market wealth ``X + Σ_i I_i·P_i`` (the P&L since the start)."""
    return state.cash + _total([column(state.inventory, i) * column(state.mid, i) for i in range(params.d)])
