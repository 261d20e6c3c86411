"""The Stable-Baselines3 VecEnv front-end: equivalence with the single env, SB3 autoreset, wrappers, PPO."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import ALL_FEATURES, STATE_KEYS, TRADE_KEYS, random_actions
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from mm_env.env import MarketMakingEnv
from mm_env.presets import make_params
from mm_env.sb3_vec_env import MarketMakingVecEnv


def test_is_a_vec_env_with_single_env_spaces():
    venv = MarketMakingVecEnv(num_envs=3, observation_features=ALL_FEATURES)
    assert isinstance(venv, VecEnv)
    assert venv.num_envs == 3
    assert venv.observation_space.shape == (4,)
    assert venv.action_space.shape == (2,)
    obs = venv.reset()
    assert obs.shape == (3, 4) and obs.dtype == np.float32


def test_step_before_reset_raises():
    venv = MarketMakingVecEnv(num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((2, 2), dtype=np.float32))


@pytest.mark.parametrize(
    ("params", "features"),
    [
        (make_params(T=6), ("inventory", "time_left")),
        (make_params(T=5, I_max=6, sigma=0.3, reward="mtm", alpha=0.1, pi=0.7), ALL_FEATURES),
    ],
)
def test_one_env_matches_the_single_env(params, features):
    venv = MarketMakingVecEnv(num_envs=1, params=params, observation_features=features)
    single = MarketMakingEnv(params, observation_features=features)
    venv.seed(77)
    vobs = venv.reset()
    sobs, sinfo = single.reset(seed=77)
    np.testing.assert_array_equal(vobs[0], sobs)
    assert venv.reset_infos[0] == sinfo
    actions = random_actions(12, 3 * params.T, shape=(1, 2))
    step = 0
    for _episode in range(3):
        for t in range(1, params.T + 1):
            vobs, vrew, vdone, vinfos = venv.step(actions[step])
            sobs, srew, sterm, strunc, sinfo = single.step(actions[step][0])
            step += 1
            assert vrew.dtype == np.float32
            assert vrew[0] == np.float32(srew)
            assert bool(vdone[0]) is (sterm or strunc) is (t == params.T)
            info = dict(vinfos[0])
            if t < params.T:
                np.testing.assert_array_equal(vobs[0], sobs)
                assert info == sinfo
            else:
                # Same-step autoreset: the terminal observation is in the info, the returned one starts a new episode.
                np.testing.assert_array_equal(info.pop("terminal_observation"), sobs)
                assert info.pop("TimeLimit.truncated") is False
                assert info == sinfo
                sobs, sinfo = single.reset()
                np.testing.assert_array_equal(vobs[0], sobs)
                assert venv.reset_infos[0] == sinfo


def test_max_episode_steps_truncates_with_timelimit_flag():
    venv = MarketMakingVecEnv(num_envs=2, T=10, max_episode_steps=4)
    venv.seed(0)
    venv.reset()
    for t in range(1, 5):
        obs, _, dones, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
        assert dones.all() == (t == 4) and dones.any() == (t == 4)
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"][1] == np.float32(0.6)  # 6 of 10 steps left
    np.testing.assert_array_equal(obs, [[0.0, 1.0], [0.0, 1.0]])


def test_max_episode_steps_validation():
    for value in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="max_episode_steps"):
            MarketMakingVecEnv(num_envs=1, max_episode_steps=value)


def test_seed_makes_runs_reproducible():
    actions = random_actions(2, 25, shape=(4, 2))

    def rollout(seed):
        venv = MarketMakingVecEnv(num_envs=4, T=10)
        venv.seed(seed)
        out = [venv.reset()]
        for a in actions:
            obs, rew, done, infos = venv.step(a)
            out += [obs, rew, done, np.array([i["cash"] for i in infos])]
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def _run_with_episode_stats(venv, raw_rewards, n_steps, n_envs):
    """Step ``venv`` and collect (length, return) from the episode infos, with the return summed independently."""
    episodes = []
    running = np.zeros(n_envs)
    actions = random_actions(5, n_steps, shape=(n_envs, 2))
    for action in actions:
        _, rewards, dones, infos = venv.step(action)
        running += raw_rewards(rewards)
        for i in np.flatnonzero(dones):
            assert "episode" in infos[i]
            episodes.append((infos[i]["episode"]["l"], infos[i]["episode"]["r"], running[i]))
            running[i] = 0.0
        for i in np.flatnonzero(~dones):
            assert "episode" not in infos[i]
    return episodes


def test_vec_monitor_reports_episode_length_and_return():
    T = 8
    monitor = VecMonitor(MarketMakingVecEnv(num_envs=3, T=T))
    monitor.seed(1)
    monitor.reset()
    episodes = _run_with_episode_stats(monitor, lambda rewards: rewards.astype(np.float64), 3 * T, 3)
    assert len(episodes) == 9
    for length, ret, expected in episodes:
        assert length == T
        assert ret == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_vec_normalize_on_vec_monitor():
    T = 8
    venv = MarketMakingVecEnv(num_envs=2, T=T)
    wrapped = VecNormalize(VecMonitor(venv), norm_obs=True, norm_reward=True)
    wrapped.seed(0)
    obs = wrapped.reset()
    assert obs.shape == (2, 2)
    episodes = _run_with_episode_stats(wrapped, lambda _: wrapped.get_original_reward().astype(np.float64), 2 * T, 2)
    assert len(episodes) == 4
    for length, ret, expected in episodes:
        assert length == T
        assert ret == pytest.approx(expected, rel=1e-4, abs=1e-3)
    assert wrapped.obs_rms.count > 1


def test_get_attr_set_attr_env_method_env_is_wrapped():
    venv = MarketMakingVecEnv(num_envs=3, T=4)
    params = venv.get_attr("params")
    assert params == [venv.params] * 3
    assert venv.get_attr("params", indices=[0, 2]) == [venv.params] * 2
    assert venv.get_attr("num_envs", indices=1) == [3]
    venv.set_attr("market_info", False)
    assert venv.get_attr("market_info") == [False, False, False]
    with pytest.raises(ValueError, match="subset"):
        venv.set_attr("market_info", True, indices=[0])
    venv.set_attr("market_info", True, indices=[0, 1, 2])
    assert venv.market_info is True
    # The model is fixed at construction: set_attr refuses it rather than silently doing nothing.
    with pytest.raises(ValueError, match="fixed at construction"):
        venv.set_attr("params", venv.params.replace(T=3))
    with pytest.raises(ValueError, match="fixed at construction"):
        venv.set_attr("max_episode_steps", 2)
    # env_method calls the shared object's method once, for the whole batch; a subset is refused.
    venv.seed(0)
    venv.reset()
    venv.step(np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="subset"):
        venv.env_method("reset", indices=[0, 1])
    results = venv.env_method("reset")
    assert len(results) == 3
    np.testing.assert_array_equal(results[0], np.tile([0.0, 1.0], (3, 1)))
    np.testing.assert_array_equal(venv.state.t, 0)
    assert venv.env_is_wrapped(Monitor) == [False, False, False]
    assert venv.env_is_wrapped(Monitor, indices=[1]) == [False]


def test_market_info_false_gives_empty_infos_apart_from_terminal_entries():
    T = 3
    venv = MarketMakingVecEnv(num_envs=2, T=T, market_info=False)
    venv.seed(0)
    venv.reset()
    assert venv.reset_infos == [{}, {}]
    for t in range(1, T + 1):
        _, _, dones, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
        if t < T:
            assert infos == [{}, {}]
        else:
            assert dones.all()
            for info in infos:
                assert set(info) == {"terminal_observation", "TimeLimit.truncated"}
                assert info["TimeLimit.truncated"] is False
    assert venv.reset_infos == [{}, {}]


def test_market_info_true_has_all_keys():
    venv = MarketMakingVecEnv(num_envs=2, T=5)
    venv.seed(0)
    venv.reset()
    assert all(set(info) == STATE_KEYS for info in venv.reset_infos)
    _, _, _, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
    for info in infos:
        assert set(info) == STATE_KEYS | TRADE_KEYS
        assert info["mtm_pnl"] == pytest.approx(info["cash"] + info["inventory"] * info["mid"], abs=1e-9)
        assert info["bid"] == 97.5 and info["ask"] == 102.5


def test_invalid_actions_raise_value_error():
    venv = MarketMakingVecEnv(num_envs=2)
    venv.seed(0)
    venv.reset()
    with pytest.raises(ValueError, match="finite"):
        venv.step(np.array([[0.0, np.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 2)))


def test_ppo_learns_a_few_steps():
    venv = VecMonitor(MarketMakingVecEnv(num_envs=2, T=20))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    action, _ = model.predict(np.array([[0.0, 1.0], [0.5, 0.5]], dtype=np.float32), deterministic=True)
    assert action.shape == (2, 2)


def test_sb3_vec_env_pickles_mid_episode_and_continues_identically():
    venv = MarketMakingVecEnv(num_envs=3)
    venv.seed(5)
    venv.reset()
    actions = np.full((3, 2), -0.6, dtype=np.float32)
    for _ in range(4):
        venv.step(actions)
    clone = pickle.loads(pickle.dumps(venv))
    for _ in range(3):
        (obs_a, rew_a, done_a, _), (obs_b, rew_b, done_b, _) = venv.step(actions), clone.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
