"""TensorBoard for a run: the custom-scalars layout written at its start, and its settings for the HParams tab.

The Custom Scalars tab draws one quantity per chart and one series per run, so that a line's colour always names its
run (TensorBoard colours the lines of a custom-scalars chart by run and tells a run's tags apart by marker shape
only). Comparisons with a reference are built into the quantity: the agent's exact return as % of the DP optimum
(100 = optimal), ``mm_0``'s as % of its exact best response, the collusion index (0 = the equilibrium, 1 = the
cartel), NashConv (0 = an equilibrium). The references themselves (``eval/dp_return``, ``eval/article_rule_return``,
``eval/equilibrium_return``, ...) are scalars of their own in the Scalars tab. Every pattern is anchored
(TensorBoard matches them from the start of a tag only), so a chart of one family never draws another family's tags
when their runs share a log folder. The tags are those the callbacks log (:mod:`agents.training.callbacks`).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

Layout = dict[str, dict[str, list]]

TRAINING_CATEGORY = "while training: the stochastic policy's quotes (mean per environment step)"
"""The category both families share: identical charts, which TensorBoard merges into one for all runs."""


def only(tag: str) -> str:
    """The custom-scalars pattern of ``tag`` and nothing else (``eval/exact_return`` but not ``…_mm_0``)."""
    return f"^{re.escape(tag)}$"


def chart(tag: str) -> list:
    """A chart of one tag: one series per run."""
    return ["Multiline", [only(tag)]]


def training_charts() -> dict[str, list]:
    """What the agent quotes while it trains (:class:`~agents.training.callbacks.MarketMetricsCallback`)."""
    return {
        "mean |inventory|": chart("market/mean_abs_inventory"),
        "quoted spread δ_b + δ_a": chart("market/quoted_spread"),
        "fill rate: fills per arriving trader": chart("market/fill_rate"),
    }


def market_maker_layout(benchmark_tag: str) -> Layout:
    """The one-MM charts; ``benchmark_tag`` is ``dp`` or ``best_heuristic`` (the tags the evaluations use).

    Against the DP optimum: the exact return as % of it, the same by Monte Carlo, and the exact return. Against the
    best tuned heuristic (no exact value): the Monte Carlo return as % of it, and the Monte Carlo return.
    """
    if benchmark_tag == "dp":
        evaluations = {
            "exact return, % of the DP optimum (100 = optimal)": chart("eval/exact_pct_of_dp"),
            "Monte Carlo return, % of the DP optimum": chart("eval/pct_of_dp"),
            "exact return (the optimum's: eval/dp_return)": chart("eval/exact_return"),
        }
        category = "one market maker vs the DP optimum (deterministic policy, each evaluation)"
    else:
        evaluations = {
            "Monte Carlo return, % of the best tuned heuristic": chart("eval/pct_of_best_heuristic"),
            "Monte Carlo return (the heuristic's: eval/best_heuristic_return)": chart("eval/mean_return"),
        }
        category = "one market maker vs the best tuned heuristic (deterministic policy, each evaluation)"
    return {category: evaluations, TRAINING_CATEGORY: training_charts()}


def game_layout(num_market_makers: int, exact: bool = True) -> Layout:
    """The charts of the competing market makers; ``exact``: the game has an exact solution to judge against.

    With it: ``mm_0``'s exact return as % of its best response, NashConv, the collusion index, ``mm_0``'s quoted
    spread and each market maker's exact return. Without: the spread and each one's Monte Carlo return.
    """
    makers = range(num_market_makers)
    spread = {"mm_0: quoted spread at the start": chart("eval/spread")}
    if exact:
        evaluations = {
            "mm_0: exact return, % of its exact best response": chart("eval/pct_of_best_response"),
            "NashConv: what best responses would gain (0 = an equilibrium)": chart("eval/nash_conv"),
            "collusion index Δ (0 = the equilibrium, 1 = the cartel)": chart("eval/collusion_index"),
            **spread,
            **{f"mm_{j}: exact return": chart(f"eval/exact_return_mm_{j}") for j in makers},
        }
    else:
        evaluations = {**spread, **{f"mm_{j}: Monte Carlo return": chart(f"eval/mean_return_mm_{j}") for j in makers}}
    category = "competing market makers vs the exact game (deterministic policy, each evaluation)"
    return {category: evaluations, TRAINING_CATEGORY: training_charts()}


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


def close_logger(logger: Logger | None) -> None:
    """Close each of the logger's outputs, flushing TensorBoard's writer and ending its thread; never raises.

    For a run that failed or was interrupted, perhaps on a full disk: a write the disk refuses is lost, the run's own
    failure is what gets reported. ``None`` (a run stopped before its logger was set up) does nothing.
    """
    if logger is None:
        return
    for output in logger.output_formats:
        with contextlib.suppress(Exception):
            output.close()


def _is_writer_thread(thread: threading.Thread | None) -> bool:
    # TensorBoard's event files are written by a thread of this class (its name is private, hence the test by name).
    kind = type(thread)
    return kind.__name__ == "_AsyncWriterThread" and kind.__module__.startswith("tensorboard.")


@contextlib.contextmanager
def quiet_writer_threads() -> Iterator[None]:
    """Within the block, an error in TensorBoard's writer thread prints no thread traceback.

    The writer thread hands its error (a full disk, say) to the main thread, where the next write, flush or close
    raises it and the run records it as its failure (one line); Python would also print the dying thread's traceback
    (``Exception in thread ...``), which this block leaves out. Every other thread's errors go to the previous
    ``threading.excepthook``, which comes back when the block ends (unless something else replaced it meanwhile).
    """
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if _is_writer_thread(args.thread) and isinstance(args.exc_value, Exception):
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        if threading.excepthook is hook:
            threading.excepthook = previous
