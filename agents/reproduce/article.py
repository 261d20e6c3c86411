"""The article's four scenarios (``MODEL.md`` §5), on the same random draws.

Every scenario sees the same traders: in the article's model fills do not depend on the quotes, so the inventory
path is the same in all four, which is what the article's findings rest on. The command
``python -m agents.cli.article`` prints their figures and draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.evaluation.rollout import episode_history
from agents.policies.heuristics import ArticleRule
from mm_env.presets import ARTICLE_SCENARIOS, ArticleScenario


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
