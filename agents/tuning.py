"""Tune the parameters of the heuristic rules by exact evaluation (no Monte Carlo noise).

A coarse grid over the two parameters, evaluated in one batched backward pass, picks a start; Nelder–Mead on the
exact expected return refines it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

from agents.dp import evaluate_tables
from agents.policies import ArticleRule, LinearSkew, Policy
from mm_env.params import MarketParams

_GRID_CHUNK = 64  # policies per batched evaluation: bounds memory at (64, T, 2·I_max + 1) tables


class TunedPolicy(NamedTuple):
    """The best policy found and its exact expected return."""

    policy: Policy
    expected_return: float


def tune(
    make_policy: Callable[[float, float], Policy],
    params: MarketParams,
    first: np.ndarray,
    second: np.ndarray,
) -> TunedPolicy:
    """Maximise the exact expected return over two parameters: grid ``first × second``, then Nelder–Mead."""
    candidates = [(a, b) for a in first for b in second]
    returns = np.concatenate(
        [
            _exact_means([make_policy(a, b) for a, b in candidates[i : i + _GRID_CHUNK]], params)
            for i in range(0, len(candidates), _GRID_CHUNK)
        ]
    )
    start = np.array(candidates[int(np.argmax(returns))])

    def loss(x: np.ndarray) -> float:
        return -float(evaluate_tables(params, *make_policy(*x).tables(params)).mean)

    steps = np.array([first[1] - first[0], second[1] - second[0]])
    simplex = np.array([start, start + [steps[0], 0.0], start + [0.0, steps[1]]])
    result = minimize(
        loss,
        start,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-6, "maxiter": 400},
    )
    best = result.x if -result.fun >= returns.max() else start
    return TunedPolicy(make_policy(*best), float(max(-result.fun, returns.max())))


def tune_article_rule(params: MarketParams) -> TunedPolicy:
    """The best ``(Δ, γ)`` of the article's rule (consistent sign) by exact evaluation."""
    spread_bases = np.linspace(params.delta_min, min(params.delta_max, params.delta_min + 2.0), 11)
    gammas = np.linspace(0.0, 0.3, 11)
    return tune(lambda d, g: ArticleRule(max(d, params.delta_min), max(g, 0.0)), params, spread_bases, gammas)


def tune_linear_skew(params: MarketParams) -> TunedPolicy:
    """The best ``(c, s)`` of the linear inventory skew by exact evaluation."""
    centers = np.linspace(params.delta_min, min(params.delta_max, params.delta_min + 2.0), 11)
    slopes = np.linspace(0.0, 0.3, 11)
    return tune(lambda c, s: LinearSkew(c, max(s, 0.0)), params, centers, slopes)


def _exact_means(policies: list[Policy], params: MarketParams) -> np.ndarray:
    tables = [policy.tables(params) for policy in policies]
    bid = np.stack([b for b, _ in tables])
    ask = np.stack([a for _, a in tables])
    return np.atleast_1d(evaluate_tables(params, bid, ask).mean)
