"""Compare one market maker's quoting policies on common random numbers, with exact values beside the Monte Carlo.

Every policy runs the same episodes (:mod:`agents.evaluation.rollout`), so differences between policies are paired
and their standard errors small; every policy that is a function of the exact grid's Markov state also gets its
exact expected return (:func:`exact_return`). :func:`baseline_policies` is the standard set a learner is compared
with; :mod:`agents.evaluation.report` writes the table.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from agents.evaluation.rollout import Episodes, run_episodes
from agents.evaluation.tuning import best_tuned_heuristic, tune_article_rule, tune_linear_skew
from agents.exact.dp import evaluate_tables, exact_solution
from agents.policies.base import Policy
from agents.policies.closed_forms import applicable_baselines
from agents.policies.heuristics import ArticleRule, ConstantSpread, LinearSkew
from agents.policies.tabular import DPPolicy
from mm_env.params import MarketParams
from mm_env.presets import ARTICLE_SCENARIOS

REFERENCE_NAME = ArticleRule(0.5, 0.1).name


@dataclass(frozen=True)
class PolicyReport:
    """One row of the comparison table."""

    policy: str
    exact_return: float | None
    mean_return: float
    return_se: float
    pct_of_benchmark: float | None
    """Mean return as % of the benchmark: the DP optimum where the model has one, else the best tuned heuristic."""
    diff_vs_reference: float | None
    diff_se: float | None
    pnl_mean: float
    pnl_std: float
    sharpe: float
    var95: float
    cvar95: float
    max_drawdown: float
    mean_abs_inventory: float
    final_abs_inventory: float
    fill_rate: float
    mean_spread: float


def summarize(
    name: str,
    episodes: Episodes,
    exact: float | None,
    benchmark_value: float | None,
    reference: Episodes | None,
) -> PolicyReport:
    """Aggregate one policy's episodes into a table row."""
    n = len(episodes.returns)
    mean = float(episodes.returns.mean())
    pnl = episodes.pnl
    cutoff = np.quantile(pnl, 0.05)
    diff = None if reference is None else episodes.returns - reference.returns
    pnl_std = float(pnl.std(ddof=1))
    return PolicyReport(
        policy=name,
        exact_return=exact,
        mean_return=mean,
        return_se=float(episodes.returns.std(ddof=1) / math.sqrt(n)),
        pct_of_benchmark=None if not benchmark_value else 100.0 * mean / benchmark_value,
        diff_vs_reference=None if diff is None else float(diff.mean()),
        diff_se=None if diff is None else float(diff.std(ddof=1) / math.sqrt(n)),
        pnl_mean=float(pnl.mean()),
        pnl_std=pnl_std,
        sharpe=float(pnl.mean() / pnl_std) if pnl_std > 0 else math.nan,
        var95=float(-cutoff),
        cvar95=float(-pnl[pnl <= cutoff].mean()),
        max_drawdown=float(episodes.max_drawdown.mean()),
        mean_abs_inventory=float(episodes.mean_abs_inventory.mean()),
        final_abs_inventory=float(episodes.final_abs_inventory.mean()),
        fill_rate=float(episodes.fills.sum() / max(episodes.arrivals.sum(), 1)),
        mean_spread=float(episodes.mean_spread.mean()),
    )


def compare(
    policies: Sequence[Policy],
    params: MarketParams,
    episodes: int = 10_000,
    seed: int = 0,
    reference: str | None = REFERENCE_NAME,
    benchmark: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[PolicyReport]:
    """Evaluate every policy on the same ``episodes`` seeded episodes; pair each with the ``reference`` policy.

    ``% of benchmark`` is relative to the exact optimum where the model has one, else to the policy named
    ``benchmark`` (usually the best tuned heuristic) on the same episodes. Policies must have distinct names. The
    exact expected return is given for every policy that is a function of the exact grid's Markov state.
    ``progress``, if given, receives one line per policy as its episodes finish (e.g. ``print``).
    """
    names = [policy.name for policy in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be distinct: {names}")
    if benchmark is not None and benchmark not in names:
        raise ValueError(f"benchmark {benchmark!r} is not among the policies {names}")
    runs = {}
    for number, policy in enumerate(policies, start=1):
        started = time.perf_counter()
        runs[policy.name] = run_episodes(policy, params, episodes, seed)
        if progress is not None:
            mean, seconds = runs[policy.name].returns.mean(), time.perf_counter() - started
            progress(f"  [{number}/{len(policies)}] {policy.name}: mean return {mean:.2f} ({seconds:.1f} s)")
    solution = exact_solution(params)
    if solution is not None:
        benchmark_value: float | None = solution.expected_return
    else:
        benchmark_value = None if benchmark is None else float(runs[benchmark].returns.mean())
    reference_run = runs.get(reference) if reference is not None else None
    return [
        summarize(policy.name, runs[policy.name], exact_return(policy, params), benchmark_value, reference_run)
        for policy in policies
    ]


def exact_return(policy: Policy, params: MarketParams) -> float | None:
    """The policy's exact expected return, or ``None`` where the model or the policy has no finite Markov state."""
    try:
        return float(evaluate_tables(params, *policy.tables(params)).mean)
    except ValueError:
        return None


class Baselines(NamedTuple):
    """The standard comparison set, and the name of the benchmark policy where the model has no exact optimum."""

    policies: list[Policy]
    benchmark: str | None
    """The best tuned heuristic (by its tuning value) when there is no DP optimum, else ``None``."""


def baseline_policies(
    params: MarketParams, tuned: bool = True, strawmen: bool = True, scenario: str | None = None
) -> Baselines:
    """The standard comparison set for a model.

    The DP optimum (where it exists), the article's rule (as published and, with ``tuned``, tuned), linear skews,
    the continuous-time closed forms where they apply, and with ``strawmen`` a constant offset and the flipped rule
    (what not to do). In article mode the set is the article's rule with the ``(Δ, γ)`` of the named scenario
    (``scenario``, a key of ``ARTICLE_SCENARIOS`` or ``"article"``; by default Δ = 0.5, γ = 0.1): two scenarios
    can share their model and differ only in the rule, so the model alone cannot tell them apart.
    """
    if not params.fill.quotes_matter:
        named = ARTICLE_SCENARIOS.get("article_low_volatility" if scenario == "article" else scenario or "")
        spread_base, gamma = (named.spread_base, named.gamma) if named else (0.5, 0.1)
        # Quotes do not move fills here, so the flipped rule would only repeat the rule's row (same spread 2Δ+γ|I|).
        return Baselines([ArticleRule(spread_base, gamma)], None)
    solution = exact_solution(params)
    policies: list[Policy] = [DPPolicy(params, solution)] if solution is not None else []
    policies.append(ArticleRule(0.5, 0.1))
    benchmark = None
    if tuned:
        for tuned_policy in (tune_article_rule(params).policy, tune_linear_skew(params).policy):
            renamed = copy.copy(tuned_policy)  # the tuners cache their policies
            renamed.name = f"{tuned_policy.name} (tuned)"
            policies.append(renamed)
        if solution is None:
            benchmark = best_tuned_heuristic(params).policy.name
    policies += [LinearSkew(0.7, 0.06), *applicable_baselines(params)]
    if strawmen:
        policies += [ConstantSpread(0.5), ArticleRule(0.5, 0.1, flipped=True)]
    return Baselines(policies, benchmark)
