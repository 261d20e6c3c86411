"""A batch of market-making environments: the state arrays and the step shared by the vector front-ends.

:class:`MarketBatch` owns no randomness and no episode bookkeeping beyond the model state; the Gymnasium vector env
and the Stable-Baselines3 VecEnv add their own autoreset conventions on top of it.
"""

from __future__ import annotations

import ctypes
import sys
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState, Number, Outcome, initial_state, sample_draws, transition
from mm_env.params import MarketParams

if TYPE_CHECKING:
    from mm_env.competition.batch import CompetitionConfig
    from mm_env.competition.core import CompetitionState
    from mm_env.competition.params import CompetitionParams

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
    before: MarketState, after: MarketState, bid_offset: Number, ask_offset: Number, outcome: Outcome
) -> dict[str, Number]:
    """``info`` after a step: the new state plus the quotes (as prices) and what traded."""
    info = state_info(after)  # then item by item: cheaper than a literal that unpacks this dict
    info["bid"] = before.mid - bid_offset
    info["ask"] = before.mid + ask_offset
    info["trader_side"] = outcome.trader_side
    info["trader_size"] = outcome.trader_size
    info["fill_side"] = outcome.trader_side * (outcome.executed > 0)  # the trader's side when something traded
    info["fill_size"] = outcome.executed
    info["spread_captured"] = outcome.spread_captured
    info["inventory_penalty"] = outcome.inventory_penalty
    return info


class MarketBatch:
    """The state of ``num_envs`` environments of one configuration and one batched step over them.

    ``max_episode_steps`` optionally truncates episodes before ``T`` (see :meth:`truncated`).
    """

    STATE_INFO_KEYS: tuple[str, ...] = STATE_INFO_KEYS
    """The ``info`` entries that describe the state (given at reset and after every step)."""
    TRADE_INFO_KEYS: tuple[str, ...] = TRADE_INFO_KEYS
    """The ``info`` entries that describe a step's quotes and trade."""

    def __init__(self, config: EnvConfig, num_envs: int, max_episode_steps: int | None = None) -> None:
        self.config = config
        self.params = config.params
        self.num_envs = _check_count("num_envs", num_envs)
        self.max_episode_steps = (
            None if max_episode_steps is None else _check_count("max_episode_steps", max_episode_steps)
        )
        self.state = initial_state(self.params, self.num_envs)
        keep_freed_memory(self.num_envs)

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
        return self.config.observe(self.state)

    def state_info(self) -> dict[str, np.ndarray]:
        """The ``info`` arrays that describe the current state (see :func:`state_info`)."""
        return state_info(self.state)

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[Outcome, dict[str, np.ndarray]]:
        """Step every environment (or only those where ``active`` is true) and return the outcome and info arrays.

        Draws are taken only for the environments that step, in index order, so a batch of one consumes the random
        stream exactly as a single environment does. Entries of inactive environments in the outcome are zero.
        """
        bid, ask = self.config.decode(actions, batch=self.num_envs)
        before = self.state
        if active is None:
            draws = sample_draws(rng, self.params, self.num_envs)
            self.state, outcome = transition(before, bid, ask, draws, self.params)
            return outcome, step_info(before, self.state, bid, ask, outcome)
        index = np.flatnonzero(active)
        sub_before = MarketState(*(field[index] for field in before))
        draws = sample_draws(rng, self.params, len(index))
        sub_after, sub_outcome = transition(sub_before, bid[index], ask[index], draws, self.params)
        self.state = MarketState(*(_scatter(old, index, new) for old, new in zip(before, sub_after, strict=True)))
        outcome = Outcome(*(_scatter(np.zeros(self.num_envs), index, new) for new in sub_outcome))
        sub_info = step_info(sub_before, sub_after, bid[index], ask[index], sub_outcome)
        info = state_info(self.state)
        for key in TRADE_INFO_KEYS:
            info[key] = _scatter(np.zeros(self.num_envs), index, sub_info[key])
        return outcome, info


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_DEFAULT_THRESHOLD = 128 * 1024  # glibc's initial mmap and trim thresholds
_LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems
_ARRAYS_PER_STEP = 256  # generous: a step makes about 60 arrays of num_envs floats, plus the info arrays users keep
_MOST_KEPT_BYTES = 512 * 1024 * 1024  # the most freed memory the process keeps for reuse, whatever the batch size
_kept_bytes = 0


