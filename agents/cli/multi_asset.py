"""The multi-asset comparison (``MODEL.md`` §9.8): every baseline evaluated exactly against the DP optimum.

``python -m agents.cli.multi_asset --preset two_assets --out runs/multi_asset`` prints the table (exact expected
return, % of the DP optimum and exact standard deviation of the DP, the independent one-asset optima, BEGV with
``A(τ)`` and ergodic, the tuned linear skews, the article rule per asset and a constant offset), then the value of
cross-hedging against the correlation, and writes both tables (``comparison.md``, ``correlation.md``) and the figures
(``quotes.png``: the quotes over ``(I_1, I_2)`` at ``t = 0``; ``correlation.png``) into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.cli.options import parse_key_values
from agents.evaluation.multi_asset import (
    baseline_policies,
    compare_multi_asset,
    correlation_figure,
    correlation_markdown,
    correlation_sweep,
    markdown_table,
    quotes_figure,
)
from agents.exact.multi_asset import cross_hedging_value, independent_value, multi_asset_size_problem
from agents.policies.multi_asset import BEGV, MultiAssetDP, begv_reason
from agents.storage.files import check_writable
from mm_env.multi_asset import MULTI_ASSET_PRESETS, make_multi_asset_params


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.cli.multi_asset",
        description="Compare multi-asset market-making policies exactly against the DP optimum (MODEL.md §9.8).",
    )
    parser.add_argument(
        "--preset",
        default="two_assets",
        choices=sorted(MULTI_ASSET_PRESETS),
        help="model preset (default: %(default)s)",
    )
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="model parameters, e.g. lam=0.002 risk_matrix=0.5 (a number applies to every asset)",
    )
    parser.add_argument("--no-tuning", action="store_true", help="skip the tuned linear skews")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep over the correlation")
    parser.add_argument("--out", type=Path, default=None, help="folder for the tables and figures (default: none)")
    args = parser.parse_args(argv)
    try:
        params = make_multi_asset_params(args.preset, **parse_key_values(args.env_kwargs))
    except ValueError as error:
        parser.error(str(error))
    problem = multi_asset_size_problem(params)
    if problem is not None:
        parser.error(f"--env-kwargs: {problem}")
    sweep = not args.no_sweep and params.d == 2
    if args.out is not None:
        try:  # before the computation, so that an unwritable folder is found at once
            check_writable(args.out)
        except OSError as error:
            parser.error(f"--out: cannot write results: {error}")
    figures = args.out is not None and importlib.util.find_spec("matplotlib") is not None
    if args.out is not None and not figures:
        print("note: no module named 'matplotlib': the tables are written, not the figures", end=" ")
        print('(pip install "mm_env[render]")')
    label = " ".join([f"preset={args.preset}", *args.env_kwargs])
    if not args.no_tuning:
        print("tuning the linear skews by exact evaluation …", flush=True)
    policies = baseline_policies(params, tuned=not args.no_tuning)
    rows = compare_multi_asset(params, policies)
    table = markdown_table(rows)
    hedging = cross_hedging_value(params)
    optimum = rows[0].mean
    summary = (
        f"the exact value of cross-hedging: {hedging:.4f} ({100.0 * hedging / optimum:.2f}% of the DP), the "
        f"independent one-asset optima summing to {independent_value(params):.4f}"
    )
    print(f"exact evaluation, {label}")
    print(table)
    print(summary)
    sweep_table = None
    if sweep:
        sweep_rows = correlation_sweep(params)
        sweep_table = correlation_markdown(sweep_rows)
        what = "the noise's correlation R, with C = Σ/σ̄²" if params.mean_variance else "C's off-diagonal"
        print(f"\nagainst the correlation ρ, {what}:")
        print(sweep_table)
    if args.out is None:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text(f"exact evaluation, {label}\n\n{table}\n\n{summary}\n", encoding="utf-8")
    written = ["comparison.md"]
    if sweep_table is not None:
        (args.out / "correlation.md").write_text(sweep_table + "\n", encoding="utf-8")
        written.append("correlation.md")
    if figures:
        from agents.evaluation.figures import save_figure

        if params.d == 2:
            dp = next(policy for policy in policies if isinstance(policy, MultiAssetDP))
            shown = [dp, BEGV(params)] if begv_reason(params) is None else [dp]
            save_figure(quotes_figure(params, shown), args.out / "quotes.png")
            written.append("quotes.png")
        if sweep:
            save_figure(correlation_figure(sweep_rows), args.out / "correlation.png")
            written.append("correlation.png")
    print(f"wrote {', '.join(written)} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
