"""Exact dynamic programming and exact policy evaluation (``MODEL.md`` §4, generalised in §7.3).

The state the reward depends on is ``(t, I)``, or ``(t, I, L)`` with adaptive (momentum) flow, where ``L`` is the
side of the last step's trade. Two independent computations run on it:

* :func:`solve_dp` — the optimum by the closed form of §7.3: per side ``s`` (ask ``S = +1``, bid ``S = −1``)
  ``δ*_s = clip(1/k − c_s/m_s, δ_min, δ_max)`` and
  ``V_t(I, L) = Σ_s w_s·(b_s + A·e^{−kδ*}·(m_s·δ* + c_s)) + (1 − Σ_s w_s)·(−λ·I² + V_{t+1}(I, 0))``.
* :func:`evaluate_tables` — the exact mean and standard deviation of the episode return of any Markov policy, given
  as offset tables, by a backward pass over the first and second moments of the same outcome tree: no trader; a
  trader on each side, informed or not, who declines or fills with each size.

Under the mark-to-market reward the step's wealth change is ``ΔW = f·Q'·δ_S + I'·ΔP`` (the cash paid at the mid
cancels), and the mid's move ``ΔP`` is the permanent impact ``S·f·g(Q')``, the informed trader's news ``J·Z``, and
exogenous noise of mean zero (Brownian, jumps). Its conditional mean given the step's outcome is known, so the value
never depends on the mid: the state stays finite. Transient impact and mean reversion make ``ΔP`` depend on ``D`` or
``P``, which would join the state; there (under ``mtm`` only: the spread reward ignores the mid) no exact optimum
exists, see :func:`unsolvable_reason`.

With every extension off this is exactly §4, including the ``(κ/2)·I²`` of the ``mtm`` value: the term
``I'·S·κ·Q' = κ·S·I·Q' − κ·Q'²`` of a fill carries it without a special case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mm_env.limits import simulation_problem
from mm_env.model.fill import ExponentialFill
from mm_env.params import MarketParams
from mm_env.xp import NUMPY

ASK, BID = 0, 1  # side index: the ask fills when a trader buys (I falls), the bid when one sells (I rises)
_SIGNS = np.array([1.0, -1.0])  # the trader's side S per side index: +1 buys at the ask, −1 sells at the bid


def inventory_grid(params: MarketParams) -> np.ndarray:
    """The inventory levels ``−I_max … I_max`` (as floats), index ``i`` ↔ inventory ``i − I_max``."""
    return np.arange(-params.I_max, params.I_max + 1, dtype=np.float64)


def last_sides(params: MarketParams) -> tuple[int, ...]:
    """The values of the last trade's side ``L`` the state carries: ``(0,)`` without momentum, else ``(−1, 0, 1)``."""
    return (0,) if params.flow.momentum == 0.0 else (-1, 0, 1)


def table_shape(params: MarketParams) -> tuple[int, ...]:
    """Shape of a policy's offset table: ``(T, N)``, or ``(T, N, 3)`` with momentum (last index ``L + 1``)."""
    n_levels = 2 * params.I_max + 1
    return (params.T, n_levels) if params.flow.momentum == 0.0 else (params.T, n_levels, 3)


MAX_TABLE_BYTES = 4 * 2**30
"""The largest memory the exact tables of one solve may take (the one-MM DP and the two-MM game alike)."""
# table_shape float64 arrays alive at once in a solve and an exact evaluation (measured: about 18 at I_max=8000).
_TABLES_PER_SOLVE = 18


MAX_DP_WORK = 1_000_000_000
"""The most cells × trader sizes one exact pass may visit, ``T × (2·I_max + 1) × sizes × last sides`` (about a
minute): the default model has 200 × 101 × 9 = 181,800."""


def table_memory_reason(params: MarketParams) -> str | None:
    """Why the exact tables of this model would not fit in memory or time, in one sentence, or ``None`` when they do.

    The memory: :data:`MAX_TABLE_BYTES`; the time: :data:`MAX_DP_WORK`. Every exact solve and evaluation, and every
    command, checks this before it allocates anything.
    """
    cells = (params.T + 1) * math.prod(table_shape(params)[1:])
    size = _TABLES_PER_SOLVE * 8 * cells
    if size > MAX_TABLE_BYTES:
        return (
            f"the exact tables would take {size / 2**30:,.1f} GiB (T={params.T}, I_max={params.I_max}), more than "
            f"{MAX_TABLE_BYTES / 2**30:.0f} GiB"
        )
    work = params.T * math.prod(table_shape(params)[1:]) * len(params.flow.sizes)
    if work > MAX_DP_WORK:
        return (
            f"the exact pass would visit {work:,} cells × sizes (T={params.T}, I_max={params.I_max}, "
            f"{len(params.flow.sizes)} sizes), more than {MAX_DP_WORK:,}"
        )
    return None


