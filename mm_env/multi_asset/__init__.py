"""Multi-asset market making (``MODEL.md`` §9): one market maker quotes ``d`` assets under a mean-variance penalty.

The model is :class:`MultiAssetParams` (built by :func:`make_multi_asset_params` from a preset of
:data:`MULTI_ASSET_PRESETS`). The inventory penalty is ``λ·I'ᵀC·I'`` on the inventory vector, so a position in one
asset is partly hedged by an opposite one in a correlated asset. The step is
:func:`mm_env.multi_asset.dynamics.transition`; the front-ends are :class:`MultiAssetMarketMakingEnv` (registered as
``mm_env/MultiAssetMarketMaking-v0``), :class:`MultiAssetMarketMakingVectorEnv` and, in
:mod:`mm_env.multi_asset.sb3_vec_env` (which imports Stable-Baselines3), the SB3 ``VecEnv``.
"""

from mm_env.multi_asset.config import MultiAssetConfig
from mm_env.multi_asset.env import MultiAssetMarketMakingEnv, MultiAssetMarketMakingVectorEnv
from mm_env.multi_asset.params import (
    MULTI_ASSET_NAMES,
    MULTI_ASSET_PRESETS,
    MultiAssetParams,
    make_multi_asset_params,
)

__all__ = [
    "MULTI_ASSET_NAMES",
    "MULTI_ASSET_PRESETS",
    "MultiAssetConfig",
    "MultiAssetMarketMakingEnv",
    "MultiAssetMarketMakingVectorEnv",
    "MultiAssetParams",
    "make_multi_asset_params",
]
