"""Registration of the environment ids with Gymnasium (done when ``mm_env`` is imported)."""

from __future__ import annotations

import gymnasium as gym

MARKET_MAKING_ID = "mm_env/MarketMaking-v0"
ARTICLE_ID = "mm_env/ArticleMarketMaker-v0"
COMPETING_ID = "mm_env/CompetingMarketMakers-v0"
_ENTRY_POINT = "mm_env.env:MarketMakingEnv"
_VECTOR_ENTRY_POINT = "mm_env.vector_env:MarketMakingVectorEnv"


def register_envs() -> None:
    """Register the ids (idempotent, so re-importing the package does not warn)."""
    # The default id passes no preset, so that gym.make(MARKET_MAKING_ID, params=...) works.
    for env_id, kwargs in ((MARKET_MAKING_ID, {}), (ARTICLE_ID, {"preset": "article"})):
        if env_id in gym.registry:
            continue
        # No max_episode_steps: the env terminates itself after T steps, and T is a keyword argument.
        gym.register(
            id=env_id,
            entry_point=_ENTRY_POINT,
            vector_entry_point=_VECTOR_ENTRY_POINT,
            kwargs=kwargs,
        )
    if COMPETING_ID not in gym.registry:
        gym.register(
            id=COMPETING_ID,
            entry_point="mm_env.competition.single:CompetingMarketMakersEnv",
            vector_entry_point="mm_env.competition.single:CompetingMarketMakersVectorEnv",
        )
