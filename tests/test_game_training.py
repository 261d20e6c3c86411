"""Competing market makers in training: the set-ups, judging joint policies, and train.py end to end (tiny)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from agents.evaluation.game import exact_reference, joint_tables, judge
from agents.evaluation.rollout import run_games
from agents.exact import game
from agents.policies.joint import GamePolicy
from agents.policies.learned import LearnedJointPolicy
from agents.training.experiment import load_agents
from agents.training.families import family_of
from agents.training.game import CompetingMarketMakers
from agents.training.market import OneMarketMaker
from mm_env.competition import CompetitionConfig, make_competition_params
from mm_env.competition.sb3_vec_env import CompetitionVecEnv
from mm_env.opponents import make_opponent

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["T=20", "I_max=10"]
TINY = [
    "--timesteps",
    "1024",
    "--n-envs",
    "4",
    "--hyperparams",
    "n_steps=128",
    "batch_size=256",
    "n_epochs=2",
    "--eval-freq",
    "512",
    "--eval-episodes",
    "50",
    "--final-episodes",
    "200",
    "--no-progress-bar",
]


GAME_ID = "mm_env/CompetingMarketMakers-v0"


def game_setup(env_kwargs):
    return CompetingMarketMakers.from_env(GAME_ID, env_kwargs)


class ConstantModel:
    """A stand-in for an SB3 model: the action is a fixed function of the observation."""

    def predict(self, obs, deterministic=True):
        obs = np.asarray(obs)
        # Skew with own inventory (column 0), tighten with the other's (column 1): any fixed map will do.
        return np.stack([-0.7 + 0.3 * obs[:, 0] - 0.1 * obs[:, 1], -0.7 - 0.3 * obs[:, 0]], axis=1), None


def test_game_setups_from_env_kwargs():
    small = {"T": 20, "I_max": 10}  # the default opponent is solved exactly: a small game solves fast
    assert game_setup(small).opponent == "equilibrium" and not game_setup(small).self_play
    assert game_setup({"self_play": True}).opponent is None
    with pytest.raises(ValueError, match="self_play='yes' is invalid"):
        game_setup({"self_play": "yes"})
    with pytest.raises(ValueError, match="has no opponent"):
        game_setup({"self_play": True, "opponent": "cartel"})
    with pytest.raises(ValueError, match="opponent='nash' is invalid"):
        game_setup({"opponent": "nash"})
    with pytest.raises(ValueError, match="article mode"):
        game_setup({"preset": "article", "opponent": "article"})
    with pytest.raises(ValueError, match="exact solution"):
        game_setup({"num_market_makers": 3})  # the equilibrium is solved for two market makers only
    assert family_of(GAME_ID) is CompetingMarketMakers and family_of("mm_env/MarketMaking-v0") is OneMarketMaker


def test_games_share_common_random_numbers():
    params = make_competition_params(T=30)
    first = run_games(make_opponent("article", params), params, 200, seed=5)
    again = run_games(make_opponent("article", params), params, 200, seed=5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, run_games(make_opponent("article", params), params, 200, seed=6))


def test_learned_policy_quotes_what_the_env_would_do_with_its_actions():
    # The joint policy's quotes equal those of the VecEnv fed the model's actions on the VecEnv's own observations.
    config = CompetitionConfig.from_kwargs(T=15)
    policy = LearnedJointPolicy(ConstantModel(), config, seats=(0, 1))
    env = CompetitionVecEnv(2, self_play=True, params=config.params)
    env.seed(3)
    obs = env.reset()
    for _ in range(10):
        actions, _ = ConstantModel().predict(obs)
        bid, ask = policy.quote(env.state, config.params)
        expected_bid, expected_ask = config.decode(actions.reshape(1, 2, 2), 1)
        np.testing.assert_array_equal(bid, expected_bid)
        np.testing.assert_array_equal(ask, expected_ask)
        obs, *_ = env.step(actions.astype(np.float32))


def test_exact_judgement_agrees_with_monte_carlo_and_with_the_exact_tools():
    params = make_competition_params(T=20, I_max=10)
    reference = exact_reference(params)
    policy = LearnedJointPolicy(ConstantModel(), CompetitionConfig(params), seats=(0, 1))
    report = judge(policy, params, 20_000, 1, reference)
    bid, ask = joint_tables(policy, params)
    evaluation = game.evaluate_joint(params, bid, ask)
    np.testing.assert_allclose(report.exact_return, evaluation.mean, rtol=0, atol=1e-9)
    for j in range(2):
        assert abs(report.mean_return[j] - evaluation.mean[j]) < 4 * report.return_se[j]
    # The equilibrium itself: NashConv 0, collusion index 0, and its own best response.
    equilibrium = judge(GamePolicy.from_solution(reference.equilibrium), params, 200, 1, reference)
    assert abs(equilibrium.nash_conv) < 1e-9 and abs(equilibrium.collusion_index) < 1e-9
    assert equilibrium.pct_of_best_response == pytest.approx(100.0)
    cartel = judge(GamePolicy.from_solution(reference.cartel), params, 200, 1, reference)
    assert cartel.collusion_index == pytest.approx(1.0)


@pytest.fixture(scope="module")
def self_play_run(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("game_runs")
    args = [*TINY, "--env", "mm_env/CompetingMarketMakers-v0", "--env-kwargs", "self_play=True", *SMALL]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args, "--log-dir", str(log_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "NashConv" in result.stdout
    # It says what it does before the run starts, and prints every periodic evaluation as the one-MM job does.
    assert "solving the game exactly" in result.stdout.split("training PPO")[0]
    assert result.stdout.count("evaluation at step") >= 2 and "NashConv" in result.stdout.split("evaluation at step")[1]
    return log_dir / "ppo_CompetingMarketMakers-v0_1"


def test_self_play_run_reports_exact_game_figures(self_play_run):
    payload = json.loads((self_play_run / "comparison.json").read_text())
    names = [row["name"] for row in payload["rows"]]
    assert names[:3] == ["PPO (self-play)", "equilibrium", "cartel"]
    equilibrium, cartel = payload["rows"][1], payload["rows"][2]
    assert equilibrium["collusion_index"] == pytest.approx(0.0, abs=1e-9)
    assert cartel["collusion_index"] == pytest.approx(1.0)
    learned = payload["rows"][0]
    assert learned["nash_conv"] >= -1e-9 and learned["collusion_index"] <= 1.0 + 1e-9
    # How exact the equilibrium is, in both files: under the spread reward, a pure equilibrium everywhere.
    assert payload["equilibrium_stage_games"] == {"no_pure_equilibrium": 0, "no_pure_on_path": 0}
    assert "every stage game has a pure equilibrium" in (self_play_run / "comparison.md").read_text()
    accumulator = EventAccumulator(str(self_play_run), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    expected = {"eval/nash_conv", "eval/collusion_index", "eval/exact_return_mm_0", "eval/equilibrium_return"}
    expected |= {"eval/equilibrium_no_pure_stage_games", "eval/equilibrium_no_pure_on_path"}
    assert expected <= scalars, expected - scalars


def test_evaluate_reproduces_a_game_run(self_play_run, capsys):
    before = (self_play_run / "comparison.md").read_text()
    assert train.main(["--evaluate", str(self_play_run)]) == 0
    assert (self_play_run / "comparison.md").read_text() == before


def test_one_learner_against_a_fixed_opponent(tmp_path):
    # With a log_std_schedule: the callbacks a hyperparameter entry asks for apply to game runs too.
    tiny = [*TINY[: TINY.index("n_epochs=2") + 1], "log_std_schedule=[-1,-4]", *TINY[TINY.index("n_epochs=2") + 1 :]]
    args = [*tiny, "--env", "mm_env/CompetingMarketMakers-v0", "--env-kwargs", "opponent=article", *SMALL]
    assert train.main([*args, "--log-dir", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "ppo_CompetingMarketMakers-v0_1" / "comparison.json").read_text())
    learned = payload["rows"][0]
    assert learned["name"] == "PPO (against article)"
    assert 0 < learned["pct_of_best_response"] <= 100.0 + 1e-9
    # Two rollouts of 512 steps, from progress 0 and 1/2 of the run.
    model = PPO.load(tmp_path / "ppo_CompetingMarketMakers-v0_1" / "model.zip", device="cpu")
    assert model.policy.log_std.tolist() == pytest.approx([-2.5, -2.5])


def test_game_setup_refuses_an_opponent_without_a_second_market_maker():
    with pytest.raises(ValueError, match="num_market_makers >= 2"):
        game_setup({"num_market_makers": 1, "opponent": "article"})


def test_a_run_folder_is_loaded_as_its_own_family(tmp_path):
    with pytest.raises(ValueError, match="no config.yaml"):
        load_agents(tmp_path)
    (tmp_path / "config.yaml").write_text("env_id: mm_env/MarketMaking-v0\nalgo: ppo\n")
    with pytest.raises(ValueError, match="has no model.zip"):
        load_agents(tmp_path)
    (tmp_path / "config.yaml").write_text("env_id: CartPole-v1\nalgo: ppo\n")
    with pytest.raises(ValueError, match="not a market-making environment"):
        load_agents(tmp_path)


def test_continue_a_game_run(self_play_run, tmp_path):
    args = ["--continue-from", str(self_play_run), "--timesteps", "512", "--final-episodes", "50", "--no-progress-bar"]
    assert train.main([*args, "--eval-episodes", "20", "--log-dir", str(tmp_path)]) == 0
    continued = tmp_path / "ppo_CompetingMarketMakers-v0_1"
    config = (continued / "config.yaml").read_text()
    assert "self_play: true" in config and str(self_play_run) in config
    assert (continued / "comparison.md").exists()
