"""The canonical tape of a recorded market (``MODEL.md`` §10.1): its trades, its best quotes, its start and end.

Every reader (:mod:`mm_env.data.readers`) turns its source into a :class:`Tape`; everything downstream (the step
mapping of :mod:`mm_env.data.steps`, calibration and replay) reads only this. Times are exchange seconds (never the
receiver's clock), prices are quote currency per base unit and sizes are base units. The arrays are read-only NumPy
arrays, validated when the tape is built: every problem raises ``ValueError`` with one line naming the field and the
first offending row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Quotes", "Tape", "Trades"]


def _frozen_array(owner: Any, name: str, dtype: type) -> np.ndarray:
    """The field ``name`` of ``owner`` as a one-dimensional read-only array of ``dtype`` (set back on ``owner``).

    Integer fields take integers, or floats that hold whole numbers in the integer type's range.
    """
    value = np.asarray(getattr(owner, name))
    if value.ndim != 1:
        raise ValueError(f"{name} is invalid: must be a one-dimensional array, not of shape {value.shape}")
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_) or np.iscomplexobj(value):
        raise ValueError(f"{name} is invalid: must be an array of numbers, not of {value.dtype}")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        numbers = value.astype(np.float64)
        bad = ~((numbers == np.floor(numbers)) & (numbers >= info.min) & (numbers <= info.max))
        if bad.any():
            row = _first(bad)
            raise ValueError(f"{name}[{row}]={value[row].item()!r} is invalid: must be an integer")
    array: np.ndarray = np.array(value, dtype=dtype)  # a copy: the caller's array may change later
    array.flags.writeable = False
    object.__setattr__(owner, name, array)
    return array


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_lengths(owner: Any, names: tuple[str, ...]) -> int:
    lengths = {name: len(getattr(owner, name)) for name in names}
    length = lengths[names[0]]
    for name, other in lengths.items():
        if other != length:
            raise ValueError(f"{name} has {other} rows: must have as many as {names[0]} ({length})")
    return length


def _check_times(time: np.ndarray, name: str = "time") -> None:
    if not np.all(np.isfinite(time)):
        row = _first(~np.isfinite(time))
        raise ValueError(f"{name}[{row}]={time[row].item()!r} is invalid: must be a finite number of seconds")
    if len(time) > 1 and np.any(np.diff(time) < 0.0):
        row = _first(np.diff(time) < 0.0) + 1
        raise ValueError(
            f"{name}[{row}]={time[row].item()!r} is invalid: times must be non-decreasing "
            f"(the row before is {time[row - 1].item()!r})"
        )


@dataclass(frozen=True)
class Trades:
    """The trades (fills) of a tape, in time order: equal-length read-only arrays.

    Attributes:
        time: exchange time of each fill in seconds (float64, finite, non-decreasing).
        price: the fill's price in quote currency per base unit (float64, finite, > 0).
        size: the fill's size in base units (float64, finite, > 0).
        side: +1 where the aggressor bought (it lifted the ask, so it would fill a market maker's ask), −1 where it
            sold (int8).
        taker_id: the aggressive order's id (int64); fills of one id form one market order. −1 where unknown.
    """

    time: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    taker_id: np.ndarray

    def __post_init__(self) -> None:
        time = _frozen_array(self, "time", np.float64)
        price = _frozen_array(self, "price", np.float64)
        size = _frozen_array(self, "size", np.float64)
        side = _frozen_array(self, "side", np.int8)
        taker = _frozen_array(self, "taker_id", np.int64)
        _check_lengths(self, ("time", "price", "size", "side", "taker_id"))
        _check_times(time)
        bad = ~(np.isfinite(price) & (price > 0.0))
        if bad.any():
            row = _first(bad)
            raise ValueError(f"price[{row}]={price[row].item()!r} is invalid: must be a finite number > 0")
        bad = ~(np.isfinite(size) & (size > 0.0))
        if bad.any():
            row = _first(bad)
            raise ValueError(f"size[{row}]={size[row].item()!r} is invalid: must be a finite number > 0")
        bad = (side != 1) & (side != -1)
        if bad.any():
            row = _first(bad)
            raise ValueError(f"side[{row}]={side[row].item()} is invalid: must be +1 (buyer-initiated) or -1")
        bad = taker < -1
        if bad.any():
            row = _first(bad)
            raise ValueError(f"taker_id[{row}]={taker[row].item()} is invalid: must be >= 0, or -1 where unknown")

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls) -> Trades:
        """A table without trades."""
        return cls(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Quotes:
    """The best quotes after each change of the book, in time order: equal-length read-only float64 arrays.

    A row holds the book's best bid and ask from its time on. ``NaN`` marks an empty side; a row with an empty side
    or a crossed book (``bid ≥ ask``) gives no mid, and the last valid mid carries forward (``MODEL.md`` §10.1).

    Attributes:
        time: exchange time in seconds (finite, non-decreasing).
        bid: best bid in quote currency per base unit (finite and > 0, or ``NaN``).
        ask: best ask (finite and > 0, or ``NaN``).
    """

    time: np.ndarray
    bid: np.ndarray
    ask: np.ndarray

    def __post_init__(self) -> None:
        time = _frozen_array(self, "time", np.float64)
        _check_lengths(self, ("time", "bid", "ask"))
        _check_times(time)
        for name in ("bid", "ask"):
            price = _frozen_array(self, name, np.float64)
            bad = ~np.isnan(price) & ~(np.isfinite(price) & (price > 0.0))
            if bad.any():
                row = _first(bad)
                raise ValueError(f"{name}[{row}]={price[row].item()!r} is invalid: must be a finite number > 0, or NaN")

    def __len__(self) -> int:
        return len(self.time)

    @property
    def valid(self) -> np.ndarray:
        """Where the row gives a mid: both sides present and the book not crossed (``bid < ask``)."""
        with np.errstate(invalid="ignore"):
            return np.asarray(self.bid < self.ask)


@dataclass(frozen=True)
class Tape:
    """A recorded market in canonical form (``MODEL.md`` §10.1).

    Attributes:
        trades: the fills (:class:`Trades`).
        quotes: the best quotes (:class:`Quotes`).
        start: when the capture's book is complete (for example its snapshot), exchange seconds.
        end: the capture's end, exchange seconds (``start ≤ end``).
        source: what the tape was read from (file and format), for reports.
    """

    trades: Trades
    quotes: Quotes
    start: float
    end: float
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.trades, Trades):
            raise ValueError(f"trades={type(self.trades).__name__} is invalid: must be a Trades")
        if not isinstance(self.quotes, Quotes):
            raise ValueError(f"quotes={type(self.quotes).__name__} is invalid: must be a Quotes")
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name}={value!r} is invalid: must be a finite number of seconds")
            if not math.isfinite(float(value)):
                raise ValueError(f"{name}={value!r} is invalid: must be a finite number of seconds")
            object.__setattr__(self, name, float(value))
        if self.start > self.end:
            raise ValueError(f"end={self.end!r} is invalid: must be at least start={self.start!r}")
        if not isinstance(self.source, str):
            raise ValueError(f"source={self.source!r} is invalid: must be a string")

    @property
    def duration(self) -> float:
        """``end − start`` in seconds."""
        return self.end - self.start
