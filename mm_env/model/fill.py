"""The fill law: whether the quote on the trader's side trades (``MODEL.md`` §2 step 2, §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mm_env.model.checks import check_real
from mm_env.xp import ArrayNamespace, Number


@dataclass(frozen=True)
class ExponentialFill:
    """A quote at offset ``δ`` from the mid fills with probability ``A·exp(−k·δ)``.

    Attributes:
        A: fill probability at a zero offset, in ``(0, 1]``.
        k: decay of the fill probability with the offset (> 0); ``1/k`` is the article's base spread.
    """

    A: float = 0.9
    k: float = 2.0
    mode: ClassVar[str] = "standard"
    quotes_matter: ClassVar[bool] = True
    """Whether the quotes change what trades (they do: a tighter quote fills more often)."""

    def __post_init__(self) -> None:
        check_real(self, "A", low=0.0, high=1.0, low_open=True)
        check_real(self, "k", low=0.0, low_open=True)

    def probability(self, offset: Number, xp: ArrayNamespace) -> Number:
        """``A·exp(−k·δ)``."""
        return self.A * xp.exp(-self.k * offset)

    def filled(self, u_fill: Number, offset: Number, xp: ArrayNamespace) -> Number:
        """Whether a quote at ``offset`` fills, given the step's fill uniform."""
        return u_fill < self.probability(offset, xp)

    def captured(self, earned: Number, executed: Number, bid_offset: Number, ask_offset: Number) -> Number:
        """What the spread reward pays for the fill: its distance from the mid times its size (``earned``)."""
        return earned

    def best_offsets(self, mean_size: np.ndarray, change: np.ndarray, low: float, high: float) -> np.ndarray:
        """The offsets maximising ``A·e^{−kδ}·(m·δ + c)`` over ``[low, high]``: ``clip(1/k − c/m, low, high)``.

        The objective is unimodal in ``δ``; where ``m = 0`` (no size can execute) the answer is ``high``.
        """
        safe = np.where(mean_size > 0.0, mean_size, 1.0)
        best = np.clip(1.0 / self.k - change / safe, low, high)
        return np.where(mean_size > 0.0, best, high)


@dataclass(frozen=True)
class ArticleFill:
    """The original article's fill law (``MODEL.md`` §5): every arriving order fills whatever the quotes.

    The spread reward then pays the full quoted spread ``δ_b + δ_a`` on each unit. It has no parameters.
    """

    mode: ClassVar[str] = "article"
    quotes_matter: ClassVar[bool] = False

    def probability(self, offset: Number, xp: ArrayNamespace) -> Number:
        """Always 1."""
        return 1.0

    def filled(self, u_fill: Number, offset: Number, xp: ArrayNamespace) -> Number:
        """Always filled."""
        return True

    def captured(self, earned: Number, executed: Number, bid_offset: Number, ask_offset: Number) -> Number:
        """The full quoted spread times the size, the article's ``(ask − bid)·Q``."""
        return executed * (bid_offset + ask_offset)


FILLS: dict[str, type[ExponentialFill] | type[ArticleFill]] = {
    fill.mode: fill for fill in (ExponentialFill, ArticleFill)
}
"""The fill laws by the name of the ``mode`` keyword that selects them."""