def size_problem(params: MarketParams, episodes: int = 0, name: str = "--episodes", makers: int = 1) -> str | None:
    """Why solving or evaluating this model would not fit in memory or time, in one line, or ``None``.

    The one check every command and entry that solves or evaluates makes first: the exact tables and their work
    (:func:`table_memory_reason`; the policies' tables over ``(t, I)`` are as large, so it applies even where no DP
    is solved) and, for ``episodes`` Monte Carlo episodes, the batch's memory and steps
    (:func:`mm_env.limits.simulation_problem`).
    """
    reason = table_memory_reason(params)
    if reason is not None:
        return f"--env-kwargs: {reason}; choose a smaller T or I_max"
    return simulation_problem(episodes, params.T, name, makers) if episodes else None


def _infinite_state_reason(params: MarketParams) -> str | None:
    # The reward reads the mid, and the mid's expected move depends on more than (t, I, L).
    if not params.objective.reads_mid:
        return None
    if params.impact.transient:
        return (
            "under the mtm reward transient impact puts its decaying part D of the mid into the state, so no "
            "exact DP exists: compare policies by Monte Carlo"
        )
    if params.noise.mean_reversion > 0.0:
        return (
            "under the mtm reward mean reversion puts the mid P into the state, so no exact DP exists: compare "
            "policies by Monte Carlo"
        )
    return None


def unsolvable_reason(params: MarketParams) -> str | None:
    """Why the model has no exact optimum, in one sentence, or ``None`` when :func:`solve_dp` solves it.

    Three cases: article mode (every order fills whatever the quotes, so there is nothing to optimise: quote
    ``delta_max``); under a reward that reads the mid, transient impact or mean reversion (the state is not
    finite; under the spread reward these two do not matter: the reward ignores the mid); and tables too large for
    memory (:func:`table_memory_reason`).
    """
    if not params.fill.quotes_matter:
        return (
            "mode='article' has no quoting problem: every order fills whatever the quotes, so quote delta_max on "
            "both sides"
        )
    return _infinite_state_reason(params) or table_memory_reason(params)


class SideOutcomes(NamedTuple):
    """For each side, inventory level and trader size: the executed size and the index of the next inventory."""

    executed: np.ndarray
    """``Q'``, shape ``(2, N, m)`` with ``N = 2·I_max + 1`` levels and ``m`` sizes."""
    next_index: np.ndarray
    """Index of ``I'`` into the inventory grid, shape ``(2, N, m)``."""


def side_outcomes(params: MarketParams) -> SideOutcomes:
    """Executed sizes and next inventories for a fill of each size on each side at each inventory level."""
    levels = inventory_grid(params)[:, None]
    sizes = np.asarray(params.flow.sizes, dtype=np.float64)[None, :]
    sold = np.minimum(sizes, params.I_max + levels)  # the ask: the trader buys at most I + I_max units
    bought = np.minimum(sizes, params.I_max - levels)  # the bid: the MM buys at most I_max − I units
    executed = np.stack([sold, bought])
    next_inventory = np.stack([levels - sold, levels + bought])
    return SideOutcomes(executed, (next_inventory + params.I_max).astype(np.intp))


