"""The article's four scenarios (``MODEL.md`` §5), on the same random draws, with the article-style figures.

Command line: ``python -m agents.article [--seed 0] [--out runs/article]`` writes one PNG per scenario and prints
the summary figures. Every scenario sees the same traders: in the article's model fills do not depend on the quotes,
so the inventory path is the same in all four, which is what the article's findings rest on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.evaluate import episode_history
from agents.plots import episode_figure, save_figure
from agents.policies import ArticleRule
from mm_env.params import ARTICLE_SCENARIOS, ArticleScenario


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario's episode: per-step arrays (``HISTORY_KEYS`` plus ``spread``) and its summary."""

    name: str
    scenario: ArticleScenario
    history: dict[str, np.ndarray]

    @property
    def cumulative_utility(self) -> float:
        """The article's cumulative utility: the sum of ``(ask − bid)·Q − λ·q²``."""
        return float(self.history["reward"].sum())

    def summary(self) -> dict[str, float]:
        """The figures the article discusses."""
        mid, inventory = self.history["mid"], self.history["inventory"]
        return {
            "cumulative utility": self.cumulative_utility,
            "final inventory I": float(inventory[-1]),
            "max abs inventory": float(np.abs(inventory).max()),
            "mid min": float(mid.min()),
            "mid max": float(mid.max()),
            "mid change sd": float(np.diff(mid).std()),
            "mean spread": float(self.history["spread"].mean()),
        }


def run_scenario(name: str, seed: int = 0) -> ScenarioRun:
    """Run one scenario for its ``T`` steps with the article's rule, seeded with ``seed``."""
    scenario = ARTICLE_SCENARIOS[name]
    history = episode_history(ArticleRule(scenario.spread_base, scenario.gamma), scenario.params, seed)
    return ScenarioRun(name, scenario, history)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m agents.article", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed shared by the four scenarios (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "article", help="folder for the PNG figures")
    args = parser.parse_args(argv)
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
