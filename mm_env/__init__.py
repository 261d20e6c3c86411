"""mm_env: an exact, fast market-making environment for Gymnasium and Stable-Baselines3.

Importing the package registers ``mm_env/MarketMaking-v0``, ``mm_env/ArticleMarketMaker-v0``,
``mm_env/CompetingMarketMakers-v0`` (competing market makers, :mod:`mm_env.competition`),
``mm_env/MultiAssetMarketMaking-v0`` (one market maker quoting several assets, :mod:`mm_env.multi_asset`) and
``mm_env/Replay-v0`` (a recorded market replayed against a policy, :mod:`mm_env.data.replay`). The SB3
``VecEnv`` lives in :mod:`mm_env.sb3_vec_env` so that importing the package does not import PyTorch.

The core needs only Gymnasium, NumPy and SciPy; the extras add training (``mm_env[train]``), rendering
(``mm_env[render]``), the PettingZoo env (``mm_env[multiagent]``) and Ray (``mm_env[ray]``).
"""

from mm_env.env import MarketMakingEnv
from mm_env.params import MarketParams
from mm_env.presets import ARTICLE_SCENARIOS, PRESETS, ArticleScenario, make_params
from mm_env.registration import (
    ARTICLE_ID,
    COMPETING_ID,
    MARKET_MAKING_ID,
    MULTI_ASSET_ID,
    REPLAY_ID,
    register_envs,
)
from mm_env.vector_env import MarketMakingVectorEnv

__version__ = "0.7.0"

__all__ = [
    "ARTICLE_ID",
    "ARTICLE_SCENARIOS",
    "COMPETING_ID",
    "MARKET_MAKING_ID",
    "MULTI_ASSET_ID",
    "PRESETS",
    "REPLAY_ID",
    "ArticleScenario",
    "MarketMakingEnv",
    "MarketMakingVectorEnv",
    "MarketParams",
    "make_params",
]

register_envs()
