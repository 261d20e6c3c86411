"""A batch of market-making environments: the state arrays and the step shared by the vector front-ends.

:class:`MarketBatch` owns no randomness and no episode bookkeeping beyond the model state; the Gymnasium vector env
and the Stable-Baselines3 VecEnv add their own autoreset conventions on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from mm_env.dynamics import Draws, MarketState, Number, Outcome, initial_state, sample_draws, transition
from mm_env.params import MarketParams, make_params
from mm_env.spaces import (
    DEFAULT_FEATURES,
    Observer,
    action_space,
    check_features,
    decode_actions,
    observation_space,
)

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
    """The part of ``info`` that describes the state (also given at reset).

    Arrays are read-only views: the step never modifies state arrays in place (it makes new ones), so the views stay
    a snapshot, and a caller cannot change the environments through its ``info``.
    """
    inventory, mid, cash = state.inventory, state.mid, state.cash
    mtm_pnl = cash + inventory * mid
    if isinstance(inventory, np.ndarray):
        inventory, mid, cash = _read_only(inventory), _read_only(mid), _read_only(cash)
    return {"inventory": inventory, "mid": mid, "cash": cash, "mtm_pnl": mtm_pnl}


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def step_info(
    before: MarketState, after: MarketState, bid_offset: Number, ask_offset: Number, draws: Draws, outcome: Outcome
) -> dict[str, Number]:
    """``info`` after a step: the new state plus the quotes (as prices) and what traded."""
    info = state_info(after)
    info["bid"] = before.mid - bid_offset
    info["ask"] = before.mid + ask_offset
    info["trader_side"] = draws.side
    info["trader_size"] = draws.size
    # The trader's side when something traded; 0 when nothing did, even when a trader came (say, at the limit). As the
    # sign of the trade: +1, −1 or 0 (never −0.0), in one array pass where side · (executed > 0) takes two.
    traded = after.traded
    info["fill_side"] = np.sign(traded) if type(traded) is np.ndarray else (traded > 0) - (traded < 0)
    info["fill_size"] = outcome.executed
    info["spread_captured"] = outcome.spread_captured
    info["inventory_penalty"] = outcome.inventory_penalty
    return info


class MarketBatch:
    """The state of ``num_envs`` environments and one batched step over them.

    ``max_episode_steps`` optionally truncates episodes before ``T`` (see :meth:`truncated`).
    """

    def __init__(
        self,
        params: MarketParams,
        num_envs: int,
        features: Sequence[str] = DEFAULT_FEATURES,
        normalize_actions: bool = True,
        max_episode_steps: int | None = None,
    ) -> None:
        self.params = params
        self.num_envs = _check_count("num_envs", num_envs)
        self.features = check_features(features)
        self._observe = Observer(self.features)
        self.normalize_actions = bool(normalize_actions)
        self.max_episode_steps = (
            None if max_episode_steps is None else _check_count("max_episode_steps", max_episode_steps)
        )
        self.state = initial_state(params, self.num_envs)

    @classmethod
    def from_arguments(
        cls,
        num_envs: int,
        params: MarketParams | None,
        preset: str,
        observation_features: Sequence[str],
        normalize_actions: bool,
        max_episode_steps: int | None,
        overrides: dict[str, Any],
    ) -> MarketBatch:
        """Build a batch from the keyword arguments the vector front-ends share with ``MarketMakingEnv``."""
        model = make_params(params if params is not None else preset, **overrides)
        return cls(model, num_envs, observation_features, normalize_actions, max_episode_steps)

    @property
    def single_observation_space(self) -> spaces.Box:
        """The observation space of one environment."""
        return observation_space(self.features)

    @property
    def single_action_space(self) -> spaces.Box:
        """The action space of one environment."""
        return action_space(self.params, self.normalize_actions)

    def truncated(self, terminated: np.ndarray) -> np.ndarray:
        """Where the episode is cut by ``max_episode_steps`` without having terminated."""
        if self.max_episode_steps is None:
            return np.zeros(self.num_envs, dtype=bool)
        return (self.state.t >= self.max_episode_steps) & ~terminated

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


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer >= 1")
    return int(value)


def _scatter(base: np.ndarray, index: np.ndarray, values: Number) -> np.ndarray:
    out = np.array(base, dtype=np.float64)
    out[index] = values
    return out


class BatchedModel:
    """Read-only views of a front-end's :class:`MarketBatch` (kept in ``self._batch``): the model is fixed."""

    _batch: MarketBatch

    @property
    def state(self) -> MarketState:
        """The batched model state (:class:`mm_env.dynamics.MarketState` of arrays)."""
        return self._batch.state

    @property
    def params(self) -> MarketParams:
        """The model parameters (fixed at construction)."""
        return self._batch.params

    @property
    def features(self) -> tuple[str, ...]:
        """The observation features (fixed at construction)."""
        return self._batch.features

    @property
    def max_episode_steps(self) -> int | None:
        """The optional truncation before ``T`` (fixed at construction)."""
        return self._batch.max_episode_steps
