"""The JAX backend: the one transition on jax.numpy equals NumPy's, and the gymnax and JaxMARL conventions hold."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from mm_env.competition.config import CompetitionConfig  # noqa: E402
from mm_env.config import EnvConfig  # noqa: E402
from mm_env.dynamics import Draws, initial_state, sample_draws, transition  # noqa: E402
from mm_env.jax import (  # noqa: E402
    JAX,
    CompetingMarketMakersEnv,
    LegacyStepWrapper,
    MarketMakingEnv,
    stack_params,
)
from mm_env.jax import initial_state as jax_initial_state  # noqa: E402
from mm_env.jax import sample_draws as jax_sample_draws  # noqa: E402
from mm_env.presets import PRESETS, make_competition_params, make_params  # noqa: E402
from mm_env.xp import NUMPY, SCALAR, namespace_of  # noqa: E402

STEPS = 60
BATCH = 8


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@jax.jit
def _scan(params, start, draws, bids, asks):
    def body(state, inputs):
        state, outcome = transition(state, *inputs, params, JAX)
        return state, (state, outcome)

    return jax.lax.scan(body, start, (bids, asks, draws))[1]


def _scan_transition(params, draws, bids, asks):
    """The JAX transition over a whole episode's given draws and quotes, as one jitted scan (the model an argument:
    models of one structure share one compilation)."""
    return _scan(params, jax_initial_state(params, np.shape(bids[0])[:1]), draws, bids, asks)


def _relative_gap(expected, actual):
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    return float(np.max(np.abs(expected - actual) / np.maximum(1.0, np.abs(expected))))


def _numpy_episode(params, seed):
    """NumPy's batch over STEPS steps of random quotes: the draws, quotes, states and outcomes of every step."""
    rng = np.random.default_rng(seed)
    market = params.market
    agents = getattr(params, "num_market_makers", None)
    shape = (BATCH,) if agents is None else (BATCH, agents)
    state, record = initial_state(params, BATCH), []
    for _ in range(STEPS):
        draws = sample_draws(rng, params, BATCH)
        bid = rng.uniform(market.delta_min, market.delta_max, shape)
        ask = rng.uniform(market.delta_min, market.delta_max, shape)
        if agents is not None:
            bid, ask = params.on_grid(bid), params.on_grid(ask)
        state, outcome = transition(state, bid, ask, draws, params, NUMPY)
        record.append((draws, bid, ask, state, outcome))
    return record


