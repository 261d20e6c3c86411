"""Exogenous moves of the mid: Brownian noise, jumps and mean reversion (``MODEL.md`` §2 step 4, §7.2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mm_env.model.checks import check_real
from mm_env.xp import ArrayNamespace, Number


@dataclass(frozen=True)
class MidNoise:
    """What moves the mid besides trades.

    It acts on the fundamental part ``F`` of the mid (the mid without the transient part of impact).

    Attributes:
        sigma: standard deviation σ ≥ 0 of a Gaussian move ``σ·ε`` per step.
        jump_prob: probability π_J in ``[0, 1]`` of a jump in a step, independent of the flow.
        jump_size: size J_n ≥ 0 of a jump, ``±J_n`` with probability ½ each.
        mean_reversion: θ in ``[0, 1)``: each step ``F`` moves by ``θ·(P0 − F)`` towards the initial mid.
    """

    sigma: float = 0.0
    jump_prob: float = 0.0
    jump_size: float = 0.0
    mean_reversion: float = 0.0
    moves: bool = field(init=False, repr=False, compare=False)
    """Whether the mid moves by anything here at all (else the transition skips :meth:`move`)."""
    draws_normal: bool = field(init=False, repr=False, compare=False)
    """Whether a step needs a standard normal draw."""
    draws_jump: bool = field(init=False, repr=False, compare=False)
    """Whether a step needs a jump uniform."""

    def __post_init__(self) -> None:
        check_real(self, "sigma", low=0.0)
        check_real(self, "jump_prob", low=0.0, high=1.0)
        check_real(self, "jump_size", low=0.0)
        check_real(self, "mean_reversion", low=0.0, high=1.0, high_open=True)
        moves = self.sigma > 0.0 or (self.jump_prob > 0.0 and self.jump_size > 0.0) or self.mean_reversion > 0.0
        object.__setattr__(self, "moves", moves)
        object.__setattr__(self, "draws_normal", self.sigma > 0.0)
        object.__setattr__(self, "draws_jump", self.jump_prob > 0.0)

    def move(
        self, fundamental: Number, normal: Number, u_jump: Number | None, anchor: float, xp: ArrayNamespace
    ) -> Number:
        """This step's move of the fundamental part ``F`` of the mid: noise, a jump and mean reversion.

        A jump happens when ``u_jump < jump_prob``, upwards when ``u_jump < jump_prob/2``; mean reversion pulls
        ``F`` towards ``anchor``.
        """
        move: Number = 0.0
        if self.draws_normal:
            move = move + self.sigma * normal
        if self.draws_jump:
            move = move + self.jump_size * xp.signed_event(u_jump, self.jump_prob)  # type: ignore[arg-type]
        if self.mean_reversion > 0.0:
            move = move + self.mean_reversion * (anchor - fundamental)
        return move

    def largest_move(self) -> float:
        """A scale for the mid's exogenous move in a step: ``4σ + J_n`` (to scale observations)."""
        return 4.0 * self.sigma + self.jump_size
