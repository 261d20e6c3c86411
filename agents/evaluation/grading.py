"""Grade any policy of one market maker: its exact expected return and how far it is from the optimum.

:func:`grade` takes a policy in any form a user has one — an :class:`agents.policies.Policy`, a trained
Stable-Baselines3 model, or a plain function from a batch of observations to actions (a CleanRL agent) — and the
market (a model, an env configuration, or the env itself). It tabulates the policy over the exact grid ``(t, I)``
(``(t, I, L)`` with adaptive traders) and evaluates the tables exactly against the DP optimum: no sampling noise.
Where that is impossible it says why, and grades by Monte Carlo on common random numbers instead: against the DP's
exact value where the model has one (the policy observes more than the Markov state), else against the best tuned
heuristic on the same episodes (the model has no exact optimum).

>>> from agents.evaluation.grading import grade
>>> from agents.policies import ArticleRule
>>> print(grade(ArticleRule(0.5, 0.1), "default"))
article rule Δ=0.5, γ=0.1: exact E[return] 90.86 (sd 25.49), 81.75% of the DP optimum (111.14)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.compare import exact_return
from agents.evaluation.rollout import run_episodes
from agents.evaluation.tuning import best_tuned_heuristic
from agents.exact.dp import evaluate_tables, exact_solution, unsolvable_reason
from agents.policies.base import Policy
from agents.policies.learned import FunctionPolicy, SB3Policy
from agents.policies.tabular import DP_NAME
from mm_env.config import EnvConfig
from mm_env.params import MarketParams
from mm_env.presets import make_params

GRADE_EPISODES = 10_000
"""Monte Carlo episodes of a grade that cannot be exact."""
GRADE_SEED = 3_000_000
"""Their seed: episodes no training or comparison of this package selects on."""


@dataclass(frozen=True)
class Grade:
    """How good a policy is, exactly where it can be."""

    policy: str
    """The policy's name."""
    exact: bool
    """Whether ``expected_return`` and ``std`` are exact (else Monte Carlo estimates on common random numbers)."""
    expected_return: float
    """The expected episode return (exact, or the Monte Carlo mean)."""
    std: float
    """The standard deviation of the episode return (exact, or the sample's)."""
    standard_error: float | None
    """The Monte Carlo mean's standard error (``None`` when exact)."""
    benchmark: str
    """What the percentage compares with: ``DP optimum``, or the best tuned heuristic's name."""
    benchmark_return: float
    """The benchmark's expected return (the DP's exact value, or the heuristic's mean on the same episodes)."""
    pct_of_benchmark: float
    """``expected_return`` as a percentage of ``benchmark_return``."""
    reason: str | None = None
    """Why the grade is not exact (``None`` when it is)."""
    episodes: int | None = None
    """The Monte Carlo episodes (``None`` when exact)."""

    def __str__(self) -> str:
        if self.exact:
            value = f"exact E[return] {self.expected_return:.2f} (sd {self.std:.2f})"
        else:
            value = (
                f"mean return {self.expected_return:.2f} ± {self.standard_error:.2f} over {self.episodes:,} episodes"
            )
        benchmark = f"{self.pct_of_benchmark:.2f}% of the {self.benchmark} ({self.benchmark_return:.2f})"
        return f"{self.policy}: {value}, {benchmark}" + (f"; not exact: {self.reason}" if self.reason else "")


def market_config(market: Any) -> EnvConfig:
    """The env configuration of a market.

    The market is a preset's name, a :class:`MarketParams`, an :class:`EnvConfig`, or an env of this package
    (single, vector or SB3, wrapped or not).
    """
    if isinstance(market, EnvConfig):
        return market
    if isinstance(market, MarketParams):
        return EnvConfig(market)
    if isinstance(market, str):
        return EnvConfig(make_params(market))
    # An env, or a wrapper: Gymnasium's give the env as .unwrapped, SB3's VecEnvWrapper forwards attributes.
    for candidate in (market, getattr(market, "unwrapped", None)):
        config = getattr(candidate, "config", None)
        if isinstance(config, EnvConfig):
            return config
    raise ValueError(
        f"market={market!r} is not a preset name, a MarketParams, an EnvConfig or a one-market-maker env of mm_env"
    )


