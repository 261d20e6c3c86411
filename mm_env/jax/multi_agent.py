"""Competing market makers on JAX, in JaxMARL's ``MultiAgentEnv`` form: pure, jittable, auto-resetting."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mm_env.competition.config import CompetitionConfig
from mm_env.dynamics import MarketState, transition
from mm_env.jax.core import initial_state, sample_draws
from mm_env.jax.namespace import JAX
from mm_env.jax.spaces import Box
from mm_env.params import CompetitionParams, MarketParams
from mm_env.spaces import ActionDecoder

Dict = dict[str, jax.Array]


class CompetingMarketMakersEnv:
    """The competing market makers of ``mm_env/CompetingMarketMakers-v0`` on JAX, as a JaxMARL environment.

    Built from the same keywords as :meth:`mm_env.competition.config.CompetitionConfig.from_kwargs`
    (``num_market_makers``, ``tick``, ``preset`` or ``params``, ``normalize_actions`` and any market parameter)::

        import jax
        from mm_env.jax import CompetingMarketMakersEnv

        env = CompetingMarketMakersEnv(num_market_makers=2)
        obs, state = env.reset(jax.random.key(0))
        actions = {agent: env.action_space(agent).sample(jax.random.key(i)) for i, agent in enumerate(env.agents)}
        obs, state, rewards, dones, infos = env.step(jax.random.key(1), state, actions)

    ``reset(key)`` gives ``(obs, state)`` and ``step(key, state, actions, reset_state=None)`` gives ``(obs, state,
    rewards, dones, infos)``, each a dict keyed by the agents ``mm_0``, ``mm_1``, … (``dones`` also has
    ``"__all__"``); the step that ends an episode starts a new one (JaxMARL's auto-reset). The game is fixed at
    construction, as in JaxMARL. The state is a :class:`~mm_env.dynamics.MarketState` whose market makers' fields
    have shape ``(M,)``. Observations, actions (snapped to the tick grid), rewards and the price priority between
    market makers are those of the PettingZoo environment, from the same transition (:mod:`mm_env.dynamics`).
    ``infos`` holds arrays over the market makers (``inventory``, ``cash``, ``mtm_pnl``, ``fill_size``) and the
    step's ``mid``, ``trader_side``, ``trader_size`` and ``winner`` (−1 where nobody traded).
    """

    def __init__(self, params: CompetitionParams | MarketParams | None = None, **env_kwargs: Any) -> None:
        self.config = CompetitionConfig.from_kwargs(params, **env_kwargs)
        self.params = self.config.params
        self.agents = list(self.params.agents)
        self.num_agents = len(self.agents)
        space = self.config.observation_space
        self.observation_spaces = {agent: Box.from_gymnasium(space) for agent in self.agents}
        self.action_spaces = {agent: Box.from_gymnasium(self.config.action_space) for agent in self.agents}

    @property
    def name(self) -> str:
        """The environment's name."""
        return "CompetingMarketMakers-v0"

    @property
    def agent_classes(self) -> dict[str, list[str]]:
        """JaxMARL's grouping of agents: one class, the market makers."""
        return {"market_makers": list(self.agents)}

    def observation_space(self, agent: str) -> Box:
        """One market maker's observation space."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> Box:
        """One market maker's action space."""
        return self.action_spaces[agent]

    def get_obs(self, state: MarketState) -> Dict:
        """Each market maker's observation."""
        batch = jax.tree_util.tree_map(lambda field: field[None], state)
        observations = self.config.observe(batch, JAX)[0]  # (M, d)
        return {agent: observations[index] for index, agent in enumerate(self.agents)}

    def reset(self, key: jax.Array) -> tuple[Dict, MarketState]:
        """Start an episode: ``(obs, state)``."""
        return _reset(self, key)

    def step_env(
        self, key: jax.Array, state: MarketState, actions: Dict
    ) -> tuple[Dict, MarketState, Dict, Dict, dict[str, Any]]:
        """One step without the auto-reset."""
        stacked: Any = jnp.stack([jnp.asarray(actions[agent], dtype=float) for agent in self.agents])  # (M, 2)
        market = self.params.market
        offsets = ActionDecoder(market, self.config.normalize_actions).offsets(stacked, JAX)
        on_grid: Any = self.params.on_grid(offsets, JAX)
        batch = jax.tree_util.tree_map(lambda field: field[None], state)
        bid, ask = on_grid[None, :, 0], on_grid[None, :, 1]
        after, step = transition(batch, bid, ask, sample_draws(key, self.params, (1,)), self.params, JAX)
        outcome: Any = step  # arrays of shape (1, M) or (1,): typed as any, as JAX's arrays
        after = jax.tree_util.tree_map(lambda field: field[0], after)
        rewards = {agent: outcome.reward[0, index] for index, agent in enumerate(self.agents)}
        ended = outcome.terminated[0]
        dones = {**{agent: ended for agent in self.agents}, "__all__": ended}
        infos = {
            "inventory": after.inventory,
            "cash": after.cash,
            "mtm_pnl": after.cash + after.inventory * after.mid,  # X + I·P of each market maker
            "fill_size": outcome.executed[0],
            "mid": after.mid,
            "trader_side": outcome.trader_side[0],
            "trader_size": outcome.trader_size[0],
            "winner": outcome.winner[0],
        }
        return self.get_obs(after), after, rewards, dones, infos

    def step(
        self, key: jax.Array, state: MarketState, actions: Dict, reset_state: MarketState | None = None
    ) -> tuple[Dict, MarketState, Dict, Dict, dict[str, Any]]:
        """One step, then a new episode if this one ended (or ``reset_state``, if given)."""
        return _step(self, key, state, actions, reset_state)


@jax.jit(static_argnames=("env",))
def _reset(env: CompetingMarketMakersEnv, key: jax.Array) -> tuple[Dict, MarketState]:
    state = initial_state(env.params)
    return env.get_obs(state), state


@jax.jit(static_argnames=("env",))
def _step(
    env: CompetingMarketMakersEnv, key: jax.Array, state: MarketState, actions: Dict, reset_state: MarketState | None
) -> tuple[Dict, MarketState, Dict, Dict, dict[str, Any]]:
    # The reset is deterministic, so the step's draws take the whole key (JaxMARL splits off a key for the reset).
    obs_step, state_step, rewards, dones, infos = env.step_env(key, state, actions)
    if reset_state is None:
        obs_reset, state_reset = env.reset(key)
    else:
        state_reset, obs_reset = reset_state, env.get_obs(reset_state)
    ended = dones["__all__"]
    state = jax.tree_util.tree_map(lambda new, old: jnp.where(ended, new, old), state_reset, state_step)
    obs = jax.tree_util.tree_map(lambda new, old: jnp.where(ended, new, old), obs_reset, obs_step)
    return obs, state, rewards, dones, infos
