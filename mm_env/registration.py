"""Registration of the environment ids with Gymnasium, and of the named opponents (done when ``mm_env`` is imported).

The opponents are registered by entry point (:mod:`mm_env.opponents`): their code, in ``agents``, is imported only
when a game asks for one of them.
"""

from __future__ import annotations

import gymnasium as gym

from mm_env.opponents import register_opponent

MARKET_MAKING_ID = "mm_env/MarketMaking-v0"
ARTICLE_ID = "mm_env/ArticleMarketMaker-v0"
COMPETING_ID = "mm_env/CompetingMarketMakers-v0"
MULTI_ASSET_ID = "mm_env/MultiAssetMarketMaking-v0"
REPLAY_ID = "mm_env/Replay-v0"
_ENTRY_POINT = "mm_env.env:MarketMakingEnv"
_VECTOR_ENTRY_POINT = "mm_env.vector_env:MarketMakingVectorEnv"
OPPONENT_ENTRY_POINTS = {
    "equilibrium": "agents.policies.opponents:equilibrium",
    "cartel": "agents.policies.opponents:cartel",
    "article": "agents.policies.opponents:article",
    "monopoly": "agents.policies.opponents:monopoly",
}
"""The named opponents: the exact equilibrium and cartel of two market makers, the article's rule and the one-MM DP
optimum (the monopolist's quotes), each of the last two applied to every market maker's own inventory."""


def register_envs() -> None:
    """Register the ids and the named opponents (idempotent, so re-importing the package does not warn)."""
    for name, entry_point in OPPONENT_ENTRY_POINTS.items():
        register_opponent(name, entry_point)
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
    if REPLAY_ID not in gym.registry:  # a recorded market (mm_env.data): gym.make(REPLAY_ID, tape=...)
        gym.register(id=REPLAY_ID, entry_point="mm_env.data.replay:ReplayEnv")
    if COMPETING_ID not in gym.registry:
        gym.register(
            id=COMPETING_ID,
            entry_point="mm_env.competition.single:CompetingMarketMakersEnv",
            vector_entry_point="mm_env.competition.single:CompetingMarketMakersVectorEnv",
        )
    if MULTI_ASSET_ID not in gym.registry:
        gym.register(
            id=MULTI_ASSET_ID,
            entry_point="mm_env.multi_asset.env:MultiAssetMarketMakingEnv",
            vector_entry_point="mm_env.multi_asset.env:MultiAssetMarketMakingVectorEnv",
        )