def keep_freed_memory(num_envs: int) -> None:
    """Ask glibc to keep the memory of freed step arrays for reuse instead of returning it to the system.

    A batched step makes its result arrays afresh, so that the arrays handed out in ``info`` stay a snapshot. glibc
    starts out giving freed memory back to the system once more than 128 KiB is free at the top of the heap, and
    mapping every array larger than 128 KiB (from 16,384 environments) from the system and unmapping it when freed;
    either way the next step faults the same pages in again (up to 30 faults a step at 4,096 environments, 1,000 at
    65,536, which halves the throughput). From 65 environments this sets both thresholds high enough for the
    batch: arrays up to 32 MiB stay in the heap (a step's arrays, up to about 700,000 environments) and the freed
    memory kept at the top of the heap is 256 arrays of the batch, at least 64 MiB and at most 512 MiB. Setting
    them turns off glibc's own raising of the thresholds after large frees, so they start where that would take them
    at most; the settings hold for the whole process and are only ever raised. Only glibc has these knobs; elsewhere
    this does nothing.
    """
    global _kept_bytes
    needed = min(_ARRAYS_PER_STEP * num_envs * 8, _MOST_KEPT_BYTES)
    if needed <= _DEFAULT_THRESHOLD or not sys.platform.startswith("linux"):
        return  # glibc's initial thresholds serve small batches
    trim = max(needed, 2 * _LARGEST_MMAP_THRESHOLD)
    if trim <= _kept_bytes:
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return
    mallopt(_M_MMAP_THRESHOLD, _LARGEST_MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, trim)
    _kept_bytes = trim


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer >= 1")
    return int(value)


def _scatter(base: np.ndarray, index: np.ndarray, values: Number) -> np.ndarray:
    out = np.array(base, dtype=np.float64)
    out[index] = values
    return out


class BatchOutcome(Protocol):
    """What the vector front-ends read of a batch step's outcome."""

    @property
    def reward(self) -> np.ndarray:
        """Each environment's reward."""

    @property
    def terminated(self) -> np.ndarray:
        """Where the episode ended."""


class VecBatch(Protocol):
    """What the vector front-ends use of their batch.

    :class:`MarketBatch` is one; so is the competing market makers'
    :class:`~mm_env.competition.learners.LearnerBatch`, whose environments are the learners' views of the games, and
    whose state, parameters and configuration are those of the games.
    """

    STATE_INFO_KEYS: tuple[str, ...]
    TRADE_INFO_KEYS: tuple[str, ...]
    num_envs: int
    max_episode_steps: int | None

    @property
    def state(self) -> MarketState | CompetitionState:
        """The model state of the environments (of the games, for the learners' views)."""

    @property
    def params(self) -> MarketParams | CompetitionParams:
        """The model parameters."""

    @property
    def config(self) -> EnvConfig | CompetitionConfig:
        """The configuration: the spaces, the features and the action map."""

    def truncated(self, terminated: np.ndarray) -> np.ndarray:
        """Where ``max_episode_steps`` cuts the episode before it terminates."""

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every environment, or where ``mask`` is true."""

    def observe(self) -> np.ndarray:
        """Every environment's observation, ``(num_envs, d)``."""

    def state_info(self) -> dict[str, np.ndarray]:
        """The ``info`` arrays that describe the state."""

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[BatchOutcome, dict[str, np.ndarray]]:
        """Step every environment (or those where ``active`` is true): the outcome and the ``info`` arrays."""


class BatchedModel:
    """Read-only views of a front-end's batch (kept in ``self._batch``): the model is fixed."""

    _batch: VecBatch

    @property
    def state(self) -> MarketState | CompetitionState:
        """The batched model state (:class:`mm_env.dynamics.MarketState` of arrays; the games' for their front-ends)."""
        return self._batch.state

    @property
    def params(self) -> MarketParams | CompetitionParams:
        """The model parameters (fixed at construction)."""
        return self._batch.params

    @property
    def config(self) -> EnvConfig | CompetitionConfig:
        """The environment configuration (fixed at construction)."""
        return self._batch.config

    @property
    def features(self) -> tuple[str, ...]:
        """The observation features (fixed at construction)."""
        return self._batch.config.features

    @property
    def max_episode_steps(self) -> int | None:
        """The optional truncation before ``T`` (fixed at construction)."""
        return self._batch.max_episode_steps
