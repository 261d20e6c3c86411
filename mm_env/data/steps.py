"""From a tape to model steps (``MODEL.md`` §10.1): market orders, the step grid, the mid and each step's trader.

:class:`ModelUnits` holds the mapping (``dt`` seconds per step, ``tick`` quote currency per model price unit,
``lot`` base units per model size unit, and the grid's origin ``t0``). :func:`market_orders` groups a tape's fills
into the model's traders, one aggressive order each; :func:`to_steps` lays them on the step grid and measures, per
step and side, how deep beyond the step-start mid the orders reached and how much they traded. Calibration reads the
result's per-step arrays, and the replay reads each step's orders and their fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mm_env.data.tape import Tape

__all__ = [
    "MAX_STEPS",
    "MarketOrders",
    "ModelUnits",
    "SteppedTape",
    "bin_sizes",
    "default_lot",
    "market_orders",
    "mid_before",
    "to_steps",
]

MAX_STEPS = 10_000_000
"""The most steps of one grid (about 116 days of 1-s steps): about 1 GB of per-step arrays at the most."""
SIDES = (1, -1)
"""The sides in the order of the columns of the per-step arrays: +1 (buys, which hit the ask), then −1."""


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _positive(owner: Any, name: str) -> None:
    value = getattr(owner, name)
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(float(value)) and 0.0 < float(value) <= 1e9):
        raise ValueError(f"{name}={value!r} is invalid: must be a finite number in (0, 1e9]")
    object.__setattr__(owner, name, float(value))


@dataclass(frozen=True)
class ModelUnits:
    """The mapping between a tape's real units and the model's (``MODEL.md`` §10.1).

    Attributes:
        dt: seconds per step (> 0).
        tick: quote currency per model price unit, the exchange's price increment (> 0). A model price is
            ``price/tick``.
        lot: base units per model size unit (> 0).
        t0: the step grid's origin in exchange seconds; ``None`` (the default) takes the first multiple of ``dt``
            strictly after the capture's start (:meth:`~mm_env.data.steps.ModelUnits.origin`).
    """

    dt: float
    tick: float
    lot: float
    t0: float | None = None

    def __post_init__(self) -> None:
        for name in ("dt", "tick", "lot"):
            _positive(self, name)
        if self.t0 is not None:
            value = self.t0
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not (ok and math.isfinite(float(value))):
                raise ValueError(f"t0={value!r} is invalid: must be None or a finite number of seconds")
            object.__setattr__(self, "t0", float(value))

    def origin(self, start: float) -> float:
        """``t0``, or where it is ``None`` the first multiple of ``dt`` strictly after ``start``."""
        if self.t0 is not None:
            return self.t0
        return (math.floor(start / self.dt) + 1) * self.dt


def default_lot(tape: Tape) -> float:
    """The median market-order size on the 1–2–5 grid (``MODEL.md`` §10.1): the grid value nearest it in ratio.

    The Bitstamp sample's median market order is 0.0083 BTC, so its default lot is 0.01. Raises ``ValueError`` on a
    tape without trades.
    """
    orders = market_orders(tape)
    if len(orders) == 0:
        raise ValueError("the tape has no trades: give the lot")
    median = float(np.median(orders.size))
    decade = 10.0 ** math.floor(math.log10(median))
    candidates = [decade * m for m in (0.5, 1.0, 2.0, 5.0, 10.0)]
    best = min(candidates, key=lambda value: abs(math.log(value / median)))
    return float(f"{best:.1g}")


def bin_sizes(size: np.ndarray | float, lot: float) -> np.ndarray:
    """``bin(q) = max(1, ⌊q/lot + ½⌋)`` lots (``MODEL.md`` §10.1): round half up, at least one lot, no cap.

    ``q/lot`` is first rounded to 1e−9 lots, so that decimal sizes land on their halves (``0.015/0.01`` is 1.5 and
    rounds to 2, although it is 1.4999… in floating point).
    """
    ratio = np.round(np.asarray(size, dtype=np.float64) / lot, 9)
    return np.maximum(1, np.floor(ratio + 0.5)).astype(np.int64)


@dataclass(frozen=True)
class MarketOrders:
    """A tape's market orders (``MODEL.md`` §10.1), in time order, with their fills.

    Fills with the same ``taker_id`` (and side) form one market order; fills without an id form one per time and
    side. Order ``i`` has the fills ``fill_price[first_fill_index[i] : first_fill_index[i] + n_fills[i]]`` (and
    ``fill_size``), in time order; the orders' fills lie one after the other, so ``first_fill_index`` is the running
    sum of ``n_fills``.

    Attributes:
        time: the time of each order's first fill, seconds (non-decreasing).
        side: +1 a buy, −1 a sell (int8).
        size: the sum of its fills, base units.
        worst_price: its worst fill price: the highest for a buy, the lowest for a sell.
        first_fill_index: where its fills start in ``fill_price`` and ``fill_size`` (int64).
        n_fills: how many fills it has (int64, ≥ 1).
        fill_price: every fill's price, grouped by order.
        fill_size: every fill's size, base units.
    """

    time: np.ndarray
    side: np.ndarray
    size: np.ndarray
    worst_price: np.ndarray
    first_fill_index: np.ndarray
    n_fills: np.ndarray
    fill_price: np.ndarray
    fill_size: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def fills(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """The prices and sizes of one order's fills."""
        first = int(self.first_fill_index[order])
        last = first + int(self.n_fills[order])
        return self.fill_price[first:last], self.fill_size[first:last]

    def take(self, first: int, last: int) -> MarketOrders:
        """The orders ``first … last − 1`` with their fills (fill indices renumbered from 0)."""
        start = int(self.first_fill_index[first]) if first < last else 0
        stop = int(self.first_fill_index[last - 1] + self.n_fills[last - 1]) if first < last else 0
        return MarketOrders(
            _read_only(self.time[first:last].copy()),
            _read_only(self.side[first:last].copy()),
            _read_only(self.size[first:last].copy()),
            _read_only(self.worst_price[first:last].copy()),
            _read_only(self.first_fill_index[first:last] - start),
            _read_only(self.n_fills[first:last].copy()),
            _read_only(self.fill_price[start:stop].copy()),
            _read_only(self.fill_size[start:stop].copy()),
        )


