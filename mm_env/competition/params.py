"""Competing market makers (``MODEL.md`` §8): one market shared by ``M`` market makers on a tick grid."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mm_env.model.checks import check_int, check_real, fail
from mm_env.params import FLAT_NAMES, MarketParams, make_params

MAX_MARKET_MAKERS = 64
"""The largest number of market makers an environment accepts (the matching is quadratic in nothing, but a limit
catches a mistyped count before it allocates)."""


@dataclass(frozen=True)
class CompetitionParams:
    """``M`` market makers competing for one order flow.

    Attributes:
        market: the market they share (:class:`~mm_env.params.MarketParams`): the mid, the traders, the fill law,
            impact, noise, and the reward and inventory limit that apply to each market maker on its own.
        num_market_makers: ``M``, an integer in ``[1, 64]`` (1 is the one-MM market on a tick grid).
        tick: the tick size (> 0, at most ``delta_max − delta_min``). Offsets are rounded to the nearest multiple of
            the tick within ``[delta_min, delta_max]``, so that undercutting by one tick is well defined.

    A trader goes to the best (lowest) offset on its side among the market makers that can trade there (capacity
    ``> 0``); ties are split uniformly at random. It accepts that quote with the probability of the fill law, and the
    winner executes ``min(Q, its capacity)``; the rest of the order is not routed further.
    """

    market: MarketParams = field(default_factory=MarketParams)
    num_market_makers: int = 2
    tick: float = 0.01
    lowest_tick: int = field(init=False, repr=False, compare=False)
    """The smallest allowed offset in ticks, ``ceil(delta_min / tick)``."""
    highest_tick: int = field(init=False, repr=False, compare=False)
    """The largest allowed offset in ticks, ``floor(delta_max / tick)``."""

    def __post_init__(self) -> None:
        if not isinstance(self.market, MarketParams):
            fail("market", self.market, "a MarketParams")
        check_int(self, "num_market_makers", 1)
        if self.num_market_makers > MAX_MARKET_MAKERS:
            fail("num_market_makers", self.num_market_makers, f"an integer in [1, {MAX_MARKET_MAKERS}]")
        width = self.market.delta_max - self.market.delta_min
        check_real(self, "tick", low=0.0, high=width, low_open=True)
        # A small tolerance, so that bounds that are multiples of the tick in decimal (5.0 / 0.01) stay on the grid.
        lowest = math.ceil(self.market.delta_min / self.tick - 1e-9)
        highest = math.floor(self.market.delta_max / self.tick + 1e-9)
        if highest <= lowest:
            fail(
                "tick",
                self.tick,
                f"small enough for two ticks in [delta_min, delta_max] = [{self.market.delta_min}, "
                f"{self.market.delta_max}]",
            )
        object.__setattr__(self, "lowest_tick", lowest)
        object.__setattr__(self, "highest_tick", highest)

    @property
    def agents(self) -> tuple[str, ...]:
        """The market makers' names: ``mm_0``, ``mm_1`` and so on."""
        return tuple(f"mm_{j}" for j in range(self.num_market_makers))

    def to_ticks(self, offsets: Any) -> np.ndarray:
        """Offsets (any shape) as whole ticks: rounded to the nearest tick, within ``[delta_min, delta_max]``."""
        ticks = np.rint(np.asarray(offsets, dtype=np.float64) / self.tick)
        return np.clip(ticks, self.lowest_tick, self.highest_tick)

    def on_grid(self, offsets: Any) -> np.ndarray:
        """Offsets rounded to the tick grid (see :meth:`to_ticks`)."""
        return self.to_ticks(offsets) * self.tick

    def tick_offsets(self) -> np.ndarray:
        """Every allowed offset, from the lowest tick to the highest."""
        return np.arange(self.lowest_tick, self.highest_tick + 1) * self.tick


def make_competition_params(
    preset: str | MarketParams = "default", num_market_makers: int = 2, tick: float = 0.01, **overrides: Any
) -> CompetitionParams:
    """``M`` market makers on a market preset (:data:`mm_env.params.PRESETS`) with flat overrides.

    >>> make_competition_params("mtm", tick=0.05).market.reward
    'mtm'
    """
    unknown = sorted(set(overrides) - set(FLAT_NAMES))
    if unknown:
        allowed = ["preset", "params", "num_market_makers", "tick", *FLAT_NAMES]
        raise ValueError(f"{unknown[0]!r} is not a competition keyword or model parameter; allowed: {allowed}")
    return CompetitionParams(make_params(preset, **overrides), num_market_makers, tick)
