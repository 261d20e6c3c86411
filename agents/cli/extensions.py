"""The extensions' exact figures: ``python -m agents.cli.extensions [--out runs/extensions]``.

Prints one row per preset and writes ``informed_quotes.png`` (:mod:`agents.reproduce.extensions`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.cli.arguments import run_with_extra
from agents.exact.dp import solve_dp
from mm_env.presets import PRESETS, make_params


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; without matplotlib, one line naming the extra to install."""
    return run_with_extra(run, argv, "python -m agents.cli.extensions", "render")


def run(argv: Sequence[str] | None = None) -> int:
    """The command (see the module's docstring)."""
    from agents.evaluation.figures import save_figure
    from agents.reproduce.extensions import SHOWN, informed_quotes_figure, summary_row
    from agents.storage.files import writable_problem

    parser = argparse.ArgumentParser(prog="python -m agents.cli.extensions", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / "extensions", help="folder for the figure")
    parser.add_argument("--presets", nargs="+", default=list(SHOWN), choices=sorted(PRESETS), metavar="PRESET")
    args = parser.parse_args(argv)
    problem = writable_problem(args.out)
    if problem is not None:
        parser.error(f"--out {problem}")
    print(
        "| preset | differs from default in | DP value | DP quotes at t=0, I=0 (bid / ask) | article rule "
        "Δ=0.5, γ=0.1 | best tuned heuristic | closed forms |"
    )
    print("|---|---|---:|---:|---:|---|---|")
    for name in args.presets:
        print(summary_row(name), flush=True)
    widening = []
    for reward in ("spread", "mtm"):
        base = solve_dp(make_params(reward=reward)).ask[0, 50]
        informed = solve_dp(make_params(reward=reward, informed=0.2, info_jump=0.5)).ask[0, 50]
        widening.append(f"{reward}: {informed - base:+.4f} ({(informed - base) / (0.2 * 0.5):.2f}·ρ·J)")
    print(f"\nwidening of the optimal quote at t=0, I=0 with ρ=0.2, J=0.5 — {'; '.join(widening)}")
    path = save_figure(informed_quotes_figure(), args.out / "informed_quotes.png")
    print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
