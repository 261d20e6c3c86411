"""Exact dynamic programming and exact policy evaluation for one market maker quoting ``d`` assets (``MODEL.md`` §9.5).

The state is ``(t, I)`` with ``I = (I_1 … I_d)`` on the grid ``Π_i {−I_max_i … I_max_i}``; index ``I_i + I_max_i``
on axis ``i``. With ``U(I) = V_{t+1}(I) − λ·IᵀCI``, for asset ``i`` and side ``s`` (ask ``S = +1``, ``I' = I − Q'·e_i``;
bid ``S = −1``, ``I' = I + Q'·e_i``):

    m_{i,s}(I) = E[Q'],    c_{i,s}(I) = E[U(I') + 1_mtm·S·I'_i·κ_i·Q'^{β_i}] − U(I),
    V_t(I) = U(I) + Σ_i (π_i/2)·Σ_s max_δ A_i·e^{−k_i·δ}·(m_{i,s}·δ + c_{i,s}),
    δ*_{i,s} = clip(1/k_i − c_{i,s}/m_{i,s}, δ_min, δ_max)   (δ_max where m_{i,s} = 0).

At most one trader arrives per step, so the ``2d`` quotes of a state are chosen one at a time; cross-hedging lives in
``c_{i,s}``, because ``U`` reads the whole vector ``I``. Each step reads ``U`` shifted along one axis per asset, side
and trader size: ``O(T·N·Σ_i |sizes_i|)`` in all, with ``N = Π_i (2·I_max_i + 1)`` states per step.

Two independent passes run on this grid:

* :func:`solve_multi_asset` — the optimum by the closed form above;
* :func:`evaluate_multi_asset` — the exact mean and standard deviation of any Markov policy's episode return, by
  enumerating the outcomes of each step (no trader; a trader in asset ``i`` on side ``s`` who declines or fills with
  each size) for the first and second moments.

The one-asset pieces (the size law, the capacities at the limits, the fill law) are those of
:mod:`agents.exact.dp`, read from each asset's one-asset model ``params.asset(i)``. The independent one-asset optima
(§9.6 a), the benchmark without cross-hedging, are :func:`independent_optima` and :func:`cross_hedging_value`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from agents.exact.dp import ASK, BID, MAX_DP_WORK, MAX_TABLE_BYTES, DPSolution, side_outcomes, solve_dp
from mm_env.model.fill import ExponentialFill
from mm_env.xp import NUMPY

if TYPE_CHECKING:
    from mm_env.multi_asset import MultiAssetParams

OffsetFunction = Callable[[int, np.ndarray], np.ndarray]
"""A Markov policy given as a function: ``f(t, inventory)`` with ``inventory`` of shape ``(*grid, d)`` (every state
of the grid, :func:`grid_inventory`) returns the offsets, shape ``(*grid, d, 2)`` (bid then ask per asset)."""

_SIGNS = np.array([1.0, -1.0])  # the trader's side S per side index of agents.exact.dp: ask +1, bid −1
_VALUE_LAYERS = 8  # grid-sized float64 arrays alive at once in a pass (value, second moment, their successors, …)


def grid_shape(params: MultiAssetParams) -> tuple[int, ...]:
    """The inventory grid ``(2·I_max_1 + 1, …, 2·I_max_d + 1)``."""
    return tuple(2 * int(limit) + 1 for limit in params.I_max)


def grid_inventory(params: MultiAssetParams) -> np.ndarray:
    """Every inventory vector of the grid, shape ``(*grid, d)``: entry ``[j_1, …, j_d]`` is ``(j_i − I_max_i)_i``."""
    axes = [np.arange(-limit, limit + 1, dtype=np.float64) for limit in params.I_max]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def table_dtype(params: MultiAssetParams) -> type[np.floating]:
    """The policy tables' dtype: float64 up to two assets, float32 beyond (their memory, ``MODEL.md`` §9.5)."""
    return np.float64 if params.d <= 2 else np.float32


