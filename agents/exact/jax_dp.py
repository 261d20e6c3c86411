"""The one-MM DP and exact policy evaluation on JAX, over a batch of models at once (``MODEL.md`` §4, §7.3).

The same two computations as :mod:`agents.exact.dp`, :func:`~agents.exact.dp.solve_dp` and
:func:`~agents.exact.dp.evaluate_tables`, written with ``jax.numpy``: one compiled ``lax.scan`` runs backwards over
time for a whole batch of models that share the grid — ``T``, ``I_max``, the trader sizes and whether the state
carries the last side ``L`` (momentum on or off) — the models' axis last, so that every operation runs over the
models at once. Every other parameter may differ from model to model: the penalties
``λ`` and ``α``, impact ``κ`` and ``β``, the fill law's ``A`` and ``k``, the quoting bounds, the size probabilities,
arrivals, asymmetric and adaptive flow, informed traders, noise and jumps, and the reward.

* :func:`solve_dp_batch` — the optimum of every model of a list;
* :func:`solve_dp_grid` — the optimum over a grid of parameter values, for example 1,000 cells of ``λ × κ``;
* :func:`evaluate_tables_batch` — the exact mean and standard deviation of a Markov policy's return in every model.

They compute in float64: each call runs under ``jax.enable_x64(True)`` (a context manager, so the process's own JAX
setting is left as it was) and returns NumPy arrays. The results equal the NumPy solver's to rounding (the tests hold
them to 1e-10). The models these functions refuse are those the NumPy solver refuses (see
:func:`~agents.exact.dp.unsolvable_reason`), plus batches whose models do not share the grid, and batches whose tables
would not fit in memory (:func:`batch_memory_reason`).

Requires the ``jax`` extra (``pip install "mm_env[jax]"``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from agents.exact.dp import (
    MAX_DP_WORK,
    MAX_TABLE_BYTES,
    DPSolution,
    ExactEvaluation,
    _infinite_state_reason,
    _outcome_tree,
    inventory_grid,
    last_sides,
    table_memory_reason,
    table_shape,
    unsolvable_reason,
)
from mm_env.model.fill import ArticleFill
from mm_env.params import MarketParams

_SIGNS = np.array([1.0, -1.0])  # the trader's side S per side index: +1 buys at the ask, −1 sells at the bid
# Tables of (T + 1)·N·n_L float64 per model alive at once in a batched solve or evaluation: the outputs, the inputs
# and the per-step arrays the scan stacks (measured at 1,000 default models: about 5 in a solve, 9 in an evaluation).
_TABLES_PER_MODEL = 12


# --------------------------------------------------------------------------------------------------------------------
# what a batch may hold


def _grid_key(params: MarketParams) -> tuple[int, int, tuple[int, ...], int]:
    return params.T, params.I_max, params.flow.sizes, len(last_sides(params))


def batch_memory_reason(params_list: Sequence[MarketParams]) -> str | None:
    """Why the batched tables of these models would not fit in memory or time, in one sentence, or ``None``.

    The limits are those of the NumPy solver (:data:`~agents.exact.dp.MAX_TABLE_BYTES`,
    :data:`~agents.exact.dp.MAX_DP_WORK`), applied to the whole batch: each model on its own
    (:func:`~agents.exact.dp.table_memory_reason`), then the batch's tables together and the cells × sizes it visits.
    The models are taken to share the grid (the first one's stands for all).
    """
    if not params_list:
        return None
    first = params_list[0]
    reason = table_memory_reason(first)
    if reason is not None:
        return reason
    cells = (first.T + 1) * math.prod(table_shape(first)[1:])
    size = len(params_list) * _TABLES_PER_MODEL * 8 * cells
    if size > MAX_TABLE_BYTES:
        return (
            f"the batched tables of {len(params_list):,} models would take {size / 2**30:,.1f} GiB (T={first.T}, "
            f"I_max={first.I_max}), more than {MAX_TABLE_BYTES / 2**30:.0f} GiB: solve fewer models per call"
        )
    work = len(params_list) * first.T * math.prod(table_shape(first)[1:]) * len(first.flow.sizes)
    if work > MAX_DP_WORK:
        return (
            f"the batch would visit {work:,} cells × sizes over {len(params_list):,} models, more than "
            f"{MAX_DP_WORK:,}: solve fewer models per call"
        )
    return None


def _check_batch(params_list: Sequence[MarketParams], solving: bool) -> tuple[MarketParams, ...]:
    """The models as a tuple, or ``ValueError`` (one line) on what the batched tools do not cover."""
    models = tuple(params_list)
    if not models:
        raise ValueError("params_list=() is invalid: must hold at least one MarketParams")
    for index, params in enumerate(models):
        if not isinstance(params, MarketParams):
            raise ValueError(f"params_list[{index}]={params!r} is invalid: must be a MarketParams")
        reason = unsolvable_reason(params) if solving else _infinite_state_reason(params)
        if reason is not None:
            raise ValueError(f"params_list[{index}]: {reason}")
        if _grid_key(params) != _grid_key(models[0]):
            raise ValueError(
                f"params_list[{index}] has another grid than params_list[0]: a batch must share T, I_max, the sizes "
                f"and whether momentum is on (got T={params.T}, I_max={params.I_max}, sizes={params.flow.sizes}, "
                f"momentum={params.flow.momentum}; the first has T={models[0].T}, I_max={models[0].I_max}, "
                f"sizes={models[0].flow.sizes}, momentum={models[0].flow.momentum})"
            )
    reason = batch_memory_reason(models)
    if reason is not None:
        raise ValueError(reason)
    return models


# --------------------------------------------------------------------------------------------------------------------
# the outcome tree of each model, stacked


def _stacked_trees(models: tuple[MarketParams, ...]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The outcome tree of every model: what they share, and the per-model arrays stacked on a trailing axis.

    The models' axis is the last one of every array, so that each operation of a step runs contiguously over the
    models (which XLA vectorises), whatever the small axes of the tree (sides, sizes, the last side ``L``).
    """
    trees = [_outcome_tree(params) for params in models]
    first = trees[0]
    shared = {
        "executed": first.executed[..., None],  # (2, N, m, 1)
        "next_inventory": first.next_inventory[..., None],
        "levels": inventory_grid(models[0])[:, None],  # (N, 1)
    }

    def stack(values: list[Any]) -> np.ndarray:
        return np.stack([np.asarray(value, dtype=np.float64) for value in values], axis=-1)

    per_model: dict[str, np.ndarray] = {
        "probs": stack([tree.probs for tree in trees]),  # (m, B)
        "mean_executed": stack([tree.mean_executed for tree in trees]),  # (2, N, B)
        "arrive": stack([tree.arrive for tree in trees]),  # (2, n_L, B)
        "news": stack([tree.news for tree in trees]),  # (2, n_L, B)
        "fill_reward": stack([tree.fill_reward for tree in trees]),  # (2, N, m, B)
        "stay_reward": stack([tree.stay_reward for tree in trees]),  # (N, B)
        "noise_var": stack([tree.noise_var for tree in trees]),  # (B,)
        "news_var": stack([tree.news_var for tree in trees]),  # (2, n_L, B)
        "alpha": stack([params.objective.alpha for params in models]),
        "delta_min": stack([params.delta_min for params in models]),
        "delta_max": stack([params.delta_max for params in models]),
        # The article's fill (evaluation only) fills every order: A = 1, k = 0.
        "A": stack([1.0 if isinstance(p.fill, ArticleFill) else p.fill.A for p in models]),
        "k": stack([0.0 if isinstance(p.fill, ArticleFill) else p.fill.k for p in models]),
        # Whether a unit filled pays the full quoted spread (the spread reward in article mode) or its offset.
        "full_spread": np.array([isinstance(p.fill, ArticleFill) and not p.objective.reads_mid for p in models]),
    }
    return shared, per_model


# --------------------------------------------------------------------------------------------------------------------
# the DP, every model at once (the models' axis last)


def _expect(outcomes: jax.Array, probs: jax.Array) -> jax.Array:
    """The mean over the size axis (second from last) under each model's size law ``probs`` ``(m, B)``."""
    return (outcomes * probs).sum(axis=-2)


def _shifted(table: jax.Array, sizes: tuple[int, ...]) -> list[list[jax.Array]]:
    """A table over ``(I, L)``, ``(N, n_L, B)``, at the state after a fill, per side and size: each ``(N, B)``.

    The ``next_flat`` of :func:`agents.exact.dp._outcome_tree` as shifted slices (which XLA fuses, unlike a gather):
    on the ask the MM sells ``min(Q, I + I_max)``, so the level index becomes ``max(i − Q, 0)``; on the bid it buys
    ``min(Q, I_max − I)``, so ``min(i + Q, N − 1)``. With momentum ``L' = S`` after a trade, and ``L' = 0`` where the
    limit cut the fill to nothing (the ask at ``i = 0``, the bid at ``i = N − 1``).
    """
    n, n_last = table.shape[:2]
    if n_last == 1:
        sold = bought = table[:, 0]
    else:
        sold, bought = table[:, 2], table[:, 0]  # L' = +1 after the ask fills, −1 after the bid
    sides = []
    for column, ask in ((sold, True), (bought, False)):
        shifted = []
        for size in sizes:
            shift = min(size, n - 1)
            if ask:
                after = jnp.concatenate([jnp.repeat(column[:1], shift, axis=0), column[: n - shift]])
            else:
                after = jnp.concatenate([column[shift:], jnp.repeat(column[-1:], shift, axis=0)])
            if n_last == 3:  # at the limit nothing trades: back to (I, 0)
                edge = 0 if ask else n - 1
                after = after.at[edge].set(table[edge, 1])
            shifted.append(after)
        sides.append(shifted)
    return sides


def _after_fill(table: jax.Array, sizes: tuple[int, ...]) -> jax.Array:
    """:func:`_shifted` as one array ``(2, N, m, B)``."""
    return jnp.stack([jnp.stack(side, axis=-2) for side in _shifted(table, sizes)])


def _expected_after_fill(table: jax.Array, sizes: tuple[int, ...], probs: jax.Array) -> jax.Array:
    """``E_Q`` of :func:`_shifted` under each model's size law ``probs`` ``(m, B)``: ``(2, N, B)``.

    Summed size by size, so that no array per size is stored.
    """
    expected = []
    for side in _shifted(table, sizes):
        total = side[0] * probs[0]
        for q in range(1, len(sizes)):
            total = total + side[q] * probs[q]
        expected.append(total)
    return jnp.stack(expected)


def _stay(table: jax.Array) -> jax.Array:
    """A table over ``(I, L)`` at ``(I, 0)``, where a declined quote or a step without trader leads: ``(N, B)``."""
    return table[:, 0] if table.shape[1] == 1 else table[:, 1]


@jax.jit(static_argnames=("T", "sizes"))
def _solve_all(
    model: dict[str, jax.Array], shared: dict[str, jax.Array], T: int, sizes: tuple[int, ...]
) -> tuple[jax.Array, ...]:
    """Backward induction for every model.

    Returns the values ``(T + 1, N, n_L, B)`` and the ask and bid offsets ``(T, N, n_L, B)``.
    """
    probs = model["probs"]
    mean_executed = model["mean_executed"][:, :, None]  # (2, N, 1, B) against the L axis
    news_change = -model["news"][:, None] * mean_executed  # (2, N, n_L, B), see agents.exact.dp.solve_dp
    fill_reward = _expect(model["fill_reward"], probs)  # (2, N, B)
    n_last = model["arrive"].shape[1]
    levels = shared["levels"]
    terminal = jnp.broadcast_to((-model["alpha"] * levels**2)[:, None], (levels.shape[0], n_last, probs.shape[-1]))
    safe_mean = jnp.where(mean_executed > 0.0, mean_executed, 1.0)
    A, k = model["A"], model["k"]
    arrive = model["arrive"][:, None]  # (2, 1, n_L, B)

    def step(following: jax.Array, _: None) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
        stay = model["stay_reward"] + _stay(following)  # (N, B)
        change = fill_reward + _expected_after_fill(following, sizes, probs) - stay  # (2, N, B)
        change = change[:, :, None] + news_change  # c_s(I, L), (2, N, n_L, B)
        best = jnp.clip(1.0 / k - change / safe_mean, model["delta_min"], model["delta_max"])
        best = jnp.where(mean_executed > 0.0, best, model["delta_max"])
        gain = A * jnp.exp(-k * best) * (mean_executed * best + change)
        value = stay[:, None] + (arrive * gain).sum(axis=0)
        return value, (value, best[0], best[1])

    _, (values, ask, bid) = lax.scan(step, terminal, None, length=T, reverse=True)
    return jnp.concatenate([values, terminal[None]]), ask, bid


# --------------------------------------------------------------------------------------------------------------------
# exact evaluation, every model at once (the models' axis last)


@jax.jit(static_argnames=("sizes",))
def _evaluate_all(
    model: dict[str, jax.Array], shared: dict[str, jax.Array], bid: jax.Array, ask: jax.Array, sizes: tuple[int, ...]
) -> tuple[jax.Array, jax.Array]:
    """Means and second moments of the return from every state, ``(T + 1, N, n_L, B)``, of tables ``(T, N, n_L, B)``.

    The same outcome tree as :func:`agents.exact.dp.evaluate_tables`: no trader; a trader on each side, informed or
    not, who declines or fills with each size.
    """
    probs = model["probs"]
    signs = jnp.asarray(_SIGNS)[:, None, None, None, None]  # against (2, N, n_L, m, B)
    levels = shared["levels"]  # (N, 1)
    levels_sq = levels**2
    next_inventory = shared["next_inventory"][:, :, None]  # (2, N, 1, m, 1)
    executed = shared["executed"][:, :, None]
    news, news_var, noise_var = model["news"], model["news_var"], model["noise_var"]
    n_levels, n_last = bid.shape[1:3]

    bid = jnp.clip(bid, model["delta_min"], model["delta_max"])
    ask = jnp.clip(ask, model["delta_min"], model["delta_max"])
    offsets = jnp.stack([ask, bid], axis=1)  # (T, 2, N, n_L, B)
    unit = jnp.where(model["full_spread"], (bid + ask)[:, None], offsets)
    fill_prob = model["A"] * jnp.exp(-model["k"] * offsets)

    fill_base = model["fill_reward"][:, :, None] + signs * next_inventory * news[:, None, :, None]  # (2, N, n_L, m, B)
    fill_var = next_inventory**2 * (noise_var + news_var[:, None, :, None])
    side_signs = signs[..., 0, :]  # (2, 1, 1, 1)
    decline_reward = model["stay_reward"][None, :, None] + side_signs * levels[None, :, None] * news[:, None]
    decline_var = levels_sq[None, :, None] * (noise_var + news_var[:, None])  # (2, N, n_L, B)
    idle_prob = 1.0 - model["arrive"].sum(axis=0)  # (n_L, B)
    idle_var = levels_sq * noise_var  # (N, B)
    idle = model["stay_reward"][:, None]  # (N, 1, B)
    arrive = model["arrive"][:, None]  # (2, 1, n_L, B)

    terminal = jnp.broadcast_to((-model["alpha"] * levels_sq)[:, None], (n_levels, n_last, probs.shape[-1]))
    carry0 = (terminal, terminal**2)

    def expect(outcomes: jax.Array) -> jax.Array:  # (2, N, n_L, m, B) → (2, N, n_L, B)
        return (outcomes * probs).sum(axis=-2)

    def step(
        carry: tuple[jax.Array, jax.Array], x: tuple[jax.Array, jax.Array]
    ) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
        next_mean, next_second = carry
        unit_t, p = x
        reward = executed * unit_t[:, :, :, None] + fill_base  # (2, N, n_L, m, B)
        after_mean = _after_fill(next_mean, sizes)[:, :, None]  # (2, N, 1, m, B)
        after_second = _after_fill(next_second, sizes)[:, :, None]
        fill_first = expect(reward + after_mean)
        fill_second = expect(reward * (reward + 2.0 * after_mean) + fill_var + after_second)
        stay_mean = _stay(next_mean)[None, :, None]  # (1, N, 1, B)
        stay_second = _stay(next_second)[None, :, None]
        decline_first = decline_reward + stay_mean
        decline_second = decline_reward * (decline_reward + 2.0 * stay_mean) + decline_var + stay_second
        side_first = (arrive * (p * fill_first + (1.0 - p) * decline_first)).sum(axis=0)
        side_second = (arrive * (p * fill_second + (1.0 - p) * decline_second)).sum(axis=0)
        idle_first = idle + stay_mean[0]
        idle_second = idle * (idle + 2.0 * stay_mean[0]) + idle_var[:, None] + stay_second[0]
        mean = side_first + idle_prob * idle_first
        second = side_second + idle_prob * idle_second
        return (mean, second), (mean, second)

    _, (means, seconds) = lax.scan(step, carry0, (unit, fill_prob), reverse=True)
    return jnp.concatenate([means, terminal[None]]), jnp.concatenate([seconds, (terminal**2)[None]])


# --------------------------------------------------------------------------------------------------------------------
# the public functions


@dataclass(frozen=True)
class DPBatch:
    """The exact optimum of every model of a batch, tables stacked on leading batch axes.

    ``shape`` is ``(len(params),)`` for :func:`solve_dp_batch`, and one axis per parameter for
    :func:`solve_dp_grid`; ``params`` lists the models in C order of ``shape``.
    """

    params: tuple[MarketParams, ...]
    shape: tuple[int, ...]
    value: np.ndarray
    """``V[..., t, i]`` (``V[..., t, i, L + 1]`` with momentum): as :attr:`agents.exact.dp.DPSolution.value`."""
    bid: np.ndarray
    """Optimal bid offsets, shape ``(*shape, *table_shape)``."""
    ask: np.ndarray
    """Optimal ask offsets, the same shape."""

    @property
    def expected_return(self) -> np.ndarray:
        """The optimal expected episode return of every model from the start, shape ``shape``."""
        i_max = self.params[0].I_max
        if self.value.ndim == len(self.shape) + 2:
            return self.value[..., 0, i_max]
        return self.value[..., 0, i_max, 1]  # L = 0

    def cell(self, index: int | tuple[int, ...]) -> DPSolution:
        """One model's solution as :func:`agents.exact.dp.solve_dp` returns it (``index`` into ``shape``)."""
        where = index if isinstance(index, tuple) else (index,)
        flat = int(np.ravel_multi_index(where, self.shape))
        return DPSolution(self.params[flat], self.value[where], self.bid[where], self.ask[where])


def _device_arrays(arrays: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    return {name: jnp.asarray(array) for name, array in arrays.items()}


def solve_dp_batch(params_list: Sequence[MarketParams]) -> DPBatch:
    """The exact optimum of every model of a list, in one compiled pass (float64).

    Each model's values and tables equal :func:`agents.exact.dp.solve_dp`'s to rounding.

    Args:
        params_list: the models; they must share ``T``, ``I_max``, the trader sizes and whether momentum is on.

    Returns:
        The tables stacked on one leading axis of length ``len(params_list)``.

    Raises:
        ValueError: in one line, when a model has no exact optimum (:func:`~agents.exact.dp.unsolvable_reason`),
            when the models do not share the grid, or when the batch would not fit in memory
            (:func:`batch_memory_reason`).
    """
    models = _check_batch(params_list, solving=True)
    shared, per_model = _stacked_trees(models)
    with jax.enable_x64(True):
        tables = _solve_all(_device_arrays(per_model), _device_arrays(shared), models[0].T, models[0].flow.sizes)
        # The models' axis first: (B, T + 1, N, n_L) and (B, T, N, n_L).
        value, ask, bid = (np.moveaxis(np.asarray(table), -1, 0) for table in tables)
    if len(last_sides(models[0])) == 1:
        value, bid, ask = value[..., 0], bid[..., 0], ask[..., 0]
    return DPBatch(models, (len(models),), value, bid, ask)


def grid_params(base: MarketParams, **axes: Sequence[Any]) -> tuple[tuple[MarketParams, ...], tuple[int, ...]]:
    """The models of a grid: ``base`` with every combination of the given flat parameters, in C order.

    >>> models, shape = grid_params(MarketParams(), lam=[0.001, 0.005], kappa=[0.0, 0.05, 0.1])
    >>> shape, models[1].kappa
    ((2, 3), 0.05)
    """
    if not isinstance(base, MarketParams):
        raise ValueError(f"base={base!r} is invalid: must be a MarketParams")
    if not axes:
        raise ValueError("solve_dp_grid needs at least one parameter axis, for example lam=[0.001, 0.005]")
    names = list(axes)
    values = []
    for name in names:
        axis = axes[name]
        if isinstance(axis, str) or not isinstance(axis, Sequence | np.ndarray) or len(axis) == 0:
            raise ValueError(f"{name}={axis!r} is invalid: must be a non-empty sequence of values")
        values.append([value.item() if isinstance(value, np.generic) else value for value in axis])
    models = tuple(
        base.replace(**dict(zip(names, combination, strict=True))) for combination in itertools.product(*values)
    )
    return models, tuple(len(axis) for axis in values)


def solve_dp_grid(base: MarketParams, **axes: Sequence[Any]) -> DPBatch:
    """The exact optimum over a grid of parameter values, in one compiled pass (float64).

    ``solve_dp_grid(base, lam=lams, kappa=kappas)`` solves ``base.replace(lam=lam, kappa=kappa)`` for every pair; the
    tables have one leading axis per parameter, in the order given: ``value[i, j]`` is the model with ``lams[i]`` and
    ``kappas[j]``.

    Args:
        base: the model the grid varies.
        **axes: flat parameter names (as :meth:`~mm_env.params.MarketParams.replace` takes them) and their values.

    Raises:
        ValueError: as :func:`solve_dp_batch`, and on an unknown parameter or an empty axis.
    """
    models, shape = grid_params(base, **axes)
    batch = solve_dp_batch(models)
    reshape = shape + batch.value.shape[1:], shape + batch.bid.shape[1:]
    return DPBatch(
        models, shape, batch.value.reshape(reshape[0]), batch.bid.reshape(reshape[1]), batch.ask.reshape(reshape[1])
    )


def evaluate_tables_batch(params_list: Sequence[MarketParams], bid: Any, ask: Any) -> ExactEvaluation:
    """Exact mean and standard deviation of the episode return of Markov policies, one per model (float64).

    Each model's figures equal :func:`agents.exact.dp.evaluate_tables`'s to rounding, article mode included.

    Args:
        params_list: the models; they must share ``T``, ``I_max``, the trader sizes and whether momentum is on.
        bid: bid offsets of shape ``(len(params_list), *table_shape)``, one policy per model, or ``table_shape``,
            one policy for every model. Offsets are clipped to each model's ``[delta_min, delta_max]``.
        ask: ask offsets, the same shape.

    Returns:
        The means and standard deviations from the start, ``(len(params_list),)``, and the means from every state,
        ``(len(params_list), T + 1, N)`` (``(…, N, 3)`` with momentum).

    Raises:
        ValueError: on tables of the wrong shape, models with an infinite state (transient impact or mean reversion
            under ``mtm``), models that do not share the grid, or a batch too large for memory.
    """
    models = _check_batch(params_list, solving=False)
    shape = table_shape(models[0])
    bid_array, ask_array = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
    allowed = (shape, (len(models), *shape))
    if bid_array.shape not in allowed or ask_array.shape != bid_array.shape:
        raise ValueError(
            f"offset tables must have shape {allowed[1]} (one policy per model) or {allowed[0]} (one for all); got "
            f"{bid_array.shape} and {ask_array.shape}"
        )
    bid_array = np.broadcast_to(bid_array, allowed[1])
    ask_array = np.broadcast_to(ask_array, allowed[1])
    if len(shape) == 2:  # one L slot
        bid_array, ask_array = bid_array[..., None], ask_array[..., None]
    shared, per_model = _stacked_trees(models)
    with jax.enable_x64(True):
        # The models' axis last: (T, N, n_L, B).
        means, seconds = _evaluate_all(
            _device_arrays(per_model),
            _device_arrays(shared),
            jnp.asarray(np.moveaxis(bid_array, 0, -1)),
            jnp.asarray(np.moveaxis(ask_array, 0, -1)),
            models[0].flow.sizes,
        )
        value, second = np.moveaxis(np.asarray(means), -1, 0), np.moveaxis(np.asarray(seconds), -1, 0)
    i_max, zero = models[0].I_max, last_sides(models[0]).index(0)
    expected = value[:, 0, i_max, zero]
    std = np.sqrt(np.maximum(second[:, 0, i_max, zero] - expected**2, 0.0))
    if len(shape) == 2:
        value = value[..., 0]
    return ExactEvaluation(expected, std, value)
