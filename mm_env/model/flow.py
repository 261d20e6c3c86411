"""The order flow: who arrives in a step, on which side, with what size (``MODEL.md`` §2 step 1 and §7.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from mm_env.model.checks import check_real, check_sizes, fail
from mm_env.xp import ArrayNamespace, Number


class Trader(NamedTuple):
    """The trader of one step (scalars, or arrays over a batch): what :meth:`OrderFlow.trader` returns."""

    side: Number
    """+1 buys (lifts the ask), −1 sells (hits the bid), 0 no trader."""
    size: Number
    """The size ``Q`` it wants to trade (whatever its side; meaningless when ``side = 0``)."""
    news: Number
    """The sign ``Z`` of the jump ``J·Z`` the mid makes at the end of the step if the trader is informed, else 0."""


@dataclass(frozen=True)
class OrderFlow:
    """Arrivals, the side law, the size law and informed traders.

    Every raw uniform becomes an event here, where the state is known: the draws themselves never depend on the
    state or the quotes (common random numbers).

    Attributes:
        pi: probability that a trader arrives in a step, in ``[0, 1]``.
        sizes: possible trader sizes, distinct positive integers.
        size_probs: probability of each size (non-negative, summing to 1); ``None`` means uniform.
        p_buy: probability that an uninformed trader buys, in ``[0, 1]`` (asymmetric flow when not ½).
        momentum: φ in ``[−1, 1]``: an uninformed trader buys with probability ``p_buy + (φ/2)·L``, where ``L`` is
            the side of the last step's trade (0 if nothing traded). ``φ > 0`` is trend-following flow, ``φ < 0``
            contrarian flow; ``p_buy ± φ/2`` must stay in ``[0, 1]``.
        informed: ρ in ``[0, 1]``: probability that an arriving trader is informed. It knows the sign ``Z = ±1``
            (½ each) of the jump the mid makes at the end of the step, trades on side ``Z``, and the mid moves by
            ``info_jump·Z`` whether it traded or not.
        info_jump: J ≥ 0, the size of that jump.
    """

    pi: float = 1.0
    sizes: tuple[int, ...] = tuple(range(1, 10))
    size_probs: tuple[float, ...] | None = None
    p_buy: float = 0.5
    momentum: float = 0.0
    informed: float = 0.0
    info_jump: float = 0.0
    probs: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """The probability of each size (uniform when ``size_probs`` is ``None``)."""
    size_cdf: tuple[float, ...] = field(init=False, repr=False, compare=False)
    size_array: np.ndarray = field(init=False, repr=False, compare=False)
    """``sizes`` as a read-only float array, the table a batch looks sizes up in."""
    consecutive_sizes: bool = field(init=False, repr=False, compare=False)
    """Whether the sizes run ``s0, s0 + 1, …`` (then a uniform size needs no table)."""
    draws_informed: bool = field(init=False, repr=False, compare=False)
    """Whether a step needs the ``informed`` uniform (only when informed traders exist)."""

    def __post_init__(self) -> None:
        check_real(self, "pi", low=0.0, high=1.0)
        check_sizes(self)
        check_real(self, "p_buy", low=0.0, high=1.0)
        check_real(self, "momentum", low=-1.0, high=1.0)
        check_real(self, "informed", low=0.0, high=1.0)
        check_real(self, "info_jump", low=0.0)
        extremes = (self.p_buy - 0.5 * abs(self.momentum), self.p_buy + 0.5 * abs(self.momentum))
        if extremes[0] < 0.0 or extremes[1] > 1.0:
            fail("momentum", self.momentum, f"such that p_buy ± momentum/2 stays in [0, 1] (p_buy={self.p_buy})")
        probs = self.size_probs or (1.0 / len(self.sizes),) * len(self.sizes)
        cdf = [min(sum(probs[: i + 1]), 1.0) for i in range(len(probs))]
        cdf[-1] = 1.0
        sizes = np.asarray(self.sizes, dtype=np.float64)
        sizes.flags.writeable = False
        object.__setattr__(self, "probs", tuple(float(p) for p in probs))
        object.__setattr__(self, "size_cdf", tuple(cdf))
        object.__setattr__(self, "size_array", sizes)
        consecutive = self.sizes == tuple(range(self.sizes[0], self.sizes[0] + len(self.sizes)))
        object.__setattr__(self, "consecutive_sizes", consecutive)
        object.__setattr__(self, "draws_informed", self.informed > 0.0)

    @property
    def max_size(self) -> int:
        """The largest trader size."""
        return max(self.sizes)

    def buy_probability(self, last_side: Number) -> Number:
        """The probability ``p_buy + (φ/2)·L`` that an uninformed trader buys, given the last trade's side ``L``."""
        if self.momentum == 0.0:
            return self.p_buy
        return self.p_buy + 0.5 * self.momentum * last_side

    def trader(
        self, u_side: Number, u_size: Number, u_informed: Number | None, last_traded: Number, xp: ArrayNamespace
    ) -> tuple[Number, Number, Number]:
        """Turn the step's raw uniforms into its trader ``(side, size, news)`` (see :class:`Trader`).

        ``last_traded`` is the signed size of the last step's trade (its sign is ``L``).

        ``u_side < pi`` brings a trader; an uninformed one buys when ``u_side < pi·buy_probability(L)``. An informed
        one (``u_informed < informed``) buys when ``u_informed < informed/2``: that is the jump's sign ``Z``.
        """
        buy = self.p_buy if self.momentum == 0.0 else self.buy_probability(xp.sign(last_traded))
        side = xp.sign_of(u_side < self.pi * buy)
        size = self.size(u_size, xp)
        news: Number = 0
        if self.draws_informed:
            assert u_informed is not None  # drawn whenever draws_informed
            news = xp.signed_event(u_informed, self.informed)
            side = xp.pick(u_informed < self.informed, news, side)  # an informed trader trades on its news' side
        if self.pi < 1.0:  # no trader: no side, no size, no news (where: rare arrivals keep the branch predictable)
            arrived = u_side < self.pi
            side, size = xp.where(arrived, side, 0), xp.where(arrived, size, 0)
            news = xp.where(arrived, news, 0) if self.draws_informed else news
        return side, size, news

    def size(self, u: Number, xp: ArrayNamespace) -> Number:
        """Inverse-CDF sampling of the size from a uniform ``u`` in ``[0, 1)``."""
        if self.size_probs is None:  # uniform sizes: the index is floor(u·m), cheaper than a search and exact
            if self.consecutive_sizes:  # sizes s0, s0 + 1, …: no table either
                return xp.floor(u * len(self.sizes)) + self.sizes[0]
            index = xp.index(u * len(self.sizes))
        else:
            index = xp.minimum(xp.searchsorted(self.size_cdf, u), len(self.sizes) - 1)
        return xp.take(self.size_array if xp.is_array else self.sizes, index)

    def side_law(self, last_side: int) -> tuple[float, float, float, float]:
        """For the exact DP: ``(w_ask, w_bid, η_ask, η_bid)`` given the last trade's side ``L`` (−1, 0 or +1).

        ``w_s`` is the probability that a trader on side ``s`` arrives (ask: it buys), ``η_s`` the informed share
        of those traders (0 where ``w_s = 0``).
        """
        buy = self.buy_probability(last_side)
        informed_half = self.pi * 0.5 * self.informed
        w_ask = self.pi * (1.0 - self.informed) * buy + informed_half
        w_bid = self.pi * (1.0 - self.informed) * (1.0 - buy) + informed_half
        eta_ask = informed_half / w_ask if w_ask > 0.0 else 0.0
        eta_bid = informed_half / w_bid if w_bid > 0.0 else 0.0
        return float(w_ask), float(w_bid), float(eta_ask), float(eta_bid)
