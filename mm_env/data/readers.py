"""Readers of recorded markets into the canonical :class:`~mm_env.data.tape.Tape` (``MODEL.md`` §10.1–§10.2).

Three sources:

* **Bitstamp-style order events and trades** (:func:`read_bitstamp`), as the ob-analytics captures store them: an
  ``orders.csv`` (or ``orders.csv.gz``) of order events with the columns ``id, exchange_timestamp, price, volume,
  action, direction`` (``timestamp``, the receiver's clock, is not read) and a ``trades.csv`` with ``exchange_timestamp,
  price, amount, buy_order_id, sell_order_id, side``. Times are milliseconds. The best quotes come from the book
  rebuilt from the events (:func:`rebuild_book`, ``MODEL.md`` §10.2).
* **LOBSTER** (:func:`read_lobster`): a message file (``time, type, order_id, size, price, direction``; no header)
  and its orderbook file (``ask_p1, ask_s1, bid_p1, bid_s1, …``), prices ×10⁴. Trades are the executions (types 4
  and 5) with ``side = −direction``.
* **A plain CSV of trades with best quotes** (:func:`read_trades_csv`), described in its docstring.

Each reader refuses a malformed file with a :class:`TapeError` (a ``ValueError``) of one line naming the file, the
line and the column; a file larger than ``ReadLimits.bytes`` (uncompressed) or with more than
``ReadLimits.rows`` rows is refused before it is parsed.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mm_env.data.tape import Quotes, Tape, Trades

__all__ = [
    "CREATED",
    "CHANGED",
    "DELETED",
    "FORMATS",
    "OrderEvents",
    "ReadLimits",
    "RebuiltBook",
    "TapeError",
    "read_bitstamp",
    "read_bitstamp_events",
    "read_lobster",
    "read_tape",
    "read_trades_csv",
    "rebuild_book",
]

CREATED = 0
"""The action of an event that creates an order."""
CHANGED = 1
"""The action of an event that sets an order's remaining volume."""
DELETED = 2
"""The action of an event that removes an order."""
_ACTIONS = {"created": CREATED, "changed": CHANGED, "deleted": DELETED}
_DIRECTIONS = {"bid": 1, "ask": -1}
LOBSTER_EMPTY = 9_999_999_999
"""The price LOBSTER writes for an empty level (``−`` this on the bid side)."""
FORMATS = ("bitstamp", "lobster", "csv")
"""The formats :func:`read_tape` reads."""


class TapeError(ValueError):
    """A file that cannot be read into a tape: one line naming the file, the line and the column."""


