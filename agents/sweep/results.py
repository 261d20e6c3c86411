"""A sweep's results: per cell and algorithm, the mean ± standard error across seeds, as a table, a CSV and a figure."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.storage.files import atomic_write_bytes, atomic_write_text
from agents.sweep.runs import TrialOutcome
from agents.sweep.spec import SweepSpec, params_label


@dataclass(frozen=True)
class SummaryRow:
    """One cell × algorithm of the results table: statistics across its finished seeds."""

    cell: str
    params: Mapping[str, Any]
    algo: str
    planned: int
    finished: int
    failed: int
    pct_mean: float
    pct_se: float
    best_pct_mean: float
    best_pct_se: float
    return_mean: float
    return_se: float
    benchmark: str
    benchmark_value: float
    exact_benchmark: bool
    """Whether the benchmark is exact (the DP, the exact best response), else the best tuned heuristic."""
    pct_values: tuple[float, ...]
    """Each finished seed's % of the benchmark (for the plot)."""
    run_dirs: tuple[str, ...]

    @property
    def label(self) -> str:
        """The cell's parameters, ``lam=0.001, preset=easy``."""
        return params_label(self.params)


def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample sd / √n); NaN where undefined (no value, or one)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan
    variance = math.fsum((value - mean) ** 2 for value in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def summarize(
    outcomes: Sequence[TrialOutcome], cells: Mapping[str, Mapping[str, Any]] | None = None
) -> list[SummaryRow]:
    """One row per cell × algorithm, in the order of ``outcomes``; ``cells`` gives each cell's parameters."""
    groups: dict[tuple[str, str], list[TrialOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.key.cell, outcome.key.algo), []).append(outcome)
    rows = []
    for (cell, algo), group in groups.items():
        done = [outcome for outcome in group if outcome.metrics is not None]
        metrics = [outcome.metrics for outcome in done if outcome.metrics is not None]
        pct = [m.pct for m in metrics]
        pct_mean, pct_se = mean_and_se(pct)
        best_pct_mean, best_pct_se = mean_and_se([m.best_pct for m in metrics if m.best_pct is not None])
        return_mean, return_se = mean_and_se([m.mean_return for m in metrics])
        benchmarks = sorted({m.benchmark for m in metrics})
        rows.append(
            SummaryRow(
                cell=cell,
                params=dict((cells or {}).get(cell, {})),
                algo=algo,
                planned=len(group),
                finished=len(done),
                failed=sum(outcome.error is not None for outcome in group),
                pct_mean=pct_mean,
                pct_se=pct_se,
                best_pct_mean=best_pct_mean,
                best_pct_se=best_pct_se,
                return_mean=return_mean,
                return_se=return_se,
                benchmark=" / ".join(benchmarks) if benchmarks else "–",
                benchmark_value=mean_and_se([m.benchmark_value for m in metrics])[0],
                exact_benchmark=all(m.exact for m in metrics),
                pct_values=tuple(pct),
                run_dirs=tuple(str(outcome.run_dir) for outcome in done),
            )
        )
    return rows


def _estimate(mean: float, se: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _seeds_text(row: SummaryRow) -> str:
    text = f"{row.finished}/{row.planned}"
    missing = row.planned - row.finished
    if row.failed:
        text += f" ({row.failed} failed)"
    elif missing:
        text += f" ({missing} unfinished)"
    return text


def benchmark_text(name: str, exact: bool) -> str:
    """A benchmark as the tables name it: an exact one by its name, a heuristic as ``best heuristic: <name>``."""
    return name if exact or name == "–" else f"best heuristic: {name}"


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The results table: % of the benchmark (DP, or best heuristic where there is none), mean ± s.e. over seeds."""
    lines = [
        "| cell | algorithm | seeds | % of benchmark (final model) | % of benchmark (best evaluation) "
        "| mean return | benchmark | benchmark value |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        value = "–" if math.isnan(row.benchmark_value) else f"{row.benchmark_value:.2f}"
        lines.append(
            f"| {row.label} | {row.algo.upper()} | {_seeds_text(row)} | {_estimate(row.pct_mean, row.pct_se, 1)} "
            f"| {_estimate(row.best_pct_mean, row.best_pct_se, 1)} | {_estimate(row.return_mean, row.return_se, 2)} "
            f"| {benchmark_text(row.benchmark, row.exact_benchmark)} | {value} |"
        )
    return "\n".join(lines)


def results_markdown(name: str, rows: Sequence[SummaryRow], outcomes: Sequence[TrialOutcome]) -> str:
    """``results.md``: the table, what its columns mean, and the failed trials with their errors."""
    text = [
        f"# Sweep {name}",
        "",
        markdown_table(rows),
        "",
        "Mean ± standard error across seeds of each finished run's final comparison (`comparison.json`): the "
        "agent's mean return as % of the DP value, or of the best tuned heuristic's mean return where the model "
        "has no exact optimum; for competing market makers, mm_0's exact return as % of its exact best response "
        "(the benchmark column says which).",
    ]
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        text += ["", "## Failed trials", ""]
        text += [f"- {o.key.cell}, {o.key.algo}, seed {o.key.seed}: {o.error}" for o in failed]
    return "\n".join(text) + "\n"


def results_csv(rows: Sequence[SummaryRow], sweep_dir: Path | None = None) -> str:
    """``results.csv``: one line per cell × algorithm, one column per grid parameter.

    ``run_dirs`` lists the finished run folders, relative to ``sweep_dir`` when given.
    """
    params = list(dict.fromkeys(key for row in rows for key in row.params))
    columns = [
        "cell",
        *params,
        "algo",
        "seeds_planned",
        "seeds_finished",
        "seeds_failed",
        "pct_mean",
        "pct_se",
        "best_pct_mean",
        "best_pct_se",
        "return_mean",
        "return_se",
        "benchmark",
        "benchmark_value",
        "run_dirs",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                row.cell,
                *(_csv_value(row.params.get(key, "")) for key in params),
                row.algo,
                row.planned,
                row.finished,
                row.failed,
                *(repr(value) for value in (row.pct_mean, row.pct_se, row.best_pct_mean, row.best_pct_se)),
                *(repr(value) for value in (row.return_mean, row.return_se)),
                row.benchmark,
                repr(row.benchmark_value),
                ";".join(_relative(path, sweep_dir) for path in row.run_dirs),
            ]
        )
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _relative(path: str, root: Path | None) -> str:
    try:
        return str(Path(path).relative_to(root)) if root is not None else path
    except ValueError:
        return path


def results_figure(name: str, rows: Sequence[SummaryRow]) -> Any:
    """Bars of the mean % of the benchmark per cell, one colour per algorithm, s.e. error bars and each seed's dot."""
    from matplotlib.figure import Figure

    cells = list(dict.fromkeys(row.label for row in rows))
    algos = list(dict.fromkeys(row.algo for row in rows))
    width = 0.8 / len(algos)
    figure = Figure(figsize=(max(6.0, 1.2 * len(cells) * len(algos) + 2), 4.8), layout="constrained")
    axis = figure.subplots()
    for j, algo in enumerate(algos):
        own = [row for row in rows if row.algo == algo]
        xs = [cells.index(row.label) + (j - (len(algos) - 1) / 2) * width for row in own]
        means = [0.0 if math.isnan(row.pct_mean) else row.pct_mean for row in own]  # no finished seed: no bar
        errors = [0.0 if math.isnan(row.pct_se) else row.pct_se for row in own]
        axis.bar(xs, means, width * 0.9, yerr=errors, capsize=4, color=f"C{j}", alpha=0.8, label=algo.upper())
        for x, row in zip(xs, own, strict=True):
            axis.plot([x] * len(row.pct_values), row.pct_values, "o", color="black", markersize=3)
    axis.axhline(100.0, color="grey", lw=1, ls="--")
    tilt = len(cells) > 3  # long cell labels side by side would overlap
    axis.set_xticks(range(len(cells)), cells, rotation=20 if tilt else 0, ha="right" if tilt else "center")
    axis.set_ylabel("% of benchmark (DP, or best heuristic)")
    axis.set_title(f"{name}: final models, mean ± s.e. over seeds (dots)", fontsize="medium")
    figure.legend(loc="outside right upper")  # beside the axes: bars near 100% fill them
    return figure


def write_results(spec: SweepSpec, sweep_dir: Path, outcomes: Sequence[TrialOutcome]) -> str:
    """Write ``results.md``, ``results.csv`` and ``results.png`` into the sweep folder; return the table."""
    rows = summarize(outcomes, {cell.name: cell.values for cell in spec.cells()})
    atomic_write_text(sweep_dir / "results.md", results_markdown(spec.name, rows, outcomes))
    atomic_write_text(sweep_dir / "results.csv", results_csv(rows, sweep_dir))
    image = io.BytesIO()
    results_figure(spec.name, rows).savefig(image, format="png", dpi=110)
    atomic_write_bytes(sweep_dir / "results.png", image.getvalue())
    return markdown_table(rows)
