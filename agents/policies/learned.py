"""Policies that act on observations: trained models and plain functions, for one market maker and for a game.

:class:`SB3Policy` (a model's ``predict``) and :class:`FunctionPolicy` (any function of a batch of observations) quote
for one market maker, :class:`LearnedJointPolicy` for a game's seats. They compute their observations from the
model state, as the env would; nothing here imports Stable-Baselines3 (any object with its ``predict`` serves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.exact.dp import table_shape
from agents.policies.base import Policy
from mm_env.competition.config import CompetitionConfig
from mm_env.dynamics import MarketState
from mm_env.opponents import JointPolicy
from mm_env.params import CompetitionParams, MarketParams
from mm_env.spaces import DEFAULT_FEATURES, Observer, decode_actions


class ObservationPolicy(Policy):
    """A policy that acts on observations: it computes them from the model state with its own ``features``.

    Subclasses give :meth:`actions` (actions of a batch of observations); ``normalized_actions`` says whether those
    are in the normalised ``[-1, 1]`` action box (the env's default) or raw offsets. When the features are Markov
    (``inventory``, ``time_left`` and, with adaptive traders, ``last_side``) the policy is a pair of tables over the
    exact grid, and :func:`agents.exact.dp.evaluate_tables` evaluates it exactly.
    """

    def __init__(self, name: str, normalized_actions: bool = True, features: Sequence[str] = DEFAULT_FEATURES) -> None:
        self.name, self.normalized_actions, self.features = name, normalized_actions, tuple(features)
        self._observe = Observer(self.features)

    def actions(self, obs: np.ndarray) -> np.ndarray:
        """The actions ``(n, 2)`` of a batch of observations ``(n, d)``."""
        raise NotImplementedError

    def act(self, obs: np.ndarray, params: MarketParams) -> np.ndarray:
        """Offsets ``(n, 2)`` in price units for a batch of observations (with this policy's features)."""
        obs = np.asarray(obs, dtype=np.float32)
        actions = np.asarray(self.actions(obs))
        if actions.shape != (len(obs), 2):
            raise ValueError(
                f"{self.name}: the actions of {len(obs)} observations must have shape ({len(obs)}, 2) (bid, ask); "
                f"got {actions.shape}"
            )
        bid, ask = decode_actions(actions, params, self.normalized_actions, batch=len(obs))
        return np.stack([bid, ask], axis=-1)

    def quote(self, state: MarketState, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets for a batch of states, from the observations the policy computes of them."""
        offsets = self.act(self._observe(state, params), params)
        return offsets[:, 0], offsets[:, 1]

    def tables(self, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """The policy over the exact grid; ``ValueError`` if it observes more than the grid's Markov state."""
        markov = {"inventory", "time_left"} | ({"last_side"} if len(table_shape(params)) == 3 else set())
        extra = sorted(set(self.features) - markov)
        if extra:
            raise ValueError(f"the policy observes {extra}, so it is not a function of the Markov state alone")
        return super().tables(params)


class SB3Policy(ObservationPolicy):
    """Quotes with ``model.predict(obs, deterministic=True)`` on the observations it was trained on.

    ``obs_normalizer`` is the training ``VecNormalize`` (if any), whose observation statistics are applied first;
    the rest is :class:`ObservationPolicy`'s.
    """

    def __init__(
        self,
        model: Any,
        name: str = "learned agent",
        obs_normalizer: Any | None = None,
        normalized_actions: bool = True,
        features: Sequence[str] = DEFAULT_FEATURES,
    ) -> None:
        super().__init__(name, normalized_actions, features)
        self.model, self.obs_normalizer = model, obs_normalizer

    def actions(self, obs: np.ndarray) -> np.ndarray:
        """The model's deterministic actions, on observations normalised as in training."""
        if self.obs_normalizer is not None and getattr(self.obs_normalizer, "norm_obs", False):
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions)


class FunctionPolicy(ObservationPolicy):
    """A function from a batch of observations ``(n, d)`` to actions ``(n, 2)``, as a policy.

    A CleanRL agent's deterministic action, a hand-written rule, anything that maps observations to actions.
    """

    def __init__(
        self,
        function: Callable[[np.ndarray], Any],
        name: str | None = None,
        normalized_actions: bool = True,
        features: Sequence[str] = DEFAULT_FEATURES,
    ) -> None:
        super().__init__(name or str(getattr(function, "__name__", "policy")), normalized_actions, features)
        self.function = function

    def actions(self, obs: np.ndarray) -> np.ndarray:
        """The function's actions."""
        return np.asarray(self.function(obs), dtype=np.float64)


class LearnedJointPolicy:
    """A trained SB3 model quoting for the market makers in ``seats``; ``others`` (a joint policy) for the rest.

    The model sees each seat's own observation (:meth:`CompetitionConfig.observe`), normalised by the training
    ``VecNormalize`` if one is given, and acts deterministically.
    """

    def __init__(
        self,
        model: Any,
        config: CompetitionConfig,
        seats: Sequence[int],
        others: JointPolicy | None = None,
        obs_normalizer: Any | None = None,
        name: str = "learned",
    ) -> None:
        self.model, self.config, self.seats = model, config, tuple(seats)
        self.others, self.obs_normalizer, self.name = others, obs_normalizer, name

    def quote(self, state: MarketState, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Every market maker's offsets: the model's for its seats, the other policy's for the rest."""
        n, m = np.shape(state.inventory)
        if self.others is not None:
            bid, ask = (np.array(side, dtype=np.float64) for side in self.others.quote(state, params))
        else:
            bid, ask = np.empty((n, m)), np.empty((n, m))
        obs = self.config.observe(state)[:, list(self.seats)].reshape(n * len(self.seats), -1)
        if self.obs_normalizer is not None and getattr(self.obs_normalizer, "norm_obs", False):
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=True)
        own_bid, own_ask = decode_actions(
            np.asarray(actions), params.market, self.config.normalize_actions, batch=len(obs)
        )
        bid[:, list(self.seats)] = np.reshape(own_bid, (n, len(self.seats)))
        ask[:, list(self.seats)] = np.reshape(own_ask, (n, len(self.seats)))
        return params.on_grid(bid), params.on_grid(ask)
