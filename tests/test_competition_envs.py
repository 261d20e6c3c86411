import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.vec_env import VecMonitor

import mm_env
from agents.policies import ArticleRule, ConstantSpread, EachOnItsOwn
from mm_env.competition import parallel_env
from mm_env.competition.sb3_vec_env import CompetitionVecEnv
from mm_env.competition.single import CompetingMarketMakersEnv
from mm_env.opponents import make_opponent


def run_single(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    rewards = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated:
            break
    return np.array(rewards)


def test_gymnasium_checker_passes_for_every_kind_of_opponent():
    for opponent in ("article", "monopoly", ConstantSpread(1.0)):
        check_env(gym.make(mm_env.COMPETING_ID, opponent=opponent, T=20).unwrapped, skip_render_check=True)


def test_single_env_equals_the_parallel_env_with_the_opponent_quoting_for_mm_1():
    # The same seed gives the same traders: mm_0's rewards match the PettingZoo env driven by hand.
    actions = np.random.default_rng(0).uniform(-1, -0.4, (40, 2))
    single = gym.make(mm_env.COMPETING_ID, opponent="article", T=40).unwrapped
    rewards = run_single(single, actions, seed=7)
    game = parallel_env(T=40)
    game.reset(seed=7)
    article = EachOnItsOwn(ArticleRule())
    expected = []
    for action in actions:
        bid, ask = article.quote(game.model_state, game.params)
        offsets = np.array([bid[0, 1], ask[0, 1]])
        # The normalised action of an offset δ is (δ − 2.5) / 2.5 for the default bounds [0, 5].
        _, step_rewards, *_ = game.step({"mm_0": action, "mm_1": (offsets - 2.5) / 2.5})
        expected.append(step_rewards["mm_0"])
    np.testing.assert_allclose(rewards, expected, rtol=0, atol=1e-12)


def test_vector_env_of_one_reproduces_the_single_env():
    actions = np.random.default_rng(1).uniform(-1, -0.4, (30, 2))
    single = run_single(CompetingMarketMakersEnv(opponent="monopoly", T=30), actions, seed=3)
    vector = gym.make_vec(mm_env.COMPETING_ID, num_envs=1, opponent="monopoly", T=30)
    vector.reset(seed=3)
    batched = [vector.step(action[None])[1][0] for action in actions]
    np.testing.assert_array_equal(single, batched)


def test_sb3_vec_env_against_an_opponent_and_in_self_play():
    versus = VecMonitor(CompetitionVecEnv(4, opponent="article", T=10))
    versus.seed(0)
    assert versus.reset().shape == (4, 3)
    for _ in range(10):
        obs, rewards, dones, infos = versus.step(np.full((4, 2), -0.7, dtype=np.float32))
    assert dones.all() and "episode" in infos[0]
    selfplay = CompetitionVecEnv(6, self_play=True, T=10)
    selfplay.seed(0)
    obs = selfplay.reset()
    assert obs.shape == (6, 3)
    for _ in range(10):
        obs, rewards, dones, infos = selfplay.step(np.full((6, 2), -0.7, dtype=np.float32))
    assert dones.all()
    # Within a game the two views are mirror images: each sees its own inventory first.
    terminal = np.array([info["terminal_observation"] for info in infos])
    np.testing.assert_array_equal(terminal[0::2, :2], terminal[1::2, 1::-1])


def test_self_play_views_reproduce_the_parallel_env():
    actions = np.random.default_rng(2).uniform(-1, -0.4, (25, 2, 2))
    selfplay = CompetitionVecEnv(2, self_play=True, T=25)
    selfplay.seed(11)
    selfplay.reset()
    game = parallel_env(T=25)
    game.reset(seed=11)
    for action in actions:
        _, rewards, _, _ = selfplay.step(action.astype(np.float32))
        _, expected, *_ = game.step({"mm_0": action[0].astype(np.float32), "mm_1": action[1].astype(np.float32)})
        np.testing.assert_array_equal(rewards, np.array([expected["mm_0"], expected["mm_1"]], dtype=np.float32))


def test_bad_opponents_and_learners_are_refused():
    with pytest.raises(ValueError, match="not a known opponent"):
        CompetingMarketMakersEnv(opponent="nash")
    with pytest.raises(ValueError, match="opponent=3 is invalid"):
        CompetingMarketMakersEnv(opponent=3)
    with pytest.raises(ValueError, match="multiple of M=2"):
        CompetitionVecEnv(3, self_play=True)
    env = CompetingMarketMakersEnv(opponent="article")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))


def test_one_mm_policies_quote_from_their_own_inventory():
    policy = make_opponent("article", mm_env.competition.make_competition_params())
    env = parallel_env()
    env.reset(seed=0)
    state = env.model_state._replace(inventory=np.array([[10.0, -10.0]]))
    bid, ask = policy.quote(state, env.params)
    # The article rule widens the side that adds to the position: a long MM's bid, a short MM's ask.
    assert bid[0].tolist() == pytest.approx([1.5, 0.5]) and ask[0].tolist() == pytest.approx([0.5, 1.5])


class BadOpponent:
    def __init__(self, offsets):
        self.offsets = offsets

    def quote(self, state, params):
        return self.offsets, self.offsets


def test_opponent_quotes_are_checked():
    env = CompetingMarketMakersEnv(opponent=BadOpponent(np.zeros(1)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shapes"):
        env.step(np.zeros(2))
    env = CompetingMarketMakersEnv(opponent=BadOpponent(np.full((1, 2), np.nan)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.zeros(2))


def test_nobody_wins_when_no_trader_comes():
    venv = CompetitionVecEnv(64, self_play=True, pi=0.5)
    venv.seed(0)
    venv.reset()
    _, _, _, infos = venv.step(np.full((64, 2), -0.7, dtype=np.float32))
    sides = np.array([info["trader_side"] for info in infos])
    won = np.array([info["won"] for info in infos])
    assert (sides == 0).any() and not won[sides == 0].any()
    # At most one market maker of a game (two consecutive views) wins.
    assert (won.reshape(32, 2).sum(axis=1) <= 1).all()


def test_parallel_env_refuses_actions_that_are_not_a_dict_of_its_agents():
    game = parallel_env(T=5)
    game.reset(seed=0)
    with pytest.raises(ValueError, match="dict"):
        game.step([np.zeros(2), np.zeros(2)])
    with pytest.raises(ValueError, match="unknown agents \\['mm_7'\\]"):
        game.step({"mm_0": np.zeros(2), "mm_1": np.zeros(2), "mm_7": np.zeros(2)})
