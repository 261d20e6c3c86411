"""Trained models as policies: one market maker's (:class:`SB3Policy`) and a game's (:class:`LearnedJointPolicy`).

Both act deterministically through the model's ``predict`` on the observations it was trained on, which they
compute from the model state; nothing here imports Stable-Baselines3 (any object with its ``predict`` serves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.exact.dp import table_shape
from agents.policies.base import Policy
from mm_env.competition.config import CompetitionConfig
from mm_env.dynamics import MarketState
from mm_env.opponents import JointPolicy
from mm_env.params import CompetitionParams, MarketParams
from mm_env.spaces import DEFAULT_FEATURES, Observer, decode_actions


class SB3Policy(Policy):
    """Quotes with ``model.predict(obs, deterministic=True)`` on the observations it was trained on.

    It computes its observations from the model state with its own ``features``; ``obs_normalizer`` is the training
    ``VecNormalize`` (if any), whose observation statistics are applied first. ``normalized_actions`` says whether the
    model was trained on the normalised ``[-1, 1]`` action box (the default). When the features are Markov
    (``inventory``, ``time_left`` and, with adaptive traders, ``last_side``) the policy is a pair of tables over the
    exact grid, and :func:`agents.exact.dp.evaluate_tables` evaluates it exactly.
    """

    def __init__(
        self,
        model: Any,
        name: str = "learned agent",
        obs_normalizer: Any | None = None,
        normalized_actions: bool = True,
        features: Sequence[str] = DEFAULT_FEATURES,
    ) -> None:
        self.model, self.name, self.obs_normalizer = model, name, obs_normalizer
        self.normalized_actions, self.features = normalized_actions, tuple(features)
        self._observe = Observer(self.features)

    def act(self, obs: np.ndarray, params: MarketParams) -> np.ndarray:
        """Offsets ``(n, 2)`` in price units for a batch of observations (with this policy's features)."""
        obs = np.asarray(obs, dtype=np.float32)
        if self.obs_normalizer is not None and getattr(self.obs_normalizer, "norm_obs", False):
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=True)
        bid, ask = decode_actions(np.asarray(actions), params, self.normalized_actions, batch=len(obs))
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
