"""The JAX environments inside gymnax's and JaxMARL's own wrappers, where those libraries are installed.

They are not dependencies (gymnax pins an older Gymnasium); these tests run where a user has them, and skip
elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from mm_env.jax import CompetingMarketMakersEnv, MarketMakingEnv  # noqa: E402


def test_gymnax_wrappers_log_episodes_of_the_market_making_env():
    purerl = pytest.importorskip("gymnax.wrappers.purerl")
    compat = pytest.importorskip("gymnax.wrappers.compat")
    env = purerl.LogWrapper(purerl.FlattenObservationWrapper(MarketMakingEnv(T=5)))
    params = env.default_params
    obs, state = env.reset(jax.random.key(0), params)
    total = 0.0
    for t in range(5):
        obs, state, reward, terminated, truncated, info = env.step(jax.random.key(t + 1), state, jnp.zeros(2), params)
        total += float(reward)
    assert bool(info["returned_episode"]) and np.isclose(float(info["returned_episode_returns"]), total, atol=1e-4)
    legacy = compat.LegacyStepAPIWrapper(MarketMakingEnv(T=1))
    _, state = legacy.reset(jax.random.key(0))
    assert len(legacy.step(jax.random.key(1), state, jnp.zeros(2))) == 5


def test_gymnaxs_gymnasium_wrapper_runs_the_env_as_a_gymnasium_env():
    gym_wrappers = pytest.importorskip("gymnax.wrappers.gym")
    env = gym_wrappers.GymnaxToGymWrapper(MarketMakingEnv(T=3), seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
    assert terminated


def test_jaxmarls_log_wrapper_logs_episodes_of_the_competing_market_makers():
    baselines = pytest.importorskip("jaxmarl.wrappers.baselines")
    env = baselines.LogWrapper(CompetingMarketMakersEnv(T=4))
    obs, state = env.reset(jax.random.key(0))
    actions = {agent: jnp.zeros(2) for agent in env._env.agents}
    for t in range(4):
        obs, state, rewards, dones, infos = env.step(jax.random.key(t + 1), state, actions)
    assert bool(dones["__all__"]) and bool(np.all(infos["returned_episode"]))
    assert sorted(obs) == ["mm_0", "mm_1"]
