"""gymnax's older step interface, for training code written against it (PureJaxRL-style scripts, rejax)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mm_env.dynamics import MarketState
from mm_env.jax.env import MarketMakingEnv
from mm_env.params import MarketParams


class LegacyStepWrapper:
    """The environment with gymnax's pre-1.0 step, ``(obs, state, reward, done, info)``.

    ``done`` is ``terminated or truncated``; every other attribute is the environment's.
    """

    def __init__(self, env: MarketMakingEnv) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, key: jax.Array, params: MarketParams | None = None) -> tuple[jax.Array, MarketState]:
        """Start an episode: ``(obs, state)``."""
        return self._env.reset(key, params)

    def step(
        self, key: jax.Array, state: MarketState, action: jax.Array, params: MarketParams | None = None
    ) -> tuple[jax.Array, MarketState, jax.Array, jax.Array, dict[str, Any]]:
        """One step with auto-reset: ``(obs, state, reward, done, info)``."""
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info
