"""Tune the parameters of the heuristic rules: by exact evaluation where the model allows it, else by Monte Carlo.

A coarse grid over the two parameters picks a start and Nelder–Mead refines it. The exact expected return has no
sampling noise; where the model has no finite Markov state (transient impact or mean reversion under ``mtm``) the
objective is the mean return on fixed common-random-number episodes, the same for every candidate.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

from agents.evaluation.rollout import run_episodes
from agents.exact.dp import evaluate_tables, table_shape, unsolvable_reason
from agents.policies.base import Policy
from agents.policies.heuristics import ArticleRule, LinearSkew
from mm_env.params import MarketParams

_CHUNK_BYTES = 256 * 2**20  # memory of one batched exact evaluation of many policies
_TABLES_PER_POLICY = 14  # table_shape float64 arrays a policy takes in a batched evaluation (measured: about 13)
TUNING_EPISODES = 2_000  # Monte Carlo episodes per candidate where there is no exact evaluation
TUNING_SEED = 123_456  # the episodes every candidate is tuned on (never those of a comparison's default seeds)
GRID_SIZE = 11  # points per parameter of the coarse grid
MAX_TUNING_WORK = 20_000_000_000
"""The most work tuning both rules may take at worst: table cells × trader sizes of the exact evaluations, or steps
of the Monte Carlo episodes, over every candidate counted by :func:`tuning_work` (at about 20 million a second, some
15 minutes at worst; the default model's exact tuning makes a tenth of the evaluations counted, a Monte Carlo tuning
about three quarters)."""


class TunedPolicy(NamedTuple):
    """The best policy found and its expected return (exact, or the Monte Carlo mean it was tuned on)."""

    policy: Policy
    expected_return: float


def expected_returns(policies: list[Policy], params: MarketParams) -> np.ndarray:
    """The policies' expected returns: exact where the model allows it, else on the tuning episodes."""
    if unsolvable_reason(params) is None:
        # In chunks, so that a large (t, I) grid does not multiply the memory by the number of candidates.
        per_policy = _TABLES_PER_POLICY * 8 * math.prod(table_shape(params))
        size = max(1, _CHUNK_BYTES // per_policy)
        chunks = [policies[i : i + size] for i in range(0, len(policies), size)]
        return np.concatenate([_exact_means(chunk, params) for chunk in chunks])
    return np.array([run_episodes(p, params, TUNING_EPISODES, TUNING_SEED).returns.mean() for p in policies])


def tune(
    make_policy: Callable[[float, float], Policy],
    params: MarketParams,
    first: np.ndarray,
    second: np.ndarray,
) -> TunedPolicy:
    """Maximise the expected return over two parameters: grid ``first × second``, then Nelder–Mead."""
    candidates = [(a, b) for a in first for b in second]
    returns = expected_returns([make_policy(a, b) for a, b in candidates], params)
    start = np.array(candidates[int(np.argmax(returns))])

    def loss(x: np.ndarray) -> float:
        return -float(expected_returns([make_policy(*x)], params)[0])

    steps = np.array([first[1] - first[0], second[1] - second[0]])
    simplex = np.array([start, start + [steps[0], 0.0], start + [0.0, steps[1]]])
    options = {"initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-6, "maxiter": _refinement_steps(params)}
    result = minimize(loss, start, method="Nelder-Mead", options=options)
    best = result.x if -result.fun >= returns.max() else start
    return TunedPolicy(make_policy(*best), float(max(-result.fun, returns.max())))


def _refinement_steps(params: MarketParams) -> int:
    # Monte Carlo objectives are flat between the candidates' fill thresholds: a short refinement is all they allow.
    return 400 if unsolvable_reason(params) is None else 40


def tuning_work(params: MarketParams) -> int:
    """The most work :func:`best_tuned_heuristic` may take on this model (see :data:`MAX_TUNING_WORK`).

    Two rules, each a grid of ``GRID_SIZE²`` candidates and a Nelder–Mead refinement of at most 3 + 4 evaluations
    per step (in two dimensions a step evaluates at most a reflection, an expansion or contraction, and a shrink of
    two points); each candidate costs an exact pass over the tables, or ``TUNING_EPISODES × T`` simulated steps.
    """
    candidates = 2 * (GRID_SIZE**2 + 3 + 4 * _refinement_steps(params))
    if unsolvable_reason(params) is None:
        per_candidate = params.T * math.prod(table_shape(params)[1:]) * len(params.flow.sizes)
    else:
        per_candidate = TUNING_EPISODES * params.T
    return candidates * per_candidate


def tuning_problem(params: MarketParams) -> str | None:
    """Why tuning the heuristics on this model could take too long (one line), or ``None``."""
    work = tuning_work(params)
    if work <= MAX_TUNING_WORK:
        return None
    how = "exact evaluations" if unsolvable_reason(params) is None else "Monte Carlo episodes"
    return (
        f"tuning the heuristics by {how} could take {work:,} cells or steps (T={params.T}, I_max={params.I_max}), "
        f"more than {MAX_TUNING_WORK:,}; choose a smaller T or I_max"
    )


@functools.lru_cache(maxsize=16)
def tune_article_rule(params: MarketParams) -> TunedPolicy:
    """The best ``(Δ, γ)`` of the article's rule (consistent sign); cached per model, so do not rename the policy."""
    spread_bases = np.linspace(params.delta_min, min(params.delta_max, params.delta_min + 2.0), GRID_SIZE)
    gammas = np.linspace(0.0, 0.3, GRID_SIZE)
    return tune(lambda d, g: ArticleRule(max(d, params.delta_min), max(g, 0.0)), params, spread_bases, gammas)


@functools.lru_cache(maxsize=16)
def tune_linear_skew(params: MarketParams) -> TunedPolicy:
    """The best ``(c, s)`` of the linear inventory skew; cached per model, so do not rename the policy."""
    centers = np.linspace(params.delta_min, min(params.delta_max, params.delta_min + 2.0), GRID_SIZE)
    slopes = np.linspace(0.0, 0.3, GRID_SIZE)
    return tune(lambda c, s: LinearSkew(c, max(s, 0.0)), params, centers, slopes)


def best_tuned_heuristic(params: MarketParams) -> TunedPolicy:
    """The better of the tuned article rule and the tuned linear skew, renamed ``… (tuned)``."""
    best = max(tune_article_rule(params), tune_linear_skew(params), key=lambda tuned: tuned.expected_return)
    policy = copy.copy(best.policy)
    policy.name = f"{policy.name} (tuned)"
    return TunedPolicy(policy, best.expected_return)


def _exact_means(policies: list[Policy], params: MarketParams) -> np.ndarray:
    tables = [policy.tables(params) for policy in policies]
    bid = np.stack([b for b, _ in tables])
    ask = np.stack([a for _, a in tables])
    return np.atleast_1d(evaluate_tables(params, bid, ask).mean)
