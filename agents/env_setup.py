"""The environment configuration behind a registered env id and its keyword arguments (for training and evaluating)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

import mm_env  # noqa: F401  (registers the ids)
from mm_env.config import EnvConfig

ENTRY_POINT = "mm_env.env:MarketMakingEnv"


def env_config(env_id: str, env_kwargs: dict[str, Any]) -> EnvConfig:
    """Resolve a registered market-making env id plus keyword arguments into its :class:`EnvConfig`.

    Raises ``ValueError`` for an unknown id, an id of another package, or an invalid keyword.
    """
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(f"--env {env_id!r} is not a registered environment id ({error})") from None
    if spec.entry_point != ENTRY_POINT:
        raise ValueError(
            f"--env {env_id!r} is not a market-making environment of mm_env (entry point {spec.entry_point})"
        )
    kwargs = {**spec.kwargs, **env_kwargs}
    kwargs.pop("render_mode", None)
    return EnvConfig.from_kwargs(**kwargs)
