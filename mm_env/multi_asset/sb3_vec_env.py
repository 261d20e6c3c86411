"""The multi-asset Stable-Baselines3 ``VecEnv`` (imports SB3, so :mod:`mm_env.multi_asset` does not import it)."""

from __future__ import annotations

from typing import Any

from mm_env.batch import BatchedModel
from mm_env.multi_asset.batch import MultiAssetBatch
from mm_env.multi_asset.config import MultiAssetConfig
from mm_env.multi_asset.dynamics import MultiAssetState
from mm_env.multi_asset.params import MultiAssetParams
from mm_env.sb3_vec_env import BatchVecEnv


class MultiAssetMarketMakingVecEnv(BatchedModel[MultiAssetState, MultiAssetParams, MultiAssetConfig], BatchVecEnv):
    """``num_envs`` multi-asset environments as one Stable-Baselines3 ``VecEnv``, stepped as NumPy arrays.

    The model, spaces, rewards and ``info`` keys are those of
    :class:`mm_env.multi_asset.env.MultiAssetMarketMakingEnv`. Autoreset follows SB3's convention: an environment
    whose episode ends is reset in the same ``step``, the returned observation is the new episode's first, and its
    ``info`` carries ``terminal_observation`` and ``TimeLimit.truncated``.

    ``seed(s)`` followed by ``reset()`` seeds the one generator that drives the whole batch; with ``num_envs=1`` the
    trajectory equals that of ``MultiAssetMarketMakingEnv`` reset with seed ``s``. ``market_info=False`` leaves the
    per-environment ``info`` dicts empty apart from the terminal entries, which is faster for large batches.

    The environments are one object: ``get_attr`` returns its attribute once per requested index; ``set_attr`` and
    ``env_method`` act on the whole batch, so they take no subset of indices.
    """

    def __init__(
        self,
        num_envs: int = 1,
        params: MultiAssetParams | None = None,
        *,
        max_episode_steps: int | None = None,
        market_info: bool = True,
        **env_kwargs: Any,
    ) -> None:
        config = MultiAssetConfig.from_kwargs(params, **env_kwargs)
        self._adopt(MultiAssetBatch(config, num_envs, max_episode_steps), market_info)
