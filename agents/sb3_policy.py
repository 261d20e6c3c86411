"""A trained Stable-Baselines3 model as a :class:`~agents.policies.Policy` (deterministic actions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.dp import table_shape
from agents.policies import Policy
from mm_env.dynamics import MarketState
from mm_env.params import MarketParams
from mm_env.spaces import DEFAULT_FEATURES, Observer, decode_actions


class SB3Policy(Policy):
    """Quotes with ``model.predict(obs, deterministic=True)`` on the observations it was trained on.

    It computes its observations from the model state with its own ``features``; ``obs_normalizer`` is the training
    ``VecNormalize`` (if any), whose observation statistics are applied first. ``normalized_actions`` says whether the
    model was trained on the normalised ``[-1, 1]`` action box (the default). When the features are Markov
    (``inventory``, ``time_left`` and, with adaptive traders, ``last_side``) the policy is a pair of tables over the
    exact grid, and :func:`agents.dp.evaluate_tables` evaluates it exactly.
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