def _grid_text(params: MultiAssetParams) -> str:
    shape = grid_shape(params)
    return f"d={params.d}, grid {'×'.join(map(str, shape))} = {math.prod(shape):,} states per step, T={params.T}"


def multi_asset_size_problem(params: MultiAssetParams, tables: bool = True) -> str | None:
    """Why the exact DP or an exact evaluation of this model would not fit in memory or time (one line), or ``None``.

    The counterpart of :func:`agents.exact.dp.size_problem`, with the same limits: the memory
    (:data:`~agents.exact.dp.MAX_TABLE_BYTES`) of the policy tables, ``T·N·2d`` offsets (:func:`table_dtype`), and
    of the value layers, and the work (:data:`~agents.exact.dp.MAX_DP_WORK`), ``T·N·Σ_i 2·|sizes_i|`` shifted reads.
    ``tables=False`` leaves the tables out: the evaluation of a policy given as a function keeps none.
    """
    states = math.prod(grid_shape(params))
    size = _VALUE_LAYERS * 8 * states
    if tables:
        size += 2 * params.T * states * params.d * np.dtype(table_dtype(params)).itemsize
    if size > MAX_TABLE_BYTES:
        what = "policy tables and value layers" if tables else "value layers"
        return (
            f"the multi-asset DP's {what} would take {size / 2**30:,.1f} GiB ({_grid_text(params)}), more than "
            f"{MAX_TABLE_BYTES / 2**30:.0f} GiB; choose a smaller T, I_max or d"
        )
    work = params.T * states * sum(2 * len(sizes) for sizes in params.sizes)
    if work > MAX_DP_WORK:
        return (
            f"the multi-asset DP would make {work:,} shifted reads ({_grid_text(params)}), more than {MAX_DP_WORK:,}; "
            "choose a smaller T, I_max or d"
        )
    return None


def _check_size(params: MultiAssetParams, tables: bool) -> None:
    reason = multi_asset_size_problem(params, tables)
    if reason is not None:
        raise ValueError(reason)


class _Asset(NamedTuple):
    """The one-step outcome tree of one asset, the same at every ``t`` (side index as :mod:`agents.exact.dp`)."""

    axis: int
    arrive: float
    """``π_i/2``, the probability of a trader in this asset on a given side."""
    fill: ExponentialFill
    probs: np.ndarray
    """The size law, ``(m,)``."""
    executed: np.ndarray
    """``Q'``, ``(2, N_i, m)``."""
    next_index: np.ndarray
    """Index of ``I'_i`` on this asset's axis after a fill, ``(2, N_i, m)``."""
    mean_executed: np.ndarray
    """``m_{i,s}(I_i) = E[Q']``, ``(2, N_i)``."""
    impact: np.ndarray
    """``g = 1_mtm·S·I'_i·κ_i·Q'^{β_i}``, the mean wealth change from the fill's own impact, ``(2, N_i, m)``."""
    mtm: bool
    """Whether the reward reads the mid (then ``g`` is not zero)."""
    moments: np.ndarray
    """``E[Q']``, ``E[g]``, ``E[Q'²]``, ``E[Q'·g]`` and ``E[g²]`` over sizes, ``(5, 2, N_i)``."""


def _assets(params: MultiAssetParams) -> list[_Asset]:
    mtm = params.reward == "mtm"
    assets = []
    for i in range(params.d):
        one = params.asset(i)
        fill = one.fill
        assert isinstance(fill, ExponentialFill)  # the multi-asset model has no article mode (MODEL.md §9.4)
        outcomes = side_outcomes(one)
        probs = np.asarray(one.flow.probs, dtype=np.float64)
        next_inventory = outcomes.next_index - one.I_max
        impact = np.zeros_like(outcomes.executed)
        if mtm:
            impact = _SIGNS[:, None, None] * next_inventory * one.impact.permanent_size(outcomes.executed)
        assets.append(
            _Asset(
                axis=i,
                arrive=0.5 * float(params.pi[i]),
                fill=fill,
                probs=probs,
                executed=outcomes.executed,
                next_index=outcomes.next_index,
                mean_executed=outcomes.executed @ probs,
                impact=impact,
                mtm=mtm,
                moments=np.stack(
                    [outcomes.executed, impact, outcomes.executed**2, outcomes.executed * impact, impact**2]
                )
                @ probs,
            )
        )
    return assets


