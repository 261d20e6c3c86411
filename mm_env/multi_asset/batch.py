"""A batch of multi-asset environments: the state arrays and the one batched step under both vector front-ends.

:class:`MultiAssetBatch` holds ``num_envs`` environments of one configuration and steps them with
:func:`mm_env.multi_asset.dynamics.transition` on NumPy arrays. It owns no randomness and no episode bookkeeping
beyond the model state; the Gymnasium vector env and the SB3 ``VecEnv`` add their own autoreset conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mm_env.batch import check_count
from mm_env.limits import MAX_EPISODES
from mm_env.multi_asset.config import MultiAssetConfig
from mm_env.multi_asset.dynamics import (
    MultiAssetDraws,
    MultiAssetOutcome,
    MultiAssetState,
    initial_state,
    sample_draws,
    transition,
)
from mm_env.xp import NUMPY


def _where(where: np.ndarray, new: Any, old: Any) -> np.ndarray:
    """``new`` in the environments where ``where`` is true, ``old`` elsewhere, over any trailing (asset) axis."""
    return np.where(where.reshape(where.shape + (1,) * (np.ndim(new) - 1)), new, old)


class MultiAssetBatch:
    """The state of ``num_envs`` multi-asset environments and one batched step over them.

    ``max_episode_steps`` optionally truncates episodes before ``T`` (see :meth:`truncated`).
    """

    def __init__(self, config: MultiAssetConfig, num_envs: int, max_episode_steps: int | None = None) -> None:
        self.config = config
        self.params = config.params
        self.num_envs = check_count("num_envs", num_envs)
        if self.num_envs > MAX_EPISODES:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer in [1, {MAX_EPISODES:,}]")
        self.max_episode_steps = (
            None if max_episode_steps is None else check_count("max_episode_steps", max_episode_steps)
        )
        self.STATE_INFO_KEYS = config.STATE_INFO_KEYS
        self.TRADE_INFO_KEYS = config.TRADE_INFO_KEYS
        self.state = initial_state(self.params, self.num_envs)

    def _mask(self, name: str, mask: object) -> np.ndarray:
        """A mask over the environments as a bool array (``ValueError`` for another shape)."""
        array = np.asarray(mask, dtype=bool)
        if array.shape != (self.num_envs,):
            raise ValueError(f"{name} must have one entry per environment, shape ({self.num_envs},); got {array.shape}")
        return array

    def truncated(self, terminated: np.ndarray) -> np.ndarray:
        """Where the episode is cut by ``max_episode_steps`` without having terminated."""
        if self.max_episode_steps is None:
            return np.zeros(self.num_envs, dtype=bool)
        return (self.state.t >= self.max_episode_steps) & ~terminated

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every environment, or only where ``mask`` (one bool per environment) is true."""
        fresh = initial_state(self.params, self.num_envs)
        if mask is None:
            self.state = fresh
            return
        where = self._mask("mask", mask)
        self.state = MultiAssetState._make(_where(where, new, old) for new, old in zip(fresh, self.state, strict=True))

    def observe(self) -> np.ndarray:
        """Observations of every environment, ``(num_envs, d + 1)``."""
        return self.config.observe(self.state, NUMPY)

    def state_info(self) -> dict[str, Any]:
        """The ``info`` arrays that describe the current state."""
        return self.config.state_info(self.state)

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[MultiAssetOutcome, dict[str, Any]]:
        """Decode ``actions`` ``(num_envs, 2d)`` and step every environment, or only those where ``active`` is true.

        Draws are taken only for the environments that step, in index order, so a batch of one consumes the random
        stream exactly as a single environment does. Where ``active`` is false the state is kept, the outcome is
        zero (the trader's asset −1) and so are the trade entries of ``info``.
        """
        offsets = self.config.decode(actions, self.num_envs)
        before = self.state
        if active is None:
            draws = sample_draws(rng, self.params, self.num_envs)
        else:
            active = self._mask("active", active)
            draws = _expand(sample_draws(rng, self.params, int(np.count_nonzero(active))), active)
        after, outcome = transition(before, offsets, draws, self.params, NUMPY)
        if active is not None:
            after = MultiAssetState._make(_where(active, new, old) for new, old in zip(after, before, strict=True))
            nothing = MultiAssetOutcome._make(np.zeros(self.num_envs) for _ in outcome)._replace(
                trader_asset=np.full(self.num_envs, -1.0), terminated=np.zeros(self.num_envs, dtype=bool)
            )
            outcome = MultiAssetOutcome._make(
                _where(active, new, old) for new, old in zip(outcome, nothing, strict=True)
            )
        self.state = after
        info = self.config.step_info(before, after, offsets, outcome)
        if active is not None:
            for key in self.config.TRADE_INFO_KEYS:
                info[key] = _where(active, info[key], -1.0 if key == "trader_asset" else 0.0)
        return outcome, info


def _expand(draws: MultiAssetDraws, active: np.ndarray) -> MultiAssetDraws:
    """The stepping environments' draws in place, zeros for the others (whose step is discarded)."""
    uniforms = np.zeros((3, len(active)))
    uniforms[:, active] = draws.uniforms
    normals = None
    if draws.normals is not None:
        normals = np.zeros((len(draws.normals), len(active)))
        normals[:, active] = draws.normals
    return MultiAssetDraws(uniforms, normals)
