"""Recorded markets (``MODEL.md`` §10): the canonical tape, its readers and the mapping onto model steps.

* :mod:`mm_env.data.tape`: :class:`~mm_env.data.tape.Tape`, a capture's trades and best quotes in exchange time;
* :mod:`mm_env.data.readers`: Bitstamp-style order events and trades (the book rebuilt), LOBSTER files and a plain
  CSV of trades with best quotes, each into a tape;
* :mod:`mm_env.data.steps`: :func:`~mm_env.data.steps.to_steps`, the tape on the model's step grid in model units.

NumPy only: no data-frame library is needed.
"""

from mm_env.data.readers import FORMATS, ReadLimits, TapeError, read_tape
from mm_env.data.steps import (
    MarketOrders,
    ModelUnits,
    SteppedTape,
    bin_sizes,
    default_lot,
    market_orders,
    to_steps,
)
from mm_env.data.tape import Quotes, Tape, Trades

__all__ = [
    "FORMATS",
    "ReadLimits",
    "TapeError",
    "read_tape",
    "MarketOrders",
    "ModelUnits",
    "Quotes",
    "SteppedTape",
    "Tape",
    "Trades",
    "bin_sizes",
    "default_lot",
    "market_orders",
    "to_steps",
]
