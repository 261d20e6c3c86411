"""Exact dynamic programming on the ``(t, I)`` grid (``MODEL.md`` §4).

Two independent computations live here:

* :func:`solve_dp` — the optimum by the closed form of ``MODEL.md`` §4: per side, the best offset
  ``δ* = clip(1/k − c/m, δ_min, δ_max)`` and ``V_t(I) = U(I) + (π/2)·Σ_s A·e^{−kδ*}·(m_s·δ* + c_s)``.
* :func:`evaluate_tables` — the exact mean and standard deviation of the episode return of any Markov policy, given
  as offset tables ``δ_b[t, I]``, ``δ_a[t, I]``, by enumerating every outcome of every step (no fill; a fill of each
  size on each side) in a backward pass over first and second moments.

The test-suite checks one against the other and both against Monte Carlo runs of the environment.

For the mark-to-market reward the wealth change of a step is
``ΔW = f·Q'·(δ_S − κ·Q'/2) − (κ/2)·(I'² − I²) + I'·σ·ε``, so the state stays ``(t, I)``. (In the closed form the
``(κ/2)·I²`` carried in from the step before must be added back to ``V_t``: it does not depend on the quotes, so
the optimal offsets are those of ``MODEL.md`` §4 either way, but the value needs it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mm_env.params import MarketParams

ASK, BID = 0, 1  # side index: the ask fills when a trader buys (I falls), the bid when one sells (I rises)


class SideOutcomes(NamedTuple):
    """For each side, inventory level and trader size: the executed size and the index of the next inventory."""

    executed: np.ndarray
    """``Q'``, shape ``(2, N, m)`` with ``N = 2·I_max + 1`` levels and ``m`` sizes."""
    next_index: np.ndarray
    """Index of ``I'`` into the inventory grid, shape ``(2, N, m)``."""


def inventory_grid(params: MarketParams) -> np.ndarray:
    """The inventory levels ``−I_max … I_max`` (as floats), index ``i`` ↔ inventory ``i − I_max``."""
    return np.arange(-params.I_max, params.I_max + 1, dtype=np.float64)


def side_outcomes(params: MarketParams) -> SideOutcomes:
    """Executed sizes and next inventories for a fill of each size on each side at each inventory level."""
    levels = inventory_grid(params)[:, None]
    sizes = np.asarray(params.sizes, dtype=np.float64)[None, :]
    sold = np.minimum(sizes, params.I_max + levels)  # the ask: the trader buys at most I + I_max units
    bought = np.minimum(sizes, params.I_max - levels)  # the bid: the MM buys at most I_max − I units
    executed = np.stack([sold, bought])
    next_inventory = np.stack([levels - sold, levels + bought])
    return SideOutcomes(executed, (next_inventory + params.I_max).astype(np.intp))


def _penalty_weight(params: MarketParams) -> float:
    # The mtm reward charges (κ/2)·I'² through the wealth change on top of λ·I'² (see the module docstring).
    return params.lam + (0.5 * params.kappa if params.reward == "mtm" else 0.0)


@dataclass(frozen=True)
class DPSolution:
    """The exact optimum: the value table and the optimal offsets."""

    params: MarketParams
    value: np.ndarray
    """``V[t, i]``, shape ``(T + 1, N)``: expected return from step ``t`` with inventory ``i − I_max``."""
    bid: np.ndarray
    """Optimal bid offsets ``δ_b[t, i]``, shape ``(T, N)``."""
    ask: np.ndarray
    """Optimal ask offsets ``δ_a[t, i]``, shape ``(T, N)``."""

    @property
    def expected_return(self) -> float:
        """The optimal expected episode return from the start (``t = 0``, ``I = 0``)."""
        return float(self.value[0, self.params.I_max])


def solve_dp(params: MarketParams) -> DPSolution:
    """Solve the finite-horizon problem exactly by backward induction (closed-form per-side maximisation).

    Works for both rewards, any size distribution, arrival probability, inventory limit and terminal penalty. In
    article mode quotes do not affect fills, so the optimum is to quote ``delta_max`` and this raises instead.
    """
    if params.article:
        raise ValueError("mode='article' has no quoting problem: every order fills, so quote delta_max on both sides")
    outcomes = side_outcomes(params)
    probs = np.asarray(params.probs)
    levels = inventory_grid(params)
    squared = levels * levels
    mean_executed = outcomes.executed @ probs  # m_s(I), shape (2, N)
    mean_sq_executed = (outcomes.executed**2) @ probs
    no_liquidity = mean_executed == 0
    safe_mean = np.where(no_liquidity, 1.0, mean_executed)
    weight = _penalty_weight(params)
    mtm = params.reward == "mtm"
    value = np.empty((params.T + 1, len(levels)))
    bid = np.empty((params.T, len(levels)))
    ask = np.empty((params.T, len(levels)))
    value[params.T] = -params.alpha * squared
    for t in range(params.T - 1, -1, -1):
        carry = value[t + 1] - weight * squared  # U(I')
        change = carry[outcomes.next_index] @ probs - carry  # c_s(I) = E_Q[U(I'_s)] − U(I)
        if mtm:
            change -= 0.5 * params.kappa * mean_sq_executed
        best = np.clip(1.0 / params.k - change / safe_mean, params.delta_min, params.delta_max)
        best = np.where(no_liquidity, params.delta_max, best)
        gain = params.A * np.exp(-params.k * best) * (mean_executed * best + change)
        value[t] = carry + 0.5 * params.pi * gain.sum(axis=0)
        if mtm:
            value[t] += 0.5 * params.kappa * squared
        ask[t], bid[t] = best[ASK], best[BID]
    return DPSolution(params, value, bid, ask)


