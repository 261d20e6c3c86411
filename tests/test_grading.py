"""Grading any policy: exact against the DP where the model and the policy allow it, Monte Carlo otherwise."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import mm_env
from agents.evaluation.grading import as_policy, grade, market_config
from agents.evaluation.rollout import run_episodes
from agents.exact.dp import evaluate_tables, solve_dp
from agents.policies import ArticleRule, DPPolicy, LinearSkew
from agents.policies.learned import SB3Policy
from mm_env.config import EnvConfig
from mm_env.presets import make_params
from mm_env.sb3_vec_env import MarketMakingVecEnv

DEFAULT = make_params()


def skew_actions(obs: np.ndarray, center: float = 0.7, slope: float = 0.06) -> np.ndarray:
    """The linear skew as a CleanRL-style agent sees it: normalised actions of a batch of [I / I_max, (T − t) / T]."""
    inventory = DEFAULT.I_max * obs[:, 0].astype(np.float64)
    offsets = np.stack([center + slope * inventory, center - slope * inventory], axis=1)
    return np.clip(offsets, 0.0, 5.0) / 2.5 - 1.0


def test_a_policy_is_graded_exactly_against_the_dp():
    solution = solve_dp(DEFAULT)
    rule = grade(ArticleRule(0.5, 0.1))
    assert rule.exact and rule.reason is None and rule.standard_error is None
    expected = evaluate_tables(DEFAULT, *ArticleRule(0.5, 0.1).tables(DEFAULT))
    assert rule.expected_return == pytest.approx(float(expected.mean), abs=1e-12)
    assert rule.std == pytest.approx(float(expected.std), abs=1e-12)
    assert rule.expected_return == pytest.approx(90.86, abs=0.005)  # MODEL.md §6
    assert rule.pct_of_benchmark == pytest.approx(100 * rule.expected_return / solution.expected_return)
    optimum = grade(DPPolicy(DEFAULT))
    assert optimum.pct_of_benchmark == pytest.approx(100.0, abs=1e-12) and optimum.benchmark == "DP optimum"
    assert "exact E[return] 90.86" in str(rule) and "81.75% of the DP optimum (111.14)" in str(rule)


def test_a_function_of_observations_is_tabulated_over_the_grid_like_the_policy_it_computes():
    as_function = grade(skew_actions, name="skew as a function")
    as_policy_object = grade(LinearSkew(0.7, 0.06))
    assert as_function.exact and as_function.policy == "skew as a function"
    # The function sees float32 observations, as any agent does: equal to the policy up to that rounding.
    assert as_function.expected_return == pytest.approx(as_policy_object.expected_return, abs=1e-4)


def test_an_sb3_model_is_graded_on_its_own_observations_and_normalisation():
    venv = VecNormalize(MarketMakingVecEnv(4, T=20), norm_reward=False)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, seed=0, device="cpu")
    venv.obs_rms.mean[:] = [0.1, 0.4]  # statistics that matter: grading must apply them
    graded = grade(model, venv)
    assert graded.exact and graded.policy == "PPO"
    config = EnvConfig(make_params(T=20))
    agent = SB3Policy(model, "PPO", venv, config.normalize_actions, config.features)
    expected = evaluate_tables(config.params, *agent.tables(config.params))
    assert graded.expected_return == pytest.approx(float(expected.mean), abs=1e-12)
    unnormalised = grade(model, config)  # the same model without the statistics: another policy
    assert unnormalised.expected_return != pytest.approx(graded.expected_return, abs=1e-9)


def test_the_market_comes_as_a_name_a_model_a_configuration_or_an_env():
    config = EnvConfig(make_params("momentum"))
    assert market_config("momentum").params == config.params
    assert market_config(config.params).params == config.params
    assert market_config(config) is config
    assert market_config(gym.make(mm_env.MARKET_MAKING_ID, preset="momentum")).params == config.params
    assert market_config(mm_env.MarketMakingVectorEnv(2, preset="momentum")).params == config.params
    with pytest.raises(ValueError, match="not a preset name"):
        market_config(42)
    with pytest.raises(ValueError, match="is not an agents.policies.Policy"):
        as_policy("ppo", config)


def test_a_policy_that_sees_more_than_the_markov_state_is_graded_by_monte_carlo_against_the_dp():
    env = mm_env.MarketMakingEnv(observation_features=["inventory", "mid_change"], T=40)
    params = env.params
    constant = grade(lambda obs: np.full((len(obs), 2), -0.72), env, episodes=500, seed=1)
    assert not constant.exact and "not a function of the Markov state" in constant.reason
    assert constant.benchmark == "DP optimum" and constant.benchmark_return == solve_dp(params).expected_return
    returns = run_episodes(as_policy(lambda obs: np.full((len(obs), 2), -0.72), env.config), params, 500, 1).returns
    assert constant.expected_return == pytest.approx(returns.mean(), abs=1e-12)
    assert constant.standard_error == pytest.approx(returns.std(ddof=1) / np.sqrt(500))


def test_a_model_without_an_exact_optimum_is_graded_against_the_best_tuned_heuristic():
    graded = grade(ArticleRule(0.5, 0.1), make_params("transient", T=40), episodes=300, seed=2)
    assert not graded.exact and "no exact DP exists" in graded.reason
    assert graded.benchmark.endswith("(tuned)") and graded.episodes == 300


def test_wrong_actions_and_article_mode_are_one_clear_line():
    with pytest.raises(ValueError, match=r"must have shape \(\d+, 2\)"):
        grade(lambda obs: np.zeros(len(obs)))
    with pytest.raises(ValueError, match="nothing to grade"):
        grade(ArticleRule(), "article")


def test_the_module_example_prints_what_it_says():
    import doctest

    import agents.evaluation.grading as grading

    result = doctest.testmod(grading, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0
