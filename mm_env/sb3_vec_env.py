"""The natively batched Stable-Baselines3 ``VecEnv`` front-end (imports SB3, so it is not imported by ``mm_env``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from mm_env.batch import MarketBatch, MarketModel, VecBatch
from mm_env.config import EnvConfig
from mm_env.limits import check_options
from mm_env.params import MarketParams


class BatchVecEnv(VecEnv):
    """SB3's ``VecEnv`` over a batch of any market family (a :class:`~mm_env.batch.VecBatch`), stepped as arrays.

    A subclass builds its batch and hands it to :meth:`_adopt`. Autoreset follows SB3's convention: an environment
    whose episode ends is reset in the same ``step``, the returned observation is the new episode's first, and its
    ``info`` carries ``terminal_observation`` and ``TimeLimit.truncated``. ``seed(s)`` followed by ``reset()`` seeds
    the one generator that drives the whole batch. ``market_info=False`` leaves the per-environment ``info`` dicts
    empty apart from the terminal entries. The environments are one object: ``get_attr`` returns its attribute once
    per requested index; ``set_attr`` and ``env_method`` act on the whole batch, so they take no subset of indices.
    """

    _batch: VecBatch[Any, Any, Any]

    def _adopt(self, batch: VecBatch[Any, Any, Any], market_info: bool) -> None:
        self._batch = batch
        self.market_info = bool(market_info)
        self.render_mode = None
        self.np_random: np.random.Generator | None = None
        self._actions: np.ndarray | None = None
        self._info_keys = batch.STATE_INFO_KEYS + batch.TRADE_INFO_KEYS
        VecEnv.__init__(self, batch.num_envs, batch.config.observation_space, batch.config.action_space)

    def reset(self) -> VecEnvObs:
        """Reset every environment (seeded by the last ``seed()`` call, if any; ``set_options`` takes none)."""
        for options in self._options:
            check_options(options)
        if self._seeds[0] is not None or self.np_random is None:
            self.np_random, _ = seeding.np_random(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self._batch.reset()
        self.reset_infos = self._reset_infos(np.arange(self.num_envs))
        return self._batch.observe()

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every environment, resetting those whose episode ends."""
        if self.np_random is None:
            raise RuntimeError("call reset() before step()")
        outcome, info = self._batch.step(self._actions, self.np_random)
        terminated = np.asarray(outcome.terminated)
        truncated = self._batch.truncated(terminated)
        dones = terminated | truncated
        obs = self._batch.observe()
        infos = self._step_infos(info)
        if dones.any():
            ended = np.flatnonzero(dones)
            for index in ended:
                infos[index]["terminal_observation"] = obs[index]
                infos[index]["TimeLimit.truncated"] = bool(truncated[index])
            self._batch.reset(dones)
            obs = self._batch.observe()
            for index, reset_info in zip(ended, self._reset_infos(ended), strict=True):
                self.reset_infos[index] = reset_info
        return obs, np.asarray(outcome.reward).astype(np.float32), dones, infos

    def _step_infos(self, info: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        if not self.market_info:
            return [{} for _ in range(self.num_envs)]
        columns = [np.asarray(info[key]).tolist() for key in self._info_keys]
        return [dict(zip(self._info_keys, row, strict=True)) for row in zip(*columns, strict=True)]

    def _reset_infos(self, indices: np.ndarray) -> list[dict[str, Any]]:
        if not self.market_info:
            return [{} for _ in indices]
        columns = {key: np.asarray(values)[indices].tolist() for key, values in self._batch.state_info().items()}
        return [{key: column[j] for key, column in columns.items()} for j in range(len(indices))]

    def close(self) -> None:
        """Nothing to release: the environments live in this process."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of this (shared) object, once per requested index."""
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared object, for every environment (``indices`` must cover them all)."""
        self._require_all(indices, f"set_attr({attr_name!r})")
        if isinstance(getattr(type(self), attr_name, None), property):
            raise ValueError(f"{attr_name!r} is fixed at construction; build a new env to change it")
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the shared object once and return its result for each environment."""
        self._require_all(indices, f"env_method({method_name!r})")
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def _require_all(self, indices: VecEnvIndices, call: str) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(f"{call} on a subset of environments is not supported: the batch is one object")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """The batch wraps no Gymnasium environment."""
        return [False for _ in self._get_indices(indices)]


class MarketMakingVecEnv(MarketModel, BatchVecEnv):
    """``num_envs`` market-making environments as one Stable-Baselines3 ``VecEnv``, stepped as NumPy arrays.

    The model, spaces, rewards and ``info`` keys are those of :class:`mm_env.env.MarketMakingEnv`. Autoreset follows
    SB3's convention: an environment whose episode ends is reset in the same ``step``, the returned observation is
    the new episode's first, and its ``info`` carries ``terminal_observation`` and ``TimeLimit.truncated``. Wrap it in
    ``VecMonitor`` for episode statistics and in ``VecNormalize`` as usual.

    ``seed(s)`` followed by ``reset()`` seeds the one generator that drives the whole batch; with ``num_envs=1`` the
    trajectory equals that of ``MarketMakingEnv`` reset with seed ``s``. ``market_info=False`` leaves the
    per-environment ``info`` dicts empty apart from the terminal entries, which is faster for large batches.

    The environments are one object: ``get_attr`` returns its attribute once per requested index; ``set_attr`` and
    ``env_method`` act on the whole batch, so they take no subset of indices. The model (``params``, ``features``,
    ``max_episode_steps``) is fixed at construction.
    """

    def __init__(
        self,
        num_envs: int = 1,
        params: MarketParams | None = None,
        *,
        max_episode_steps: int | None = None,
        market_info: bool = True,
        **env_kwargs: Any,
    ) -> None:
        self._adopt(MarketBatch(EnvConfig.from_kwargs(params, **env_kwargs), num_envs, max_episode_steps), market_info)