@dataclass(frozen=True)
class ReadLimits:
    """How much of a file a reader takes: checked before any row is parsed.

    Attributes:
        bytes: the largest file read, uncompressed (default 1 GiB).
        rows: the most rows of one file (default 20 million; the 30-minute Bitstamp sample has 314,057 events).
    """

    bytes: int = 2**30
    rows: int = 20_000_000

    def __post_init__(self) -> None:
        for name in ("bytes", "rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**40:
                raise ValueError(f"{name}={value!r} is invalid: must be an integer in [1, 2**40]")


def _fail(path: Path, line: int | None, column: str | None, problem: str) -> TapeError:
    where = "".join((f", line {line}" if line is not None else "", f", column {column!r}" if column else ""))
    return TapeError(f"{path}{where}: {problem}")


def _read_text(path: Path, limits: ReadLimits) -> str:
    """The file's text (gunzipped where it ends in ``.gz``), refused beyond ``limits.bytes``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                data = stream.read(limits.bytes + 1)
        else:
            if path.stat().st_size > limits.bytes:
                raise _fail(path, None, None, f"larger than the {limits.bytes:,} bytes allowed")
            data = path.read_bytes()
    except (OSError, EOFError) as error:
        raise _fail(path, None, None, f"cannot be read ({' '.join(str(error).split())})") from None
    if len(data) > limits.bytes:
        raise _fail(path, None, None, f"larger than the {limits.bytes:,} bytes allowed (uncompressed)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _fail(path, line, None, "is not UTF-8 text") from None


def _rows(path: Path, limits: ReadLimits, header: bool) -> tuple[list[str], list[list[str]]]:
    """The header (empty without one) and the rows of a CSV file, within the limits."""
    lines = _read_text(path, limits).splitlines()
    if len(lines) - header > limits.rows:
        raise _fail(path, None, None, f"more than the {limits.rows:,} rows allowed")
    try:
        rows = list(csv.reader(lines))
    except csv.Error as error:
        raise _fail(path, None, None, f"is not CSV ({error})") from None
    if header:
        if not rows:
            raise _fail(path, 1, None, "is empty: a header row is needed")
        return [name.strip() for name in rows[0]], rows[1:]
    return [], rows


def _columns(path: Path, header: list[str], required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, int]:
    """Where each named column is in the header; a missing required column is an error naming it."""
    where: dict[str, int] = {}
    for name in (*required, *optional):
        if name in header:
            where[name] = header.index(name)
        elif name in required:
            raise _fail(path, 1, name, f"missing from the header {header}")
    return where


@dataclass(frozen=True)
class _Kind:
    """How a column's texts become values: all at once (fast), or one by one (to name the first invalid one)."""

    one: Callable[[str], Any]
    """One value; ``ValueError`` with the reason where it is invalid."""
    many: Callable[[list[str]], Any] | None = None
    """All the values at once (an array); ``ValueError`` where any is invalid. ``None``: ``one`` on each."""


def _parse(
    path: Path,
    rows: list[list[str]],
    columns: dict[str, int],
    kinds: dict[str, _Kind],
    first_line: int,
    width: int,
) -> dict[str, Any]:
    """Each named column converted; the first invalid value names its line and column."""
    if rows and min(map(len, rows)) < width:
        number = next(number for number, row in enumerate(rows) if len(row) < width)
        raise _fail(path, first_line + number, None, f"has {len(rows[number])} fields: {width} are needed")
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        index = columns[name]
        texts = [row[index] for row in rows]
        try:
            out[name] = kind.many(texts) if kind.many is not None else list(map(kind.one, texts))
        except (ValueError, OverflowError, KeyError):
            for number, text in enumerate(texts):  # find the first invalid value, for its line and reason
                try:
                    kind.one(text)
                except (ValueError, OverflowError) as error:
                    problem = f"{text.strip()[:40]!r} is invalid: {error}"
                    raise _fail(path, first_line + number, name, problem) from None
            raise
    return out


def _real_one(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _real_many(texts: list[str]) -> np.ndarray:
    values = np.array(texts, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("not finite")
    return values


def _positive_one(text: str) -> float:
    value = _real_one(text)
    if value <= 0.0:
        raise ValueError("must be a number > 0")
    return value


def _positive_many(texts: list[str]) -> np.ndarray:
    values = _real_many(texts)
    if not (values > 0.0).all():
        raise ValueError("not positive")
    return values


def _whole_one(text: str) -> int:
    value = int(text.strip())
    if not 0 <= value < 2**63:
        raise ValueError("must be an integer in [0, 2**63)")
    return value


def _whole_many(texts: list[str]) -> np.ndarray:
    values = np.array(texts, dtype=np.int64)
    if not (values >= 0).all():
        raise ValueError("negative")
    return values


REAL = _Kind(_real_one, _real_many)
POSITIVE = _Kind(_positive_one, _positive_many)
WHOLE = _Kind(_whole_one, _whole_many)


def _choice(table: dict[str, int]) -> _Kind:
    def one(text: str) -> int:
        key = text.strip().lower()
        if key not in table:
            raise ValueError(f"must be one of {sorted(table)}")
        return table[key]

    def many(texts: list[str]) -> np.ndarray:
        return np.array([table[text] for text in texts], dtype=np.int8)  # KeyError: one by one

    return _Kind(one, many)


def _optional(kind: _Kind) -> _Kind:
    def one(text: str) -> Any:
        return None if not text.strip() else kind.one(text)

    return _Kind(one)


def _check_sorted(path: Path, times: list[float], column: str, first_line: int) -> None:
    array = np.asarray(times)
    if len(array) > 1 and np.any(np.diff(array) < 0.0):
        row = int(np.flatnonzero(np.diff(array) < 0.0)[0]) + 1
        raise _fail(path, first_line + row, column, "goes back in time: the rows must be in non-decreasing time")


# --------------------------------------------------------------------------------------- Bitstamp-style order events


@dataclass(frozen=True)
class OrderEvents:
    """Order events in file order (``MODEL.md`` §10.2): equal-length arrays.

    Attributes:
        id: the order's id (int64).
        time: exchange time in seconds (non-decreasing).
        price: the price field (read at creation only: a ``changed`` event's price is a fill's, not the order's).
        volume: the order's (remaining) volume after the event, base units.
        action: :data:`CREATED`, :data:`CHANGED` or :data:`DELETED` (int8).
        direction: +1 a bid, −1 an ask (int8).
    """

    id: np.ndarray
    time: np.ndarray
    price: np.ndarray
    volume: np.ndarray
    action: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True)
class RebuiltBook:
    """The best quotes rebuilt from order events, and what the rebuild met.

    Attributes:
        quotes: one row per exchange timestamp, read after its last event (``NaN`` for an empty side).
        reads: the number of reads (distinct timestamps).
        stale_removed: orders removed by the uncross rule.
        unknown_ids: ``changed`` and ``deleted`` events on ids never created (or already gone), ignored.
        events: the number of events applied.
    """

    quotes: Quotes
    reads: int
    stale_removed: int
    unknown_ids: int
    events: int

    def summary(self) -> str:
        """One line: the counts."""
        return (
            f"{self.events:,} order events, {self.reads:,} book reads, {self.stale_removed} stale orders removed "
            f"by the uncross rule, {self.unknown_ids} events on unknown ids"
        )


class _Side:
    """One side of the book: levels (price → the ids resting there, oldest first) and a heap of their prices."""

    def __init__(self, direction: int) -> None:
        self.sign = -1.0 if direction > 0 else 1.0  # a heap of −price for bids: the best on top
        self.levels: dict[float, dict[int, None]] = {}
        self.heap: list[float] = []

    def add(self, price: float, order: int) -> None:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = {}
            heapq.heappush(self.heap, self.sign * price)
        level[order] = None

    def remove(self, price: float, order: int) -> None:
        level = self.levels[price]
        del level[order]
        if not level:
            del self.levels[price]

    def best(self) -> float | None:
        """The best price with an order, or ``None`` (levels left empty are dropped from the heap here)."""
        heap = self.heap
        while heap and self.sign * heap[0] not in self.levels:
            heapq.heappop(heap)
        return self.sign * heap[0] if heap else None


def rebuild_book(events: OrderEvents) -> RebuiltBook:
    """Rebuild the best quotes from order events by ``MODEL.md`` §10.2.

    Events apply in order; the book is read only after the last event of each timestamp. ``created`` (volume > 0)
    rests the order at its price, fixed from then on; ``changed`` sets its remaining volume (≤ 0 removes it) and its
    price field is ignored; ``deleted`` removes it. Events on unknown ids are ignored and counted. Before each read a
    crossed book is uncrossed: of the two crossed levels, the one whose newest order is older holds stale orders,
    and its orders older than the other level's newest are removed, until the book is uncrossed. "Older" is the order
    of creation in the file, which is the exchange's time order with ties in file order.
    """
    ids, times = events.id.tolist(), events.time.tolist()
    prices, volumes = events.price.tolist(), events.volume.tolist()
    actions, directions = events.action.tolist(), events.direction.tolist()
    sides = {1: _Side(1), -1: _Side(-1)}
    resting: dict[int, tuple[float, int, int]] = {}  # id → (price, direction, creation sequence)
    created_at: dict[int, int] = {}  # id → creation sequence, to compare ages
    read_time: list[float] = []
    read_bid: list[float] = []
    read_ask: list[float] = []
    unknown = stale = 0
    n = len(ids)
    for row in range(n):
        order, action = ids[row], actions[row]
        if action == CREATED:
            if order in resting:  # created again: the new one replaces it
                price, direction, _ = resting.pop(order)
                sides[direction].remove(price, order)
            if volumes[row] > 0.0:
                resting[order] = (prices[row], directions[row], row)
                created_at[order] = row
                sides[directions[row]].add(prices[row], order)
        elif order not in resting:
            unknown += 1
        elif action == DELETED or volumes[row] <= 0.0:
            price, direction, _ = resting.pop(order)
            sides[direction].remove(price, order)
        if row + 1 < n and times[row + 1] == times[row]:
            continue
        # The last event of its timestamp: uncross, then read.
        bid, ask = sides[1].best(), sides[-1].best()
        while bid is not None and ask is not None and bid >= ask:
            bid_level, ask_level = sides[1].levels[bid], sides[-1].levels[ask]
            bid_newest, ask_newest = created_at[next(reversed(bid_level))], created_at[next(reversed(ask_level))]
            if bid_newest < ask_newest:
                stale_side, stale_price, newest = 1, bid, ask_newest
            else:
                stale_side, stale_price, newest = -1, ask, bid_newest
            level = sides[stale_side].levels[stale_price]
            for old in [old for old in level if created_at[old] < newest]:
                sides[stale_side].remove(stale_price, old)
                del resting[old]
                stale += 1
            bid, ask = sides[1].best(), sides[-1].best()
        read_time.append(times[row])
        read_bid.append(math.nan if bid is None or bid <= 0.0 else bid)  # a bid at 0 buys nothing
        read_ask.append(math.nan if ask is None or ask <= 0.0 else ask)
    quotes = Quotes(np.asarray(read_time), np.asarray(read_bid), np.asarray(read_ask))
    return RebuiltBook(quotes, len(read_time), stale, unknown, n)


def read_bitstamp_events(path: str | Path, limits: ReadLimits | None = None) -> OrderEvents:
    """The order events of a Bitstamp-style ``orders.csv`` (or ``.csv.gz``), in file order.

    Columns (found by name in the header; others are ignored): ``id`` (integer), ``exchange_timestamp``
    (milliseconds, non-decreasing), ``price``, ``volume`` (base units), ``action`` (``created``, ``changed`` or
    ``deleted``) and ``direction`` (``bid`` or ``ask``).
    """
    path, limits = Path(path), limits or ReadLimits()
    header, rows = _rows(path, limits, header=True)
    names = ("id", "exchange_timestamp", "price", "volume", "action", "direction")
    columns = _columns(path, header, names)
    kinds: dict[str, _Kind] = {
        "id": WHOLE,
        "exchange_timestamp": REAL,
        "price": REAL,
        "volume": REAL,
        "action": _choice(_ACTIONS),
        "direction": _choice(_DIRECTIONS),
    }
    values = _parse(path, rows, columns, kinds, 2, max(columns.values()) + 1)
    _check_sorted(path, values["exchange_timestamp"], "exchange_timestamp", 2)
    bad = (values["action"] == CREATED) & (values["price"] < 0.0)
    if bad.any():
        line, price = int(np.flatnonzero(bad)[0]) + 2, float(values["price"][bad][0])
        raise _fail(path, line, "price", f"{price!r} is invalid: an order must be created at a price >= 0")
    return OrderEvents(
        np.asarray(values["id"], dtype=np.int64),
        np.asarray(values["exchange_timestamp"], dtype=np.float64) / 1000.0,
        np.asarray(values["price"], dtype=np.float64),
        np.asarray(values["volume"], dtype=np.float64),
        np.asarray(values["action"], dtype=np.int8),
        np.asarray(values["direction"], dtype=np.int8),
    )


def _read_bitstamp_trades(path: Path, limits: ReadLimits) -> Trades:
    header, rows = _rows(path, limits, header=True)
    names = ("exchange_timestamp", "price", "amount", "buy_order_id", "sell_order_id", "side")
    columns = _columns(path, header, names)
    kinds: dict[str, _Kind] = {
        "exchange_timestamp": REAL,
        "price": POSITIVE,
        "amount": POSITIVE,
        "buy_order_id": WHOLE,
        "sell_order_id": WHOLE,
        "side": _choice({"buy": 1, "sell": -1}),
    }
    values = _parse(path, rows, columns, kinds, 2, max(columns.values()) + 1)
    _check_sorted(path, values["exchange_timestamp"], "exchange_timestamp", 2)
    side = np.asarray(values["side"], dtype=np.int8)
    # The taker is the aggressive order: the buy order of a buy, the sell order of a sell.
    taker = np.where(side > 0, np.asarray(values["buy_order_id"]), np.asarray(values["sell_order_id"]))
    return Trades(
        np.asarray(values["exchange_timestamp"], dtype=np.float64) / 1000.0,
        np.asarray(values["price"], dtype=np.float64),
        np.asarray(values["amount"], dtype=np.float64),
        side,
        taker.astype(np.int64),
    )


def _bitstamp_paths(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        orders = path / "orders.csv.gz"
        return (orders if orders.exists() else path / "orders.csv"), path / "trades.csv"
    return path, path.parent / "trades.csv"


def read_bitstamp(
    orders: str | Path, trades: str | Path | None = None, limits: ReadLimits | None = None
) -> tuple[Tape, RebuiltBook]:
    """A Bitstamp-style capture as a tape, with its rebuilt book (``MODEL.md`` §10.2).

    ``orders`` is the order-event file (:func:`read_bitstamp_events`) or the folder holding ``orders.csv.gz`` (or
    ``orders.csv``) and ``trades.csv``; ``trades`` defaults to the ``trades.csv`` beside the events. The trades file
    has the columns ``exchange_timestamp`` (ms), ``price``, ``amount`` (base units), ``buy_order_id``,
    ``sell_order_id`` and ``side`` (``buy`` or ``sell``, the aggressor's side); the taker id is the buy order's id of
    a buy and the sell order's of a sell. The capture starts at its first event (the snapshot) and ends at its last.
    """
    orders_path, trades_path = _bitstamp_paths(Path(orders))
    if trades is not None:
        trades_path = Path(trades)
    limits = limits or ReadLimits()
    events = read_bitstamp_events(orders_path, limits)
    if len(events) == 0:
        raise _fail(orders_path, None, None, "holds no order events")
    book = rebuild_book(events)
    table = _read_bitstamp_trades(trades_path, limits)
    start, end = float(events.time[0]), float(events.time[-1])
    if len(table):
        end = max(end, float(table.time[-1]))
    source = f"bitstamp: {orders_path} and {trades_path} ({book.summary()})"
    return Tape(table, book.quotes, start, end, source), book


# ------------------------------------------------------------------------------------------------------------ LOBSTER


def read_lobster(message: str | Path, orderbook: str | Path | None = None, limits: ReadLimits | None = None) -> Tape:
    """A LOBSTER message file and its orderbook file as a tape.

    The message file's columns (no header) are ``time`` (seconds after midnight), ``type``, ``order_id``, ``size``,
    ``price`` (×10⁴) and ``direction`` (1 a buy limit order, −1 a sell). The orderbook file (default: the message
    file's name with ``message`` replaced by ``orderbook``) has a row per message, the book after it:
    ``ask_p1, ask_s1, bid_p1, bid_s1, …`` (prices ×10⁴, ±9999999999 for an empty level). The quotes are its first
    level; the trades are the executions (types 4 and 5), bought by the aggressor when the resting order was a sell
    (``side = −direction``), without taker ids. The capture runs from the first message to the last.
    """
    message_path, limits = Path(message), limits or ReadLimits()
    if orderbook is None:
        if "message" not in message_path.name:
            raise _fail(message_path, None, None, "name lacks 'message': name the orderbook file too")
        orderbook = message_path.with_name(message_path.name.replace("message", "orderbook"))
    book_path = Path(orderbook)
    _, messages = _rows(message_path, limits, header=False)
    names = ("time", "type", "order_id", "size", "price", "direction")
    kinds: dict[str, _Kind] = {
        "time": REAL,
        "type": WHOLE,
        "size": REAL,
        "price": REAL,
        "direction": _choice({"1": 1, "-1": -1}),
    }
    values = _parse(message_path, messages, {name: i for i, name in enumerate(names)}, kinds, 1, 6)
    if not messages:
        raise _fail(message_path, None, None, "holds no messages")
    _check_sorted(message_path, values["time"], "time", 1)
    _, levels = _rows(book_path, limits, header=False)
    if len(levels) != len(messages):
        raise _fail(book_path, None, None, f"has {len(levels):,} rows: must have one per message ({len(messages):,})")
    book = _parse(book_path, levels, {"ask_p1": 0, "bid_p1": 2}, {"ask_p1": REAL, "bid_p1": REAL}, 1, 4)
    ask = np.asarray(book["ask_p1"], dtype=np.float64)
    bid = np.asarray(book["bid_p1"], dtype=np.float64)
    ask = np.where((ask >= LOBSTER_EMPTY) | (ask <= 0.0), np.nan, ask / 1e4)
    bid = np.where((bid <= -LOBSTER_EMPTY) | (bid <= 0.0), np.nan, bid / 1e4)
    time = np.asarray(values["time"], dtype=np.float64)
    kind = np.asarray(values["type"])
    executed = (kind == 4) | (kind == 5)
    size, price = np.asarray(values["size"]), np.asarray(values["price"]) / 1e4
    for column, array in (("size", size), ("price", price)):
        bad = executed & ~(array > 0.0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _fail(message_path, row + 1, column, f"{messages[row][names.index(column)]!r} is invalid: "
                        "an execution needs a value > 0")  # fmt: skip
    trades = Trades(
        time[executed],
        price[executed],
        size[executed],
        -np.asarray(values["direction"], dtype=np.int8)[executed],
        np.full(int(executed.sum()), -1, np.int64),
    )
    source = f"lobster: {message_path} and {book_path}"
    return Tape(trades, Quotes(time, bid, ask), float(time[0]), float(time[-1]), source)


# ------------------------------------------------------------------------------------------------------- a plain CSV


def read_trades_csv(path: str | Path, limits: ReadLimits | None = None) -> Tape:
    """A plain CSV of trades and best quotes as a tape.

    The header names the columns (any order; others are ignored):

    * ``time``: exchange time in seconds (non-decreasing);
    * ``bid``, ``ask``: the best bid and ask from this row's time on, in quote currency per base unit. Both empty:
      the row changes no quote; one empty: that side of the book is empty;
    * ``price``, ``size``, ``side``: a trade at this time, its price (quote currency per base unit), its size (base
      units) and the aggressor's side (``1``/``buy`` or ``-1``/``sell``). All three empty: the row has no trade;
    * ``taker_id`` (optional): the aggressive order's id (an integer ≥ 0; empty where unknown). Trades of one id form
      one market order; trades without an id form one per time and side.

    The capture runs from the first row's time to the last's.
    """
    path, limits = Path(path), limits or ReadLimits()
    header, rows = _rows(path, limits, header=True)
    columns = _columns(path, header, ("time", "bid", "ask", "price", "size", "side"), ("taker_id",))
    side = _choice({"1": 1, "+1": 1, "buy": 1, "-1": -1, "sell": -1})
    kinds: dict[str, _Kind] = {
        "time": REAL,
        "bid": _optional(POSITIVE),
        "ask": _optional(POSITIVE),
        "price": _optional(POSITIVE),
        "size": _optional(POSITIVE),
        "side": _optional(side),
    }
    if "taker_id" in columns:
        kinds["taker_id"] = _optional(WHOLE)
    values = _parse(path, rows, columns, kinds, 2, max(columns.values()) + 1)
    if not rows:
        raise _fail(path, None, None, "holds no rows")
    _check_sorted(path, values["time"], "time", 2)
    trade_rows, quote_rows = [], []
    for row in range(len(rows)):
        given = [values[name][row] is not None for name in ("price", "size", "side")]
        if any(given) and not all(given):
            missing = ("price", "size", "side")[given.index(False)]
            raise _fail(path, row + 2, missing, "is empty: a trade needs price, size and side")
        if all(given):
            trade_rows.append(row)
        if values["bid"][row] is not None or values["ask"][row] is not None:
            quote_rows.append(row)
    ids = values.get("taker_id", [None] * len(rows))
    time = np.asarray(values["time"], dtype=np.float64)

    def column(name: str, kept: list[int], empty: float = math.nan) -> np.ndarray:
        return np.asarray([empty if values[name][i] is None else values[name][i] for i in kept], dtype=np.float64)

    trades = Trades(
        time[trade_rows],
        column("price", trade_rows),
        column("size", trade_rows),
        np.asarray([values["side"][i] for i in trade_rows], dtype=np.int8),
        np.asarray([-1 if ids[i] is None else ids[i] for i in trade_rows], dtype=np.int64),
    )
    quotes = Quotes(time[quote_rows], column("bid", quote_rows), column("ask", quote_rows))
    return Tape(trades, quotes, float(time[0]), float(time[-1]), f"csv: {path}")


def read_tape(path: str | Path, format: str, limits: ReadLimits | None = None) -> Tape:
    """Read a tape in one of :data:`FORMATS`.

    ``bitstamp``: :func:`read_bitstamp` (the events file or its folder); ``lobster``: :func:`read_lobster` (the
    message file); ``csv``: :func:`read_trades_csv`.
    """
    if format == "bitstamp":
        return read_bitstamp(path, limits=limits)[0]
    if format == "lobster":
        return read_lobster(path, limits=limits)
    if format == "csv":
        return read_trades_csv(path, limits=limits)
    raise ValueError(f"format={format!r} is invalid: must be one of {list(FORMATS)}")
