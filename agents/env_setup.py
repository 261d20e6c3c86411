"""The market model behind a registered env id and its keyword arguments (for training and evaluating agents)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

import mm_env  # noqa: F401  (registers the ids)
from mm_env.params import MarketParams, make_params
from mm_env.spaces import DEFAULT_FEATURES, check_features

ENTRY_POINT = "mm_env.env:MarketMakingEnv"


@dataclass(frozen=True)
class EnvSetup:
    """The market model behind an env id and its keyword arguments."""

    params: MarketParams
    features: tuple[str, ...]
    normalize_actions: bool


def env_setup(env_id: str, env_kwargs: dict[str, Any]) -> EnvSetup:
    """Resolve a registered market-making env id plus overrides into the model parameters."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(f"--env {env_id!r} is not a registered environment id ({error})") from None
    if spec.entry_point != ENTRY_POINT:
        raise ValueError(
            f"--env {env_id!r} is not a market-making environment of mm_env (entry point {spec.entry_point})"
        )
    kwargs = {**spec.kwargs, **env_kwargs}
    features = check_features(kwargs.pop("observation_features", DEFAULT_FEATURES))
    normalize_actions = bool(kwargs.pop("normalize_actions", True))
    kwargs.pop("render_mode", None)
    params = make_params(kwargs.pop("params", None) or kwargs.pop("preset", "default"), **kwargs)
    if features[:2] != DEFAULT_FEATURES:
        raise ValueError(f"observation_features must start with {DEFAULT_FEATURES} for the comparisons; got {features}")
    return EnvSetup(params, features, normalize_actions)
