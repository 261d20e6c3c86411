"""The multi-asset step and envs (MODEL.md §9.2, §9.7, §9.9 items 1 and 10): d = 1 is the one-asset model, a
hand-computed step, correlated noise, the spaces and action order, the vector and SB3 front-ends, and a Monte Carlo
check of a constant-offset policy against its closed-form expectation."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mm_env
from mm_env import dynamics as one_asset
from mm_env.multi_asset import (
    MultiAssetMarketMakingEnv,
    MultiAssetMarketMakingVectorEnv,
    make_multi_asset_params,
)
from mm_env.multi_asset.batch import MultiAssetBatch
from mm_env.multi_asset.config import STATE_INFO_KEYS, TRADE_INFO_KEYS, MultiAssetConfig
from mm_env.multi_asset.dynamics import MultiAssetDraws, MultiAssetState, initial_state, sample_draws, transition
from mm_env.multi_asset.sb3_vec_env import MultiAssetMarketMakingVecEnv
from mm_env.presets import make_params
from mm_env.vector_env import MarketMakingVectorEnv
from mm_env.xp import NUMPY, SCALAR

MULTI_ID = "mm_env/MultiAssetMarketMaking-v0"

# ---------------------------------------------------------------------------------------------------------------------
# §9.9 item 1: with d = 1 the multi-asset env is the one-asset env, episode for episode


# One-asset keywords inside §9.4's scope; the multi-asset model calls impact_exponent beta.
D1_SETTINGS = {
    "default": {},
    "mtm": {"reward": "mtm"},
    "noise_mtm_alpha": {"reward": "mtm", "sigma": 0.4, "alpha": 0.01},
    "beta_sizes": {"reward": "mtm", "impact_exponent": 0.5, "kappa": 0.15, "sizes": (1, 4, 9), "sigma": 0.2},
    "size_probs_rare_traders": {"pi": 0.6, "sizes": (2, 3, 5), "size_probs": (0.5, 0.3, 0.2), "I_max": 6},
    "spread_noise_bounds": {"sigma": 0.3, "delta_min": 0.1, "delta_max": 2.0, "T": 40, "lam": 0.01},
}


def multi_keywords(one: dict) -> dict:
    """The multi-asset keywords of a one-asset setting, with d = 1 and the one-asset defaults."""
    keywords = {"d": 1, "pi": 1.0, "I_max": 50, "sizes": tuple(range(1, 10)), **one}
    if "impact_exponent" in keywords:
        keywords["beta"] = keywords.pop("impact_exponent")
    return keywords


def assert_close(a, b, what):
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-12, err_msg=what
    )


@pytest.mark.parametrize("setting", D1_SETTINGS, ids=list(D1_SETTINGS))
def test_d1_single_env_gives_the_one_asset_episodes(setting):
    one = gym.make("mm_env/MarketMaking-v0", **D1_SETTINGS[setting]).unwrapped
    multi = MultiAssetMarketMakingEnv(**multi_keywords(D1_SETTINGS[setting]))
    assert multi.params.asset(0) == one.params
    actions = np.random.default_rng(7).uniform(-1.0, -0.2, size=(2 * one.params.T + 5, 2)).astype(np.float32)
    step = 0
    for episode in range(2):
        seed = 11 + episode if episode == 0 else None  # the second episode continues the generator
        obs_one, info_one = one.reset(seed=seed)
        obs_multi, info_multi = multi.reset(seed=seed)
        np.testing.assert_array_equal(obs_one, obs_multi)
        done = False
        while not done:
            result_one = one.step(actions[step])
            result_multi = multi.step(actions[step])
            step += 1
            np.testing.assert_array_equal(result_one[0], result_multi[0])  # observations, float32
            assert_close(result_one[1], result_multi[1], "reward")
            assert result_one[2] == result_multi[2] and result_one[3] == result_multi[3]
            info_one, info_multi = result_one[4], result_multi[4]
            for key in (*STATE_INFO_KEYS, "bid", "ask", "trader_side", "trader_size", "fill_side", "fill_size"):
                assert_close(np.ravel(info_one[key]), np.ravel(info_multi[key]), key)
            for key in ("spread_captured", "inventory_penalty"):
                assert_close(info_one[key], info_multi[key], key)
            done = result_one[2]
        # The generators were drawn alike: the next draws agree too.
        assert one.np_random.random() == multi.np_random.random()


@pytest.mark.parametrize("setting", ["default", "noise_mtm_alpha", "beta_sizes", "size_probs_rare_traders"])
def test_d1_draws_and_batched_steps_equal_the_one_asset_model(setting):
    one_params = make_params(**D1_SETTINGS[setting])
    params = make_multi_asset_params(**multi_keywords(D1_SETTINGS[setting]))
    n = 500
    rng_one, rng_multi, rng_actions = np.random.default_rng(3), np.random.default_rng(3), np.random.default_rng(4)
    state_one, state = one_asset.initial_state(one_params, n), initial_state(params, n)
    for _ in range(60):
        draws_one, draws = one_asset.sample_draws(rng_one, one_params, n), sample_draws(rng_multi, params, n)
        assert_close(np.stack([draws_one.side, draws_one.size, draws_one.fill]), draws.uniforms, "uniforms")
        if params.draws_normal:
            assert_close(draws_one.noise, draws.normals[0], "normals")
        offsets = rng_actions.uniform(0.0, 1.5, size=(n, 2))
        state_one, outcome_one = one_asset.transition(
            state_one, offsets[:, 0], offsets[:, 1], draws_one, one_params, NUMPY
        )
        state, outcome = transition(state, offsets[:, None, :], draws, params, NUMPY)
        assert_close(state_one.inventory, state.inventory[:, 0], "inventory")
        assert_close(state_one.mid, state.mid[:, 0], "mid")
        assert_close(state_one.cash, state.cash, "cash")
        assert_close(outcome_one.reward, outcome.reward, "reward")
        assert_close(outcome_one.executed, outcome.executed, "executed")
        assert_close(outcome_one.trader_side, outcome.trader_side, "side")
    assert np.any(state.inventory != 0.0)


def test_d1_vector_env_equals_the_one_asset_vector_env_across_autoresets():
    settings = {"reward": "mtm", "sigma": 0.2, "T": 15, "I_max": 8}
    one = MarketMakingVectorEnv(4, **settings)
    multi = MultiAssetMarketMakingVectorEnv(4, **multi_keywords(settings))
    obs_one, _ = one.reset(seed=5)
    obs_multi, _ = multi.reset(seed=5)
    np.testing.assert_array_equal(obs_one, obs_multi)
    actions = np.random.default_rng(0).uniform(-1.0, -0.5, size=(40, 4, 2)).astype(np.float32)
    for action in actions:
        obs_one, reward_one, terminated_one, truncated_one, info_one = one.step(action)
        obs_multi, reward_multi, terminated_multi, truncated_multi, info_multi = multi.step(action)
        np.testing.assert_array_equal(obs_one, obs_multi)
        assert_close(reward_one, reward_multi, "reward")
        np.testing.assert_array_equal(terminated_one, terminated_multi)
        for key in ("inventory", "mid", "cash", "fill_size", "trader_side"):
            assert_close(info_one[key], np.reshape(info_multi[key], np.shape(info_one[key])), key)


# ---------------------------------------------------------------------------------------------------------------------
# A hand-computed step with two assets


def two_asset_params(**changes):
    keywords = dict(
        pi=(0.3, 0.5),
        I_max=(10, 4),
        sizes=[[1, 2], [2, 5, 9]],
        kappa=(0.1, 0.2),
        beta=(1.0, 0.5),
        risk_matrix=[[1.0, 0.5], [0.5, 2.0]],
        lam=0.01,
        P0=(100.0, 50.0),
        T=10,
    )
    return make_multi_asset_params("two_assets", **{**keywords, **changes})


def hand_state(t=3):
    return MultiAssetState(t, np.array([2.0, 3.0]), np.array([100.0, 50.0]), 10.0)


OFFSETS = np.array([[0.6, 0.7], [0.3, 0.4]])  # (bid, ask) of asset 0, then asset 1


@pytest.mark.parametrize("reward", ["spread", "mtm"])
def test_hand_computed_step_trader_in_the_second_asset_cut_at_the_limit(reward):
    params = two_asset_params(reward=reward)
    # u_1 = 0.4: Π = (0, 0.3, 0.8), so asset 1 (the second), a buyer since 0.4 < 0.3 + 0.5/2; u_2 = 0.9: size
    # 9 (index ⌊0.9·3⌋ = 2); the market maker sells: capacity I + I_max = 3 + 4 = 7, so Q' = 7; u_3 = 0.3 fills
    # (below 0.9·e^{−2·0.4} = 0.404).
    draws = MultiAssetDraws(np.array([0.4, 0.9, 0.3]))
    state, outcome = transition(hand_state(), OFFSETS, draws, params, NUMPY)
    assert (outcome.trader_asset, outcome.trader_side, outcome.trader_size) == (1, 1, 9)
    assert outcome.executed == 7 and outcome.offset == 0.4
    np.testing.assert_array_equal(state.inventory, [2.0, -4.0])
    assert state.cash == pytest.approx(10.0 + 7 * (50.0 + 0.4), rel=1e-15)
    np.testing.assert_allclose(state.mid, [100.0, 50.0 + 0.2 * math.sqrt(7)], rtol=1e-15)
    assert state.t == 4 and not outcome.terminated
    quadratic = 1.0 * 4 + 2 * 0.5 * 2 * (-4) + 2.0 * 16  # I'ᵀCI' = 28
    assert outcome.inventory_penalty == pytest.approx(0.01 * quadratic, rel=1e-14)
    assert outcome.spread_captured == pytest.approx(7 * 0.4, rel=1e-15)
    if reward == "spread":
        expected = 7 * 0.4 - 0.28
    else:
        wealth_before = 10.0 + 2 * 100.0 + 3 * 50.0
        wealth_after = 10.0 + 7 * 50.4 + 2 * 100.0 - 4 * (50.0 + 0.2 * math.sqrt(7))
        expected = wealth_after - wealth_before - 0.28
    assert outcome.reward == pytest.approx(expected, rel=1e-12)


def test_hand_computed_step_seller_in_the_first_asset_and_no_fill_and_no_trader():
    params = two_asset_params(alpha=0.5)
    # u_1 = 0.2: asset 0, a seller (0.2 ≥ 0.3/2); u_2 = 0.7: size 2; the market maker buys at its bid 0.6
    # (fill probability 0.9·e^{−1.2} = 0.271 > u_3 = 0.1): I' = (4, 3).
    state, outcome = transition(hand_state(), OFFSETS, MultiAssetDraws(np.array([0.2, 0.7, 0.1])), params, NUMPY)
    assert (outcome.trader_asset, outcome.trader_side, outcome.executed) == (0, -1, 2)
    np.testing.assert_array_equal(state.inventory, [4.0, 3.0])
    np.testing.assert_allclose(state.mid, [100.0 - 0.2, 50.0], rtol=1e-15)
    assert state.cash == pytest.approx(10.0 - 2 * 100.0 + 2 * 0.6, rel=1e-15)
    assert outcome.reward == pytest.approx(2 * 0.6 - 0.01 * (16 + 2 * 0.5 * 12 + 2 * 9), rel=1e-14)
    # The same trader declines (u_3 = 0.5): nothing trades, the penalty is on the unchanged I = (2, 3).
    state, outcome = transition(hand_state(), OFFSETS, MultiAssetDraws(np.array([0.2, 0.7, 0.5])), params, NUMPY)
    assert (outcome.trader_asset, outcome.executed, outcome.spread_captured) == (0, 0, 0)
    np.testing.assert_array_equal(state.inventory, [2.0, 3.0])
    assert outcome.reward == pytest.approx(-0.01 * (4 + 2 * 0.5 * 6 + 18), rel=1e-14)
    # u_1 = 0.8 ≥ Π_2: no trader. At the last step the terminal penalty α·I'ᵀCI' is added.
    state, outcome = transition(hand_state(t=9), OFFSETS, MultiAssetDraws(np.array([0.8, 0.7, 0.0])), params, NUMPY)
    assert (outcome.trader_asset, outcome.trader_side, outcome.trader_size, outcome.offset) == (-1, 0, 0, 0)
    assert outcome.terminated and state.t == 10
    assert outcome.inventory_penalty == pytest.approx((0.01 + 0.5) * 28, rel=1e-14)


def test_correlated_noise_by_hand_and_covariance_by_monte_carlo():
    params = make_multi_asset_params(pi=0.0, sigma=(0.1, 0.2), correlation=0.8, reward="mtm", lam=0.0)
    # L_R = [[1, 0], [0.8, 0.6]]: ν = (0.1·0.5, 0.2·(0.8·0.5 − 0.6·1.0)) = (0.05, −0.04).
    draws = MultiAssetDraws(np.array([0.1, 0.5, 0.5]), np.array([0.5, -1.0]))
    state, outcome = transition(initial_state(params), np.ones((2, 2)), draws, params, NUMPY)
    np.testing.assert_allclose(state.mid - 100.0, [0.05, -0.04], rtol=1e-12)
    assert outcome.trader_asset == -1 and outcome.reward == 0.0  # no inventory: the noise pays nothing
    n = 20_000
    state, _ = transition(
        initial_state(params, n), np.ones((n, 2, 2)), sample_draws(np.random.default_rng(2), params, n), params, NUMPY
    )
    moves = state.mid - 100.0
    covariance = np.cov(moves.T)
    # Each entry of a sample covariance from n draws has a standard error of about Σ_ii/√n; 5 of them is generous.
    np.testing.assert_allclose(covariance, params.Sigma, atol=5 * 0.04 / math.sqrt(n))
    # A singular R (c = 1): both mids move together, by σ_j·ε_1.
    singular = params.replace(correlation=1.0)
    state, _ = transition(initial_state(singular), np.ones((2, 2)), draws, singular, NUMPY)
    np.testing.assert_allclose(state.mid - 100.0, [0.05, 0.1], rtol=1e-12)


def test_draws_follow_section_9_2_layout():
    params = make_multi_asset_params("mean_variance", d=3, pi=0.3, sigma=(0.1, 0.2, 0.3))
    rng, reference = np.random.default_rng(9), np.random.default_rng(9)
    draws = sample_draws(rng, params, 4)
    np.testing.assert_array_equal(draws.uniforms, reference.random((3, 4)))
    np.testing.assert_array_equal(draws.normals, reference.standard_normal((3, 4)))
    one = sample_draws(rng, params)  # one environment: three uniforms, then d normals, as lists
    assert one.uniforms == reference.random(3).tolist()
    assert one.normals == reference.standard_normal(3).tolist()
    assert sample_draws(rng, make_multi_asset_params(), 4).normals is None  # σ = 0: no normals


# ---------------------------------------------------------------------------------------------------------------------
# §9.9 item 10: spaces and the action order


def test_spaces_have_shapes_2d_and_d_plus_1():
    for d in (1, 2, 3):
        env = MultiAssetMarketMakingEnv(d=d, pi=1 / d)
        assert env.action_space == gym.spaces.Box(-1.0, 1.0, shape=(2 * d,), dtype=np.float32)
        assert env.observation_space.shape == (d + 1,) and env.observation_space.dtype == np.float32
        np.testing.assert_array_equal(env.observation_space.low, [-1.0] * d + [0.0])
        np.testing.assert_array_equal(env.observation_space.high, [1.0] * (d + 1))
    raw = MultiAssetMarketMakingEnv(normalize_actions=False, delta_min=0.1, delta_max=3.0)
    np.testing.assert_allclose(raw.action_space.low, [0.1] * 4, rtol=1e-6)
    np.testing.assert_allclose(raw.action_space.high, [3.0] * 4, rtol=1e-6)


def test_action_order_and_the_normalised_map():
    config = MultiAssetConfig(make_multi_asset_params(d=3, pi=0.3, delta_min=0.5, delta_max=2.5))
    # (δ_b,1, δ_a,1, δ_b,2, δ_a,2, δ_b,3, δ_a,3); δ = δ_min + (a + 1)·(δ_max − δ_min)/2, clipped.
    offsets = config.decode(np.array([-1.0, 1.0, 0.0, 0.5, -3.0, 7.0], dtype=np.float32))
    np.testing.assert_allclose(offsets, [[0.5, 2.5], [1.5, 2.0], [0.5, 2.5]])
    batch = config.decode(np.array([[-1.0, -0.5, 0.0, 0.5, 1.0, 0.25]] * 2), batch=2)
    np.testing.assert_allclose(batch, [[[0.5, 1.0], [1.5, 2.0], [2.5, 1.75]]] * 2)
    raw = MultiAssetConfig(config.params, normalize_actions=False)
    np.testing.assert_allclose(
        raw.decode(np.array([0.7, 0.1, 3.0, 1.0, 2.0, 1.5])), [[0.7, 0.5], [2.5, 1.0], [2.0, 1.5]]
    )
    assert config.encode(offsets).tolist() == [-1.0, 1.0, 0.0, 0.5, -1.0, 1.0]


def test_the_action_quotes_each_asset_in_order_in_the_env():
    # A buyer in the second asset (u_1 = 0.6 ∈ [0.5, 0.75)) meets the action's fourth entry, its ask offset.
    env = MultiAssetMarketMakingEnv()
    env.reset(seed=0)
    action = np.array([-1.0, -1.0, -1.0, 0.2], dtype=np.float32)
    offsets = env.config.decode(action)
    _, outcome = transition(env.state, offsets.tolist(), MultiAssetDraws([0.6, 0.0, 0.0]), env.params, SCALAR)
    assert (outcome.trader_asset, outcome.trader_side, outcome.offset) == (1, 1, pytest.approx(3.0))


def test_bad_actions_options_and_calls_are_refused():
    env = MultiAssetMarketMakingEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, dtype=np.float32))
    env.reset(seed=0)
    for bad, message in [
        (np.zeros(2), r"shape \(4,\)"),
        (np.zeros((2, 2)), r"shape \(4,\)"),
        (np.array([0.0, math.nan, 0.0, 0.0]), "finite"),
        (np.array([0.0, math.inf, 0.0, 0.0]), "finite"),
        (np.array(["a", "b", "c", "d"]), "numeric"),
    ]:
        with pytest.raises(ValueError, match=message):
            env.step(bad)
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"reset_mask": None})
    with pytest.raises(ValueError, match="render_mode"):
        MultiAssetMarketMakingEnv(render_mode="human")
    with pytest.raises(ValueError, match="'momentum' is not a multi-asset parameter"):
        gym.make(MULTI_ID, momentum=0.5)
    with pytest.raises(ValueError, match="give params or preset"):
        MultiAssetMarketMakingEnv(params=make_multi_asset_params(), preset="two_assets")
    short = MultiAssetMarketMakingEnv(T=2)
    short.reset(seed=0)
    short.step(np.zeros(4))
    assert short.step(np.zeros(4))[2]
    with pytest.raises(RuntimeError, match="ended"):
        short.step(np.zeros(4))
    vector = MultiAssetMarketMakingVectorEnv(3)
    with pytest.raises(RuntimeError, match="reset"):
        vector.step(np.zeros((3, 4)))
    vector.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        vector.step(np.zeros(4))
    with pytest.raises(ValueError, match="reset_mask"):
        vector.reset(options={"reset_mask": np.ones(2, dtype=bool)})
    with pytest.raises(ValueError, match="num_envs"):
        MultiAssetMarketMakingVectorEnv(0)


# ---------------------------------------------------------------------------------------------------------------------
# The front-ends: checkers, registration, vector and SB3 envs


@pytest.mark.parametrize("keywords", [{}, {"preset": "mean_variance"}, {"d": 3, "pi": 0.3, "risk_matrix": 0.5}])
def test_gymnasium_and_sb3_checkers_pass_without_warnings(keywords):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make(MULTI_ID, **keywords).unwrapped)
        sb3_check_env(MultiAssetMarketMakingEnv(**keywords), warn=True)


def test_registered_ids_make_the_envs():
    assert mm_env.registration.MULTI_ASSET_ID == MULTI_ID
    env = gym.make(MULTI_ID, preset="mean_variance")
    assert isinstance(env.unwrapped, MultiAssetMarketMakingEnv)
    assert env.unwrapped.params == make_multi_asset_params("mean_variance")
    vector = gym.make_vec(MULTI_ID, num_envs=3, lam=0.01)
    assert isinstance(vector, MultiAssetMarketMakingVectorEnv) and vector.params.lam == 0.01


def test_seeding_is_deterministic():
    env = MultiAssetMarketMakingEnv(preset="mean_variance", T=20)
    actions = np.random.default_rng(1).uniform(-1, 0, size=(20, 4)).astype(np.float32)
    episodes = []
    for _ in range(2):
        env.reset(seed=42)
        episodes.append([env.step(action)[1] for action in actions])
    assert episodes[0] == episodes[1]
    env.reset(seed=43)
    assert [env.step(action)[1] for action in actions] != episodes[0]


def run_single(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    rewards, observations = [], [obs]
    for action in actions:
        obs, reward, terminated, _, _ = env.step(action)
        rewards.append(reward)
        observations.append(obs)
        if terminated:
            obs, _ = env.reset()
            observations.append(obs)
    return rewards, observations


def test_vector_env_with_one_env_equals_the_single_env_episode_after_episode():
    keywords = {"preset": "mean_variance", "T": 6}
    actions = np.random.default_rng(2).uniform(-1, 0, size=(14, 4)).astype(np.float32)
    rewards, observations = run_single(MultiAssetMarketMakingEnv(**keywords), 8, actions)
    vector = MultiAssetMarketMakingVectorEnv(1, **keywords)
    obs, _ = vector.reset(seed=8)
    vector_rewards, vector_observations = [], [obs[0]]
    index = 0
    while len(vector_rewards) < len(rewards):
        obs, reward, terminated, _, info = vector.step(actions[min(index, len(actions) - 1)][None])
        if info["_bid"][0]:  # a step, not the autoreset that follows an episode's end
            vector_rewards.append(reward[0])
            index += 1
        vector_observations.append(obs[0])
    assert vector_rewards == rewards
    np.testing.assert_array_equal(np.array(vector_observations)[: len(observations)], observations)


def test_vector_env_autoreset_masks_and_truncation():
    vector = MultiAssetMarketMakingVectorEnv(2, T=3, max_episode_steps=2)
    obs, info = vector.reset(seed=0)
    assert obs.shape == (2, 3) and info["inventory"].shape == (2, 2) and info["_inventory"].all()
    actions = np.zeros((2, 4), dtype=np.float32)
    vector.step(actions)
    _, _, terminated, truncated, _ = vector.step(actions)
    assert truncated.all() and not terminated.any()
    obs, reward, terminated, truncated, info = vector.step(actions)  # the autoreset step
    np.testing.assert_array_equal(obs, [[0.0, 0.0, 1.0]] * 2)
    np.testing.assert_array_equal(reward, [0.0, 0.0])
    assert not info["_bid"].any() and info["_inventory"].all()
    np.testing.assert_array_equal(info["trader_asset"], [-1.0, -1.0])
    assert set(STATE_INFO_KEYS + TRADE_INFO_KEYS) <= set(info)
    obs, info = vector.reset(options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(info["_inventory"], [True, False])


def test_sb3_vec_env_with_one_env_equals_the_single_env():
    keywords = {"T": 5, "sigma": (0.1, 0.3), "reward": "mtm"}
    actions = np.random.default_rng(3).uniform(-1, 0, size=(12, 4)).astype(np.float32)
    rewards, observations = run_single(MultiAssetMarketMakingEnv(**keywords), 4, actions)
    venv = MultiAssetMarketMakingVecEnv(1, **keywords)
    venv.seed(4)
    vec_observations = [venv.reset()[0]]
    vec_rewards = []
    for action in actions:
        obs, reward, dones, infos = venv.step(action[None])
        vec_rewards.append(float(reward[0]))
        if dones[0]:
            vec_observations.append(infos[0]["terminal_observation"])
            assert infos[0]["TimeLimit.truncated"] is False
        vec_observations.append(obs[0])
        assert set(STATE_INFO_KEYS + TRADE_INFO_KEYS) <= set(infos[0])
    np.testing.assert_allclose(vec_rewards, np.float32(rewards), rtol=1e-6)
    np.testing.assert_array_equal(vec_observations, observations)
    with pytest.raises(ValueError, match="subset"):
        venv.env_method("reset", indices=[0, 0, 1])


# ---------------------------------------------------------------------------------------------------------------------
# Monte Carlo of a constant-offset policy against its closed-form expectation


def test_constant_offsets_monte_carlo_matches_the_closed_form_expectation():
    # With limits that never bind, a constant offset δ makes each inventory a symmetric random walk: asset i trades in
    # a step with probability π_i·A_i·e^{−k_i·δ} = w_i, moving I_i by ±Q. So E[I_i,t²] = t·w_i·E[Q_i²] and
    # E[I_1·I_2] = 0, and the expected return over T steps is
    #   T·Σ_i w_i·E[Q_i]·δ − λ·Σ_i C_ii·w_i·E[Q_i²]·T(T+1)/2   (the off-diagonal of C drops out).
    T, delta, lam = 40, 0.8, 0.01
    params = make_multi_asset_params(
        T=T, lam=lam, pi=(0.3, 0.6), sizes=[[1, 2, 3], [2, 6]], I_max=1000, risk_matrix=[[1.0, 0.7], [0.7, 3.0]]
    )
    trade = [0.3 * 0.9 * math.exp(-2 * delta), 0.6 * 0.9 * math.exp(-2 * delta)]
    mean_q, mean_q2, c_diag = [2.0, 4.0], [14 / 3, 20.0], [1.0, 3.0]
    expected = (
        T * sum(w * q * delta for w, q in zip(trade, mean_q, strict=True))
        - lam * sum(c * w * q2 for c, w, q2 in zip(c_diag, trade, mean_q2, strict=True)) * T * (T + 1) / 2
    )
    n = 20_000
    batch = MultiAssetBatch(MultiAssetConfig(params, normalize_actions=False), n)
    rng = np.random.default_rng(12)
    returns = np.zeros(n)
    actions = np.full((n, 4), delta)
    for _ in range(T):
        outcome, _ = batch.step(actions, rng)
        returns += outcome.reward
    assert np.all(outcome.terminated)
    standard_error = returns.std() / math.sqrt(n)
    assert abs(returns.mean() - expected) < 4 * standard_error, (returns.mean(), expected, standard_error)
    assert np.abs(batch.state.inventory).max() < 1000  # the limits never bound


# ---------------------------------------------------------------------------------------------------------------------
# Monte Carlo of the exact optimum on the env against MODEL.md §9.8's figures (an independent implementation's)


@pytest.mark.parametrize(("preset", "mean", "sd"), [("two_assets", 69.0904, 10.39), ("mean_variance", 55.7265, 12.33)])
def test_monte_carlo_of_the_dp_optimum_on_the_env_matches_section_9_8(preset, mean, sd):
    from agents.exact.multi_asset import solve_multi_asset

    params = make_multi_asset_params(preset)
    solution = solve_multi_asset(params)
    assert solution.value == pytest.approx(mean, abs=1e-4)
    n = 3000
    batch = MultiAssetBatch(MultiAssetConfig(params, normalize_actions=False), n)
    rng = np.random.default_rng(2024)
    returns = np.zeros(n)
    for t in range(params.T):
        offsets = solution.offsets(t, batch.state.inventory)
        outcome, _ = batch.step(offsets.reshape(n, 2 * params.d), rng)
        returns += outcome.reward
    standard_error = sd / math.sqrt(n)
    assert abs(returns.mean() - mean) < 3.5 * standard_error, (returns.mean(), mean, standard_error)
    assert returns.std() == pytest.approx(sd, rel=0.06)