def _quadratic_form(matrix: np.ndarray, inventory: np.ndarray) -> np.ndarray:
    """``Iᵀ·M·I`` at every state of the grid, shape ``grid``."""
    return np.einsum("...i,ij,...j->...", inventory, matrix, inventory)


def _along(values: np.ndarray, axis: int) -> np.ndarray:
    """A grid array with ``axis`` first and the other axes flattened: ``(N_i, rest)``."""
    moved = np.moveaxis(values, axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _back(values: np.ndarray, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`_along` for arrays ``(2, N_i, rest)``: shape ``(2, *grid)``."""
    moved = (shape[axis], *shape[:axis], *shape[axis + 1 :])
    return np.moveaxis(values.reshape(2, *moved), 1, axis + 1)


def _expected_after(values: np.ndarray, asset: _Asset) -> np.ndarray:
    """``E_Q[values(I')]`` after a fill on each side, ``(2, N_i, rest)``, from ``values`` given as :func:`_along`."""
    total = np.zeros((2, *values.shape))
    for q, prob in enumerate(asset.probs):
        total += prob * values[asset.next_index[:, :, q]]
    return total


@dataclass(frozen=True)
class MultiAssetSolution:
    """The exact optimum of the multi-asset model.

    The tables hold float64 up to two assets and float32 beyond (:func:`table_dtype`).
    """

    params: MultiAssetParams
    value: float
    """``V_0(0)``, the optimal expected episode return from ``t = 0``, ``I = 0``."""
    values0: np.ndarray
    """``V_0(I)`` over the grid, shape ``grid`` (:func:`grid_shape`)."""
    bid: np.ndarray
    """Optimal bid offsets ``δ*_{i,b}(t, I)``, shape ``(T, *grid, d)``."""
    ask: np.ndarray
    """Optimal ask offsets ``δ*_{i,a}(t, I)``, shape ``(T, *grid, d)``."""

    def offsets(self, t: int, inventory: np.ndarray | tuple[int, ...]) -> np.ndarray:
        """The optimal offsets at step ``t`` and inventories ``(..., d)``: shape ``(..., d, 2)``, bid then ask.

        Raises:
            ValueError: for a step outside ``[0, T − 1]`` or an inventory outside the grid.
        """
        if not 0 <= int(t) < self.params.T:
            raise ValueError(f"t={t} is invalid: must be in [0, {self.params.T - 1}]")
        index = _grid_index(self.params, inventory)
        return np.stack([self.bid[(int(t), *index)], self.ask[(int(t), *index)]], axis=-1).astype(np.float64)

    def table(self) -> np.ndarray:
        """The policy as one table ``(T, *grid, d, 2)`` (bid then ask), as :func:`evaluate_multi_asset` takes it."""
        return np.stack([self.bid, self.ask], axis=-1)


def _grid_index(params: MultiAssetParams, inventory: np.ndarray | tuple[int, ...]) -> tuple[np.ndarray, ...]:
    inventory = np.asarray(inventory)
    if inventory.shape[-1:] != (params.d,):
        raise ValueError(f"inventory of shape {inventory.shape} is invalid: its last axis must have d={params.d}")
    rounded = np.rint(inventory).astype(np.intp)
    limits = np.asarray(params.I_max, dtype=np.intp)
    if np.any(np.abs(rounded) > limits):
        raise ValueError(f"inventory={inventory.tolist()} is invalid: must lie in [−I_max, I_max], I_max={limits}")
    return tuple((rounded + limits)[..., i] for i in range(params.d))


def solve_multi_asset(params: MultiAssetParams) -> MultiAssetSolution:
    """Solve the multi-asset model exactly by one backward pass (the closed form of ``MODEL.md`` §9.5).

    Raises:
        ValueError: when the tables would not fit (:func:`multi_asset_size_problem`).
    """
    _check_size(params, tables=True)
    shape = grid_shape(params)
    inventory = grid_inventory(params)
    risk = _quadratic_form(params.C, inventory)
    assets = _assets(params)
    dtype = table_dtype(params)
    bid = np.empty((params.T, *shape, params.d), dtype=dtype)
    ask = np.empty_like(bid)
    value = -params.alpha * risk
    for t in range(params.T - 1, -1, -1):
        carried = value - params.lam * risk  # U(I)
        total = carried.copy()
        for asset in assets:
            flat = _along(carried, asset.axis)
            change = _expected_after(flat, asset) + (asset.impact @ asset.probs)[..., None] - flat  # c_{i,s}
            mean = asset.mean_executed[..., None]
            best = asset.fill.best_offsets(mean, change, params.delta_min, params.delta_max)
            gain = asset.fill.probability(best, NUMPY) * (mean * best + change)
            total += asset.arrive * _back(gain, asset.axis, shape).sum(axis=0)
            best = _back(best, asset.axis, shape)
            bid[t, ..., asset.axis], ask[t, ..., asset.axis] = best[BID], best[ASK]
        value = total
    start = tuple(int(limit) for limit in params.I_max)
    return MultiAssetSolution(params, float(value[start]), value, bid, ask)


class MultiAssetEvaluation(NamedTuple):
    """The exact moments of a policy's episode return from ``t = 0``, ``I = 0``."""

    mean: float
    sd: float


def _batch_along(values: np.ndarray, axis: int) -> np.ndarray:
    """A batch of grid arrays ``(B, *grid)`` as ``(B, N_i, rest)``: :func:`_along` per batch entry."""
    moved = np.moveaxis(values, axis + 1, 1)
    return moved.reshape(moved.shape[0], moved.shape[1], -1)


def _batch_back(values: np.ndarray, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`_batch_along` for arrays ``(B, 2, N_i, rest)``, summed over the sides: ``(B, *grid)``."""
    moved = (shape[axis], *shape[:axis], *shape[axis + 1 :])
    summed = values.sum(axis=1).reshape(values.shape[0], *moved)
    return np.moveaxis(summed, 1, axis + 1)


def evaluate_many(
    params: MultiAssetParams, policy: np.ndarray | OffsetFunction, second_moment: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Exact means and standard deviations of many policies at once (:func:`evaluate_multi_asset`, batched).

    Args:
        params: the model.
        policy: tables of shape ``(..., T, *grid, d, 2)``, or a function ``f(t, inventory)`` returning offsets of
            shape ``(..., *grid, d, 2)``: the leading axes (the same at every step) index the policies.
        second_moment: ``False`` skips the second moment (about half the work, for tuning); the standard
            deviations are then NaN.

    Returns:
        The means and the standard deviations, each of the leading axes' shape.

    Raises:
        ValueError: on offsets of the wrong shape, or when the pass would not fit (:func:`multi_asset_size_problem`).
    """
    shape = grid_shape(params)
    tail = (*shape, params.d, 2)
    table = None
    if not callable(policy):
        table = np.asarray(policy)
        if table.shape[table.ndim - len(tail) - 1 :] != (params.T, *tail):
            raise ValueError(
                f"policy table of shape {table.shape} is invalid: must be (..., T, *grid, d, 2) = (..., "
                f"{', '.join(map(str, (params.T, *tail)))})"
            )
    _check_size(params, tables=False)
    inventory = grid_inventory(params)
    risk = _quadratic_form(params.C, inventory)
    penalty = params.lam * risk
    noise = _quadratic_form(params.Sigma, inventory) if params.reward == "mtm" else np.zeros(shape)
    assets = [asset for asset in _assets(params) if asset.arrive > 0.0]
    batch: tuple[int, ...] | None = None
    mean = second = np.zeros(0)
    for t in range(params.T - 1, -1, -1):
        if table is not None:
            offsets = np.take(table, t, axis=table.ndim - len(tail) - 1)
        else:
            offsets = np.asarray(policy(t, inventory))  # type: ignore[operator]
        if offsets.shape[offsets.ndim - len(tail) :] != tail or (
            batch is not None and offsets.shape[: -len(tail)] != batch
        ):
            raise ValueError(
                f"offsets of shape {offsets.shape} at t={t} are invalid: must be (..., {', '.join(map(str, tail))})"
            )
        if batch is None:  # the first step evaluated: the batch's shape is now known
            batch = offsets.shape[: -len(tail)]
            mean = np.broadcast_to(-params.alpha * risk, (math.prod(batch), *shape))
            second = mean**2
        offsets = np.clip(offsets.reshape(-1, *tail).astype(np.float64), params.delta_min, params.delta_max)
        # The reward −λ·I'ᵀCI' and the noise's variance read the successor, as the moments do: gather them together.
        first_next = mean - penalty  # the successor's part of the reward ρ, plus V^π_{t+1}
        second_next = penalty * (penalty - 2.0 * mean) + second + noise
        first_total, second_total = first_next.copy(), second_next.copy()
        for asset in assets:
            first_flat = _batch_along(first_next, asset.axis)
            second_flat = _batch_along(second_next, asset.axis)
            quoted = np.stack(  # (B, 2, N_i, rest) in the side order of agents.exact.dp: ask, bid
                [
                    _batch_along(offsets[..., asset.axis, 1], asset.axis),
                    _batch_along(offsets[..., asset.axis, 0], asset.axis),
                ],
                axis=1,
            )
            # Every fill's moments are polynomials in the quoted offset δ: E_Q[Q'·δ + g + F(I')] with g the impact term
            # and F the successor's moments, so only the expectations over sizes below are gathered.
            after_first = np.zeros((len(mean), 2, *first_flat.shape[1:]))
            after_second, sized_first, impact_first = np.zeros_like(after_first), np.zeros_like(after_first), 0.0
            for q, prob in enumerate(asset.probs):
                after = asset.next_index[:, :, q]
                first_q = first_flat[:, after]
                after_first += prob * first_q
                if second_moment:
                    after_second += prob * second_flat[:, after]
                    sized_first += (prob * asset.executed[:, :, q, None]) * first_q
                    if asset.mtm:
                        impact_first = impact_first + (prob * asset.impact[:, :, q, None]) * first_q
            moments = asset.moments[..., None]  # (5, 2, N_i, 1): E[Q'], E[g], E[Q'²], E[Q'·g], E[g²]
            filled = asset.arrive * asset.fill.probability(quoted, NUMPY)
            fill_first = moments[0] * quoted + moments[1] + after_first
            first_total += _batch_back(filled * (fill_first - first_flat[:, None]), asset.axis, shape)
            if second_moment:
                fill_second = (
                    moments[2] * quoted**2
                    + 2.0 * quoted * (moments[3] + sized_first)
                    + moments[4]
                    + 2.0 * impact_first
                    + after_second
                )
                second_total += _batch_back(filled * (fill_second - second_flat[:, None]), asset.axis, shape)
        mean, second = first_total, second_total
    assert batch is not None  # T ≥ 1
    start: tuple[slice | int, ...] = (slice(None), *(int(limit) for limit in params.I_max))
    expected = mean[start]
    sd = np.sqrt(np.maximum(second[start] - expected**2, 0.0)) if second_moment else np.full(expected.shape, np.nan)
    return expected.reshape(batch), sd.reshape(batch)


def evaluate_multi_asset(params: MultiAssetParams, policy: np.ndarray | OffsetFunction) -> MultiAssetEvaluation:
    """The exact mean and standard deviation of the episode return of a Markov policy (``MODEL.md`` §9.5).

    One backward pass over the outcome tree of each step, for the mean ``V^π_t`` and the second moment
    ``M_t(I) = Σ_b p_b·[ρ_b² + 1_mtm·I'_bᵀΣI'_b + 2·ρ_b·V^π_{t+1}(I'_b) + M_{t+1}(I'_b)]``, ``M_T = (α·IᵀCI)²``;
    ``sd = √(M_0 − V^π_0²)``.

    Args:
        params: the model.
        policy: a table of offsets, shape ``(T, *grid, d, 2)`` (bid then ask per asset; a learned agent's too), or a
            function ``f(t, inventory) -> offsets`` over the grid (:data:`OffsetFunction`), which needs no table
            in memory. Offsets are clipped to ``[delta_min, delta_max]``, as the environment does.

    Raises:
        ValueError: on offsets of the wrong shape (or of many policies: see :func:`evaluate_many`), or when the pass
            would not fit (:func:`multi_asset_size_problem`).
    """
    means, sds = evaluate_many(params, policy)
    if means.shape != ():
        raise ValueError(f"offsets for {means.shape} policies: evaluate_multi_asset takes one (see evaluate_many)")
    return MultiAssetEvaluation(float(means), float(sds))


# ----------------------------------------------------------------------------------------------------------------
# The independent one-asset optima (MODEL.md §9.6 a).


def independent_optima(params: MultiAssetParams) -> tuple[DPSolution, ...]:
    """The one-asset optimum of each asset alone (:func:`agents.exact.dp.solve_dp` on ``params.asset(i)``).

    Asset ``i`` alone has the penalties ``λ·C_ii`` and ``α·C_ii``; with a diagonal ``C`` these quotes are the
    multi-asset optimum, otherwise they are the benchmark without cross-hedging.
    """
    return tuple(solve_dp(params.asset(i)) for i in range(params.d))


def independent_value(params: MultiAssetParams) -> float:
    """``Σ_i V^{(i)}_0(0)``: the value of the independent one-asset optima in the joint model (``MODEL.md`` §9.6 a).

    With symmetric flow their joint value does not depend on the off-diagonal of ``C``, so it is exactly this sum.
    """
    return float(sum(solution.expected_return for solution in independent_optima(params)))


def independent_table(params: MultiAssetParams, optima: tuple[DPSolution, ...] | None = None) -> np.ndarray:
    """The independent one-asset optima as one policy table ``(T, *grid, d, 2)``: asset ``i`` reads ``I_i`` only."""
    _check_size(params, tables=True)
    optima = optima if optima is not None else independent_optima(params)
    shape = grid_shape(params)
    table = np.empty((params.T, *shape, params.d, 2), dtype=table_dtype(params))
    for i, solution in enumerate(optima):
        view = [1] * params.d
        view[i] = shape[i]
        table[..., i, 0] = solution.bid.reshape(params.T, *view)
        table[..., i, 1] = solution.ask.reshape(params.T, *view)
    return table


def cross_hedging_value(params: MultiAssetParams) -> float:
    """The exact value of cross-hedging: the optimum's value less that of the independent one-asset optima."""
    return solve_multi_asset(params).value - independent_value(params)


__all__ = [
    "MultiAssetEvaluation",
    "MultiAssetSolution",
    "OffsetFunction",
    "cross_hedging_value",
    "evaluate_many",
    "evaluate_multi_asset",
    "grid_inventory",
    "grid_shape",
    "independent_optima",
    "independent_table",
    "independent_value",
    "multi_asset_size_problem",
    "solve_multi_asset",
    "table_dtype",
]
