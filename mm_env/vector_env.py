"""The natively batched Gymnasium vector front-end."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mm_env.batch import BatchOutcome, MarketBatch, MarketModel, VecBatch
from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState
from mm_env.limits import check_options
from mm_env.params import MarketParams
from mm_env.render import EpisodeRenderer, require_matplotlib


class BatchVectorEnv(gym.vector.VectorEnv):
    """Gymnasium's vector env over a batch of any market family (a :class:`~mm_env.batch.VecBatch`).

    A subclass builds its batch and hands it to :meth:`_adopt`. Autoreset follows
    :attr:`gymnasium.vector.AutoresetMode.NEXT_STEP`: the ``step`` after an environment's episode ends resets it (its
    action is ignored, its reward is 0 and its trade ``info`` entries are masked out); ``reset(options={"reset_mask":
    mask})`` resets only the environments where ``mask`` is true; one ``numpy.random.Generator`` drives the whole
    batch. ``info`` holds one array per key with the usual ``_key`` masks. Where a subclass's metadata allows
    ``render_mode="rgb_array"`` (one market maker's), :meth:`render` draws environment 0's episode.
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    # A class default, so that closing an env whose construction was refused (Gymnasium's VectorEnv.__del__ closes
    # every env it collects) finds no figure to release rather than no attribute.
    _renderer: EpisodeRenderer | None = None

    _batch: VecBatch[Any, Any, Any]

    def _adopt(self, batch: VecBatch[Any, Any, Any], render_mode: str | None) -> None:
        self._renderer = None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is invalid: allowed {self.metadata['render_modes']}")
        self.render_mode = render_mode
        if render_mode == "rgb_array":
            require_matplotlib()  # fail here, not at the first frame
            params = batch.params
            assert isinstance(params, MarketParams)  # only one market maker's front-end allows a render mode
            self._renderer = EpisodeRenderer(params.T)
        self._batch = batch
        self.num_envs = self._batch.num_envs
        self.single_observation_space = self._batch.config.observation_space
        self.single_action_space = self._batch.config.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._was_reset = False  # the generator is seeded by reset(): stepping before it would be irreproducible
        self._all = np.ones(self.num_envs, dtype=bool)
        self._all.flags.writeable = False
        self._state_masks = tuple(f"_{key}" for key in batch.STATE_INFO_KEYS)
        self._trade_masks = tuple(f"_{key}" for key in batch.TRADE_INFO_KEYS)
        self._full_masks = dict.fromkeys(self._state_masks + self._trade_masks, self._all)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every environment, or those in ``options["reset_mask"]``; ``seed`` re-seeds the batch."""
        mask = check_options(options, ("reset_mask",)).get("reset_mask")
        super().reset(seed=seed)
        self._was_reset = True
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},); got {mask!r}")
            self._needs_reset &= ~mask
        else:
            self._needs_reset[:] = False
        self._batch.reset(mask)
        if self._renderer is not None and (mask is None or mask[0]):
            self._renderer.clear()
        info = self._batch.state_info()
        reset = self._all if mask is None else mask
        info.update(dict.fromkeys(self._state_masks, reset))
        return self._batch.observe(), info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment; the ones whose episode ended at the last step are reset instead."""
        if not self._was_reset:
            raise RuntimeError("call reset() before step()")
        if self._needs_reset.any():
            resetting = self._needs_reset
            self._batch.reset(resetting)
            stepped = ~resetting
            before = self._batch.state  # a step makes new state arrays, so this stays the state before it
            outcome, info = self._batch.step(actions, self.np_random, active=stepped)
            terminated = np.asarray(outcome.terminated).astype(bool)
            masks = dict.fromkeys(self._state_masks, self._all) | dict.fromkeys(self._trade_masks, stepped)
        else:
            stepped = self._all
            before = self._batch.state
            outcome, info = self._batch.step(actions, self.np_random)
            terminated = np.asarray(outcome.terminated)
            masks = self._full_masks
        truncated = self._batch.truncated(terminated)
        if stepped is not self._all:
            truncated &= stepped
        self._needs_reset = terminated | truncated  # a new array: the caller may modify the ones it receives
        info.update(masks)
        if self._renderer is not None:
            self._record_first(before, bool(stepped[0]), outcome, info)
        return self._batch.observe(), np.asarray(outcome.reward), terminated, truncated, info

    def _record_first(self, before: MarketState, stepped: bool, outcome: BatchOutcome, info: dict[str, Any]) -> None:
        """Add environment 0's step to the rendered history; its autoreset step starts a new episode instead."""
        assert self._renderer is not None
        if not stepped:
            self._renderer.clear()
            return
        mid, reward = np.asarray(before.mid)[0], np.asarray(outcome.reward)[0]
        self._renderer.record(mid, info["bid"][0], info["ask"][0], info["inventory"][0], reward)

    # Gymnasium 1.2 (what RLlib pins) types a frame as an unbound TypeVar, which no concrete return type overrides.
    def render(self) -> tuple[np.ndarray] | None:  # type: ignore[override, unused-ignore]
        """With ``render_mode="rgb_array"``: ``(frame,)``, environment 0's episode so far as a uint8 image.

        A one-element tuple, as a vector env's ``render()`` returns a tuple of frames; the frame is the one that
        ``MarketMakingEnv.render()`` gives for the same history. Gymnasium's vector ``RecordVideo`` and
        ``HumanRendering`` expect a frame per environment, so they take this env with ``num_envs=1`` only.
        """
        if self._renderer is None:
            gym.logger.warn("render() needs render_mode='rgb_array' at construction")
            return None
        return (self._renderer.render(),)

    def close_extras(self, **kwargs: Any) -> None:
        """Release the figure of ``render()``."""
        if self._renderer is not None:
            self._renderer.close()


class MarketMakingVectorEnv(MarketModel, BatchVectorEnv):
    """``num_envs`` market-making environments stepped together as NumPy arrays.

    The model, spaces, rewards and ``info`` keys are those of :class:`mm_env.env.MarketMakingEnv` (see its
    docstring); this class adds the batch. ``info`` holds one array per key with the usual ``_key`` masks.

    Autoreset follows :attr:`gymnasium.vector.AutoresetMode.NEXT_STEP`: the ``step`` after an environment's episode
    ends resets it (its action is ignored, its reward is 0 and its trade ``info`` entries are masked out).
    ``reset(options={"reset_mask": mask})`` resets only the environments where ``mask`` is true.

    One ``numpy.random.Generator`` drives the whole batch, so ``reset(seed=s)`` fixes every environment. Random
    draws are taken only for environments that step, so with ``num_envs=1`` the trajectory equals that of the
    single environment reset with the same seed, episode after episode.

    Arguments are those of ``MarketMakingEnv`` plus ``num_envs`` and ``max_episode_steps`` (an optional truncation
    before ``T``), so ``gymnasium.make_vec("mm_env/MarketMaking-v0", num_envs=64)`` builds one directly.

    With ``render_mode="rgb_array"`` the vector env draws its first environment only (drawing them all would cost a
    frame per environment): :meth:`render` returns a one-element tuple holding environment 0's frame, the figure
    ``MarketMakingEnv.render()`` draws for the same history, which follows environment 0 across its autoresets.
    """

    metadata: dict[str, Any] = {
        "render_modes": ["rgb_array"],
        "render_fps": 30,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        params: MarketParams | None = None,
        *,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        config = EnvConfig.from_kwargs(params, **env_kwargs)
        self._adopt(MarketBatch(config, num_envs, max_episode_steps), render_mode)