@pytest.mark.parametrize("game", [False, True], ids=["one_mm", "two_mms"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_on_identical_draws_jax_steps_equal_numpy_steps_in_float64(x64, preset, game):
    params = make_competition_params(preset, 2, 0.01) if game else make_params(preset)
    record = _numpy_episode(params, seed=7)
    draws = Draws(
        *(
            None if column[0] is None else jnp.asarray(np.stack(column))
            for column in zip(*(r[0] for r in record), strict=False)
        )
    )
    bids, asks = jnp.asarray(np.stack([r[1] for r in record])), jnp.asarray(np.stack([r[2] for r in record]))
    states, outcomes = _scan_transition(params, draws, bids, asks)
    for name in states._fields:
        expected = np.stack([getattr(r[3], name) for r in record])
        assert _relative_gap(expected, getattr(states, name)) <= 1e-12, name
    for name in ("reward", "executed", "offset", "spread_captured", "inventory_penalty", "trader_side", "trader_size"):
        expected = np.stack([getattr(r[4], name) for r in record])
        assert _relative_gap(expected, getattr(outcomes, name)) <= 1e-12, name
    if game:
        winners = np.stack([r[4].winner for r in record])
        np.testing.assert_array_equal(winners, np.asarray(outcomes.winner))
    assert float(np.abs(np.stack([r[3].inventory for r in record])).max()) > 0  # the episodes traded


def test_jax_draws_have_numpys_layout_and_laws():
    params = make_params("default", informed=0.2, info_jump=0.5, jump_prob=0.1, jump_size=1.0, sigma=0.3)
    draws = jax_sample_draws(jax.random.key(3), params, (20_000,))
    reference = sample_draws(np.random.default_rng(0), params, 4)
    assert [field is None for field in draws] == [field is None for field in reference]
    uniforms = np.stack(
        [
            np.asarray(draws.side),
            np.asarray(draws.size),
            np.asarray(draws.fill),
            np.asarray(draws.informed),
            np.asarray(draws.jump),
        ]
    )
    assert uniforms.min() >= 0.0 and uniforms.max() < 1.0
    np.testing.assert_allclose(uniforms.mean(axis=1), 0.5, atol=0.015)  # 1/sqrt(12·20000) = 0.002: 7 s.e.
    assert abs(np.corrcoef(uniforms)[np.triu_indices(5, 1)]).max() < 0.03  # independent rows
    normal = np.asarray(draws.noise)
    assert abs(normal.mean()) < 0.03 and abs(normal.std() - 1.0) < 0.03
    assert jax_sample_draws(jax.random.key(3), make_competition_params("default", 3, 0.01)).tie is not None


@jax.jit
def _draws_of(key, params):
    """The draws the JAX env's step takes from its key."""
    return jax_sample_draws(key, params)


def _gymnasium_steps_on(env_kwargs, keys, actions):
    """The Gymnasium front-end's formulas (one env, Python numbers) on the draws the JAX env takes from ``keys``."""
    config = EnvConfig.from_kwargs(**env_kwargs)
    params = config.params
    state, out = initial_state(params), []
    for key, action in zip(keys, actions, strict=True):
        draws = Draws(*(None if d is None else float(d) for d in _draws_of(key, params)))
        bid, ask = config.decoder.one(action)
        state, outcome = transition(state, bid, ask, draws, params, SCALAR)
        out.append((config.observer.one(state, params), outcome.reward, state))
    return out


@pytest.mark.parametrize("env_kwargs", [{}, {"preset": "momentum", "reward": "mtm"}, {"normalize_actions": False}])
def test_the_gymnax_env_steps_as_the_gymnasium_env_on_the_same_draws(x64, env_kwargs):
    env = MarketMakingEnv(**env_kwargs)
    params = env.default_params
    keys = jax.random.split(jax.random.key(11), 30)
    low, high = (-1.0, 1.0) if env.config.normalize_actions else (params.delta_min, params.delta_max)
    actions = np.random.default_rng(1).uniform(low - 0.2, high + 0.2, (30, 2))
    expected = _gymnasium_steps_on(env_kwargs, keys, actions)
    obs, state = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, EnvConfig.from_kwargs(**env_kwargs).observe(initial_state(params)))
    for key, action, (obs_np, reward_np, state_np) in zip(keys, actions, expected, strict=True):
        obs, state, reward, terminated, truncated, info = env.step(key, state, jnp.asarray(action), params)
        np.testing.assert_allclose(np.asarray(obs), obs_np, rtol=1e-6)
        assert math.isclose(float(reward), reward_np, rel_tol=1e-12, abs_tol=1e-12)
        assert float(state.inventory) == state_np.inventory and abs(float(state.cash) - state_np.cash) < 1e-9
        assert not bool(terminated) and not bool(truncated)


def test_float32_keeps_a_whole_episodes_return_within_1e4_relative_of_float64():
    # mtm: cash and the mid enter the reward, float32's hardest case. The same draws (NumPy's, float64) and quotes
    # feed both precisions, so only the arithmetic differs.
    params = make_params("mtm", sigma=0.1)
    record = _numpy_episode(params, seed=3)
    columns = [None if c[0] is None else np.stack(c) for c in zip(*(r[0] for r in record), strict=False)]
    bids, asks = np.stack([r[1] for r in record]), np.stack([r[2] for r in record])

    def returns():
        draws = Draws(*(None if c is None else jnp.asarray(c) for c in columns))
        _, outcomes = _scan_transition(params, draws, jnp.asarray(bids), jnp.asarray(asks))
        return np.asarray(outcomes.reward).sum(axis=0)

    single = returns()
    with jax.enable_x64(True):
        double = returns()
    assert single.dtype == np.float32 and double.dtype == np.float64
    expected = sum(r[4].reward for r in record)
    np.testing.assert_allclose(double, expected, rtol=1e-12, atol=1e-9)
    scale = np.abs(double).max()
    assert scale > 10.0
    assert np.abs(single - double).max() <= 1e-4 * scale


def test_gymnax_step_auto_resets_at_the_end_of_an_episode_and_keeps_the_last_observation():
    env = MarketMakingEnv(T=3)
    params = env.default_params
    obs, state = env.reset(jax.random.key(0), params)
    for t in range(3):
        obs, state, reward, terminated, truncated, info = env.step(jax.random.key(t + 1), state, jnp.zeros(2), params)
        assert bool(terminated) == (t == 2) and not bool(truncated)
        assert bool(info["terminated"]) == (t == 2)
    assert int(state.t) == 0 and float(state.inventory) == 0.0 and float(state.cash) == 0.0
    np.testing.assert_array_equal(obs, [0.0, 1.0])  # the new episode's first observation
    assert float(info["final_observation"][1]) == 0.0  # the ended episode's last one: no time left


def test_gymnax_env_runs_under_jit_and_vmap_over_keys_and_over_stacked_models():
    env = MarketMakingEnv(pi=1.0, A=1.0, k=1e-9)  # every quote fills: the penalty is computable by hand
    lams = [0.001, 0.01, 0.1]
    models = stack_params([env.default_params.replace(lam=lam) for lam in lams])
    keys = jax.random.split(jax.random.key(0), 3)

    def first_step(key, params):
        _, state = env.reset(key, params)
        return env.step(key, state, jnp.array([1.0, 1.0]), params)

    obs, state, reward, terminated, truncated, info = jax.jit(jax.vmap(first_step))(keys, models)
    assert obs.shape == (3, 2) and reward.shape == (3,)
    np.testing.assert_allclose(
        np.asarray(info["inventory_penalty"]), np.asarray(lams) * np.asarray(state.inventory) ** 2, rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(reward), np.asarray(info["spread_captured"] - info["inventory_penalty"]), rtol=1e-6
    )
    with pytest.raises(ValueError, match="differs from models\\[0\\] in a static parameter"):
        stack_params([env.default_params, env.default_params.replace(sigma=0.1)])


def test_gymnax_spaces_sample_within_themselves_and_follow_the_action_map():
    env = MarketMakingEnv(normalize_actions=False, delta_min=0.1, delta_max=3.0)
    space = env.action_space(env.default_params)
    samples = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 1000))
    assert samples.shape == (1000, 2) and bool(jnp.all(jax.vmap(space.contains)(samples)))
    assert float(samples.min()) >= 0.1 and float(samples.max()) <= 3.0
    assert not bool(space.contains(jnp.array([0.0, 1.0])))
    observation_space = env.observation_space(env.default_params)
    assert observation_space.shape == (2,) and observation_space.to_gymnasium() == env.config.observation_space
    assert MarketMakingEnv().action_space().to_gymnasium() == EnvConfig().action_space
    assert env.num_actions == 2 and env.name == "MarketMaking-v0"


