"""The one-market-maker environment on JAX, in gymnax's form: pure, jittable, vmappable, auto-resetting."""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp

from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState, transition, wealth
from mm_env.jax.core import initial_state, sample_draws
from mm_env.jax.namespace import JAX
from mm_env.jax.spaces import Box
from mm_env.limits import MAX_EPISODES
from mm_env.params import MarketParams
from mm_env.spaces import FEATURES, ActionDecoder

StepResult = tuple[jax.Array, MarketState, jax.Array, jax.Array, jax.Array, dict[str, Any]]


class MarketMakingEnv:
    """The market-making environment of ``mm_env/MarketMaking-v0`` on JAX, with gymnax's interface.

    The same model, observations, actions and rewards as the Gymnasium environment: the transition is the one of
    :mod:`mm_env.dynamics`, run on ``jax.numpy`` (:mod:`mm_env.jax.namespace`), so on identical draws the two take
    identical steps. It is built from the same keywords as ``gym.make("mm_env/MarketMaking-v0", ...)`` (see
    :meth:`mm_env.config.EnvConfig.from_kwargs`)::

        import jax
        from mm_env.jax import MarketMakingEnv

        env = MarketMakingEnv(preset="default", lam=0.003)
        params = env.default_params
        obs, state = env.reset(jax.random.key(0), params)
        action = env.action_space(params).sample(jax.random.key(1))
        obs, state, reward, terminated, truncated, info = env.step(jax.random.key(2), state, action, params)

    ## Interface (gymnax 1.0)

    ``reset(key, params)`` gives ``(obs, state)``; ``step(key, state, action, params)`` gives ``(obs, state, reward,
    terminated, truncated, info)``. Both are pure and jitted; ``jax.vmap`` them over keys (and states) for a batch
    of environments, or over a stacked ``params`` (:func:`mm_env.jax.stack_params`) for a batch of models.
    ``params`` is the model itself, a :class:`~mm_env.params.MarketParams` registered as a pytree
    (:mod:`mm_env.jax.pytrees`); ``None`` means :attr:`default_params`. The state is a
    :class:`~mm_env.dynamics.MarketState` of arrays of shape ``()``.

    **Auto-reset**, as gymnax: the step that ends an episode returns the first observation and state of a new one,
    with the episode's last observation in ``info["final_observation"]`` (the reward and ``terminated`` are the
    last step's). For code written against gymnax's older 5-tuple step, wrap the environment in
    :class:`mm_env.jax.LegacyStepWrapper`.

    ## Action Space

    ``Box(-1, 1, (2,))`` (bid, ask), mapped linearly onto ``[delta_min, delta_max]`` and clipped; or the raw
    offsets with ``normalize_actions=False``. Under ``jit`` nothing is checked: a non-finite action gives non-finite
    quotes, which never fill.

    ## Observation Space

    float32, the features of the Gymnasium environment (by default ``(I / I_max, (T − t) / T)``, plus the last
    trade's side with momentum; see :data:`mm_env.spaces.FEATURES`).

    ## Rewards

    Those of ``mm_env/MarketMaking-v0``: ``Q'·δ_S − λ·I'²`` (``reward="spread"``) or the change of ``X + I·P``
    minus the same penalty (``"mtm"``), and ``α·I_T²`` at the end.

    ## Precision

    The arrays take JAX's default precision: float32, unless the caller turned on 64-bit mode (``jax.enable_x64``);
    the library never turns it on. In float64 the steps equal the NumPy environment's to 1e-12 relative. In
    float32 cash and the mid carry about 7 significant digits: an episode's return stays within a few units of
    1e-4 relative of float64's at the defaults (``tests/test_jax_env.py`` measures it).

    ## Version History

    * v0: Initial version.
    """

    def __init__(self, params: MarketParams | None = None, **env_kwargs: Any) -> None:
        self.config = EnvConfig.from_kwargs(params, **env_kwargs)
        self._features = tuple(FEATURES[name] for name in self.config.features)

    @property
    def default_params(self) -> MarketParams:
        """The model this environment was built with."""
        return self.config.params

    @property
    def name(self) -> str:
        """The environment's name."""
        return "MarketMaking-v0"

    @property
    def num_actions(self) -> int:
        """The size of an action (bid and ask)."""
        return 2

    def observation_space(self, params: MarketParams | None = None) -> Box:
        """The observation space (the same for every model)."""
        low = [feature.low for feature in self._features]
        high = [feature.high for feature in self._features]
        return Box(jnp.asarray(low), jnp.asarray(high), (len(self._features),), jnp.float32)

    def action_space(self, params: MarketParams | None = None) -> Box:
        """The action space: ``[-1, 1]²``, or ``[delta_min, delta_max]²`` for raw offsets."""
        params = self.default_params if params is None else params
        if self.config.normalize_actions:
            return Box(-1.0, 1.0, (2,), jnp.float32)
        return Box(params.delta_min, params.delta_max, (2,), jnp.float32)

    def get_obs(
        self, state: MarketState, params: MarketParams | None = None, key: jax.Array | None = None
    ) -> jax.Array:
        """The observation of a state, float32."""
        params = self.default_params if params is None else params
        return self.config.observer.batch(state, params, JAX)  # type: ignore[return-value]  # a JAX array

    def is_terminal(self, state: MarketState, params: MarketParams | None = None) -> jax.Array:
        """Whether the episode has ended (after ``T`` steps)."""
        params = self.default_params if params is None else params
        return cast(jax.Array, state.t >= params.T)

    def reset_env(
        self, key: jax.Array, params: MarketParams, shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, MarketState]:
        """The start of an episode (deterministic: the randomness is in the steps), or of a batch of that shape."""
        state = initial_state(params, shape)
        return self.get_obs(state, params), state

    def step_env(
        self, key: jax.Array, state: MarketState, action: jax.Array, params: MarketParams
    ) -> tuple[jax.Array, MarketState, jax.Array, jax.Array, dict[str, Any]]:
        """One step without the auto-reset: ``(obs, state, reward, terminated, info)``.

        One environment (a state of shape ``()``, an action ``(2,)``) or a batch (a state of shape ``(n,)``, actions
        ``(n, 2)``), whose draws come from the one key at once.
        """
        action_array: Any = jnp.asarray(action, dtype=float)  # typed as any: the model's functions take it untyped
        offsets: Any = ActionDecoder(params, self.config.normalize_actions).offsets(action_array, JAX)
        bid, ask = offsets[..., 0], offsets[..., 1]
        draws = sample_draws(key, params, jnp.shape(state.t))
        after, outcome = transition(state, bid, ask, draws, params, JAX)
        info = {
            "inventory": after.inventory,
            "mid": after.mid,
            "cash": after.cash,
            "mtm_pnl": wealth(after, params),
            "bid": state.mid - bid,
            "ask": state.mid + ask,
            "trader_side": outcome.trader_side,
            "trader_size": outcome.trader_size,
            "fill_side": jnp.sign(after.traded),
            "fill_size": outcome.executed,
            "spread_captured": outcome.spread_captured,
            "inventory_penalty": outcome.inventory_penalty,
        }
        reward, terminated = cast(jax.Array, outcome.reward), cast(jax.Array, outcome.terminated)
        return self.get_obs(after, params), after, reward, terminated, info

    def reset(self, key: jax.Array, params: MarketParams | None = None) -> tuple[jax.Array, MarketState]:
        """Start an episode: ``(obs, state)``."""
        return _reset(self, key, self.default_params if params is None else params)

    def step(
        self, key: jax.Array, state: MarketState, action: jax.Array, params: MarketParams | None = None
    ) -> StepResult:
        """One step, then a new episode if this one ended: ``(obs, state, reward, terminated, truncated, info)``.

        Also steps a batch from :meth:`reset_batch` (actions ``(n, 2)``; every output gains the batch axis).
        """
        return _step(self, key, state, action, self.default_params if params is None else params)

    def reset_batch(
        self, key: jax.Array, num_envs: int, params: MarketParams | None = None
    ) -> tuple[jax.Array, MarketState]:
        """Start ``num_envs`` episodes at once: observations ``(n, d)`` and a state of arrays ``(n,)``.

        :meth:`step` then steps the whole batch with one key, drawing every environment's random numbers at once, as
        the NumPy vector env does; ``jax.vmap`` over per-environment keys (gymnax's way) gives the same model with
        other draws, and costs a random-key derivation per environment and step.
        """
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or not 1 <= num_envs <= MAX_EPISODES:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer in [1, {MAX_EPISODES:,}]")
        return _reset(self, key, self.default_params if params is None else params, (num_envs,))


@jax.jit(static_argnames=("env", "shape"))
def _reset(
    env: MarketMakingEnv, key: jax.Array, params: MarketParams, shape: tuple[int, ...] = ()
) -> tuple[jax.Array, MarketState]:
    return env.reset_env(key, params, shape)


@jax.jit(static_argnames=("env",))
def _step(
    env: MarketMakingEnv, key: jax.Array, state: MarketState, action: jax.Array, params: MarketParams
) -> StepResult:
    # The reset is deterministic, so the step's draws take the whole key (gymnax splits off a key for the reset).
    obs_step, state_step, reward, terminated, info = env.step_env(key, state, action, params)
    obs_reset, state_reset = env.reset_env(key, params, jnp.shape(terminated))
    state = jax.tree_util.tree_map(lambda new, old: jnp.where(terminated, new, old), state_reset, state_step)
    obs = jnp.where(terminated[..., None], obs_reset, obs_step)
    truncated = jnp.zeros_like(terminated)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_step}
    return obs, state, reward, terminated, truncated, info
