"""Helpers shared by the mm_env test modules (imported as ``helpers``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mm_env.dynamics import MarketState

ENV_ID = "mm_env/MarketMaking-v0"
ARTICLE_ENV_ID = "mm_env/ArticleMarketMaker-v0"
ALL_FEATURES = ("inventory", "time_left", "mid_change", "last_fill")
STATE_KEYS = {"inventory", "mid", "cash", "mtm_pnl"}
TRADE_KEYS = {
    "bid",
    "ask",
    "trader_side",
    "trader_size",
    "fill_side",
    "fill_size",
    "spread_captured",
    "inventory_penalty",
}


def scalar_state(t=0, inventory=0, mid=100.0, cash=0.0, mid_change=0.0, traded=0) -> MarketState:
    """A hand-built single-environment state."""
    return MarketState(t, inventory, mid, cash, mid_change, traded)


class StubRng:
    """A stand-in for ``numpy.random.Generator`` that returns fixed uniforms (and zero normals).

    ``random()`` returns the given uniforms in turn; ``random(shape)`` fills an array with them in C order.
    """

    def __init__(self, uniforms: Sequence[float], normal: float = 0.0) -> None:
        self.uniforms = list(uniforms)
        self.normal = normal
        self.position = 0

    def _next(self) -> float:
        value = self.uniforms[self.position % len(self.uniforms)]
        self.position += 1
        return value

    def random(self, size=None):
        if size is None:
            return self._next()
        out = np.empty(size)
        for index in np.ndindex(out.shape):
            out[index] = self._next()
        return out

    def standard_normal(self, size=None):
        if size is None:
            return self.normal
        return np.full(size, self.normal)


def random_actions(seed: int, n: int, shape=(2,), low: float = -1.2, high: float = 1.2) -> np.ndarray:
    """Reproducible actions, partly outside the [-1, 1] box to exercise clipping."""
    return np.random.default_rng(seed).uniform(low, high, size=(n, *shape)).astype(np.float32)
