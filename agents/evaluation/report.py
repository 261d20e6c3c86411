"""The comparison tables: one market maker's (Markdown, JSON) and the competing market makers' (Markdown)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from agents.evaluation.compare import PolicyReport
from agents.evaluation.game import GameReport
from agents.exact.dp import exact_solution
from agents.policies.tabular import DP_NAME
from mm_env.params import MarketParams

COLUMNS = (
    ("policy", "policy", "{}"),
    ("exact_return", "exact E[return]", "{:.2f}"),
    ("mean_return", "mean return", "{:.2f}"),
    ("return_se", "± s.e.", "{:.2f}"),
    ("pct_of_benchmark", "% of DP", "{:.1f}"),
    ("diff_vs_reference", "Δ vs article rule", "{:+.2f}"),
    ("diff_se", "± s.e.", "{:.2f}"),
    ("pnl_mean", "P&L mean", "{:.1f}"),
    ("pnl_std", "P&L sd", "{:.1f}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("var95", "VaR95", "{:.1f}"),
    ("cvar95", "CVaR95", "{:.1f}"),
    ("max_drawdown", "max DD", "{:.1f}"),
    ("mean_abs_inventory", "mean abs(I)", "{:.2f}"),
    ("final_abs_inventory", "final abs(I)", "{:.2f}"),
    ("fill_rate", "fill rate", "{:.3f}"),
    ("mean_spread", "spread", "{:.3f}"),
)
"""Every column of a comparison table: its key in a row, its heading and its format."""


COMPACT_COLUMNS = ("policy", "exact_return", "mean_return", "return_se", "pct_of_benchmark", "diff_vs_reference")
"""The columns of the short table (TensorBoard's text, the sweep's summary)."""
"""The columns of the short table (TensorBoard's text tab shows it without wrapping in a 1400-pixel window)."""


def markdown_table(
    rows: Sequence[PolicyReport], benchmark: str | None = None, columns: Sequence[str] | None = None
) -> str:
    """The comparison as a Markdown table; ``benchmark`` names the policy ``% of`` refers to where there is no DP.

    ``columns`` picks some of :data:`COLUMNS` by key (e.g. :data:`COMPACT_COLUMNS`); by default, all of them.
    """
    shown = COLUMNS if columns is None else tuple(column for column in COLUMNS if column[0] in columns)
    if benchmark is not None:
        title = "% of best heuristic"
    elif any(row.pct_of_benchmark is not None for row in rows):
        title = "% of DP"
    else:  # neither a DP nor a benchmark heuristic (article mode, or untuned heuristics without a DP)
        title = "% of benchmark"
    titles = {"pct_of_benchmark": title}
    header = "| " + " | ".join(titles.get(key, title) for key, title, _ in shown) + " |"
    rule = "|" + "|".join("---" if key == "policy" else "---:" for key, _, _ in shown) + "|"
    lines = [header, rule]
    for row in rows:
        values = asdict(row)
        cells = ["–" if values[key] is None else fmt.format(values[key]) for key, _, fmt in shown]
        lines.append("| " + " | ".join(cells) + " |")
    if benchmark is not None:
        lines.append(f"\nNo exact optimum exists for this model; the best heuristic is {benchmark}.")
    return "\n".join(lines)


def write_report(
    rows: Sequence[PolicyReport], params: MarketParams, out: Path, meta: dict, benchmark: str | None = None
) -> None:
    """Write ``comparison.json`` and ``comparison.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    if benchmark is None and exact_solution(params) is not None:
        benchmark_name: str | None = DP_NAME
    else:
        benchmark_name = benchmark
    payload = {"params": params.as_dict(), **meta, "benchmark": benchmark_name}
    payload["rows"] = [asdict(row) for row in rows]
    (out / "comparison.json").write_text(json.dumps(payload, indent=2, allow_nan=True))
    (out / "comparison.md").write_text(markdown_table(rows, benchmark) + "\n")


def _pair(values: Sequence[float] | None, digits: int = 2) -> str:
    if values is None:
        return "–"
    return " / ".join(f"{v:.{digits}f}" for v in values)


def game_table(rows: Sequence[GameReport]) -> str:
    """The reports as a Markdown table (values per market maker, separated by ``/``)."""
    lines = [
        "| policy | exact return per MM | MC return per MM (± s.e.) | spread at start | NashConv | Δ "
        "| % of best response |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mc = " / ".join(f"{m:.2f} ± {s:.2f}" for m, s in zip(row.mean_return, row.return_se, strict=True))
        cells = [
            row.name,
            _pair(row.exact_return),
            mc,
            _pair(row.spread),
            "–" if row.nash_conv is None else f"{row.nash_conv:.3g}",
            "–" if row.collusion_index is None else f"{row.collusion_index + 0.0:.3f}".replace("-0.000", "0.000"),
            "–" if row.pct_of_best_response is None else f"{row.pct_of_best_response:.1f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
