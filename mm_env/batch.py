"""A batch of market-making environments: the state arrays and the step shared by the vector front-ends.

:class:`MarketBatch` owns no randomness and no episode bookkeeping beyond the model state; the Gymnasium vector env
and the Stable-Baselines3 VecEnv add their own autoreset conventions on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mm_env.dynamics import Draws, MarketState, Number, Outcome, initial_state, sample_draws, transition
from mm_env.params import MarketParams
from mm_env.spaces import Observer, decode_actions

STATE_INFO_KEYS = ("inventory", "mid", "cash", "mtm_pnl")
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
INFO_KEYS = STATE_INFO_KEYS + TRADE_INFO_KEYS


def state_info(state: MarketState) -> dict[str, Number]:
    """The part of ``info`` that describes the state (also given at reset)."""
    return {
        "inventory": state.inventory,
        "mid": state.mid,
        "cash": state.cash,
        "mtm_pnl": state.cash + state.inventory * state.mid,
    }


def step_info(
    before: MarketState, after: MarketState, bid_offset: Number, ask_offset: Number, draws: Draws, outcome: Outcome
) -> dict[str, Number]:
    """``info`` after a step: the new state plus the quotes (as prices) and what traded."""
    info = state_info(after)
    info["bid"] = before.mid - bid_offset
    info["ask"] = before.mid + ask_offset
    info["trader_side"] = draws.side
    info["trader_size"] = draws.size
    info["fill_side"] = draws.side * (outcome.executed > 0)
    info["fill_size"] = outcome.executed
    info["spread_captured"] = outcome.spread_captured
    info["inventory_penalty"] = outcome.inventory_penalty
    return info


class MarketBatch:
    """The state of ``num_envs`` environments and one batched step over them."""

    def __init__(self, params: MarketParams, num_envs: int, features: Sequence[str], normalize_actions: bool) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer >= 1")
        self.params = params
        self.num_envs = int(num_envs)
        self.features = tuple(features)
        self._observe = Observer(self.features)
        self.normalize_actions = normalize_actions
        self.state = initial_state(params, self.num_envs)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every environment, or only where ``mask`` is true."""
        fresh = initial_state(self.params, self.num_envs)
        if mask is None:
            self.state = fresh
            return
        self.state = MarketState(*(np.where(mask, new, old) for new, old in zip(fresh, self.state, strict=True)))

    def observe(self) -> np.ndarray:
        """Observations of every environment, shape ``(num_envs, d)``, float32."""
        return self._observe(self.state, self.params)

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[Outcome, dict[str, np.ndarray]]:
        """Step every environment (or only those where ``active`` is true) and return the outcome and info arrays.

        Draws are taken only for the environments that step, in index order, so a batch of one consumes the random
        stream exactly as a single environment does. Entries of inactive environments in the outcome are zero.
        """
        bid, ask = decode_actions(actions, self.params, self.normalize_actions, batch=self.num_envs)
        before = self.state
        if active is None:
            draws = sample_draws(rng, self.params, self.num_envs)
            self.state, outcome = transition(before, bid, ask, draws, self.params)
            return outcome, step_info(before, self.state, bid, ask, draws, outcome)
        index = np.flatnonzero(active)
        sub_before = MarketState(*(field[index] for field in before))
        draws = sample_draws(rng, self.params, len(index))
        sub_after, sub_outcome = transition(sub_before, bid[index], ask[index], draws, self.params)
        self.state = MarketState(*(_scatter(old, index, new) for old, new in zip(before, sub_after, strict=True)))
        outcome = Outcome(*(_scatter(np.zeros(self.num_envs), index, new) for new in sub_outcome))
        sub_info = step_info(sub_before, sub_after, bid[index], ask[index], draws, sub_outcome)
        info = state_info(self.state)
        for key in TRADE_INFO_KEYS:
            info[key] = _scatter(np.zeros(self.num_envs), index, sub_info[key])
        return outcome, info


def _scatter(base: np.ndarray, index: np.ndarray, values: Number) -> np.ndarray:
    out = np.array(base, dtype=np.float64)
    out[index] = values
    return out
