"""A batch of environments: the state arrays and the one batched step under every vector front-end.

:class:`MarketBatch` holds ``num_envs`` environments of one configuration, one market maker each
(:class:`~mm_env.config.EnvConfig`) or ``M`` competing ones (:class:`~mm_env.competition.config.CompetitionConfig`),
and steps them all with :func:`mm_env.dynamics.transition` on NumPy arrays. It owns no randomness and no episode
bookkeeping beyond the model state; the Gymnasium vector env, the SB3 ``VecEnv`` and the PettingZoo env add their
own autoreset conventions on top of it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
from gymnasium import spaces

from mm_env.dynamics import Draws, MarketState, Number, Outcome, initial_state, sample_draws, transition
from mm_env.limits import MAX_EPISODES
from mm_env.params import CompetitionParams, MarketParams
from mm_env.xp import NUMPY, ArrayNamespace


class FrontEndConfig(Protocol):
    """What the vector front-ends read of a batch's configuration: one environment's spaces and features."""

    @property
    def features(self) -> tuple[str, ...]:
        """The names of the observation's columns."""

    @property
    def observation_space(self) -> spaces.Box:
        """One environment's observation space."""

    @property
    def action_space(self) -> spaces.Box:
        """One environment's action space."""


class BatchConfig(FrontEndConfig, Protocol):
    """What a batch needs of its configuration: the model, the observation, the action map and the ``info``.

    :class:`mm_env.config.EnvConfig` (one market maker) and :class:`mm_env.competition.config.CompetitionConfig`
    (competing market makers) are the two.
    """

    STATE_INFO_KEYS: ClassVar[tuple[str, ...]]
    TRADE_INFO_KEYS: ClassVar[tuple[str, ...]]

    @property
    def params(self) -> MarketParams | CompetitionParams:
        """The model."""

    def observe(self, state: MarketState, xp: ArrayNamespace | None = None) -> np.ndarray:
        """Every environment's observation, ``(n, d)``, or every market maker's, ``(n, M, d)``."""

    def decode(self, actions: object, batch: int) -> tuple[Number, Number]:
        """The bid and ask offsets of ``batch`` environments' actions (each market maker's, for a game)."""

    def state_info(self, state: MarketState) -> dict[str, Any]:
        """The ``info`` arrays that describe a state."""

    def step_info(
        self, before: MarketState, after: MarketState, bid: Number, ask: Number, outcome: Outcome
    ) -> dict[str, Any]:
        """The ``info`` arrays after a step."""


_Tuple = TypeVar("_Tuple", MarketState, Outcome)


def select(where: np.ndarray, new: _Tuple, old: _Tuple) -> _Tuple:
    """Field by field, ``new`` in the environments where ``where`` is true, ``old`` elsewhere.

    ``where`` has one entry per environment; it is broadcast over a market-maker axis. A field that is ``None`` in
    both (the winner of a one-MM step) stays ``None``.
    """
    fields: list[Number | None] = []
    for new_field, old_field in zip(new, old, strict=True):
        fields.append(None if new_field is None or old_field is None else _where(where, new_field, old_field))
    return type(new)._make(fields)


def _where(where: np.ndarray, new: Number, old: Number) -> np.ndarray:
    """``new`` in the environments where ``where`` is true, ``old`` elsewhere, over any trailing (agent) axis."""
    return np.where(where.reshape(where.shape + (1,) * (np.ndim(new) - 1)), new, old)