def market_orders(tape: Tape) -> MarketOrders:
    """Group a tape's fills into market orders (``MODEL.md`` §10.1).

    Fills with the same ``taker_id`` and side form one order; fills whose ``taker_id`` is −1 form one order per
    (time, side). The orders are sorted by the time of their first fill (ties in the order of the tape).
    """
    trades = tape.trades
    n = len(trades)
    if n == 0:
        empty_float = _read_only(np.zeros(0))
        empty_int = _read_only(np.zeros(0, np.int64))
        return MarketOrders(
            empty_float, _read_only(np.zeros(0, np.int8)), empty_float, empty_float, empty_int, empty_int,
            empty_float, empty_float,
        )  # fmt: skip
    # One key per fill: (id, side) with an id, (time, side) without; the order of first appearance numbers them.
    keys: dict[tuple[Any, ...], int] = {}
    group = np.empty(n, np.int64)
    times, sides, ids = trades.time.tolist(), trades.side.tolist(), trades.taker_id.tolist()
    for row in range(n):
        key = ("id", ids[row], sides[row]) if ids[row] >= 0 else ("time", times[row], sides[row])
        group[row] = keys.setdefault(key, len(keys))
    # Fills sorted by their order (numbered by first fill, so by time), then in tape order within an order.
    fill_order = np.argsort(group, kind="stable")
    grouped = group[fill_order]
    n_fills = np.bincount(grouped, minlength=len(keys)).astype(np.int64)
    first = np.concatenate(([0], np.cumsum(n_fills)[:-1])).astype(np.int64)
    fill_price = trades.price[fill_order]
    fill_size = trades.size[fill_order]
    side = trades.side[fill_order][first]
    size = np.add.reduceat(fill_size, first)
    worst = np.where(side > 0, np.maximum.reduceat(fill_price, first), np.minimum.reduceat(fill_price, first))
    return MarketOrders(
        _read_only(trades.time[fill_order][first].copy()),
        _read_only(side.astype(np.int8)),
        _read_only(size),
        _read_only(worst),
        _read_only(first),
        _read_only(n_fills),
        _read_only(fill_price),
        _read_only(fill_size),
    )


def mid_before(tape: Tape, times: np.ndarray, tick: float) -> np.ndarray:
    """The mid ``(bid + ask)/(2·tick)`` of the book after every quote row strictly before each of ``times``.

    Rows with an empty side or a crossed book give no mid: the last valid one carries forward. ``NaN`` where no valid
    row precedes a time.
    """
    quotes = tape.quotes
    valid = quotes.valid
    valid_time = quotes.time[valid]
    valid_mid = (quotes.bid[valid] + quotes.ask[valid]) / (2.0 * tick)
    if len(valid_time) == 0:
        return np.full(np.shape(times), np.nan)
    index = np.searchsorted(valid_time, np.asarray(times, dtype=np.float64), side="left") - 1
    return np.where(index >= 0, valid_mid[np.maximum(index, 0)], np.nan)


