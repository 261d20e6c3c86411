"""Timings of the exact DP, exact policy evaluation, tuning and the Monte Carlo harness (median of several runs).

Run: ``python benchmarks/bench_baselines.py`` (``--markdown`` for a table of docs/speed.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from agents.evaluation.rollout import run_episodes
from agents.evaluation.tuning import tune_article_rule
from agents.exact.dp import evaluate_tables, solve_dp
from agents.policies import ArticleRule, DPPolicy
from mm_env.presets import make_params


def _uncached_tuning(params):
    tune_article_rule.cache_clear()  # the tuners cache their result per model; time the tuning itself
    return tune_article_rule(params)


def median_seconds(task: Callable[[], object], repeats: int) -> float:
    task()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    params = make_params("default")
    dp = DPPolicy(params)
    rule = ArticleRule(0.5, 0.1)
    cases = [
        ("solve_dp, default preset (T=200, I_max=50, 9 sizes)", lambda: solve_dp(params), args.repeats),
        ("exact evaluation of one policy (mean and sd)", lambda: evaluate_tables(params, *rule.tables(params)), 5),
        ("tune the article rule (grid + Nelder-Mead, exact)", lambda: _uncached_tuning(params), 3),
        ("10,000 Monte Carlo episodes of the DP policy", lambda: run_episodes(dp, params, 10_000, 0), 3),
    ]
    if args.markdown:
        print("| task | seconds (median) |\n|---|---:|")
    for name, task, repeats in cases:
        seconds = median_seconds(task, repeats)
        print(f"| {name} | {seconds:.3f} |" if args.markdown else f"{name:<55} {seconds:8.3f} s")


if __name__ == "__main__":
    main()
