"""The market maker's reward: spread capture or mark-to-market P&L, minus inventory penalties (``MODEL.md`` §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mm_env.model.checks import check_choice, check_real
from mm_env.model.xp import Number

REWARDS = ("spread", "mtm")


@dataclass(frozen=True)
class Objective:
    """What the market maker is paid each step.

    Attributes:
        reward: ``"spread"``: the spread captured on the fill (its distance from the mid times its size) minus the
            penalty; ``"mtm"``: the change of mark-to-market wealth ``X + I·P`` minus the penalty.
        lam: running inventory penalty λ ≥ 0: every step subtracts ``λ·I'²`` on the inventory carried out of it.
        alpha: terminal inventory penalty α ≥ 0: the last step also subtracts ``α·I_T²``.
    """

    reward: str = "spread"
    lam: float = 0.005
    alpha: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self, "reward", REWARDS)
        check_real(self, "lam", low=0.0)
        check_real(self, "alpha", low=0.0)

    @property
    def reads_mid(self) -> bool:
        """Whether the reward depends on the mid (then the mid's dynamics enter the exact DP)."""
        return self.reward == "mtm"

    def step_reward(self, captured: Number, before: Any, after: Any, terminated: Number) -> tuple[Number, Number]:
        """The step's reward and its inventory penalty.

        The reward reads the spread ``captured``, or the wealth ``X + I·P`` of the states ``before`` and ``after``
        the step; the penalty is ``λ·I'²``, plus ``α·I'²`` on the last step.
        """
        squared = after.inventory * after.inventory
        penalty = self.lam * squared
        if self.alpha > 0.0:
            penalty = penalty + self.alpha * squared * terminated
        if self.reward == "mtm":
            wealth_change = (after.cash + after.inventory * after.mid) - (before.cash + before.inventory * before.mid)
            return wealth_change - penalty, penalty
        return captured - penalty, penalty
