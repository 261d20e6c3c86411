"""The heuristic policies: the article's rule, a constant spread, and a linear inventory skew."""

from __future__ import annotations

import numpy as np

from agents.policies.base import Policy
from mm_env.params import MarketParams


class ArticleRule(Policy):
    """The article's γ-skew rule in the consistent sign convention of ``MODEL.md`` §1.

    ``δ_b = Δ + max(γ·I, 0)`` and ``δ_a = Δ + max(−γ·I, 0)``: a long market maker widens its bid, so that it buys
    less. These are exactly the article's ``bid = P − Δ − |min(γq, 0)|``, ``ask = P + Δ + max(γq, 0)`` with the
    article's ``q`` the traders' net flow ``−I``, so in article mode this rule reproduces the article's quotes.
    ``flipped=True`` reads the article's ``q`` as the market maker's own inventory instead: it widens the side that
    would reduce risk, the sign error ``MODEL.md`` §1 warns about.
    """

    def __init__(self, spread_base: float = 0.5, gamma: float = 0.1, flipped: bool = False) -> None:
        self.spread_base, self.gamma, self.flipped = float(spread_base), float(gamma), bool(flipped)
        label = "article rule (flipped sign)" if flipped else "article rule"
        self.name = f"{label} Δ={self.spread_base:.3g}, γ={self.gamma:.3g}"

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the rule (time-independent)."""
        skew = self.gamma * np.asarray(inventory, dtype=np.float64)
        if self.flipped:
            skew = -skew
        return self.spread_base + np.maximum(skew, 0.0), self.spread_base + np.maximum(-skew, 0.0)


class ConstantSpread(Policy):
    """The same offset on both sides, whatever the inventory."""

    def __init__(self, offset: float = 0.5) -> None:
        self.offset = float(offset)
        self.name = f"constant offset {self.offset:.3g}"

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """A constant offset on both sides."""
        constant = np.full(np.shape(inventory), self.offset)
        return constant, constant


class LinearSkew(Policy):
    """A linear inventory skew ``δ_b = c + s·I``, ``δ_a = c − s·I``, clipped to ``[delta_min, delta_max]``."""

    def __init__(self, center: float = 0.7, slope: float = 0.06) -> None:
        self.center, self.slope = float(center), float(slope)
        self.name = f"linear skew c={self.center:.3g}, s={self.slope:.3g}"

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the skew, clipped to the allowed range."""
        skew = self.slope * np.asarray(inventory, dtype=np.float64)
        bounds = (params.delta_min, params.delta_max)
        return np.clip(self.center + skew, *bounds), np.clip(self.center - skew, *bounds)
