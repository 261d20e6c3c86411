"""The single Gymnasium environment: API conformance, episodes, actions, info, pickling and construction."""

from __future__ import annotations

import copy
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from helpers import ALL_FEATURES, ENV_ID, STATE_KEYS, TRADE_KEYS, random_actions
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mm_env  # noqa: F401  (registers the ids)
from mm_env.env import MarketMakingEnv
from mm_env.presets import make_params

FEATURE_SETS = [("inventory", "time_left"), ALL_FEATURES]


# ---------------------------------------------------------------------------------------------------------------------
# Checkers


EXTENSION_PRESETS = ["informed", "momentum", "sqrt_impact", "transient", "cartea_jaimungal"]


@pytest.mark.parametrize("features", FEATURE_SETS, ids=["default", "all"])
@pytest.mark.parametrize("preset", ["default", "article", *EXTENSION_PRESETS])
def test_gymnasium_check_env_passes_without_warnings(features, preset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, preset=preset, observation_features=list(features))
        gym_check_env(env.unwrapped)


@pytest.mark.parametrize("features", FEATURE_SETS, ids=["default", "all"])
@pytest.mark.parametrize("preset", ["default", "article", *EXTENSION_PRESETS])
def test_sb3_check_env_passes_without_warnings(features, preset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(MarketMakingEnv(preset=preset, observation_features=features), warn=True)


# ---------------------------------------------------------------------------------------------------------------------
# Spaces and observations


def test_spaces():
    env = MarketMakingEnv()
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    assert env.observation_space.shape == (2,)
    assert env.observation_space.dtype == np.float32
    np.testing.assert_array_equal(env.observation_space.low, [-1.0, 0.0])
    np.testing.assert_array_equal(env.observation_space.high, [1.0, 1.0])
    raw = MarketMakingEnv(normalize_actions=False, delta_min=0.1, delta_max=3.0)
    np.testing.assert_allclose(raw.action_space.low, [0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(raw.action_space.high, [3.0, 3.0], rtol=1e-6)
    assert MarketMakingEnv(observation_features=ALL_FEATURES).observation_space.shape == (4,)


def test_observations_follow_the_state():
    p = make_params(T=10, I_max=20)
    env = MarketMakingEnv(p, observation_features=["last_fill", "inventory", "mid_change", "time_left"])
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [0.0, 0.0, 0.0, 1.0])
    mid = info["mid"]
    for t in range(1, 11):
        obs, _, _, _, info = env.step(np.array([-0.9, -0.9], dtype=np.float32))
        assert obs in env.observation_space
        # last_fill: the MM's signed fill (+ bought, - sold) over the largest size 9.
        signed_fill = -info["fill_side"] * info["fill_size"]
        assert obs[0] == np.float32(signed_fill / 9)
        assert obs[1] == np.float32(info["inventory"] / 20)
        # mid_change: the move over the largest impact move κ·max size = 0.05·9 (σ = 0, so never clipped).
        assert obs[2] == pytest.approx((info["mid"] - mid) / 0.45, abs=1e-5)
        assert obs[3] == np.float32((10 - t) / 10)
        mid = info["mid"]


# ---------------------------------------------------------------------------------------------------------------------
# Episodes and determinism


def run_episode(env, actions, seed=None):
    obs, info = env.reset(seed=seed)
    trajectory = [(obs.copy(), info)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trajectory.append((obs.copy(), reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return trajectory


def test_determinism_under_reset_seed():
    actions = random_actions(0, 30)
    a = run_episode(MarketMakingEnv(T=30), actions, seed=123)
    b = run_episode(MarketMakingEnv(T=30), actions, seed=123)
    assert _same(a, b)
    # Re-seeding the same env reproduces the episode too.
    env = MarketMakingEnv(T=30)
    first = run_episode(env, actions, seed=5)
    second = run_episode(env, actions, seed=5)
    assert _same(first, second)
    # A different seed gives different traders.
    c = run_episode(MarketMakingEnv(T=30), actions, seed=124)
    assert not _same(a, c)


def _same(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if not np.array_equal(x[0], y[0]):
            return False
        if x[1:] != y[1:]:
            return False
    return True


def test_reset_without_seed_continues_the_stream():
    env = MarketMakingEnv(T=5)
    actions = random_actions(1, 5)
    first = run_episode(env, actions, seed=8)
    second = run_episode(env, actions)
    assert not _same(first, second)  # a fresh episode, not a replay
    assert second[0][1] == {"inventory": 0, "mid": 100.0, "cash": 0.0, "mtm_pnl": 0.0}


def test_observation_arrays_are_never_reused():
    env = MarketMakingEnv(T=20, observation_features=ALL_FEATURES)
    seen = []
    obs, _ = env.reset(seed=0)
    seen.append(obs)
    for _ in range(20):
        obs, *_ = env.step(env.action_space.sample())
        seen.append(obs)
    obs, _ = env.reset()
    seen.append(obs)
    assert len({id(o) for o in seen}) == len(seen)
    # Mutating a returned observation does not affect later ones.
    obs, _ = env.reset(seed=0)
    obs[:] = 99.0
    again, *_ = env.step(np.zeros(2, dtype=np.float32))
    assert (again != 99.0).all()


def test_terminates_exactly_after_T_steps():
    T = 7
    env = MarketMakingEnv(T=T)
    env.reset(seed=1)
    for t in range(1, T + 1):
        obs, reward, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
        assert isinstance(reward, float)
        assert truncated is False
        assert terminated is (t == T)
        assert obs[1] == np.float32((T - t) / T)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, dtype=np.float32))
    # After reset the env runs again.
    env.reset()
    env.step(np.zeros(2, dtype=np.float32))


def test_step_before_reset_raises():
    env = MarketMakingEnv()
    with pytest.raises((RuntimeError, gym.error.ResetNeeded), match="reset"):
        env.step(np.zeros(2, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------------------
# Actions


@pytest.mark.parametrize(
    ("action", "pattern"),
    [
        (np.array([np.nan, 0.0], dtype=np.float32), r"finite"),
        (np.array([0.0, np.inf]), r"finite"),
        (np.array([-np.inf, -np.inf]), r"finite"),
        (np.zeros(3, dtype=np.float32), r"shape"),
        (np.zeros((1, 2), dtype=np.float32), r"shape"),
        (np.float32(0.5), r"shape"),
        ([0.5], r"shape"),
        (np.array(["a", "b"]), r"numeric|dtype"),
        (np.array([None, None], dtype=object), r"numeric|dtype"),
        (np.array([1 + 1j, 0j]), r"numeric|dtype"),
    ],
    ids=["nan", "inf", "-inf", "len3", "2d", "scalar", "list1", "str", "object", "complex"],
)
def test_invalid_actions_raise_value_error_and_leave_the_state_alone(action, pattern):
    env = MarketMakingEnv(T=10)
    reference = MarketMakingEnv(T=10)
    env.reset(seed=4)
    reference.reset(seed=4)
    with pytest.raises(ValueError, match=rf"(?i)action.*({pattern})"):
        env.step(action)
    # The failed step consumed no randomness and did not advance time.
    good = np.array([0.1, -0.2], dtype=np.float32)
    out = env.step(good)
    expected = reference.step(good)
    assert np.array_equal(out[0], expected[0])
    assert out[1:] == expected[1:]


def test_normalised_action_mapping():
    # offset = delta_min + (a + 1)/2 * (delta_max - delta_min), with delta_min=0.5, delta_max=4.5.
    env = MarketMakingEnv(delta_min=0.5, delta_max=4.5, kappa=0.0)
    env.reset(seed=0)
    for action, (bid_offset, ask_offset) in [
        ((-1.0, 1.0), (0.5, 4.5)),
        ((0.0, -0.5), (2.5, 1.5)),
        ((0.25, 0.75), (3.0, 4.0)),
    ]:
        _, _, _, _, info = env.step(np.array(action, dtype=np.float32))
        assert info["bid"] == pytest.approx(100.0 - bid_offset, abs=1e-12)
        assert info["ask"] == pytest.approx(100.0 + ask_offset, abs=1e-12)


def test_out_of_box_actions_are_clipped():
    env = MarketMakingEnv(kappa=0.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-3.0, 7.0], dtype=np.float32))
    assert info["bid"] == 100.0  # offset clipped to delta_min = 0
    assert info["ask"] == 105.0  # offset clipped to delta_max = 5
    raw = MarketMakingEnv(kappa=0.0, normalize_actions=False)
    raw.reset(seed=0)
    _, _, _, _, info = raw.step(np.array([-1.0, 9.0]))
    assert (info["bid"], info["ask"]) == (100.0, 105.0)


def test_normalize_actions_false_uses_raw_offsets():
    env = MarketMakingEnv(normalize_actions=False, kappa=0.0)
    env.reset(seed=2)
    _, _, _, _, info = env.step(np.array([0.7, 1.3]))
    assert info["bid"] == pytest.approx(99.3, abs=1e-12)
    assert info["ask"] == pytest.approx(101.3, abs=1e-12)
    # Clipped-equivalent trajectories: raw (0, 5) is the normalised (-1, 1).
    a = MarketMakingEnv(T=10, normalize_actions=False)
    b = MarketMakingEnv(T=10)
    assert _same(
        run_episode(a, [np.array([0.0, 5.0])] * 10, seed=1),
        run_episode(b, [np.array([-1.0, 1.0])] * 10, seed=1),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Info


@pytest.mark.parametrize(
    "params",
    [
        make_params(T=300, I_max=8),
        make_params(T=300, I_max=8, reward="mtm", pi=0.6, sizes=(2, 5), size_probs=(0.3, 0.7)),
        make_params(T=300, I_max=8, alpha=0.2, sigma=0.3),
    ],
)
def test_info_is_consistent_with_the_state(params):
    env = MarketMakingEnv(params)
    _, info = env.reset(seed=17)
    assert set(info) == STATE_KEYS
    assert info == {"inventory": 0, "mid": params.P0, "cash": 0.0, "mtm_pnl": 0.0}
    actions = random_actions(3, params.T, low=-1.0, high=-0.3)
    inventory, mid, cash = 0, params.P0, 0.0
    fills = limit_hits = 0
    for t, action in enumerate(actions, start=1):
        bid_offset = 2.5 * (float(action[0]) + 1)  # delta_min=0, delta_max=5
        ask_offset = 2.5 * (float(action[1]) + 1)
        obs, reward, terminated, _, info = env.step(action)
        assert set(info) == STATE_KEYS | TRADE_KEYS
        assert info["mtm_pnl"] == pytest.approx(info["cash"] + info["inventory"] * info["mid"], abs=1e-9)
        assert info["bid"] == pytest.approx(mid - bid_offset, abs=1e-9)
        assert info["ask"] == pytest.approx(mid + ask_offset, abs=1e-9)
        assert info["trader_side"] in (-1, 0, 1)
        if info["trader_side"] == 0:
            assert info["trader_size"] == 0
        else:
            assert info["trader_size"] in params.sizes
        assert 0 <= info["fill_size"] <= info["trader_size"]
        if info["fill_size"] > 0:
            fills += 1
            assert info["fill_side"] == info["trader_side"]
        else:
            assert info["fill_side"] == 0
        traded = info["fill_side"] * info["fill_size"]  # units the MM sold
        offset = ask_offset if info["fill_side"] > 0 else bid_offset
        assert info["inventory"] == inventory - traded
        assert abs(info["inventory"]) <= params.I_max
        limit_hits += abs(info["inventory"]) == params.I_max
        assert info["cash"] == pytest.approx(cash + traded * mid + info["fill_size"] * offset, abs=1e-9)
        if params.sigma == 0:
            assert info["mid"] == pytest.approx(mid + params.kappa * traded, abs=1e-9)
        assert info["spread_captured"] == pytest.approx(info["fill_size"] * offset, abs=1e-9)
        penalty = params.lam * info["inventory"] ** 2 + (params.alpha * info["inventory"] ** 2 if t == params.T else 0)
        assert info["inventory_penalty"] == pytest.approx(penalty, abs=1e-12)
        if params.reward == "spread":
            assert reward == pytest.approx(info["spread_captured"] - penalty, abs=1e-9)
        else:
            old_wealth = cash + inventory * mid
            assert reward == pytest.approx(info["mtm_pnl"] - old_wealth - penalty, abs=1e-8)
        assert obs[0] == np.float32(info["inventory"] / params.I_max)
        inventory, mid, cash = info["inventory"], info["mid"], info["cash"]
    assert terminated
    assert fills > 10 and limit_hits > 0  # the path exercised trades and the limit


# ---------------------------------------------------------------------------------------------------------------------
# Pickling


def test_pickle_mid_episode_continues_identically():
    env = MarketMakingEnv(T=50, sigma=0.2, observation_features=ALL_FEATURES)
    env.reset(seed=21)
    for action in random_actions(5, 20):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    deep = copy.deepcopy(env)
    assert clone.params == env.params
    rest = random_actions(6, 30)
    original = [env.step(a) for a in rest]
    for other in (clone, deep):
        replay = [other.step(a) for a in rest]
        for x, y in zip(original, replay, strict=True):
            assert np.array_equal(x[0], y[0])
            assert x[1:] == y[1:]
    assert original[-1][2] is True  # the episode ended after T=50 steps in all copies


# ---------------------------------------------------------------------------------------------------------------------
# Construction


def test_gym_make_with_overrides_and_presets():
    env = gym.make(ENV_ID, T=5, lam=0.01, kappa=0.2)
    p = env.unwrapped.params
    assert (p.T, p.lam, p.kappa) == (5, 0.01, 0.2)
    env.reset(seed=0)
    for t in range(1, 6):
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        assert terminated is (t == 5)
        assert not truncated
    assert gym.make(ENV_ID, preset="easy").unwrapped.params == make_params(lam=0.002)
    assert gym.make(ENV_ID, preset="mtm", T=9).unwrapped.params == make_params(reward="mtm", T=9)
    assert gym.make(ENV_ID, params=make_params(T=3)).unwrapped.params.T == 3
    assert gym.make(ENV_ID, normalize_actions=False).action_space.high[0] == 5.0
    with pytest.raises(ValueError, match="gamma"):
        gym.make(ENV_ID, gamma=0.1)
    with pytest.raises(ValueError, match="preset"):
        gym.make(ENV_ID, preset="hard")
    with pytest.raises(ValueError, match="lam"):
        gym.make(ENV_ID, lam=-1.0)


def test_gym_make_max_episode_steps_truncates():
    env = gym.make(ENV_ID, max_episode_steps=3)
    env.reset(seed=0)
    results = [env.step(env.action_space.sample()) for _ in range(3)]
    assert [r[2] for r in results] == [False, False, False]
    assert [r[3] for r in results] == [False, False, True]


@pytest.mark.parametrize(
    "features",
    [[], (), "inventory", ["price"], ["inventory", "inventory"], 3],
)
def test_invalid_observation_features_raise(features):
    with pytest.raises(ValueError, match=r"(?i)feature"):
        MarketMakingEnv(observation_features=features)


def test_invalid_render_mode_raises():
    with pytest.raises(ValueError, match="render_mode"):
        MarketMakingEnv(render_mode="human")


def test_invalid_params_raise_at_construction():
    with pytest.raises(ValueError, match=r"pi=1\.5"):
        MarketMakingEnv(pi=1.5)


def test_the_default_observation_carries_the_last_trades_side_with_adaptive_traders():
    env = MarketMakingEnv(preset="momentum")
    assert env.features == ("inventory", "time_left", "last_side")
    obs, _ = env.reset(seed=2)
    assert obs[2] == 0.0
    for _ in range(30):
        obs, _, _, _, info = env.step(np.array([-1.0, -1.0], dtype=np.float32))  # quote at the mid: fills often
        # L is the side of the trade that happened (+1 the trader bought, i.e. the MM sold), 0 without one.
        assert obs[2] == info["fill_side"]
    assert MarketMakingEnv().features == ("inventory", "time_left")


def test_transient_impact_decays_in_the_mid():
    # One buy of 4 units at t=0, then no trades: the mid jumps by (kappa + kappa_T)·4, then the transient part decays.
    env = MarketMakingEnv(kappa=0.01, transient_kappa=0.1, transient_decay=0.5, pi=1.0, normalize_actions=False)
    env.reset(seed=0)
    mids = []
    executed = 0
    while len(mids) < 6:
        quote = 0.0 if executed == 0 else 5.0  # trade once, then never again (δ_max fills with p ≈ 4e-5)
        _, _, _, _, info = env.step(np.array([quote, quote]))
        if info["fill_size"] and executed == 0:
            executed = info["fill_side"] * info["fill_size"]
            base = info["mid"] - (0.01 + 0.1) * executed
            mids.append(info["mid"])
        elif executed:
            assert info["fill_size"] == 0
            mids.append(info["mid"])
    permanent = base + 0.01 * executed
    for step, mid in enumerate(mids):
        assert mid == pytest.approx(permanent + 0.1 * executed * 0.5**step, abs=1e-12)
