"""The PettingZoo front-ends of competing market makers: a ``ParallelEnv`` and its AEC form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from mm_env.batch import MarketBatch
from mm_env.competition.config import CompetitionConfig
from mm_env.dynamics import MarketState
from mm_env.limits import check_options


class CompetitionParallelEnv(ParallelEnv[str, np.ndarray, np.ndarray]):
    r"""``M`` market makers quote against each other for one order flow (``MODEL.md`` §8).

    ## Description

    The market of :class:`mm_env.env.MarketMakingEnv` (one mid, one trader per step, the fill law, impact, noise and
    the reward of each market maker on its own inventory), shared by ``M`` market makers, ``mm_0``,
    ``mm_1``, … Each quotes a bid and an ask offset, rounded to the tick grid. A trader goes to the best
    price on its side among the market makers that can still trade there; ties are split uniformly at random. It
    accepts that quote with probability ``A·exp(−k·δ)``, and the winner alone trades ``min(Q, its capacity)``.

    ## Action Space

    Per market maker, that of the one-MM env: ``Box(-1, 1, (2,), float32)`` mapped onto ``[delta_min, delta_max]``
    (or the raw offsets with ``normalize_actions=False``), then rounded to the nearest tick.

    ## Observation Space

    Per market maker, ``Box(float32)`` of: its own inventory ``I_j / I_max``, the others' inventories (in their
    index order), the fraction of the episode left ``(T − t) / T`` and, with ``momentum ≠ 0``, the last trade's side.
    :meth:`state` gives the global state: every inventory, then the time left.

    ## Rewards

    Each market maker's reward of the one-MM env on its own fills, inventory and cash (``spread`` or ``mtm``).

    ## Episode End

    Every market maker terminates after ``T`` steps; the agents list is then empty until ``reset``.

    ## Info

    Per market maker: ``inventory``, ``cash``, ``mtm_pnl``, ``mid``; after a step also ``bid`` and ``ask`` (its
    quoted prices), ``fill_size``, ``spread_captured``, ``inventory_penalty``, ``won`` (the trader came to it), and
    the step's ``trader_side`` and ``trader_size``.

    ## Arguments

    ```python
    from mm_env.competition import parallel_env

    env = parallel_env(num_market_makers=2, tick=0.01, reward="mtm")
    ```

    The keywords are those of :meth:`mm_env.competition.config.CompetitionConfig.from_kwargs`.

    ## Version History

    * v0: Initial version.
    """

    metadata: dict[str, Any] = {"name": "competing_market_makers_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, **env_kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r} is invalid: allowed {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.config = CompetitionConfig.from_kwargs(**env_kwargs)
        self.params = self.config.params
        self.possible_agents = list(self.params.agents)
        self.agents: list[str] = []
        self._batch = MarketBatch(self.config, 1)
        self._rng, _ = seeding.np_random()
        self._observation_space = self.config.observation_space
        self._action_space = self.config.action_space
        m = self.params.num_market_makers
        self.state_space = spaces.Box(
            np.array([-1.0] * m + [0.0], dtype=np.float32), np.ones(m + 1, dtype=np.float32), dtype=np.float32
        )

    def observation_space(self, agent: str) -> spaces.Box:
        """One market maker's observation space (the same object for all, as PettingZoo asks)."""
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Box:
        """One market maker's action space (the same for all)."""
        return self._action_space

    @property
    def model_state(self) -> MarketState:
        """The model state of the one environment (arrays with a batch axis of length 1)."""
        return self._batch.state

    def state(self) -> np.ndarray:
        """The global state: every inventory over ``I_max``, then the fraction of the episode left."""
        state = self._batch.state
        market = self.params.market
        time_left = (market.T - np.asarray(state.t)[0]) / market.T
        return np.append(np.asarray(state.inventory)[0] / market.I_max, time_left).astype(np.float32)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a new episode; ``seed`` re-seeds the traders (``options``: a dict, ignored)."""
        check_options(options, allowed=None)
        if seed is not None:
            self._rng, _ = seeding.np_random(seed)
        self._batch.reset()
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos(self._batch.state_info())

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """Every market maker quotes its action; a missing one raises ``ValueError``."""
        if not self.agents:
            raise RuntimeError("the episode has ended (or reset() was never called); call reset()")
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict from agent name to action; got {type(actions).__name__}")
        unknown = sorted(set(actions) - set(self.possible_agents))
        if unknown:
            raise ValueError(f"actions name unknown agents {unknown}; the agents are {self.possible_agents}")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"actions are missing for {missing}; every market maker quotes at every step")
        joint = np.stack([np.asarray(actions[agent], dtype=np.float64) for agent in self.agents])[None]
        outcome, info = self._batch.step(joint, self._rng)
        done = bool(np.asarray(outcome.terminated)[0])
        observations = self._observations()
        reward = np.asarray(outcome.reward)
        rewards = {agent: float(reward[0, j]) for j, agent in enumerate(self.agents)}
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        infos = self._infos(info)
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _observations(self) -> dict[str, np.ndarray]:
        obs = self._batch.observe()[0]
        return {agent: obs[j] for j, agent in enumerate(self.possible_agents)}

    def _infos(self, info: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
        infos: dict[str, dict[str, Any]] = {}
        for j, agent in enumerate(self.possible_agents):
            entry = {key: float(value[0, j]) if value.ndim == 2 else float(value[0]) for key, value in info.items()}
            if "winner" in entry:
                entry["won"] = entry.pop("winner") == j
            infos[agent] = entry
        return infos


def parallel_env(**env_kwargs: Any) -> CompetitionParallelEnv:
    """The competing market makers as a PettingZoo ``ParallelEnv`` (keywords: see ``CompetitionConfig``)."""
    return CompetitionParallelEnv(**env_kwargs)


def env(**env_kwargs: Any) -> AECEnv:
    """The same game in PettingZoo's AEC form (the market makers act in turn; the step happens once all have)."""
    return parallel_to_aec(parallel_env(**env_kwargs))


raw_env = env