class _OutcomeTree(NamedTuple):
    """The outcome tree of one step, the same at every ``t``: what the DP and the evaluation share.

    Value tables are flattened over ``(I, L)`` to shape ``(N·n_L,)`` so that one gather finds every next state.
    Axes: ``s`` side (ask, bid), ``i`` inventory level, ``l`` last side ``L``, ``q`` trader size.
    """

    probs: np.ndarray
    """Size law, ``(m,)``."""
    executed: np.ndarray
    """``Q'``, ``(2, N, m)``."""
    mean_executed: np.ndarray
    """``m_s(I) = E_Q[Q']``, ``(2, N)``."""
    next_inventory: np.ndarray
    """``I'`` after a fill, ``(2, N, m)``."""
    next_flat: np.ndarray
    """Flat index of ``(I', L')`` after a fill, ``(2, N, m)``; ``L' = S`` if ``Q' > 0`` else 0."""
    stay_flat: np.ndarray
    """Flat index of ``(I, 0)``, where a declined quote or a step without trader leads, ``(N,)``."""
    arrive: np.ndarray
    """``w_s(L)``: probability that a trader on side ``s`` arrives, ``(2, n_L)``."""
    news: np.ndarray
    """Mean mid move from the news in the trader's direction, ``J·η_s(L)`` (0 unless the reward reads the mid),
    ``(2, n_L)``."""
    fill_reward: np.ndarray
    """A fill's mean reward less the spread ``Q'·δ`` and the news: ``−λ·I'² + I'·S·g(Q')`` (the impact term under
    ``mtm`` only), ``(2, N, m)``."""
    stay_reward: np.ndarray
    """``−λ·I²``, ``(N,)``."""
    noise_var: float
    """Variance of the exogenous mid move (σ², jumps) that the reward sees, times ``I'²``."""
    news_var: np.ndarray
    """Variance ``η·(1 − η)·J²`` of the news move of a trader on side ``s`` who may or may not be informed, times
    ``I'²`` (0 unless the reward reads the mid), ``(2, n_L)``."""


def _outcome_tree(params: MarketParams) -> _OutcomeTree:
    flow, impact, objective, noise = params.flow, params.impact, params.objective, params.noise
    sides = last_sides(params)
    n_last = len(sides)
    levels = inventory_grid(params)
    outcomes = side_outcomes(params)
    executed = outcomes.executed
    next_inventory = outcomes.next_index - params.I_max
    # L' = S after a trade, 0 after a fill cut to nothing at the limit; without momentum there is one L slot.
    next_last = np.where(executed > 0, _SIGNS[:, None, None], 0.0) if n_last == 3 else np.zeros_like(executed)
    zero_index = sides.index(0)
    next_flat = outcomes.next_index * n_last + (next_last.astype(np.intp) + zero_index)
    stay_flat = np.arange(len(levels)) * n_last + zero_index
    law = np.array([flow.side_law(last) for last in sides]).T  # (4, n_L): w_ask, w_bid, η_ask, η_bid
    arrive, informed_share = law[:2], law[2:]
    reads_mid = objective.reads_mid
    fill_reward = -objective.lam * next_inventory**2
    if reads_mid:
        fill_reward = fill_reward + next_inventory * _SIGNS[:, None, None] * impact.permanent_size(executed)
    jump = flow.info_jump if reads_mid else 0.0
    return _OutcomeTree(
        probs=np.asarray(flow.probs),
        executed=executed,
        next_inventory=next_inventory,
        mean_executed=executed @ np.asarray(flow.probs),
        next_flat=next_flat,
        stay_flat=stay_flat,
        arrive=arrive,
        news=jump * informed_share,
        fill_reward=fill_reward,
        stay_reward=-objective.lam * levels**2,
        noise_var=(noise.sigma**2 + noise.jump_prob * noise.jump_size**2) if reads_mid else 0.0,
        news_var=jump**2 * informed_share * (1.0 - informed_share),
    )


@dataclass(frozen=True)
class DPSolution:
    """The exact optimum: the value table and the optimal offsets (trailing ``L + 1`` axis with momentum)."""

    params: MarketParams
    value: np.ndarray
    """``V[t, i]`` (``V[t, i, L + 1]`` with momentum), shape ``(T + 1, N)`` or ``(T + 1, N, 3)``: expected return
    from step ``t`` with inventory ``i − I_max``."""
    bid: np.ndarray
    """Optimal bid offsets, shape :func:`table_shape`."""
    ask: np.ndarray
    """Optimal ask offsets, shape :func:`table_shape`."""

    @property
    def expected_return(self) -> float:
        """The optimal expected episode return from the start (``t = 0``, ``I = 0``, ``L = 0``)."""
        start = self.value[0, self.params.I_max]
        return float(start if start.ndim == 0 else start[1])