class MarketBatch:
    """The state of ``num_envs`` environments of one configuration and one batched step over them.

    ``max_episode_steps`` optionally truncates episodes before ``T`` (see :meth:`truncated`). ``xp`` is the array
    namespace of the step and the observations (:mod:`mm_env.xp`); the draws, the action map's checks and ``info``
    are the NumPy front-ends', so a batch is NumPy's.
    """

    def __init__(
        self,
        config: BatchConfig,
        num_envs: int,
        max_episode_steps: int | None = None,
        xp: ArrayNamespace = NUMPY,
    ) -> None:
        self.config = config
        self.xp = xp
        self.params = config.params
        self.num_envs = check_count("num_envs", num_envs)
        if self.num_envs > MAX_EPISODES:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer in [1, {MAX_EPISODES:,}]")
        self.max_episode_steps = (
            None if max_episode_steps is None else check_count("max_episode_steps", max_episode_steps)
        )
        self.STATE_INFO_KEYS = config.STATE_INFO_KEYS
        self.TRADE_INFO_KEYS = config.TRADE_INFO_KEYS
        self.state = initial_state(self.params, self.num_envs)

    def truncated(self, terminated: np.ndarray) -> np.ndarray:
        """Where the episode is cut by ``max_episode_steps`` without having terminated."""
        if self.max_episode_steps is None:
            return np.zeros(self.num_envs, dtype=bool)
        return (self.state.t >= self.max_episode_steps) & ~terminated

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every environment, or only where ``mask`` (one bool per environment) is true."""
        fresh = initial_state(self.params, self.num_envs)
        self.state = fresh if mask is None else select(self._mask("mask", mask), fresh, self.state)

    def _mask(self, name: str, mask: object) -> np.ndarray:
        """A mask over the environments as a bool array (``ValueError`` for another shape)."""
        array = np.asarray(mask, dtype=bool)
        if array.shape != (self.num_envs,):
            raise ValueError(f"{name} must have one entry per environment, shape ({self.num_envs},); got {array.shape}")
        return array

    def observe(self) -> np.ndarray:
        """Observations of every environment, ``(num_envs, d)`` (every market maker's, ``(num_envs, M, d)``)."""
        return self.config.observe(self.state, self.xp)

    def state_info(self) -> dict[str, Any]:
        """The ``info`` arrays that describe the current state."""
        return self.config.state_info(self.state)

    def step_offsets(
        self, bid: Number, ask: Number, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> Outcome:
        """Step every environment (or only those where ``active`` is true) with offsets within the bounds.

        Draws are taken only for the environments that step, in index order, so a batch of one consumes the random
        stream exactly as a single environment does. Every environment goes through the transition; where
        ``active`` is false the state is kept and the outcome is zero (the winner −1).
        """
        before = self.state
        if active is not None:
            active = self._mask("active", active)
        draws = self._draws(rng, active)
        after, outcome = transition(before, bid, ask, draws, self.params, self.xp)
        if active is not None:
            after = select(active, after, before)
            outcome = select(active, outcome, _nothing(outcome))
        self.state = after
        return outcome

    def _draws(self, rng: np.random.Generator, active: np.ndarray | None) -> Draws:
        if active is None:
            return sample_draws(rng, self.params, self.num_envs)
        drawn = sample_draws(rng, self.params, int(np.count_nonzero(active)))
        # The stepping environments' draws in place, zeros for the others (whose step is discarded).
        return Draws._make(_expand(value, active) for value in drawn)

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[Outcome, dict[str, Any]]:
        """Decode ``actions`` and step (see :meth:`step_offsets`): the outcome and the ``info`` arrays.

        Trade entries of ``info`` are zero for environments that did not step.
        """
        bid, ask = self.config.decode(actions, self.num_envs)
        before = self.state
        outcome = self.step_offsets(bid, ask, rng, active)
        info = self.config.step_info(before, self.state, bid, ask, outcome)
        if active is not None:
            stepped = self._mask("active", active)
            for key in self.TRADE_INFO_KEYS:
                nothing = -1 if key == "winner" else 0.0  # the winner of no step is nobody, as in the outcome
                info[key] = _where(stepped, info[key], nothing)
        return outcome, info


def _nothing(outcome: Outcome) -> Outcome:
    """The outcome of not stepping: zero everywhere, and no winner (−1)."""
    nothing = Outcome._make(None if value is None else np.zeros_like(value) for value in outcome)
    return nothing if outcome.winner is None else nothing._replace(winner=np.full_like(outcome.winner, -1))


def _expand(value: Number | None, active: np.ndarray) -> Number | None:
    if value is None or np.ndim(value) == 0:
        return value
    full = np.zeros(active.shape)
    full[active] = value
    return full


def check_count(name: str, value: object) -> int:
    """A positive integer count (``num_envs``, ``max_episode_steps``), or ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer >= 1")
    return int(value)


class BatchOutcome(Protocol):
    """What the vector front-ends read of a batch step's outcome."""

    @property
    def reward(self) -> Number:
        """Each environment's reward (an array)."""

    @property
    def terminated(self) -> Number:
        """Where the episode ended (an array)."""


StateT_co = TypeVar("StateT_co", covariant=True)
ParamsT_co = TypeVar("ParamsT_co", covariant=True)
ConfigT_co = TypeVar("ConfigT_co", bound=FrontEndConfig, covariant=True)


class VecBatch(Protocol[StateT_co, ParamsT_co, ConfigT_co]):
    """What the vector front-ends use of their batch, whose state, parameters and configuration are of its family.

    :class:`MarketBatch` is one; so are the competing market makers'
    :class:`~mm_env.competition.learners.LearnerBatch`, whose environments are the learners' views of the games, and
    whose state, parameters and configuration are those of the games, and the several assets'
    :class:`~mm_env.multi_asset.batch.MultiAssetBatch`.
    """

    STATE_INFO_KEYS: tuple[str, ...]
    TRADE_INFO_KEYS: tuple[str, ...]
    num_envs: int
    max_episode_steps: int | None

    @property
    def state(self) -> StateT_co:
        """The model state of the environments (of the games, for the learners' views)."""

    @property
    def params(self) -> ParamsT_co:
        """The model parameters."""

    @property
    def config(self) -> ConfigT_co:
        """The configuration: the spaces, the features and the action map."""

    def truncated(self, terminated: np.ndarray) -> np.ndarray:
        """Where ``max_episode_steps`` cuts the episode before it terminates."""

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every environment, or where ``mask`` is true."""

    def observe(self) -> np.ndarray:
        """Every environment's observation, ``(num_envs, d)``."""

    def state_info(self) -> dict[str, Any]:
        """The ``info`` arrays that describe the state."""

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[BatchOutcome, dict[str, Any]]:
        """Step every environment (or those where ``active`` is true): the outcome and the ``info`` arrays."""


StateT = TypeVar("StateT")
ParamsT = TypeVar("ParamsT")
ConfigT = TypeVar("ConfigT", bound=FrontEndConfig)


class BatchedModel(Generic[StateT, ParamsT, ConfigT]):
    """Read-only views of a front-end's batch (kept in ``self._batch``), typed by its family: the model is fixed."""

    _batch: VecBatch[StateT, ParamsT, ConfigT]

    @property
    def state(self) -> StateT:
        """The batched model state (a state of arrays; the games' for the competing market makers' front-ends)."""
        return self._batch.state

    @property
    def params(self) -> ParamsT:
        """The model parameters (fixed at construction)."""
        return self._batch.params

    @property
    def config(self) -> ConfigT:
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


MarketModel = BatchedModel[MarketState, MarketParams | CompetitionParams, BatchConfig]
"""The views of a one-asset batch, of one market maker or competing ones."""
