"""Price impact of executed trades: permanent (linear or power law) and transient (``MODEL.md`` §2 step 4, §7.2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mm_env.model.checks import check_real
from mm_env.xp import ArrayNamespace, Number


@dataclass(frozen=True)
class PriceImpact:
    """How an executed trade moves the mid.

    Attributes:
        kappa: permanent impact κ (≥ 0): a trade of ``Q'`` units moves the mid by ``κ·Q'^β`` in the trader's
            direction, for good.
        impact_exponent: β in ``(0, 1]`` (1: linear; ½: the square-root law). Concave impact gives larger trades
            diminishing returns; under ``mtm`` it admits price manipulation, which a terminal penalty limits.
        transient_kappa: κ_T ≥ 0: each trade also adds ``κ_T·S·Q'`` to a transient part ``D`` of the mid.
        transient_decay: ρ_T in ``[0, 1)``: ``D`` decays by this factor every step, ``D' = ρ_T·D + S·f·κ_T·Q'``.
    """

    kappa: float = 0.05
    impact_exponent: float = 1.0
    transient_kappa: float = 0.0
    transient_decay: float = 0.0
    transient: bool = field(init=False, repr=False, compare=False)
    """Whether trades leave a transient part in the mid (which the state must then carry)."""

    def __post_init__(self) -> None:
        check_real(self, "kappa", low=0.0)
        check_real(self, "impact_exponent", low=0.0, high=1.0, low_open=True)
        check_real(self, "transient_kappa", low=0.0)
        check_real(self, "transient_decay", low=0.0, high=1.0, high_open=True)
        object.__setattr__(self, "transient", self.transient_kappa > 0.0)

    def permanent_move(self, traded: Number, executed: Number, xp: ArrayNamespace) -> Number:
        """The permanent mid move ``S·κ·Q'^β`` of a trade of signed size ``traded = S·Q'``."""
        if self.impact_exponent == 1.0:
            return self.kappa * traded
        return self.kappa * xp.sign(traded) * executed**self.impact_exponent

    def permanent_size(self, executed: Number) -> Number:
        """``g(Q') = κ·Q'^β``, unsigned (for the exact DP)."""
        return self.kappa * executed**self.impact_exponent

    def transient_level(self, level: Number, traded: Number) -> Number:
        """The transient part after the step, ``ρ_T·D + κ_T·S·Q'``."""
        return self.transient_decay * level + self.transient_kappa * traded

    def largest_move(self, max_size: int) -> float:
        """The largest mid move one trade can cause (to scale observations)."""
        return self.kappa * max_size**self.impact_exponent + self.transient_kappa * max_size
