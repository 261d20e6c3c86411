"""The market maker's reward: spread capture or mark-to-market P&L, minus inventory penalties (``MODEL.md`` §2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mm_env.model.checks import check_choice, check_real
from mm_env.xp import Number

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
    reads_mid: bool = field(init=False, repr=False, compare=False)
    """Whether the reward depends on the mid (``mtm``: then the mid's dynamics enter the exact DP)."""

    def __post_init__(self) -> None:
        check_choice(self, "reward", REWARDS)
        check_real(self, "lam", low=0.0)
        check_real(self, "alpha", low=0.0)
        object.__setattr__(self, "reads_mid", self.reward == "mtm")

    def step_reward(self, gained: Number, inventory: Number, terminated: Number) -> tuple[Number, Number]:
        """The step's reward and its inventory penalty, given what the reward counts as ``gained``.

        ``gained`` is the spread captured (``reward="spread"``) or the change of wealth ``X + I·P`` over the step
        (``"mtm"``, see :attr:`reads_mid`); the penalty is ``λ·I'²`` on the ``inventory`` after the step, plus
        ``α·I'²`` where ``terminated``.
        """
        squared = inventory * inventory
        penalty = self.lam * squared
        if self.alpha > 0.0:
            penalty = penalty + self.alpha * squared * terminated
        return gained - penalty, penalty
