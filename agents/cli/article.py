"""The article's four scenarios: ``python -m agents.cli.article [--seed 0] [--out runs/article]``.

Prints the summary figures of each scenario on the same traders and writes one PNG per scenario
(:mod:`agents.reproduce.article`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.cli.arguments import integer, limits_problem, run_with_extra
from agents.reproduce.article import run_scenario
from mm_env.presets import ARTICLE_SCENARIOS


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; without matplotlib, one line naming the extra to install."""
    return run_with_extra(run, argv, "python -m agents.cli.article", "render")


def run(argv: Sequence[str] | None = None) -> int:
    """The command (see the module's docstring)."""
    from agents.evaluation.figures import episode_figure, save_figure
    from agents.storage.files import writable_problem

    parser = argparse.ArgumentParser(prog="python -m agents.cli.article", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed", type=integer, default=0, help="seed shared by the four scenarios (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs") / "article", help="folder for the PNG figures")
    args = parser.parse_args(argv)
    problem = limits_problem({"--seed": args.seed}, {})
    if problem is not None:
        parser.error(problem)
    problem = writable_problem(args.out)  # before the work, which takes a while
    if problem is not None:
        parser.error(f"--out {problem}")
    runs = [run_scenario(name, args.seed) for name in ARTICLE_SCENARIOS]
    keys = list(runs[0].summary())
    print(f"seed {args.seed}; the same traders in every scenario")
    print("| scenario | κ | γ | Δ | λ | " + " | ".join(keys) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(keys))
    for run in runs:
        s, p = run.scenario, run.scenario.params
        values = " | ".join(f"{value:.2f}" for value in run.summary().values())
        kappa, lam = p.impact.kappa, p.objective.lam
        print(f"| {s.title} | {kappa:g} | {s.gamma:g} | {s.spread_base:g} | {lam:g} | {values} |")
        title = f"{s.title}: κ={kappa:g}, γ={s.gamma:g}, Δ={s.spread_base:g}, λ={lam:g} (seed {args.seed})"
        path = save_figure(episode_figure(run.history, title=title), args.out / f"{run.name}.png")
        print(f"  figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
