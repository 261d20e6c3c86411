"""The canonical tape, the step mapping of MODEL.md §10.1 and the readers of §10.2 on hand-made inputs."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from mm_env.data import ModelUnits, Quotes, Tape, Trades, bin_sizes, market_orders, to_steps


def trades(rows):
    """Trades from rows ``(time, price, size, side, taker_id)``."""
    if not rows:
        return Trades.empty()
    columns = list(zip(*rows, strict=True))
    return Trades(*[np.asarray(column) for column in columns])


def quotes(rows):
    """Quotes from rows ``(time, bid, ask)``."""
    columns = list(zip(*rows, strict=True))
    return Quotes(*[np.asarray(column, dtype=float) for column in columns])


# ---------------------------------------------------------------------------------------------------------- the tape


def test_tape_arrays_are_read_only_copies():
    price = np.array([100.0, 101.0])
    table = Trades(np.array([1.0, 2.0]), price, np.array([1.0, 2.0]), np.array([1, -1]), np.array([-1, 5]))
    price[0] = 7.0
    assert table.price[0] == 100.0
    assert table.side.dtype == np.int8 and table.taker_id.dtype == np.int64
    with pytest.raises(ValueError):
        table.price[0] = 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time": [1.0, 0.5, 2.0]}, "time[1]=0.5 is invalid: times must be non-decreasing"),
        ({"time": [1.0, np.nan, 2.0]}, "time[1]=nan is invalid"),
        ({"size": [1.0, 0.0, 1.0]}, "size[1]=0.0 is invalid: must be a finite number > 0"),
        ({"size": [1.0, 1.0, -2.0]}, "size[2]=-2.0 is invalid"),
        ({"side": [1, 0, -1]}, "side[1]=0 is invalid: must be +1"),
        ({"price": [1.0, 1.0, np.inf]}, "price[2]=inf is invalid"),
        ({"taker_id": [-1, -2, 3]}, "taker_id[1]=-2 is invalid"),
        ({"side": [1.0, 1.5, -1.0]}, "side[1]=1.5 is invalid: must be an integer"),
        ({"price": [1.0, 2.0]}, "price has 2 rows: must have as many as time (3)"),
    ],
)
def test_trades_refuse_bad_rows_naming_field_and_row(change, message):
    columns = {
        "time": [1.0, 1.0, 2.0],
        "price": [10.0, 11.0, 12.0],
        "size": [1.0, 2.0, 3.0],
        "side": [1, -1, 1],
        "taker_id": [-1, 4, 4],
    }
    columns.update(change)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        Trades(**{name: np.asarray(value) for name, value in columns.items()})
    assert "\n" not in str(caught.value)


def test_quotes_and_tape_validation():
    with pytest.raises(ValueError, match=re.escape("bid[1]=-1.0 is invalid")):
        quotes([(0.0, 1.0, 2.0), (1.0, -1.0, 2.0)])
    with pytest.raises(ValueError, match=re.escape("time[1]=0.0 is invalid")):
        quotes([(1.0, 1.0, 2.0), (0.0, 1.0, 2.0)])
    table = quotes([(0.0, np.nan, 2.0), (1.0, 2.0, 2.0), (2.0, 1.0, 2.0)])
    assert table.valid.tolist() == [False, False, True]  # an empty side, a crossed (locked) book, a valid one
    with pytest.raises(ValueError, match=re.escape("end=1.0 is invalid: must be at least start=2.0")):
        Tape(Trades.empty(), table, 2.0, 1.0)
    with pytest.raises(ValueError, match="start=nan is invalid"):
        Tape(Trades.empty(), table, float("nan"), 1.0)


# ----------------------------------------------------------------------------------------------- the step mapping


def test_model_units_validate_and_default_origin():
    with pytest.raises(ValueError, match=re.escape("dt=0 is invalid: must be a finite number in (0, 1e9]")):
        ModelUnits(0, 1, 1)
    with pytest.raises(ValueError, match="lot=nan is invalid"):
        ModelUnits(1, 1, float("nan"))
    with pytest.raises(ValueError, match="t0='a' is invalid"):
        ModelUnits(1, 1, 1, t0="a")  # type: ignore[arg-type]
    # The first multiple of dt strictly after the start: a start on the grid moves to the next point.
    assert ModelUnits(1.0, 1.0, 1.0).origin(1777689380.521) == 1777689381.0
    assert ModelUnits(1.0, 1.0, 1.0).origin(20.0) == 21.0
    assert ModelUnits(5.0, 1.0, 1.0).origin(12.0) == 15.0
    assert ModelUnits(5.0, 1.0, 1.0, t0=13.0).origin(12.0) == 13.0


def test_bin_rounds_half_up_with_at_least_one_lot():
    sizes = np.array([1e-8, 0.004, 0.005, 0.0149, 0.015, 0.025, 0.035, 0.27, 2.84])
    assert bin_sizes(sizes, 0.01).tolist() == [1, 1, 1, 1, 2, 3, 4, 27, 284]


def test_market_orders_group_by_taker_id_else_by_time_and_side():
    tape = Tape(
        trades(
            [
                (1.0, 100.0, 0.5, 1, 7),
                (1.0, 99.0, 0.2, -1, -1),
                (1.0, 101.0, 0.3, 1, 7),
                (1.0, 98.0, 0.1, -1, -1),
                (1.5, 102.0, 0.4, 1, 7),  # the same taker a little later: the same order
                (2.0, 100.0, 1.0, 1, -1),
                (2.0, 101.0, 1.0, 1, -1),
                (2.0, 97.0, 1.0, -1, 8),
            ]
        ),
        quotes([(0.0, 99.0, 100.0)]),
        0.0,
        3.0,
    )
    orders = market_orders(tape)
    assert orders.time.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert orders.side.tolist() == [1, -1, 1, -1]
    assert orders.size.tolist() == pytest.approx([1.2, 0.3, 2.0, 1.0])
    assert orders.worst_price.tolist() == [102.0, 98.0, 101.0, 97.0]  # highest for a buy, lowest for a sell
    assert orders.n_fills.tolist() == [3, 2, 2, 1]
    assert orders.first_fill_index.tolist() == [0, 3, 5, 7]
    assert orders.fill_price.tolist() == [100.0, 101.0, 102.0, 99.0, 98.0, 100.0, 101.0, 97.0]
    prices, sizes = orders.fills(1)
    assert prices.tolist() == [99.0, 98.0] and sizes.tolist() == [0.2, 0.1]


def hand_tape() -> Tape:
    """A tape worked through by hand in :func:`test_to_steps_on_a_hand_made_tape` (tick 0.5, lot 0.01, dt 1)."""
    return Tape(
        trades(
            [
                (9.8, 100.0, 5.0, 1, -1),  # before t0 = 10: in no step
                (10.0, 100.5, 0.01, 1, 1),  # at exactly t0: measured against the book before it (mid 199)
                (10.0, 101.0, 0.005, 1, 1),  # the same taker: one order of 0.015, worst 101
                (10.3, 99.0, 0.01, -1, -1),
                (10.3, 98.5, 0.005, -1, -1),  # the same time and side without ids: one order of 0.015, worst 98.5
                (10.9, 99.5, 0.004, 1, 2),
                (11.0, 100.0, 0.02, -1, -1),
                (11.5, 99.0, 0.03, 1, 3),  # a buy below the mid: negative depth
                (12.5, 101.0, 0.025, 1, -1),
                (13.999, 102.0, 1.0, -1, -1),  # in the last step (13 ≤ t < 14)
                (14.0, 102.0, 1.0, 1, -1),  # at t_N: after the grid
            ]
        ),
        quotes(
            [
                (9.0, 99.0, 100.0),  # mid 199 ticks
                (10.0, 99.5, 100.5),  # at t0 itself: not yet in P_0
                (10.5, np.nan, 100.5),  # one side empty: the mid 200 carries forward
                (11.0, 100.0, 100.0),  # locked book: still 200 — but at exactly t_1 it would not count anyway
                (11.2, 101.0, 100.0),  # crossed: 200 carries
                (12.7, 101.0, 102.0),  # mid 203
                (13.9999, 101.5, 102.5),  # just before t_4 = 14
            ]
        ),
        9.3,
        14.6,
        "hand-made",
    )


def test_to_steps_on_a_hand_made_tape():
    stepped = to_steps(hand_tape(), ModelUnits(dt=1.0, tick=0.5, lot=0.01))
    assert stepped.t0 == 10.0  # the first whole second strictly after 9.3
    assert stepped.N == 4  # ⌊(14.6 − 10)/1⌋
    assert stepped.mid.tolist() == [199.0, 200.0, 200.0, 203.0, 204.0]
    depth = stepped.depth
    # Step 0: the buy (worst 101 → 202 ticks) reached 3 beyond P_0 = 199, then the sell (98.5 → 197) 2 and a buy
    # at 99.5 (199 ticks, 0 beyond). Step 1: a sell at 200 (0) and a buy at 198 (−2). Step 2: a buy at 202 (2).
    # Step 3: a sell at 204 from P_3 = 203: −1.
    assert depth[:, 0].tolist() == [3.0, -2.0, 2.0, -np.inf]
    assert depth[:, 1].tolist() == [2.0, 0.0, -np.inf, -1.0]
    assert stepped.volume[:, 0] == pytest.approx([0.019, 0.03, 0.025, 0.0])
    assert stepped.volume[:, 1] == pytest.approx([0.015, 0.02, 0.0, 1.0])
    assert stepped.side.tolist() == [1, 1, 1, -1]
    assert stepped.size.tolist() == [2, 3, 3, 100]  # 0.019 → 1.9 → 2; 0.025 → 2.5 rounds up to 3
    assert stepped.last_side.tolist() == [0, 1, 1, 1]
    assert stepped.orders_in_step.tolist() == [0, 3, 5, 6, 7]
    assert stepped.orders_per_step.tolist() == [3, 2, 1, 1]
    assert len(stepped.orders) == 7 and stepped.orders.time[0] == 10.0
    assert stepped.step_orders(1).time.tolist() == [11.0, 11.5]
    # The mid just before each order: the quote at exactly t = 10 does not count for the order at 10.
    assert stepped.order_mid.tolist() == [199.0, 200.0, 200.0, 200.0, 200.0, 200.0, 203.0]


def test_to_steps_tie_takes_the_first_orders_side_and_quiet_steps_are_zero():
    tape = Tape(
        trades([(1.2, 100.0, 0.5, -1, -1), (1.7, 101.0, 0.5, 1, -1)]),
        quotes([(0.0, 99.0, 100.0)]),
        0.5,
        3.0,
    )
    stepped = to_steps(tape, ModelUnits(1.0, 1.0, 0.1))
    assert stepped.N == 2
    assert stepped.side.tolist() == [-1, 0]  # equal volumes: the first order's side
    assert stepped.size.tolist() == [5, 0]
    assert stepped.has_trade.tolist() == [True, False]
    assert stepped.mid.tolist() == [99.5, 99.5, 99.5]


def test_to_steps_refuses_grids_without_steps_or_mid():
    tape = Tape(Trades.empty(), quotes([(0.0, 99.0, 100.0)]), 0.0, 1.5)
    with pytest.raises(ValueError, match="t0=1.0 is invalid: the grid must hold at least one step"):
        to_steps(tape, ModelUnits(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="t0=0.0 is invalid: must be after the capture's start"):
        to_steps(tape, ModelUnits(0.5, 1.0, 1.0, t0=0.0))
    no_mid = Tape(Trades.empty(), quotes([(0.0, np.nan, 100.0)]), 0.0, 5.0)
    with pytest.raises(ValueError, match="no valid quote"):
        to_steps(no_mid, ModelUnits(1.0, 1.0, 1.0))


# ----------------------------------------------------------------------------------------------- the book rebuild

# (time s, id, price, volume, action, direction): every rule of MODEL.md §10.2 once.
EVENTS = [
    (1.0, 1, 100.0, 1.0, "created", "bid"),  # the snapshot
    (1.0, 2, 102.0, 1.0, "created", "ask"),
    (1.0, 3, 101.0, 0.5, "created", "bid"),
    (2.0, 4, 103.0, 1.0, "created", "ask"),
    (2.0, 9, 50.0, 1.0, "deleted", "bid"),  # never created: ignored and counted
    (3.0, 5, 104.0, 2.0, "created", "bid"),  # a marketable buy, resting across the book within its timestamp...
    (3.0, 2, 102.0, 0.0, "changed", "ask"),  # ...fills ask 2 (volume 0 removes it)...
    (3.0, 4, 103.0, 0.0, "changed", "ask"),  # ...and ask 4...
    (3.0, 5, 104.0, 0.0, "deleted", "bid"),  # ...and is gone before the book is read
    (4.0, 6, 105.0, 1.0, "created", "ask"),
    (4.0, 3, 77.0, 0.2, "changed", "bid"),  # a fill's price: ignored, the order stays at 101
    (5.0, 7, 100.5, 1.0, "created", "ask"),  # crosses the snapshot bid at 101 (older): removed, 1 stale
    (6.0, 3, 101.0, 0.0, "deleted", "bid"),  # already removed: unknown
    (7.0, 10, 106.0, 1.0, "created", "bid"),  # crosses the asks at 100.5 and 105, both older: 2 stale
]


def write_orders(path: Path, rows, header="id,timestamp,exchange_timestamp,price,volume,action,direction") -> Path:
    lines = [header]
    for time, order, price, volume, action, direction in rows:
        lines.append(f"{order},{round(time * 1000) + 5},{round(time * 1000)},{price},{volume},{action},{direction}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_trades(path: Path) -> Path:
    path.write_text(
        "trade_id,timestamp,exchange_timestamp,price,amount,buy_order_id,sell_order_id,side\n"
        "1,3001,3000,102.0,1.0,5,2,buy\n"
        "2,3002,3000,103.0,1.0,5,4,buy\n"
        "3,4501,4500,101.0,0.3,3,11,sell\n"
    )
    return path


def test_rebuild_book_by_the_rules(tmp_path):
    from mm_env.data.readers import read_bitstamp_events, rebuild_book

    events = read_bitstamp_events(write_orders(tmp_path / "orders.csv", EVENTS))
    book = rebuild_book(events)
    assert book.quotes.time.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # one read per timestamp
    assert book.quotes.bid.tolist() == [101.0, 101.0, 101.0, 101.0, 100.0, 100.0, 106.0]
    assert np.array_equal(book.quotes.ask, [102.0, 102.0, np.nan, 105.0, 100.5, 100.5, np.nan], equal_nan=True)
    assert (book.reads, book.stale_removed, book.unknown_ids, book.events) == (7, 3, 2, 14)


def test_read_bitstamp_files(tmp_path):
    from mm_env.data.readers import read_bitstamp, read_tape

    write_orders(tmp_path / "orders.csv", EVENTS)
    write_trades(tmp_path / "trades.csv")
    tape, book = read_bitstamp(tmp_path)
    assert (tape.start, tape.end) == (1.0, 7.0)
    assert tape.trades.side.tolist() == [1, 1, -1]
    assert tape.trades.taker_id.tolist() == [5, 5, 11]  # the buy order of a buy, the sell order of a sell
    assert "7 book reads, 3 stale orders removed" in tape.source
    assert book.quotes.bid.tolist() == tape.quotes.bid.tolist()
    orders = market_orders(tape)
    assert orders.size.tolist() == [2.0, 0.3] and orders.worst_price.tolist() == [103.0, 101.0]
    same = read_tape(tmp_path / "orders.csv", "bitstamp")
    assert same.trades.time.tolist() == tape.trades.time.tolist()


@pytest.mark.parametrize(
    ("line", "change", "message"),
    [
        (3, "2,1005,1000,abc,1.0,created,ask", "orders.csv, line 3, column 'price': 'abc' is invalid"),
        (4, "3,1005,1000,101,1.0,modified,bid", "line 4, column 'action': 'modified' is invalid: must be one of"),
        (5, "4,2005,2000,103.0,1.0,created,up", "line 5, column 'direction': 'up' is invalid"),
        (6, "9,2005,1500,50,1,deleted,bid", "line 6, column 'exchange_timestamp': goes back in time"),
        (2, "1,1005,1000,100.0", "orders.csv, line 2: has 4 fields: 7 are needed"),
        (2, "1,1005,1000,inf,1,created,bid", "line 2, column 'price': 'inf' is invalid: must be a finite number"),
        (3, "x,1005,1000,101,1.0,created,bid", "line 3, column 'id': 'x' is invalid"),
        (2, "1,1005,1000,-3,1.0,created,bid", "line 2, column 'price': -3.0 is invalid: an order must be created"),
    ],
)
def test_bitstamp_orders_refused_in_one_line(tmp_path, line, change, message):
    from mm_env.data.readers import TapeError, read_bitstamp

    path = write_orders(tmp_path / "orders.csv", EVENTS)
    lines = path.read_text().splitlines()
    lines[line - 1] = change
    path.write_text("\n".join(lines) + "\n")
    write_trades(tmp_path / "trades.csv")
    with pytest.raises(TapeError, match=re.escape(message)) as caught:
        read_bitstamp(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_bitstamp_trades_and_header_refused_in_one_line(tmp_path):
    from mm_env.data.readers import TapeError, read_bitstamp

    orders = write_orders(tmp_path / "orders.csv", EVENTS)
    trades = write_trades(tmp_path / "trades.csv")
    trades.write_text(trades.read_text().replace("2,3002,3000,103.0,1.0,5,4,buy", "2,3002,3000,103.0,0,5,4,buy"))
    with pytest.raises(TapeError, match=re.escape("trades.csv, line 3, column 'amount': '0' is invalid: must be a")):
        read_bitstamp(orders)
    trades.write_text(trades.read_text().replace("5,4,buy", "5,4,bought"))
    write_orders(orders, EVENTS, header="id,timestamp,exchange_timestamp,price,volume,action")
    with pytest.raises(TapeError, match=re.escape("orders.csv, line 1, column 'direction': missing from the header")):
        read_bitstamp(orders)


def test_read_limits(tmp_path):
    from mm_env.data.readers import ReadLimits, TapeError, read_bitstamp_events

    path = write_orders(tmp_path / "orders.csv", EVENTS)
    with pytest.raises(TapeError, match="larger than the 100 bytes allowed"):
        read_bitstamp_events(path, ReadLimits(bytes=100))
    with pytest.raises(TapeError, match="more than the 13 rows allowed"):
        read_bitstamp_events(path, ReadLimits(rows=13))
    assert len(read_bitstamp_events(path, ReadLimits(rows=14))) == 14
    gz = tmp_path / "orders.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(TapeError, match=re.escape("larger than the 100 bytes allowed (uncompressed)")):
        read_bitstamp_events(gz, ReadLimits(bytes=100))
    assert len(read_bitstamp_events(gz)) == 14
    with pytest.raises(ValueError, match="rows=0 is invalid"):
        ReadLimits(rows=0)


# ------------------------------------------------------------------------------------------------- LOBSTER and CSV

MESSAGES = """34200.1,1,11,100,1000000,1
34200.2,1,12,100,1001000,-1
34200.5,4,12,40,1001000,-1
34201.7,3,11,100,1000000,1
34202.0,5,0,10,1000500,1
"""
ORDERBOOK = """9999999999,0,1000000,100
1001000,100,1000000,100
1001000,60,1000000,100
1001000,60,-9999999999,0
1001000,60,-9999999999,0
"""


def test_read_lobster(tmp_path):
    from mm_env.data.readers import read_tape

    (tmp_path / "AAPL_2012-06-21_message_1.csv").write_text(MESSAGES)
    (tmp_path / "AAPL_2012-06-21_orderbook_1.csv").write_text(ORDERBOOK)
    tape = read_tape(tmp_path / "AAPL_2012-06-21_message_1.csv", "lobster")
    assert (tape.start, tape.end) == (34200.1, 34202.0)
    assert tape.trades.time.tolist() == [34200.5, 34202.0]
    assert tape.trades.side.tolist() == [1, -1]  # an executed sell limit order: a buyer-initiated trade
    assert tape.trades.price.tolist() == [100.1, 100.05] and tape.trades.size.tolist() == [40.0, 10.0]
    assert tape.trades.taker_id.tolist() == [-1, -1]
    assert np.array_equal(tape.quotes.ask, [np.nan, 100.1, 100.1, 100.1, 100.1], equal_nan=True)
    assert np.array_equal(tape.quotes.bid, [100.0, 100.0, 100.0, np.nan, np.nan], equal_nan=True)


def test_lobster_refused_in_one_line(tmp_path):
    from mm_env.data.readers import TapeError, read_lobster

    message, book = tmp_path / "x_message_5.csv", tmp_path / "x_orderbook_5.csv"
    message.write_text(MESSAGES.replace("34200.5,4,12,40", "34200.5,4,12,-40"))
    book.write_text(ORDERBOOK)
    with pytest.raises(TapeError, match=re.escape("x_message_5.csv, line 3, column 'size': '-40' is invalid")):
        read_lobster(message)
    message.write_text(MESSAGES.replace("34201.7,3,11,100,1000000,1", "34201.7,3,11,100,1000000,2"))
    with pytest.raises(TapeError, match=re.escape("line 4, column 'direction': '2' is invalid")):
        read_lobster(message)
    message.write_text(MESSAGES)
    book.write_text(ORDERBOOK.replace("1001000,60,1000000,100", "1001000,60,oops,100"))
    with pytest.raises(TapeError, match=re.escape("x_orderbook_5.csv, line 3, column 'bid_p1': 'oops' is invalid")):
        read_lobster(message)
    book.write_text(ORDERBOOK + ORDERBOOK)
    with pytest.raises(TapeError, match="has 10 rows: must have one per message"):
        read_lobster(message)


CSV = """time,bid,ask,price,size,side,taker_id
0.0,99,100,,,,
0.5,,,100,0.2,buy,7
0.6,,,100.5,0.1,1,7
0.6,,,99,0.1,-1,
1.0,99.5,,,,,
"""


def test_read_trades_csv(tmp_path):
    from mm_env.data.readers import read_tape

    path = tmp_path / "tape.csv"
    path.write_text(CSV)
    tape = read_tape(path, "csv")
    assert (tape.start, tape.end) == (0.0, 1.0)
    assert tape.quotes.time.tolist() == [0.0, 1.0]
    assert np.array_equal(tape.quotes.ask, [100.0, np.nan], equal_nan=True)
    assert tape.trades.side.tolist() == [1, 1, -1] and tape.trades.taker_id.tolist() == [7, 7, -1]
    orders = market_orders(tape)
    assert orders.size.tolist() == pytest.approx([0.3, 0.1])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("0.5,,,100,0.2,buy,7", "0.5,,,100,0.2,,7", "line 3, column 'side': is empty: a trade needs price"),
        ("0.5,,,100,0.2,buy,7", "0.5,,,100,0.2,up,7", "line 3, column 'side': 'up' is invalid"),
        ("0.6,,,99,0.1,-1,", "0.4,,,99,0.1,-1,", "line 5, column 'time': goes back in time"),
        ("1.0,99.5,,,,,", "1.0,-99.5,,,,,", "line 6, column 'bid': '-99.5' is invalid: must be a number > 0"),
        ("0.6,,,99,0.1,-1,", "0.6,,,99,0.1,-1,-4", "line 5, column 'taker_id': '-4' is invalid"),
        ("time,bid,ask", "time,best_bid,ask", "line 1, column 'bid': missing from the header"),
    ],
)
def test_trades_csv_refused_in_one_line(tmp_path, old, new, message):
    from mm_env.data.readers import TapeError, read_trades_csv

    path = tmp_path / "tape.csv"
    path.write_text(CSV.replace(old, new))
    with pytest.raises(TapeError, match=re.escape(message)) as caught:
        read_trades_csv(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_window_is_a_tape_of_its_own():
    stepped = to_steps(hand_tape(), ModelUnits(dt=1.0, tick=0.5, lot=0.01))
    part = stepped.window(1, 3)
    assert part.N == 2 and part.t0 == 11.0
    assert part.mid.tolist() == [200.0, 200.0, 203.0]
    assert part.side.tolist() == [1, 1] and part.last_side.tolist() == [1, 1]  # L from the tape, not reset
    assert part.orders_in_step.tolist() == [0, 2, 3]
    assert part.orders.time.tolist() == [11.0, 11.5, 12.5]
    assert part.orders.first_fill_index.tolist() == [0, 1, 2]
    assert part.depth[:, 0].tolist() == [-2.0, 2.0]
    with pytest.raises(ValueError, match=re.escape("stop=5 is invalid: must be an integer in [2, 4]")):
        stepped.window(1, 5)
    with pytest.raises(ValueError, match="start=4 is invalid"):
        stepped.window(4, 4)


def test_default_lot_is_the_median_order_on_the_1_2_5_grid():
    from mm_env.data import default_lot

    def lot_of(sizes):
        rows = [(1.0 + i, 100.0, size, 1, i) for i, size in enumerate(sizes)]
        return default_lot(Tape(trades(rows), quotes([(0.0, 99.0, 100.0)]), 0.0, 10.0))

    assert lot_of([0.0083]) == 0.01  # the Bitstamp sample's median: nearer 0.01 than 0.005 in ratio
    assert lot_of([0.001, 0.003, 0.2]) == 0.002  # median 0.003: 0.003/0.002 = 1.5 < 0.005/0.003
    assert lot_of([70.0, 80.0, 75.0]) == 100.0 and lot_of([60.0]) == 50.0 and lot_of([7.5]) == 10.0
    with pytest.raises(ValueError, match="no trades"):
        default_lot(Tape(Trades.empty(), quotes([(0.0, 99.0, 100.0)]), 0.0, 10.0))


def test_to_steps_refuses_grids_beyond_the_limit():
    from mm_env.data.steps import MAX_STEPS

    tape = Tape(Trades.empty(), quotes([(0.0, 99.0, 100.0)]), 0.0, 1e6)
    with pytest.raises(ValueError, match=f"more than {MAX_STEPS:,} steps; use a larger dt"):
        to_steps(tape, ModelUnits(0.01, 1.0, 1.0))
