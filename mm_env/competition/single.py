"""``CompetingMarketMakers-v0``: one market maker learns, the others follow a fixed policy (Gymnasium and vector)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mm_env.competition.config import CompetitionConfig
from mm_env.competition.learners import LearnerBatch
from mm_env.dynamics import MarketState
from mm_env.limits import check_options
from mm_env.opponents import Opponent
from mm_env.vector_env import MarketMakingVectorEnv


class CompetingMarketMakersEnv(gym.Env[np.ndarray, np.ndarray]):
    r"""Market maker ``mm_0`` quotes against ``M − 1`` competitors who follow a fixed policy (``MODEL.md`` §8).

    ## Description

    The game of :class:`~mm_env.competition.parallel.CompetitionParallelEnv` seen by its first market maker: the
    others quote by ``opponent``. A trader goes to the best price on its side among the market makers that can
    trade there (ties split at random), so quoting one tick inside a competitor wins its flow. With an exact
    solution of the game, the optimum of this env is the exact best response to the opponent
    (:func:`agents.exact.game.best_response`).

    ## Action Space

    That of :class:`mm_env.env.MarketMakingEnv` (``Box(-1, 1, (2,), float32)``, or raw offsets with
    ``normalize_actions=False``); the offsets are rounded to the tick grid.

    ## Observation Space

    ``Box(float32)``: own inventory ``I_0 / I_max``, the competitors' inventories, the fraction of the episode left
    and, with ``momentum ≠ 0``, the last trade's side.

    ## Rewards

    ``mm_0``'s reward of the one-MM env (``spread`` or ``mtm``) on its own fills, inventory and cash.

    ## Starting State

    No inventory or cash for anyone, the mid at ``P0``.

    ## Episode End

    Terminates after ``T`` steps.

    ## Info

    ``inventory``, ``cash``, ``mtm_pnl``, ``mid``; after a step also ``bid``, ``ask``, ``fill_size``,
    ``spread_captured``, ``inventory_penalty``, ``trader_side``, ``trader_size`` and ``won`` (the trader came to
    ``mm_0``).

    ## Arguments

    ```python
    import gymnasium as gym
    import mm_env

    env = gym.make("mm_env/CompetingMarketMakers-v0", opponent="equilibrium")   # or "cartel", "article", "monopoly"
    env = gym.make("mm_env/CompetingMarketMakers-v0", opponent=my_policy, reward="mtm", tick=0.05)
    ```

    ``opponent``: a registered name (:func:`mm_env.opponents.opponent_names`), a one-MM
    :class:`agents.policies.Policy` (each competitor applies it to its own inventory) or an object with
    ``quote(state, params)`` giving every market maker's offsets (see :func:`mm_env.opponents.make_opponent`). The
    other keywords are those of
    :meth:`mm_env.competition.config.CompetitionConfig.from_kwargs` (``num_market_makers``, ``tick``, ``preset``,
    any market parameter).

    ## Version History

    * v0: Initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, opponent: Opponent = "equilibrium", *, render_mode: str | None = None, **env_kwargs: Any
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r} is invalid: allowed {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.config = CompetitionConfig.from_kwargs(**env_kwargs)
        self.params = self.config.params
        self._batch = LearnerBatch(self.config, 1, (0,), opponent)
        self.opponent = self._batch.opponent
        self.observation_space = self.config.observation_space
        self.action_space = self.config.action_space
        self._running = False

    @property
    def state(self) -> MarketState:
        """The model state (a :class:`~mm_env.dynamics.MarketState` with a batch axis of length 1 and ``M`` agents)."""
        return self._batch.state

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` re-seeds the traders (``options``: none are taken)."""
        check_options(options)
        super().reset(seed=seed)
        self._batch.reset()
        self._running = True
        return self._batch.observe()[0], _first(self._batch.state_info())

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Quote the offsets in ``action`` for one step against the opponents' quotes."""
        if not self._running:
            raise RuntimeError("call reset() before step(), and again after the episode ends")
        outcome, info = self._batch.step(np.asarray(action)[None], self.np_random)
        terminated = bool(outcome.terminated[0])
        self._running = not terminated
        return self._batch.observe()[0], float(outcome.reward[0]), terminated, False, _first(info)


def _first(info: dict[str, np.ndarray]) -> dict[str, Any]:
    return {key: value[0].item() for key, value in info.items()}


class CompetingMarketMakersVectorEnv(MarketMakingVectorEnv):
    """``num_envs`` games of :class:`CompetingMarketMakersEnv` stepped together as NumPy arrays.

    Autoreset, ``reset_mask`` and seeding as in :class:`mm_env.vector_env.MarketMakingVectorEnv`;
    ``gymnasium.make_vec("mm_env/CompetingMarketMakers-v0", num_envs=64, opponent="cartel")`` builds one.
    """

    # The games have no figure: any render_mode is refused.
    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": MarketMakingVectorEnv.metadata["autoreset_mode"]}

    def __init__(
        self,
        num_envs: int = 1,
        opponent: Opponent = "equilibrium",
        *,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if render_mode is not None:  # before the opponent, which may be solved for seconds
            raise ValueError(f"render_mode={render_mode!r} is invalid: allowed {self.metadata['render_modes']}")
        config = CompetitionConfig.from_kwargs(**env_kwargs)
        batch = LearnerBatch(config, num_envs, (0,), opponent, max_episode_steps)
        self.opponent = batch.opponent
        """The others' joint policy (``mm_0`` learns)."""
        self._adopt(batch, render_mode)
