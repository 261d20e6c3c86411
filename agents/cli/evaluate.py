"""Compare the DP optimum, the article's rule and other heuristics on common random numbers, for one model.

``python -m agents.cli.evaluate --preset default --episodes 10000`` prints the comparison table
(:mod:`agents.evaluation.compare`) and writes it as JSON and Markdown (plus the policy figure) into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.cli.arguments import integer, limits_problem
from agents.cli.options import add_env_kwargs_argument, params_from_cli
from agents.evaluation.compare import baseline_policies, compare
from agents.evaluation.report import markdown_table, write_report
from agents.evaluation.tuning import TUNING_EPISODES, tuning_problem
from agents.exact.dp import size_problem, unsolvable_reason
from agents.storage.files import check_writable, new_numbered_folder


def _folder_name(label: str) -> str:
    # A file name from the model's description: "preset=default lam=0.002" -> "evaluate_preset-default_lam-0.002".
    return "evaluate_" + re.sub(r"[^A-Za-z0-9._-]+", "_", label.replace("=", "-")).strip("_")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.cli.evaluate",
        description="Compare the DP optimum, the article's rule and other heuristics on common random numbers.",
    )
    parser.add_argument("--preset", default="default", help="model preset (default: %(default)s)")
    add_env_kwargs_argument(parser)
    parser.add_argument("--episodes", type=integer, default=10_000, help="episodes per policy (default: %(default)s)")
    parser.add_argument("--seed", type=integer, default=0, help="seed shared by every policy (default: %(default)s)")
    parser.add_argument("--no-tuning", action="store_true", help="skip the tuned heuristics")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the results (default: a new runs/evaluate_<model>_<n>)"
    )
    args = parser.parse_args(argv)
    problem = limits_problem({"--seed": args.seed}, {"--episodes": args.episodes})
    if problem is not None:
        parser.error(problem)
    preset, params = params_from_cli(parser, args.preset, args.env_kwargs)
    tuning = params.fill.quotes_matter and not args.no_tuning
    tuning_slow = tuning_problem(params) if tuning else None
    problem = size_problem(params, args.episodes) or (tuning_slow and f"{tuning_slow}, or pass --no-tuning")
    if problem is not None:
        parser.error(problem)
    label = " ".join([f"preset={args.preset}", *args.env_kwargs])
    try:  # before the computation, so that an unwritable folder is found at once
        out = args.out if args.out is not None else new_numbered_folder(Path("runs"), _folder_name(label))
        check_writable(out)
    except OSError as error:
        parser.error(f"--out: cannot write results: {error}")
    figure = params.fill.quotes_matter and importlib.util.find_spec("matplotlib") is not None
    if params.fill.quotes_matter and not figure:  # said before the work: the tables are written all the same
        print("note: no module named 'matplotlib': the tables are written, not policies.png", end=" ")
        print('(pip install "mm_env[render]")')
    reason = unsolvable_reason(params)
    if reason is not None:
        print(f"no DP benchmark: {reason}")
        if params.fill.quotes_matter and not args.no_tuning:
            print(f"tuning the heuristics by Monte Carlo on {TUNING_EPISODES:,} episodes per candidate …", flush=True)
    policies, benchmark = baseline_policies(params, tuned=not args.no_tuning, scenario=preset)
    rows = compare(policies, params, args.episodes, args.seed, benchmark=benchmark)
    table = markdown_table(rows, benchmark)
    print(f"{args.episodes} episodes per policy, seed {args.seed}, {label}")
    print(table)
    write_report(rows, params, out, {"episodes": args.episodes, "seed": args.seed}, benchmark)
    written = "comparison.json"
    if figure:
        from agents.evaluation.figures import policy_figure, save_figure

        save_figure(policy_figure(policies, params), out / "policies.png")
        written += " and policies.png"
    print(f"wrote {out / 'comparison.md'}, {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
