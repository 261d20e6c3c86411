"""Competing market makers as a Stable-Baselines3 ``VecEnv``: one learner against fixed opponents, or self-play."""

from __future__ import annotations

from typing import Any

import numpy as np

from mm_env.competition.config import CompetitionConfig
from mm_env.competition.learners import LearnerBatch
from mm_env.opponents import Opponent
from mm_env.sb3_vec_env import MarketMakingVecEnv


class CompetitionVecEnv(MarketMakingVecEnv):
    """Games of competing market makers as ``num_envs`` environments of one SB3 ``VecEnv``.

    Against fixed opponents (``self_play=False``): each environment is one game, in which ``mm_0`` learns and the
    others quote by ``opponent`` (see :class:`mm_env.competition.single.CompetingMarketMakersEnv`).

    Self-play (``self_play=True``): every market maker learns, and each one's view is one environment, so a single
    SB3 policy drives them all; ``num_envs`` must be a multiple of ``M`` (environments ``g·M … g·M + M − 1`` are the
    market makers of game ``g``). Observations are each market maker's own view (its inventory first), so a
    symmetric policy plays every seat.

    Autoreset, seeding and ``info`` follow :class:`mm_env.sb3_vec_env.MarketMakingVecEnv`.
    """

    def __init__(
        self,
        num_envs: int = 1,
        opponent: Opponent | None = "equilibrium",
        *,
        self_play: bool = False,
        max_episode_steps: int | None = None,
        market_info: bool = True,
        **env_kwargs: Any,
    ) -> None:
        config = CompetitionConfig.from_kwargs(**env_kwargs)
        if self_play:
            m = config.num_market_makers
            valid = isinstance(num_envs, (int, np.integer)) and not isinstance(num_envs, bool)
            if not valid or num_envs < m or num_envs % m:
                raise ValueError(f"num_envs={num_envs!r} is invalid for self-play: must be a multiple of M={m}")
            batch = LearnerBatch(config, int(num_envs) // m, tuple(range(m)), None, max_episode_steps)
        else:
            batch = LearnerBatch(config, num_envs, (0,), opponent, max_episode_steps)
        self.self_play = bool(self_play)
        self.opponent = batch.opponent
        """The others' joint policy (``None`` in self-play, where every market maker learns)."""
        self._adopt(batch, market_info)
