"""Who quotes: one market maker, or ``M`` competing by price priority (``MODEL.md`` §2 and §8): the agent axis.

The transition (:func:`mm_env.dynamics.transition`) is written once. Everything that belongs to the environment
(the time, the mid, the trader, the draws) has one value per environment; everything that belongs to a market maker
(inventory, cash, fills, rewards) has one per market maker. A component of this module says how the two meet:

* :class:`SoleMarketMaker`: one market maker, whose values are the environment's (no agent axis: Python numbers for
  one environment, arrays ``(n,)`` for a batch); the trader meets its quote.
* :class:`PricePriority`: ``M`` market makers on a tick grid, their values along a last axis ``(n, M)``; the trader
  goes to the best price among those who can trade (§8).

With ``M = 1`` and quotes on the grid the two give the same step to the last bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mm_env.model.checks import check_int, check_real
from mm_env.xp import ArrayNamespace, Number


@dataclass(frozen=True)
class SoleMarketMaker:
    """One market maker: it meets every trader on the side the trader comes to."""

    num_market_makers: ClassVar[int] = 1

    def agent_shape(self, n: int) -> tuple[int, ...]:
        """The shape of a batch's per-market-maker arrays: ``(n,)``, the batch's own."""
        return (n,)

    def each(self, value: Number) -> Number:
        """A value of the environment, as a value of each market maker: itself."""
        return value

    def total(self, value: Number) -> Number:
        """The sum of the market makers' values: the one market maker's."""
        return value

    def match(
        self, side: Number, bid: Number, ask: Number, capacity: Number, u_tie: Number | None, xp: ArrayNamespace
    ) -> tuple[None, Number, Number]:
        """The trader meets the quote on its side: ``(winner, offset, capacity)`` with no winner to name."""
        return None, xp.pick(side > 0, ask, bid), capacity

    def assign(self, executed: Number, winner: Number | None) -> Number:
        """The executed size of each market maker: the trade's."""
        return executed

    def winner_index(self, winner: Number | None, side: Number, xp: ArrayNamespace) -> None:
        """No index: the trader always comes to the one market maker."""
        return None


SOLE_MARKET_MAKER = SoleMarketMaker()


@dataclass(frozen=True)
class PricePriority:
    """``M`` market makers on a tick grid: the best price on the trader's side wins, ties split at random.

    Attributes:
        num_market_makers: ``M`` (an integer ≥ 1).
        tick: the tick size (> 0); quotes are compared in whole ticks.
    """

    num_market_makers: int = 2
    tick: float = 0.01

    def __post_init__(self) -> None:
        check_int(self, "num_market_makers", 1)
        check_real(self, "tick", low=0.0, low_open=True)

    def agent_shape(self, n: int) -> tuple[int, ...]:
        """The shape of a batch's per-market-maker arrays, ``(n, M)``."""
        return (n, self.num_market_makers)

    def each(self, value: Number) -> Number:
        """A value of each environment ``(n,)`` as one per market maker, ``(n, 1)`` (broadcasts over ``M``)."""
        return value[:, None]  # type: ignore[index]  # arrays only

    def total(self, value: Number) -> Number:
        """The sum over the market makers, ``(n, M) → (n,)``."""
        return value.sum(axis=1)  # type: ignore[union-attr]  # arrays only

    def match(
        self, side: Number, bid: Number, ask: Number, capacity: Number, u_tie: Number | None, xp: ArrayNamespace
    ) -> tuple[Number, Number, Number]:
        """Price priority: the winner as a one-hot ``(n, M)`` mask, the best offset ``(n,)``, the winner's capacity.

        The offsets on the trader's side are compared in whole ticks among the market makers that can trade there
        (``capacity > 0``); a tie goes to the ``⌊u·k⌋``-th of the ``k`` tied market makers. Where none can trade,
        the mask is all false, the capacity 0 and the offset the best quote.
        """
        quotes = xp.where(self.each(side) > 0, ask, bid)
        eligible = capacity > 0
        ticks = xp.where(eligible, xp.rint(quotes / self.tick), math.inf)
        best = xp.min(ticks, axis=1, keepdims=True)
        tied = eligible & (ticks == best)
        # Cumulative counts number the tied market makers 1, 2, …; the draw picks one of them uniformly.
        if u_tie is None:
            chosen: Number = 1.0
        else:
            chosen = self.each(xp.floor(u_tie * xp.sum(tied, axis=1)) + 1)
        winner = tied & (xp.cumsum(tied, axis=1) == chosen)
        offset = xp.min(xp.where(eligible, quotes, math.inf), axis=1)
        offset = xp.where(xp.isfinite(offset), offset, xp.min(quotes, axis=1))
        return winner, offset, xp.sum(capacity * winner, axis=1)

    def assign(self, executed: Number, winner: Number | None) -> Number:
        """The executed size of each market maker: the trade's for the winner, 0 for the others, ``(n, M)``."""
        return winner * self.each(executed)  # type: ignore[operator]  # the mask of match()

    def winner_index(self, winner: Number | None, side: Number, xp: ArrayNamespace) -> Number:
        """The index of the market maker the trader went to, or −1 where none came or none could trade, ``(n,)``."""
        came = side != 0
        return xp.where(xp.any(winner, axis=1) & came, xp.argmax(winner, axis=1), -1)  # type: ignore[operator]