def _step_of(times: np.ndarray, t0: float, dt: float) -> np.ndarray:
    """``⌊(time − t0)/dt⌋``, corrected so that ``t0 + n·dt ≤ time < t0 + (n + 1)·dt`` holds as computed."""
    step = np.floor((times - t0) / dt).astype(np.int64)
    step = np.where(t0 + (step + 1) * dt <= times, step + 1, step)
    return np.where(t0 + step * dt > times, step - 1, step)


@dataclass(frozen=True)
class SteppedTape:
    """A tape on the model's step grid (``MODEL.md`` §10.1): what calibration and replay read.

    Step ``n`` covers ``[t_n, t_n + dt)`` with ``t_n = t0 + n·dt``. Column 0 of the ``(N, 2)`` arrays is side +1
    (buys, which would fill the market maker's ask), column 1 side −1 (sells, its bid).

    Attributes:
        units: the mapping, with its origin ``t0`` resolved.
        N: the number of steps, ``⌊(end − t0)/dt⌋``.
        mid: ``P_0 … P_N`` (``N + 1`` model prices): the mid of the book strictly before ``t_n``.
        depth: ``D_{n,s}``, how far beyond the step-start mid ``P_n`` (ticks) the step's deepest side-``s`` order
            reached, ``s·(worst_price/tick − P_n)``; ``−inf`` where the step has no side-``s`` order.
        volume: ``V_{n,s}``, the total size of the step's side-``s`` orders, base units.
        side: the step's trader side ``S_n`` (int8): the side with the larger volume (on a tie, the side of the
            step's first order), 0 without a trade.
        size: ``Q_n = bin(V_{n,S_n})`` lots (int64), 0 without a trade.
        last_side: ``L_n = S_{n−1}`` (``L_0 = 0``), the tape's last-trade side (int8).
        orders_in_step: ``N + 1`` offsets into ``orders``: step ``n`` holds ``orders[orders_in_step[n] :
            orders_in_step[n + 1]]``.
        orders: the market orders that fall in a step (those before ``t0`` or from ``t_N`` on are left out).
        order_mid: the mid (ticks) of the book strictly before each order's time, ``NaN`` where none.
    """

    units: ModelUnits
    N: int
    mid: np.ndarray
    depth: np.ndarray
    volume: np.ndarray
    side: np.ndarray
    size: np.ndarray
    last_side: np.ndarray
    orders_in_step: np.ndarray
    orders: MarketOrders
    order_mid: np.ndarray

    @property
    def t0(self) -> float:
        """The grid's origin, exchange seconds."""
        assert self.units.t0 is not None  # resolved by to_steps
        return self.units.t0

    @property
    def step_times(self) -> np.ndarray:
        """``t_0 … t_N``, exchange seconds."""
        return self.t0 + np.arange(self.N + 1) * self.units.dt

    @property
    def has_trade(self) -> np.ndarray:
        """Whether each step holds a market order (``h_n``)."""
        return np.asarray(self.side != 0)

    @property
    def orders_per_step(self) -> np.ndarray:
        """How many market orders each step holds."""
        return np.diff(self.orders_in_step)

    @property
    def order_step(self) -> np.ndarray:
        """The step of each market order."""
        return np.repeat(np.arange(self.N), self.orders_per_step)

    def window(self, start: int, stop: int) -> SteppedTape:
        """Steps ``start … stop − 1`` as a tape of their own (its origin ``t_start``; ``L`` kept from the tape).

        For splits such as calibrating on the first half and testing on the rest (``MODEL.md`` §10.6).
        """
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < self.N:
            raise ValueError(f"start={start!r} is invalid: must be an integer in [0, {self.N - 1}]")
        if isinstance(stop, bool) or not isinstance(stop, (int, np.integer)) or not start < stop <= self.N:
            raise ValueError(f"stop={stop!r} is invalid: must be an integer in [{start + 1}, {self.N}]")
        first, last = int(self.orders_in_step[start]), int(self.orders_in_step[stop])
        return SteppedTape(
            units=replace(self.units, t0=self.t0 + start * self.units.dt),
            N=stop - start,
            mid=_read_only(self.mid[start : stop + 1].copy()),
            depth=_read_only(self.depth[start:stop].copy()),
            volume=_read_only(self.volume[start:stop].copy()),
            side=_read_only(self.side[start:stop].copy()),
            size=_read_only(self.size[start:stop].copy()),
            last_side=_read_only(self.last_side[start:stop].copy()),
            orders_in_step=_read_only(self.orders_in_step[start : stop + 1] - first),
            orders=self.orders.take(first, last),
            order_mid=_read_only(self.order_mid[first:last].copy()),
        )

    def step_orders(self, n: int) -> MarketOrders:
        """Step ``n``'s market orders with their fills."""
        return self.orders.take(int(self.orders_in_step[n]), int(self.orders_in_step[n + 1]))