def test_the_legacy_wrapper_gives_gymnaxs_older_five_tuple():
    env = LegacyStepWrapper(MarketMakingEnv(T=1))
    obs, state = env.reset(jax.random.key(0))
    result = env.step(jax.random.key(1), state, jnp.zeros(2))
    assert len(result) == 5 and bool(result[3])  # done: the one step ended the episode
    assert env.name == "MarketMaking-v0" and env.default_params.T == 1


def test_jaxmarl_env_steps_as_the_numpy_game_on_the_same_draws(x64):
    env = CompetingMarketMakersEnv(num_market_makers=3, preset="momentum")
    params = env.params
    config = CompetitionConfig(params)
    obs, state = env.reset(jax.random.key(0))
    assert sorted(obs) == ["mm_0", "mm_1", "mm_2"] and env.num_agents == 3
    np_state = initial_state(params, 1)
    rng = np.random.default_rng(2)
    for t in range(25):
        key = jax.random.key(100 + t)
        actions = {agent: jnp.asarray(rng.uniform(-1, 1, 2)) for agent in env.agents}
        obs, state, rewards, dones, infos = env.step(key, state, actions)
        draws = Draws(*(None if d is None else np.asarray(d) for d in jax_sample_draws(key, params, (1,))))
        bid, ask = config.decode(np.stack([np.asarray(actions[a]) for a in env.agents])[None], 1)
        np_state, outcome = transition(np_state, bid, ask, draws, params, NUMPY)
        expected_obs = config.observe(np_state)[0]
        for index, agent in enumerate(env.agents):
            np.testing.assert_allclose(np.asarray(obs[agent]), expected_obs[index], rtol=1e-6)
            assert math.isclose(float(rewards[agent]), float(outcome.reward[0, index]), rel_tol=1e-12, abs_tol=1e-12)
        np.testing.assert_allclose(np.asarray(state.inventory), np_state.inventory[0])
        assert int(infos["winner"]) == int(outcome.winner[0])
        assert set(dones) == {"__all__", *env.agents} and not bool(dones["__all__"])


