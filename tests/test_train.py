"""train.py end to end on a tiny budget: the run folder, the TensorBoard events, the saved agent, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import TINY_TRAIN, run_command
from stable_baselines3 import PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.cli.train import main as train_main

ROOT = Path(__file__).resolve().parent.parent


def run_train(*args: str) -> subprocess.CompletedProcess:
    """``train.py``'s ``main`` in this process (see ``helpers.run_command``)."""
    return run_command(train_main, *args)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    # End to end, as a user runs it: ``python train.py`` in a process of its own.
    log_dir = tmp_path_factory.mktemp("runs")
    command = [sys.executable, str(ROOT / "train.py"), *TINY_TRAIN, "--log-dir", str(log_dir)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    runs = sorted(log_dir.iterdir())
    assert [p.name for p in runs] == ["ppo_MarketMaking-v0_1"]
    return runs[0]


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_run_folder_holds_model_statistics_configuration_and_comparison(run_dir):
    for name in ("model.zip", "vecnormalize.json", "best_model.zip", "config.yaml", "comparison.md", "comparison.json"):
        assert (run_dir / name).exists(), name
    status = json.loads((run_dir / "run_status.json").read_text())
    assert status == {"status": "finished", "error": None, "timesteps": 2048}
    assert not list(run_dir.glob("*.pkl")) and not list(run_dir.glob(".*"))  # no pickle, no temporary file left
    for figure in ("policies.png", "episode.png"):
        assert (run_dir / figure).read_bytes()[:4] == b"\x89PNG"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["algo"] == "ppo" and config["env_id"] == "mm_env/MarketMaking-v0"
    assert config["timesteps"] == 2048 and config["n_envs"] == 4 and config["seed"] == 0
    assert config["hyperparams"]["n_steps"] == 256 and config["params"]["lam"] == 0.005


def test_comparison_table_ranks_the_dp_above_the_article_rule(run_dir):
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert comparison["episodes"] == 200
    rows = {row["policy"]: row for row in comparison["rows"]}
    assert {"PPO (final)", "DP optimum", "article rule Δ=0.5, γ=0.1"} <= set(rows)
    assert any("tuned" in name and "article" in name for name in rows)
    assert any("tuned" in name and "linear skew" in name for name in rows)
    dp = rows["DP optimum"]
    assert dp["exact_return"] == pytest.approx(111.1446, abs=1e-3)
    assert dp["pct_of_benchmark"] == pytest.approx(100.0, abs=3.0)  # Monte Carlo on 200 episodes
    assert rows["article rule Δ=0.5, γ=0.1"]["exact_return"] == pytest.approx(90.8598, abs=1e-3)
    table = (run_dir / "comparison.md").read_text()
    assert table.count("\n") == len(rows) + 2 and "PPO (final)" in table


def test_tensorboard_events_have_the_expected_scalar_tags(run_dir):
    scalars = set(events(run_dir).Tags()["scalars"])
    expected = {
        "rollout/ep_rew_mean",
        "train/value_loss",
        "market/mean_abs_inventory",
        "market/quoted_spread",
        "market/fill_rate",
        "market/spread_captured",
        "market/inventory_penalty",
        "eval/mean_return",
        "eval/pct_of_dp",
        "eval/exact_pct_of_dp",
        "eval/dp_return",
        "eval/article_rule_return",
    }
    assert expected <= scalars, expected - scalars
    assert not any(tag.startswith("final/") for tag in scalars)  # one point each: charts that look empty
    accumulator = events(run_dir)
    dp_values = [event.value for event in accumulator.Scalars("eval/dp_return")]
    assert len(dp_values) >= 2 and np.allclose(dp_values, 111.1446, atol=1e-3)
    fill_rates = [event.value for event in accumulator.Scalars("market/fill_rate")]
    assert all(0.0 <= rate <= 1.0 for rate in fill_rates)


def test_tensorboard_has_the_policy_figure_the_comparison_text_and_hyperparameters(run_dir):
    accumulator = events(run_dir)
    assert "eval/policy" in accumulator.Tags()["images"]
    tensors = set(accumulator.Tags()["tensors"])
    assert any(tag.startswith("comparison") for tag in tensors), tensors
    hparams_plugin = accumulator.PluginTagToContent("hparams")
    assert hparams_plugin, "no hyperparameters were logged"


def test_tensorboard_tells_the_story_at_a_glance(run_dir):
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = events(run_dir)
    scalars = set(accumulator.Tags()["scalars"])
    # The custom-scalars layout: first the agent's exact return as % of the DP optimum, one tag (anchored) a chart.
    (tag,) = accumulator.PluginTagToContent("custom_scalars")
    layout = layout_pb2.Layout.FromString(accumulator.Tensors(tag)[0].tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    first = next(iter(charts.items()))
    assert first == ("exact return, % of the DP optimum (100 = optimal)", ["^eval/exact_pct_of_dp$"])
    assert all(len(patterns) == 1 for patterns in charts.values())
    assert {patterns[0][1:-1] for patterns in charts.values()} <= scalars  # every tag of the layout is logged
    # The policy image at a size TensorBoard shows legibly.
    image = accumulator.Images("eval/policy")[-1]
    assert (image.width, image.height) == (480, 340)
    # HParams: the run's name, the budget actually run (not the file's 5,000,000) and every model parameter.
    start = next(
        plugin_data_pb2.HParamsPluginData.FromString(data).session_start_info
        for data in accumulator.PluginTagToContent("hparams").values()
        if plugin_data_pb2.HParamsPluginData.FromString(data).HasField("session_start_info")
    )
    hparams = {key: value.ListFields()[0][1] for key, value in start.hparams.items()}
    assert hparams["timesteps"] == 2048 and hparams["n_envs"] == 4 and "n_timesteps" not in hparams
    assert hparams["Run"] == run_dir.name  # in full, where the Trial ID column cuts it short
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert {f"model/{key}" for key in saved["params"]} <= set(hparams)
    assert hparams["model/lam"] == pytest.approx(saved["params"]["lam"])
    # The comparison table is the short one: six columns.
    (tag,) = [tag for tag in accumulator.Tags()["tensors"] if tag.startswith("comparison")]
    text = accumulator.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
    assert text.splitlines()[0].count("|") == 7 and "% of DP" in text.splitlines()[0]


def test_saved_model_loads_and_quotes(run_dir):
    model = PPO.load(run_dir / "model.zip", device="cpu")
    obs = np.array([[0.0, 1.0], [0.5, 0.5], [-0.5, 0.1]], dtype=np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (3, 2) and np.all(np.abs(actions) <= 1.0)
    # ppo.yml's log_std_schedule [-1, -4]: two rollouts of 1,024 steps start at progress 0 and 1/2 of the run.
    assert model.policy.log_std.tolist() == pytest.approx([-2.5, -2.5])


def test_evaluate_only_reuses_the_saved_run(run_dir):
    before = (run_dir / "comparison.json").read_text()
    result = run_train("--evaluate", str(run_dir), "--final-episodes", "200")
    assert result.returncode == 0, result.stderr
    assert "PPO (final)" in result.stdout and "DP optimum" in result.stdout
    assert (run_dir / "comparison.json").read_text() == before  # same seed, same episodes: same table


def test_continue_training_starts_a_new_run_with_the_saved_settings(run_dir, tmp_path):
    args = ["--timesteps", "1024", "--eval-freq", "512", "--eval-episodes", "50", "--final-episodes", "200"]
    result = run_train(*args, "--continue-from", str(run_dir), "--log-dir", str(tmp_path), "--no-progress-bar")
    assert result.returncode == 0, result.stderr
    (new_run,) = tmp_path.iterdir()
    config = yaml.safe_load((new_run / "config.yaml").read_text())
    original = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["continue_from"] == str(run_dir)
    for key in ("algo", "env_id", "env_kwargs", "n_envs", "hyperparams", "params"):
        assert config[key] == original[key], key
    assert (new_run / "model.zip").exists()
    evaluations = json.loads((new_run / "evaluations.json").read_text())
    steps = [e["timesteps"] for e in evaluations]
    # Continued from 2048 steps: evaluations at the next multiples of 512 and at the end, no burst.
    assert steps == sorted(set(steps)) and len(steps) <= 3 and min(steps) > 2048


def test_a_td3_run_records_the_observation_its_entry_sets_and_is_evaluated_with_it(tmp_path):
    # td3.yml observes the inventory only; the run folder must say so, or --evaluate would build the wrong env.
    small = ["--timesteps", "600", "--n-envs", "4", "--eval-freq", "600", "--eval-episodes", "20"]
    small += ["--final-episodes", "100", "--env-kwargs", "T=20", "--log-dir", str(tmp_path), "--no-progress-bar"]
    small += ["--hyperparams", "learning_starts=100", "batch_size=64", "buffer_size=1000"]
    result = run_train("--algo", "td3", *small)
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["env_kwargs"] == {"observation_features": ["inventory"], "T": 20}
    evaluated = run_train("--evaluate", str(run), "--final-episodes", "100")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "TD3 (final)" in evaluated.stdout


def test_continue_training_refuses_settings_that_would_change_the_run(run_dir, capsys):
    sys.path.insert(0, str(ROOT))
    try:
        import train
    finally:
        sys.path.remove(str(ROOT))
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--continue-from", str(run_dir), "--env-kwargs", "preset=easy", "--algo", "sac"])
    assert exit_info.value.code == 2
    assert "keeps the run's own settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "dqn"], "invalid choice"),
        (["--env", "CartPole-v1"], "not a market-making environment"),
        (["--env", "NoSuchEnv-v9"], "not a registered environment"),
        (["--env-kwargs", "lam=-1"], "lam=-1 is invalid"),
        (["--env-kwargs", "preset=nope"], "preset='nope'"),
        (["--env-kwargs", "lam"], "key=value"),
        (["--hyperparams", "no_such_knob=1"], "unknown ppo hyperparameters"),
        (["--hyperparams", "policy_kwargs={'activation_fn': 'swish'}"], "activation_fn='swish'"),
        (["--timesteps", "0"], "not a positive integer"),
        (["--timesteps", "ten"], "not a number"),
        (["--final-episodes", "1"], "at least 2"),
        (["--evaluate", "/no/such/run"], "not a run folder"),
        (["--continue-from", "/no/such/run"], "not a run folder"),
        (["--env-kwargs", "preset=article"], "article mode has nothing to learn"),
        (["--seed", "-1"], "--seed -1 is invalid"),
        (["--timesteps", "inf"], "not a positive integer"),
        (["--hyperparams", "n_envs=0"], "n_envs=0 is invalid"),
        (["--device", "nope"], "--device 'nope' is invalid"),
        (["--device", "cuda:99"], "--device 'cuda:99' is not available"),
        (["--log-dir", "/dev/null/runs"], "--log-dir /dev/null/runs: cannot write there"),
        (["--hyperparams", "n_steps=0"], "n_steps=0 is invalid: must be an integer >= 1"),
        (["--hyperparams", "batch_size=abc"], "batch_size='abc' is invalid"),
        (["--hyperparams", "learning_rate=-1"], "learning_rate=-1 is invalid"),
        (["--hyperparams", "gamma=2"], "gamma=2 is invalid: must be a number in [0, 1]"),
        (["--hyperparams", "normalize=abc"], "normalize='abc' is invalid"),
        (["--hyperparams", "normalize={'norm_reward': 'yes'}"], "norm_reward: True or False"),
        (["--hyperparams", "learning_rate=restarts_1e-3_0"], "restarts_X_N with X > 0 and N >= 1"),
        (["--algo", "sac", "--hyperparams", "train_freq=0"], "train_freq=0 is invalid"),
        (["--env-kwargs", "T=1000000000000"], "the exact tables would take"),
        (["--env", "mm_env/CompetingMarketMakers-v0", "--env-kwargs", "I_max=100000000"], "GiB"),
    ],
)
def test_bad_arguments_get_a_message_and_exit_status_2(args, message, capsys):
    sys.path.insert(0, str(ROOT))
    try:
        import train
    finally:
        sys.path.remove(str(ROOT))
    with pytest.raises(SystemExit) as exit_info:
        train.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_argument_prints_no_traceback():
    result = run_train("--env-kwargs", "A=1.5")
    assert result.returncode == 2
    assert "A=1.5 is invalid" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("preset", "benchmark_tag"), [("transient", "best_heuristic"), ("momentum", "dp")], ids=["no DP", "with L"]
)
def test_train_runs_on_extension_presets_with_or_without_an_exact_optimum(tmp_path, preset, benchmark_tag):
    result = run_train(*TINY_TRAIN, "--env-kwargs", f"preset={preset}", "T=20", "--log-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    payload = json.loads((run / "comparison.json").read_text())
    scalars = set(events(run).Tags()["scalars"])
    assert f"eval/pct_of_{benchmark_tag}" in scalars
    agent = payload["rows"][0]
    if benchmark_tag == "best_heuristic":
        assert payload["benchmark"].endswith("(tuned)") and "No exact optimum" in result.stdout
        assert agent["exact_return"] is None and "DP optimum" not in {row["policy"] for row in payload["rows"]}
    else:
        assert payload["benchmark"] == "DP optimum"
        assert agent["exact_return"] is not None  # the agent observes (I, t, L): exactly evaluated on (t, I, L)
    assert agent["pct_of_benchmark"] is not None


def test_sigterm_saves_what_was_learned_like_ctrl_c(tmp_path):
    import signal
    import time

    command = [sys.executable, str(ROOT / "train.py"), "--timesteps", "10000000", "--log-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = tmp_path / "ppo_MarketMaking-v0_1"
    deadline = time.monotonic() + 120
    while not (run_dir / "progress.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # inside model.learn
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "interrupted: saving what has been learned" in output
    assert PPO.load(run_dir / "model.zip").num_timesteps > 0