def to_steps(tape: Tape, units: ModelUnits) -> SteppedTape:
    """Lay a tape on the model's step grid (``MODEL.md`` §10.1).

    Raises ``ValueError`` when the grid holds no step (``t0`` too late for the capture's end), when ``t0`` is not
    after the capture's start, or when no valid quote precedes ``t0`` (no mid to start from).
    """
    if not isinstance(units, ModelUnits):
        raise ValueError(f"units={units!r} is invalid: must be a ModelUnits")
    t0 = units.origin(tape.start)
    if not t0 > tape.start:
        raise ValueError(f"t0={t0!r} is invalid: must be after the capture's start ({tape.start!r})")
    dt, tick = units.dt, units.tick
    N = min(math.floor((tape.end - t0) / dt), MAX_STEPS + 1)
    while N > 0 and t0 + N * dt > tape.end:  # as computed in floating point, the last step ends by the end
        N -= 1
    if N > MAX_STEPS:
        raise ValueError(f"dt={dt!r} is invalid: the grid would hold more than {MAX_STEPS:,} steps; use a larger dt")
    if N < 1:
        raise ValueError(
            f"t0={t0!r} is invalid: the grid must hold at least one step of dt={dt!r} s before the end ({tape.end!r})"
        )
    resolved = replace(units, t0=t0)
    times = t0 + np.arange(N + 1) * dt
    mid = mid_before(tape, times, tick)
    if np.isnan(mid[0]):
        raise ValueError(f"t0={t0!r} is invalid: no valid quote (both sides, not crossed) comes before it")
    # The last valid mid carries forward, so only the start can lack one; it cannot here.
    every = market_orders(tape)
    step = _step_of(every.time, t0, dt)
    inside = np.flatnonzero((step >= 0) & (step < N))
    first, last = (int(inside[0]), int(inside[-1]) + 1) if len(inside) else (0, 0)
    orders = every.take(first, last)
    order_step = step[first:last]
    orders_in_step = np.searchsorted(order_step, np.arange(N + 1), side="left").astype(np.int64)

    depth = np.full((N, 2), -np.inf)
    volume = np.zeros((N, 2))
    reach = orders.side * (orders.worst_price / tick - mid[order_step]) + 0.0  # + 0.0: no −0
    for column, s in enumerate(SIDES):
        on_side = orders.side == s
        np.maximum.at(depth[:, column], order_step[on_side], reach[on_side])
        np.add.at(volume[:, column], order_step[on_side], orders.size[on_side])
    has_trade = orders_in_step[1:] > orders_in_step[:-1]
    first_side = np.zeros(N, np.int8)
    first_side[has_trade] = orders.side[orders_in_step[:-1][has_trade]]
    side = np.where(volume[:, 0] > volume[:, 1], 1, np.where(volume[:, 0] < volume[:, 1], -1, first_side))
    side = np.where(has_trade, side, 0).astype(np.int8)
    traded_volume = np.where(side > 0, volume[:, 0], volume[:, 1])
    size = np.where(has_trade, bin_sizes(np.where(has_trade, traded_volume, 1.0), units.lot), 0).astype(np.int64)
    last_side = np.concatenate(([0], side[:-1])).astype(np.int8)
    return SteppedTape(
        units=resolved,
        N=N,
        mid=_read_only(mid),
        depth=_read_only(depth),
        volume=_read_only(volume),
        side=_read_only(side),
        size=_read_only(size),
        last_side=_read_only(last_side),
        orders_in_step=_read_only(orders_in_step),
        orders=orders,
        order_mid=_read_only(mid_before(tape, orders.time, tick)),
    )