def solve_dp(params: MarketParams) -> DPSolution:
    """Solve the finite-horizon problem exactly by backward induction (closed-form per-side maximisation).

    Raises:
        ValueError: when no exact optimum exists (the message is :func:`unsolvable_reason`).
    """
    reason = unsolvable_reason(params)
    if reason is not None:
        raise ValueError(reason)
    fill = params.fill
    assert isinstance(fill, ExponentialFill)  # unsolvable_reason refuses the article's fill law
    tree = _outcome_tree(params)
    n_levels, n_last = len(tree.stay_reward), len(last_sides(params))
    mean_executed = tree.mean_executed[..., None]  # (2, N, 1) against the L axis
    # The news part of c_s: a fill moves I by −S·Q', so the news term I'·S·J·η_s of a fill less the I·S·J·η_s of a
    # decline is −J·η_s·Q': informed traders lower c_s by J·η_s·m_s, and widen δ* by exactly J·η_s.
    news_change = -tree.news[:, None, :] * mean_executed  # (2, N, n_L)
    fill_reward = tree.fill_reward @ tree.probs  # E_Q of the fill's reward less the spread and the news, (2, N)
    value = np.empty((params.T + 1, n_levels, n_last))
    bid = np.empty((params.T, n_levels, n_last))
    ask = np.empty_like(bid)
    value[params.T] = -params.objective.alpha * (inventory_grid(params) ** 2)[:, None]
    for t in range(params.T - 1, -1, -1):
        following = value[t + 1].reshape(-1)
        # b_s less its news term (which cancels in Σ_s w_s·b_s: informed buyers and sellers both arrive with
        # probability π·ρ/2, and their news moves the mid in opposite directions), the value of a step without trade.
        stay = tree.stay_reward + following[tree.stay_flat]  # (N,)
        change = fill_reward + following[tree.next_flat] @ tree.probs - stay  # (2, N)
        change = change[..., None] + news_change  # c_s(I, L), (2, N, n_L)
        best = fill.best_offsets(mean_executed, change, params.delta_min, params.delta_max)
        gain = fill.probability(best, NUMPY) * (mean_executed * best + change)
        value[t] = stay[:, None] + (tree.arrive[:, None, :] * gain).sum(axis=0)
        ask[t], bid[t] = best[ASK], best[BID]
    if n_last == 1:
        value, bid, ask = value[..., 0], bid[..., 0], ask[..., 0]
    return DPSolution(params, value, bid, ask)


def exact_solution(params: MarketParams) -> DPSolution | None:
    """:func:`solve_dp`, or ``None`` when the model has no exact optimum (see :func:`unsolvable_reason`)."""
    return None if unsolvable_reason(params) is not None else solve_dp(params)


class ExactEvaluation(NamedTuple):
    """Exact moments of the episode return of a policy from ``t = 0``, ``I = 0`` (and ``L = 0``)."""

    mean: np.ndarray | float
    std: np.ndarray | float
    value: np.ndarray
    """``E[return from t | I (, L)]``, shape ``(..., T + 1, N)`` or ``(..., T + 1, N, 3)``."""