class ExactEvaluation(NamedTuple):
    """Exact moments of the episode return of a policy from ``t = 0``, ``I = 0``."""

    mean: np.ndarray | float
    std: np.ndarray | float
    value: np.ndarray
    """``E[return from t | I]``, shape ``(..., T + 1, N)``."""


def evaluate_tables(params: MarketParams, bid: np.ndarray, ask: np.ndarray) -> ExactEvaluation:
    """Exact mean and standard deviation of the episode return of the Markov policy ``(bid[t, i], ask[t, i])``.

    ``bid`` and ``ask`` have shape ``(..., T, N)``: leading axes evaluate many policies at once. Offsets are clipped
    to ``[delta_min, delta_max]`` as the environment does. Works in article mode too (every order fills and the
    spread reward pays the full quoted spread).
    """
    bid = np.clip(np.asarray(bid, dtype=np.float64), params.delta_min, params.delta_max)
    ask = np.clip(np.asarray(ask, dtype=np.float64), params.delta_min, params.delta_max)
    n_levels = 2 * params.I_max + 1
    if bid.shape[-2:] != (params.T, n_levels) or ask.shape != bid.shape:
        raise ValueError(f"offset tables must have shape (..., T, N) = (..., {params.T}, {n_levels})")
    outcomes = side_outcomes(params)
    probs = np.asarray(params.probs)
    levels = inventory_grid(params)
    squared = levels * levels
    next_levels = outcomes.next_index - params.I_max  # I' per (side, level, size)
    batch = bid.shape[:-2]
    mean = np.zeros((*batch, params.T + 1, n_levels))
    second = np.zeros_like(mean)
    mean[..., params.T, :] = -params.alpha * squared
    second[..., params.T, :] = mean[..., params.T, :] ** 2
    mtm = params.reward == "mtm"
    noise_var = params.sigma**2 * squared if mtm else 0.0  # Var of I'·σ·ε given I'
    for t in range(params.T - 1, -1, -1):
        offsets = np.stack([ask[..., t, :], bid[..., t, :]], axis=-2)  # (..., 2, N)
        # In article mode every order fills, and the spread reward pays the full quoted spread on each unit.
        fill_prob = np.ones_like(offsets) if params.article else params.A * np.exp(-params.k * offsets)
        if params.article and not mtm:
            per_unit = (offsets[..., ASK, :] + offsets[..., BID, :])[..., None, :]
        else:
            per_unit = offsets
        # Reward of a fill of each size on each side: shape (..., 2, N, m).
        reward = outcomes.executed * per_unit[..., None] - params.lam * next_levels**2
        if mtm:
            reward -= 0.5 * params.kappa * (outcomes.executed**2 + next_levels**2 - squared[:, None])
        next_mean = mean[..., t + 1, :][..., outcomes.next_index]  # (..., 2, N, m)
        next_second = second[..., t + 1, :][..., outcomes.next_index]
        outcome_prob = 0.5 * params.pi * fill_prob[..., None] * probs  # (..., 2, N, m)
        stay_prob = 1.0 - outcome_prob.sum(axis=(-3, -1))  # (..., N): no trade this step
        stay_reward = -params.lam * squared
        stay_mean, stay_second = mean[..., t + 1, :], second[..., t + 1, :]
        total = reward + next_mean
        mean[..., t, :] = (outcome_prob * total).sum(axis=(-3, -1)) + stay_prob * (stay_reward + stay_mean)
        fill_second = reward**2 + 2 * reward * next_mean + next_second
        if mtm:
            fill_second += params.sigma**2 * next_levels**2
        second[..., t, :] = (outcome_prob * fill_second).sum(axis=(-3, -1)) + stay_prob * (
            stay_reward**2 + 2 * stay_reward * stay_mean + stay_second + noise_var
        )
    start = (..., 0, params.I_max)
    expected = mean[start]
    std = np.sqrt(np.maximum(second[start] - expected**2, 0.0))
    if not batch:
        return ExactEvaluation(float(expected), float(std), mean)
    return ExactEvaluation(expected, std, mean)
