"""The ``info`` of the one-MM envs: what the state and a step's trade show a user, the same for one env and a batch.

The competing market makers' ``info`` is that of their configuration
(:class:`mm_env.competition.config.CompetitionConfig`).
"""

from __future__ import annotations

import numpy as np

from mm_env.dynamics import MarketState, Number, Outcome, wealth
from mm_env.params import MarketParams

STATE_INFO_KEYS = ("inventory", "mid", "cash", "mtm_pnl")
"""The entries that describe the state (given at reset and after every step)."""
TRADE_INFO_KEYS = (
    "bid",
    "ask",
    "trader_side",
    "trader_size",
    "fill_side",
    "fill_size",
    "spread_captured",
    "inventory_penalty",
)
"""The entries that describe a step's quotes and trade."""
INFO_KEYS = STATE_INFO_KEYS + TRADE_INFO_KEYS


def state_info(state: MarketState, params: MarketParams) -> dict[str, Number]:
    """The part of ``info`` that describes the state (also given at reset); ``mtm_pnl`` is the wealth ``X + I·P``.

    Arrays are read-only views: the step never modifies state arrays in place (it makes new ones), so the views stay
    a snapshot, and a caller cannot change the environments through its ``info``.
    """
    inventory, mid, cash = state.inventory, state.mid, state.cash
    mtm_pnl = wealth(state, params)
    if isinstance(inventory, np.ndarray):
        inventory, mid, cash = read_only(inventory), read_only(np.asarray(mid)), read_only(np.asarray(cash))
    return {"inventory": inventory, "mid": mid, "cash": cash, "mtm_pnl": mtm_pnl}


def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array`` (for ``info``, which must not become a way to change the state)."""
    view = array.view()
    view.flags.writeable = False
    return view


def step_info(
    before: MarketState,
    after: MarketState,
    bid_offset: Number,
    ask_offset: Number,
    outcome: Outcome,
    params: MarketParams,
) -> dict[str, Number]:
    """``info`` after a step: the new state plus the quotes (as prices) and what traded."""
    info = state_info(after, params)  # then item by item: cheaper than a literal that unpacks this dict
    info["bid"] = before.mid - bid_offset
    info["ask"] = before.mid + ask_offset
    info["trader_side"] = outcome.trader_side
    info["trader_size"] = outcome.trader_size
    info["fill_side"] = outcome.trader_side * (outcome.executed > 0)  # the trader's side when something traded
    info["fill_size"] = outcome.executed
    info["spread_captured"] = outcome.spread_captured
    info["inventory_penalty"] = outcome.inventory_penalty
    return info