def observation_normalizer(market: Any) -> Any | None:
    """The observation normaliser among an SB3 env's wrappers (a ``VecNormalize`` that normalises them), if any."""
    layer = market
    while layer is not None:
        if getattr(layer, "norm_obs", False) and callable(getattr(layer, "normalize_obs", None)):
            return layer
        layer = getattr(layer, "venv", None)
    return None


def as_policy(policy: Any, config: EnvConfig, obs_normalizer: Any | None = None, name: str | None = None) -> Policy:
    """A policy of the env of ``config`` from what a user has.

    A :class:`Policy` as it is, a model with ``predict`` (Stable-Baselines3), or a function from a batch of
    observations ``(n, d)`` to actions ``(n, 2)``.

    Models and functions see the env's observations (its ``observation_features``, normalised by ``obs_normalizer``
    if given, a ``VecNormalize``) and give its actions (normalised or raw, as the env's action map).
    """
    if isinstance(policy, Policy):
        return policy
    features, normalized = config.features, config.normalize_actions
    if callable(getattr(policy, "predict", None)):
        return SB3Policy(policy, name or type(policy).__name__, obs_normalizer, normalized, features)
    if callable(policy):
        function: Callable[[np.ndarray], Any] = policy
        return FunctionPolicy(function, name, normalized, features)
    raise ValueError(
        f"policy={policy!r} is not an agents.policies.Policy, a model with predict(obs) or a function of observations"
    )


def grade(
    policy: Any,
    market: Any = "default",
    *,
    obs_normalizer: Any | None = None,
    name: str | None = None,
    episodes: int = GRADE_EPISODES,
    seed: int = GRADE_SEED,
) -> Grade:
    """Grade a policy of one market maker, exactly where the model and the policy allow it.

    Args:
        policy: an :class:`agents.policies.Policy`, a model with ``predict(obs, deterministic=True)`` (a
            Stable-Baselines3 model), or a function from a batch of observations ``(n, d)`` to actions ``(n, 2)``.
        market: a preset's name, a :class:`~mm_env.params.MarketParams`, an :class:`~mm_env.config.EnvConfig`, or
            the env the policy acts in (its observation features and action map are the policy's).
        obs_normalizer: the ``VecNormalize`` a model was trained behind (default: the one ``market`` wraps, if any).
        name: the policy's name in the grade.
        episodes: the common-random-number episodes of a grade that cannot be exact.
        seed: their seed.

    Returns:
        A :class:`Grade`. Exact when the model has a DP optimum and the policy is a function of the grid's Markov
        state; otherwise ``reason`` says why, and the figures are Monte Carlo estimates.
    """
    config = market_config(market)
    obs_normalizer = obs_normalizer if obs_normalizer is not None else observation_normalizer(market)
    params = config.params
    if not params.fill.quotes_matter:
        raise ValueError(f"the model has nothing to grade: {unsolvable_reason(params)}")
    agent = as_policy(policy, config, obs_normalizer, name)
    solution = exact_solution(params)
    if solution is not None:
        try:
            evaluation = evaluate_tables(params, *agent.tables(params))
        except ValueError as error:
            reason = str(error)
        else:
            mean = float(evaluation.mean)
            return Grade(
                agent.name,
                True,
                mean,
                float(evaluation.std),
                None,
                DP_NAME,
                solution.expected_return,
                _pct(mean, solution.expected_return),
            )
    else:
        reason = str(unsolvable_reason(params))
    returns = run_episodes(agent, params, episodes, seed).returns
    mean, std = float(returns.mean()), float(returns.std(ddof=1))
    if solution is not None:
        benchmark, benchmark_return = DP_NAME, solution.expected_return
    else:
        heuristic = best_tuned_heuristic(params).policy
        exact_heuristic = exact_return(heuristic, params)
        benchmark = heuristic.name
        benchmark_return = (
            exact_heuristic
            if exact_heuristic is not None
            else float(run_episodes(heuristic, params, episodes, seed).returns.mean())
        )
    return Grade(
        agent.name,
        False,
        mean,
        std,
        std / math.sqrt(episodes),
        benchmark,
        benchmark_return,
        _pct(mean, benchmark_return),
        reason,
        episodes,
    )


def _pct(value: float, benchmark: float) -> float:
    return 100.0 * value / benchmark if benchmark != 0 else math.nan