def evaluate_tables(params: MarketParams, bid: np.ndarray, ask: np.ndarray) -> ExactEvaluation:
    """Exact mean and standard deviation of the episode return of the Markov policy given by offset tables.

    Args:
        params: the model.
        bid: bid offsets of shape ``(..., *table_shape(params))``: leading axes evaluate many policies at once.
            Offsets are clipped to ``[delta_min, delta_max]`` as the environment does.
        ask: ask offsets, the same shape.

    Returns:
        The mean and standard deviation from the start (floats, or arrays over the leading axes) and the mean from
        every state.

    Works in article mode too (every order fills, and the spread reward pays the full quoted spread).

    Raises:
        ValueError: on tables of the wrong shape, or when the state the reward depends on is not finite (transient
            impact or mean reversion under ``mtm``).
    """
    reason = _infinite_state_reason(params) or table_memory_reason(params)
    if reason is not None:
        raise ValueError(reason)
    shape = table_shape(params)
    bid = np.clip(np.asarray(bid, dtype=np.float64), params.delta_min, params.delta_max)
    ask = np.clip(np.asarray(ask, dtype=np.float64), params.delta_min, params.delta_max)
    if bid.shape[bid.ndim - len(shape) :] != shape or ask.shape != bid.shape:
        raise ValueError(f"offset tables must have shape (..., *table_shape) = (..., {', '.join(map(str, shape))})")
    if len(shape) == 2:  # one L slot
        bid, ask = bid[..., None], ask[..., None]
    batch = bid.shape[:-3]
    tree = _outcome_tree(params)
    n_levels, n_last = bid.shape[-2:]
    levels = inventory_grid(params)
    levels_sq = levels**2
    next_sq = tree.next_inventory**2

    # Per side, level and L the offset quoted, what a filled unit pays, and the fill odds: (..., T, 2, N, n_L).
    # A unit pays its offset δ_S, except under the spread reward in article mode: the full quoted spread δ_b + δ_a.
    offsets = np.stack([ask, bid], axis=-3)
    unit = offsets
    if not params.objective.reads_mid:
        unit = np.asarray(params.fill.captured(offsets, 1.0, bid[..., None, :, :], ask[..., None, :, :]))
    fill_prob = np.broadcast_to(params.fill.probability(offsets, NUMPY), offsets.shape)

    # Outcome constants, (2, N, n_L, m) for fills and (2, N, n_L) for declines. The news of an informed trader
    # moves the mid by J·S, that of an uninformed one not at all: the two branches (weights η_s, 1 − η_s) have the
    # mean I'·S·J·η_s and add the variance I'²·J²·η_s·(1 − η_s), exactly as enumerating them would. Exogenous noise
    # adds I'²·Var(ΔP): it is independent of everything and the continuation does not depend on the mid.
    signed_next = (_SIGNS[:, None, None] * tree.next_inventory)[:, :, None, :]
    fill_base = tree.fill_reward[:, :, None, :] + signed_next * tree.news[:, None, :, None]
    fill_var = next_sq[:, :, None, :] * (tree.noise_var + tree.news_var[:, None, :, None])
    decline_reward = (
        tree.stay_reward[None, :, None] + _SIGNS[:, None, None] * levels[None, :, None] * tree.news[:, None, :]
    )
    decline_var = levels_sq[None, :, None] * (tree.noise_var + tree.news_var[:, None, :])
    idle_prob = 1.0 - tree.arrive.sum(axis=0)  # no trader, (n_L,)
    idle_var = levels_sq * tree.noise_var  # (N,)

    mean = np.zeros((*batch, params.T + 1, n_levels * n_last))
    second = np.zeros_like(mean)
    terminal = np.repeat(-params.objective.alpha * levels_sq, n_last)
    mean[..., params.T, :] = terminal
    second[..., params.T, :] = terminal**2
    for t in range(params.T - 1, -1, -1):
        next_mean, next_second = mean[..., t + 1, :], second[..., t + 1, :]
        # Fills of each size: (..., 2, N, n_L, m).
        reward = tree.executed[:, :, None, :] * unit[..., t, :, :, :, None] + fill_base
        after_mean = next_mean[..., tree.next_flat][..., None, :]
        after_second = next_second[..., tree.next_flat][..., None, :]
        fill_first = (reward + after_mean) @ tree.probs
        fill_second = (reward * (reward + 2.0 * after_mean) + fill_var + after_second) @ tree.probs
        # Declines and steps without trader lead to (I, 0).
        stay_mean = next_mean[..., tree.stay_flat][..., None, :, None]  # (..., 1, N, 1)
        stay_second = next_second[..., tree.stay_flat][..., None, :, None]
        decline_first = decline_reward + stay_mean
        decline_second = decline_reward * (decline_reward + 2.0 * stay_mean) + decline_var + stay_second
        p = fill_prob[..., t, :, :, :]
        side_first = (tree.arrive[:, None, :] * (p * fill_first + (1.0 - p) * decline_first)).sum(axis=-3)
        side_second = (tree.arrive[:, None, :] * (p * fill_second + (1.0 - p) * decline_second)).sum(axis=-3)
        idle = tree.stay_reward[:, None]
        stay_mean, stay_second = stay_mean[..., 0, :, :], stay_second[..., 0, :, :]
        idle_first = idle + stay_mean
        idle_second = idle * (idle + 2.0 * stay_mean) + idle_var[:, None] + stay_second
        mean[..., t, :] = (side_first + idle_prob * idle_first).reshape(*batch, -1)
        second[..., t, :] = (side_second + idle_prob * idle_second).reshape(*batch, -1)
    start = (..., 0, params.I_max * n_last + last_sides(params).index(0))
    expected = mean[start]
    std = np.sqrt(np.maximum(second[start] - expected**2, 0.0))
    value = mean.reshape(*batch, params.T + 1, n_levels, n_last)
    if n_last == 1:
        value = value[..., 0]
    if not batch:
        return ExactEvaluation(float(expected), float(std), value)
    return ExactEvaluation(expected, std, value)