def test_jaxmarl_env_auto_resets_and_vmaps_over_keys():
    env = CompetingMarketMakersEnv(T=2)
    actions = {agent: jnp.zeros(2) for agent in env.agents}

    def two_steps(key):
        _, state = env.reset(key)
        _, state, _, dones_1, _ = env.step(key, state, actions)
        obs, state, rewards, dones_2, _ = env.step(jax.random.fold_in(key, 1), state, actions)
        return obs, state, dones_1["__all__"], dones_2["__all__"]

    obs, state, first_done, second_done = jax.jit(jax.vmap(two_steps))(jax.random.split(jax.random.key(0), 4))
    assert not bool(first_done.any()) and bool(second_done.all())
    assert int(state.t.max()) == 0 and obs["mm_0"].shape == (4, 3)
    assert env.observation_space("mm_1").shape == (3,) and env.agent_classes == {"market_makers": ["mm_0", "mm_1"]}


def test_jax_arrays_find_their_namespace_and_the_library_leaves_64_bit_mode_alone():
    assert namespace_of(jnp.zeros(2)) is JAX
    assert not jax.config.read("jax_enable_x64")


def test_the_core_imports_without_jax_and_the_backend_names_its_extra():
    script = (
        "import sys; sys.modules['jax'] = None\n"
        "import mm_env, mm_env.env, mm_env.vector_env, mm_env.competition\n"
        "import gymnasium as gym; gym.make('mm_env/MarketMaking-v0').reset(seed=0)\n"
        "try:\n    import mm_env.jax\nexcept ImportError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert 'pip install -e ".[jax]"' in result.stdout


def test_a_batch_steps_with_one_key_as_numpys_batch_on_the_same_draws(x64):
    env = MarketMakingEnv(preset="informed", T=4)
    params = env.default_params
    obs, state = env.reset_batch(jax.random.key(0), 6)
    assert obs.shape == (6, 2) and state.inventory.shape == (6,)
    np_state = initial_state(params, 6)
    actions = np.random.default_rng(4).uniform(-1, 1, (4, 6, 2))
    for t in range(4):
        key = jax.random.key(10 + t)
        obs, state, reward, terminated, truncated, info = env.step(key, state, jnp.asarray(actions[t]), params)
        draws = Draws(*(None if d is None else np.asarray(d) for d in jax_sample_draws(key, params, (6,))))
        bid, ask = env.config.decode(actions[t], 6)
        np_state, outcome = transition(np_state, bid, ask, draws, params, NUMPY)
        np.testing.assert_allclose(np.asarray(reward), outcome.reward, rtol=1e-12, atol=1e-12)
        assert terminated.shape == truncated.shape == (6,) and bool(terminated.all()) == (t == 3)
        if t < 3:
            np.testing.assert_allclose(np.asarray(state.cash), np_state.cash, rtol=1e-12, atol=1e-12)
    assert int(state.t.max()) == 0 and info["final_observation"].shape == (6, 2)  # every env started again
    with pytest.raises(ValueError, match="num_envs=0 is invalid"):
        env.reset_batch(jax.random.key(0), 0)
