"""A trained Stable-Baselines3 model as a :class:`~agents.policies.Policy` (deterministic actions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.policies import Policy, state_to_observation
from mm_env.params import MarketParams
from mm_env.spaces import DEFAULT_FEATURES, decode_actions, encode_offsets


class SB3Policy(Policy):
    """Quotes with ``model.predict(obs, deterministic=True)``.

    ``obs_normalizer`` is the training ``VecNormalize`` (if any), whose observation statistics are applied first.
    ``normalized_actions`` says whether the model was trained on the normalised ``[-1, 1]`` action box (the
    default). Over the default features ``(inventory, time_left)`` the policy is Markov in ``(t, I)``, so
    :meth:`tables` tabulates it on the whole grid and :func:`agents.dp.evaluate_tables` evaluates it exactly.
    """

    def __init__(
        self,
        model: Any,
        name: str = "learned agent",
        obs_normalizer: Any | None = None,
        normalized_actions: bool = True,
        features: tuple[str, ...] = DEFAULT_FEATURES,
    ) -> None:
        self.model, self.name, self.obs_normalizer = model, name, obs_normalizer
        self.normalized_actions, self.features = normalized_actions, tuple(features)

    def act(self, obs: np.ndarray, params: MarketParams, normalize_actions: bool = False) -> np.ndarray:
        """Actions for a batch of observations (with this policy's features)."""
        obs = np.asarray(obs, dtype=np.float32)
        if self.obs_normalizer is not None and getattr(self.obs_normalizer, "norm_obs", False):
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=True)
        bid, ask = decode_actions(np.asarray(actions), params, self.normalized_actions, batch=len(obs))
        offsets = np.stack([bid, ask], axis=-1)
        return encode_offsets(offsets, params, normalize=True) if normalize_actions else offsets

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets at states ``(t, I)`` (needs the default observation features)."""
        if self.features != DEFAULT_FEATURES:
            raise ValueError(f"the policy observes {self.features}, so it is not a function of (t, I) alone")
        obs = state_to_observation(t, inventory, params)
        offsets = self.act(obs.reshape(-1, obs.shape[-1]), params).reshape(*obs.shape[:-1], 2)
        return offsets[..., 0], offsets[..., 1]
