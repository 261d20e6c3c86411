"""Grading any policy: exact against the DP where the model and the policy allow it, Monte Carlo otherwise."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import mm_env
from agents.evaluation.grading import as_policy, grade, grade_game, market_config
from agents.evaluation.rollout import run_episodes
from agents.exact.dp import evaluate_tables, solve_dp
from agents.exact.game import nash_conv as game_nash_conv
from agents.exact.game import solve_cartel, solve_equilibrium
from agents.policies import ArticleRule, DPPolicy, LinearSkew
from agents.policies.joint import GamePolicy
from agents.policies.learned import SB3Policy
from mm_env.competition import CompetitionConfig, parallel_env
from mm_env.competition.sb3_vec_env import CompetitionVecEnv
from mm_env.competition.single import CompetingMarketMakersEnv
from mm_env.config import EnvConfig
from mm_env.params import CompetitionParams
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


# --------------------------------------------------------------------------------------------------------------------
# competing market makers

GAME = CompetitionConfig.from_kwargs(num_market_makers=2, T=20)
HALF = 1.25  # the action -0.5 of the [-1, 1]² box on the default quoting range [0, 5]


def quote_half(obs: np.ndarray) -> np.ndarray:
    """A CleanRL-style function: the same normalised action whatever the observation."""
    return np.full((len(obs), 2), -0.5)


def constant_tables(params: CompetitionParams, offset: float) -> np.ndarray:
    n = 2 * params.market.I_max + 1
    return np.full((2, params.market.T, n, n), offset)


def test_a_function_in_both_seats_is_graded_exactly_against_the_equilibrium():
    params = GAME.params
    graded = grade_game(quote_half, GAME, name="half", episodes=500)
    row = graded.policy
    # Independently: the same constant quotes as tables, certified by the exact game tools.
    tables = constant_tables(params, HALF)
    certificates = game_nash_conv(params, tables, tables)
    assert certificates is not None
    assert graded.exact and row.name == "half"
    assert row.exact_return == pytest.approx(certificates.policy_value.tolist(), abs=1e-12)
    assert row.nash_conv == pytest.approx(certificates.nash_conv, abs=1e-12)
    assert row.spread == pytest.approx([2 * HALF, 2 * HALF])
    equilibrium, cartel = solve_equilibrium(params), solve_cartel(params)
    assert equilibrium is not None and cartel is not None
    assert graded.equilibrium_value == pytest.approx(equilibrium.mean_return, abs=1e-12)
    mean = float(np.mean(certificates.policy_value))
    assert graded.pct_of_equilibrium == pytest.approx(100 * mean / equilibrium.mean_return, abs=1e-9)
    expected_delta = (mean - equilibrium.mean_return) / (cartel.mean_return - equilibrium.mean_return)
    assert row.collusion_index == pytest.approx(expected_delta, abs=1e-12)
    # Next to it: the exact solutions and the baselines, on the same episodes.
    names = [report.name for report in graded.rows]
    assert names == ["half", "equilibrium", "cartel", "each quotes the one-MM optimum", "each quotes the article rule"]
    assert abs(graded.rows[1].nash_conv or 0.0) < 1e-9 and graded.rows[2].collusion_index == pytest.approx(1.0)
    text = str(graded)
    assert text.startswith("| policy |") and "the equilibrium: " in text
    assert text.endswith(graded.summary) and graded.summary.startswith("half: exact E[return] ")
    assert f"NashConv {certificates.nash_conv:.3g}" in graded.summary


def test_one_seat_against_an_opponent_is_graded_with_the_opponents_tables():
    params = GAME.params
    equilibrium = solve_equilibrium(params)
    assert equilibrium is not None
    graded = grade_game(quote_half, GAME, seats=(0,), others="equilibrium", episodes=200)
    bid, ask = equilibrium.bid.copy(), equilibrium.ask.copy()
    bid[0], ask[0] = HALF, HALF  # mm_0 quotes the constant, mm_1 the equilibrium
    certificates = game_nash_conv(params, bid, ask)
    assert certificates is not None
    assert graded.policy.exact_return == pytest.approx(certificates.policy_value.tolist(), abs=1e-12)
    # mm_0's % of its best response against the equilibrium opponent.
    best = float(certificates.best_response_value[0])
    assert graded.policy.pct_of_best_response == pytest.approx(100 * certificates.policy_value[0] / best)


def test_an_env_says_which_seats_learn():
    one_seat = grade_game(quote_half, GAME, seats=(0,), others="article", episodes=100)
    both_seats = grade_game(quote_half, GAME, episodes=100)
    # An env with an opponent: its learner's seat against that opponent (wrapped by gym.make or not).
    for env in (CompetingMarketMakersEnv("article", T=20), gym.make(mm_env.COMPETING_ID, opponent="article", T=20)):
        assert grade_game(quote_half, env, episodes=100).policy.exact_return == one_seat.policy.exact_return
    # Self-play: every seat (the SB3 VecEnv, and the PettingZoo env, which has no opponent).
    self_play = CompetitionVecEnv(2, None, self_play=True, T=20)
    assert self_play.opponent is None
    for env in (self_play, parallel_env(T=20)):
        assert grade_game(quote_half, env, episodes=100).policy.exact_return == both_seats.policy.exact_return
    assert one_seat.policy.exact_return != both_seats.policy.exact_return


def test_a_joint_policy_is_graded_as_it_is():
    params = GAME.params
    equilibrium = solve_equilibrium(params)
    assert equilibrium is not None
    graded = grade_game(GamePolicy.from_solution(equilibrium), params, name="the equilibrium again", episodes=100)
    assert graded.pct_of_equilibrium == pytest.approx(100.0, abs=1e-9)
    assert abs(graded.policy.nash_conv or 0.0) < 1e-9 and abs(graded.policy.collusion_index or 0.0) < 1e-9


def test_a_game_without_an_exact_solution_is_graded_by_monte_carlo_and_says_why():
    three = CompetitionConfig.from_kwargs(num_market_makers=3, T=20)
    graded = grade_game(quote_half, three, name="half", episodes=200)
    assert not graded.exact and graded.equilibrium_value is None and graded.pct_of_equilibrium is None
    assert graded.note == "not exact: the exact game tools cover two market makers, not num_market_makers=3"
    assert all(report.exact_return is None for report in graded.rows)
    assert [report.name for report in graded.rows][0] == "half" and len(graded.policy.mean_return) == 3
    assert graded.summary.startswith("half: mean return ") and graded.summary.endswith(graded.note)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seats": (0,)}, r"seats=\(0,\) leaves market makers \[1\] without a policy: give others"),
        ({"seats": (2,)}, r"seats=\(2,\) is invalid: must be distinct market makers in \[0, 1\]"),
        ({"seats": (0, 0)}, r"seats=\(0, 0\) is invalid"),
        ({"game": "default"}, r"game='default' is not a CompetitionConfig"),
        ({"policy": 42}, r"policy=42 is not a joint policy"),
        ({"others": "nobody", "seats": (0,)}, r"nobody"),
    ],
)
def test_bad_game_grading_inputs_are_one_clear_line(kwargs, message):
    arguments = {"policy": quote_half, "game": GAME, **kwargs}
    with pytest.raises(ValueError, match=message):
        grade_game(arguments.pop("policy"), arguments.pop("game"), episodes=10, **arguments)
