"""TensorBoard for a run: the custom-scalars layout written at its start, and its settings for the HParams tab.

The Custom Scalars tab then shows, on one chart each, the agent's exact return next to the benchmark's (the DP
optimum, or the best tuned heuristic) and the article rule's, and the same as % of the benchmark; for the competing
market makers, each one's exact return next to the equilibrium's and the cartel's, and NashConv with the collusion
index. The tags are those the periodic evaluations log (:mod:`agents.training.callbacks`).
"""

from __future__ import annotations

import json
from typing import Any

from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

Layout = dict[str, dict[str, list]]


def market_maker_layout(benchmark_tag: str) -> Layout:
    """The one-MM charts; ``benchmark_tag`` is ``dp`` or ``best_heuristic`` (the tags the evaluations use)."""
    benchmark = "DP optimum" if benchmark_tag == "dp" else "best tuned heuristic"
    return {
        "market maker vs the benchmarks": {
            f"return: agent (exact and Monte Carlo), {benchmark}, article rule": [
                "Multiline",
                ["eval/exact_return", "eval/mean_return", f"eval/{benchmark_tag}_return", "eval/article_rule_return"],
            ],
            f"% of the {benchmark}: agent (exact and Monte Carlo), article rule": [
                "Multiline",
                [
                    f"eval/exact_pct_of_{benchmark_tag}",
                    f"eval/pct_of_{benchmark_tag}",
                    f"eval/article_rule_pct_of_{benchmark_tag}",
                ],
            ],
            "inventory and spread while training": [
                "Multiline",
                ["market/mean_abs_inventory", "market/quoted_spread", "market/fill_rate"],
            ],
        }
    }


def game_layout(num_market_makers: int) -> Layout:
    """The charts of the competing market makers."""
    makers = range(num_market_makers)
    return {
        "competing market makers vs the exact solutions": {
            "return per market maker: learned (exact and Monte Carlo), equilibrium, cartel": [
                "Multiline",
                [f"eval/exact_return_mm_{j}" for j in makers]
                + [f"eval/mean_return_mm_{j}" for j in makers]
                + ["eval/equilibrium_return", "eval/cartel_return"],
            ],
            "NashConv and the collusion index": ["Multiline", ["eval/nash_conv", "eval/collusion_index"]],
            "mm_0: % of its best response, quoted spread": [
                "Multiline",
                ["eval/pct_of_best_response", "eval/spread"],
            ],
        }
    }


def write_layout(logger: Logger, layout: Layout) -> None:
    """Write ``layout`` into the run's TensorBoard events (nothing if the logger does not write TensorBoard)."""
    for output in logger.output_formats:
        if isinstance(output, TensorBoardOutputFormat):
            output.writer.add_custom_scalars(layout)
            output.writer.flush()


def hparams_of(saved: dict[str, Any], run_name: str) -> dict[str, bool | int | float | str]:
    """A run's settings for TensorBoard's HParams: its name, budget actually run, hyperparameters, model parameters.

    ``Run`` repeats the run folder's name in a column of its own, first (HParams sorts names, capitals first, and
    shows the first five; its "Trial ID" column cuts long names short).
    ``n_timesteps`` of the hyperparameter file is replaced by the steps the run was given (``--timesteps`` wins over
    the file); lists and dicts become JSON text, as HParams takes only numbers, booleans and strings.
    """
    hyperparams = {key: value for key, value in saved["hyperparams"].items() if key not in ("n_timesteps", "n_envs")}
    settings = {
        "Run": run_name,
        "algo": saved["algo"],
        "seed": saved["seed"],
        "timesteps": saved["timesteps"],
        "n_envs": saved["n_envs"],
        **hyperparams,
        **{f"model/{key}": value for key, value in saved["params"].items()},
    }
    return {
        key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
        for key, value in settings.items()
    }
