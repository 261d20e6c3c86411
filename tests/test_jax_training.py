"""``train.py --backend jax``: PPO on JAX through the one training pipeline; its pieces against hand computations."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

jax = pytest.importorskip("jax")
pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402
from helpers import run_command, sigint_raises  # noqa: E402
from scipy import stats  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from agents.cli.train import main as train_main  # noqa: E402
from agents.evaluation.grading import grade  # noqa: E402
from agents.storage import models  # noqa: E402
from agents.training import jax_backend, jax_ppo  # noqa: E402
from agents.training.hyperparameters import _restart_rate  # noqa: E402
from agents.training.jax_ppo import PPOConfig, RunningMoments  # noqa: E402
from mm_env.config import EnvConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The smallest run with every stage: 20-step episodes, two updates of 256 steps per seed, two evaluations.
TINY = ["--backend", "jax", "--env-kwargs", "T=20", "--timesteps", "512", "--n-envs", "4", "--eval-freq", "256"]
TINY += ["--eval-episodes", "20", "--final-episodes", "100", "--no-progress-bar"]
TINY += ["--hyperparams", "n_steps=64", "batch_size=128", "n_epochs=2"]


# ---------------------------------------------------------------------------------------------------------------------
# The pieces of PPO against hand computations


def test_gae_matches_the_recursion_written_as_a_loop():
    rng = np.random.default_rng(0)
    steps, envs, gamma, lam = 7, 3, 0.9, 0.8
    rewards, values = rng.normal(size=(steps, envs)), rng.normal(size=(steps, envs))
    dones, last_value = rng.random((steps, envs)) < 0.3, rng.normal(size=envs)
    expected = np.zeros((steps, envs))
    following = np.zeros(envs)
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else values[t + 1]
        keep = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * keep - values[t]
        following = delta + gamma * lam * keep * following
        expected[t] = following
    advantages, returns = jax_ppo.gae(
        jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones), jnp.asarray(last_value), gamma, lam
    )
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(returns, expected + values, rtol=1e-5, atol=1e-6)


def test_the_clipped_surrogate_against_a_hand_value():
    ratios = np.array([1.5, 0.5, 1.0, 1.1])
    advantages = np.array([1.0, 1.0, -2.0, -1.0])
    old = np.array([0.3, -1.0, 0.0, 2.0])
    # min(ρA, clip(ρ, 0.8, 1.2)A) per sample: min(1.5, 1.2), min(0.5, 0.8), -2, min(-1.1, -1.1).
    loss, kl, clipped = jax_ppo.clipped_surrogate(
        jnp.asarray(old + np.log(ratios)), jnp.asarray(old), jnp.asarray(advantages), 0.2
    )
    assert float(loss) == pytest.approx(-(1.2 + 0.5 - 2.0 - 1.1) / 4, rel=1e-5)
    assert float(clipped) == 0.5  # 1.5 and 0.5 are more than 0.2 from 1
    assert float(kl) == pytest.approx(np.mean(ratios - 1 - np.log(ratios)), rel=1e-4)


def test_the_gaussian_log_density_and_entropy_against_scipy():
    rng = np.random.default_rng(1)
    action, mean = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    log_std = np.array([-1.3, 0.4])
    expected = stats.norm.logpdf(action, mean, np.exp(log_std)).sum(axis=1)
    got = jax_ppo.gaussian_log_prob(jnp.asarray(action), jnp.asarray(mean), jnp.asarray(log_std))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    entropy = stats.multivariate_normal(np.zeros(2), np.diag(np.exp(2 * log_std))).entropy()
    assert float(jax_ppo.gaussian_entropy(jnp.asarray(log_std))) == pytest.approx(entropy, rel=1e-5)


def test_the_running_moments_are_those_of_every_value_merged():
    rng = np.random.default_rng(2)
    batches = [rng.normal(3.0, 2.0, size=32) for _ in range(20)]
    moments = RunningMoments(jnp.zeros(()), jnp.ones(()), jnp.asarray(1e-4))
    for batch in batches:
        moments = jax_ppo.update_moments(moments, jnp.asarray(batch))
    every = np.concatenate(batches)
    assert float(moments.mean) == pytest.approx(every.mean(), rel=1e-4)
    assert float(moments.var) == pytest.approx(every.var(), rel=1e-4)
    assert float(moments.weight) == pytest.approx(len(every), rel=1e-6)


@pytest.mark.parametrize("done", [0.0, 0.05, 0.1, 0.37, 0.95, 1.0])
def test_the_learning_rate_schedules_are_the_sb3_entries(done):
    # restarts_1e-3_10 as the SB3 entry computes it (agents.training.hyperparameters), lin_X and a constant by hand.
    assert float(jax_ppo.learning_rate_at("restarts_1e-3_10", done)) == pytest.approx(
        _restart_rate(1e-3, 10, done), rel=1e-5, abs=1e-12
    )
    assert float(jax_ppo.learning_rate_at("lin_3e-4", done)) == pytest.approx(3e-4 * (1 - done), abs=1e-10)
    assert float(jax_ppo.learning_rate_at(2e-4, done)) == pytest.approx(2e-4)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n_epochs": 0}, "n_epochs=0 is invalid: must be an integer in [1, 100,000,000]"),
        ({"batch_size": 1000}, "batch_size=1000 is invalid: must be a divisor of n_envs · n_steps = 8,192"),
        ({"gamma": 1.5}, "gamma=1.5 is invalid: must be a number in [0, 1]"),
        ({"clip_range": 0}, "clip_range=0 is invalid: must be a number in (0, 1]"),
        ({"learning_rate": "restarts_1e-3_0"}, "learning_rate='restarts_1e-3_0' is invalid"),
        ({"learning_rate": -1}, "learning_rate=-1 is invalid"),
        ({"hidden_sizes": [64, 0]}, "hidden_sizes=[64, 0] is invalid"),
        ({"seed_groups": 0}, "seed_groups=0 is invalid: must be None or an integer in [1, 100,000,000]"),
        ({"seed_groups": 1.5}, "seed_groups=1.5 is invalid"),
        ({"seed_groups": True}, "seed_groups=True is invalid"),
        ({"activation": "swish"}, "activation='swish' is invalid: must be one of ['relu', 'tanh']"),
        ({"log_std_schedule": [-1, 40]}, "log_std_schedule=[-1, 40] is invalid"),
        ({"normalize_reward": "yes"}, "normalize_reward='yes' is invalid: must be True or False"),
        ({"n_envs": 2.5}, "n_envs=2.5 is invalid"),
        ({"no_such_knob": 1}, "unknown JAX PPO hyperparameters ['no_such_knob']"),
    ],
)
def test_bad_hyperparameters_name_the_field_the_value_and_the_range(values, message):
    with pytest.raises(ValueError) as error:
        PPOConfig.from_dict(values)
    assert message in str(error.value)


def test_parameters_round_trip_through_named_arrays_and_refuse_other_shapes():
    config = PPOConfig(hidden_sizes=(8, 8))
    params = jax_ppo.init_params(jax.random.PRNGKey(0), config, 2, 2)
    named = jax_ppo.named_leaves(params)
    assert set(named) == {
        f"{net}/{i}/{part}" for net in ("actor", "critic") for i in range(3) for part in ("kernel", "bias")
    } | {"log_std"}
    back = jax_ppo.params_from_named(named, config, 2, 2)
    for left, right in zip(jax.tree.leaves(params), jax.tree.leaves(back), strict=True):
        np.testing.assert_array_equal(left, right)
    with pytest.raises(ValueError, match="actor/0/kernel has shape"):
        jax_ppo.params_from_named({**named, "actor/0/kernel": np.zeros((2, 9), np.float32)}, config, 2, 2)
    with pytest.raises(ValueError, match="missing"):
        jax_ppo.params_from_named({k: v for k, v in named.items() if k != "log_std"}, config, 2, 2)


def test_the_mean_policy_is_graded_exactly_as_its_tables():
    # Zero weights at the output: the mean action is the output bias everywhere, a constant quote of known offsets.
    config = PPOConfig(hidden_sizes=(4,))
    params = jax_ppo.init_params(jax.random.PRNGKey(0), config, 2, 2)
    params["actor"][-1] = {"kernel": jnp.zeros((4, 2)), "bias": jnp.asarray([-0.5, -0.5])}
    policy = jax_backend.JaxPolicy(params)
    env = EnvConfig.from_kwargs(T=20)
    constant = grade(lambda obs: np.full((len(obs), 2), -0.5), env)
    assert grade(policy, env).expected_return == pytest.approx(constant.expected_return, rel=1e-12)
    assert grade(policy, env).exact
    # Raw offsets (normalize_actions=False): the mean is the offset itself, not clipped to [-1, 1].
    from agents.policies.learned import FunctionPolicy

    params["actor"][-1] = {"kernel": jnp.zeros((4, 2)), "bias": jnp.asarray([1.5, 1.5])}
    raw = EnvConfig.from_kwargs(T=20, normalize_actions=False)
    wide = FunctionPolicy(lambda obs: np.full((len(obs), 2), 1.5), normalized_actions=False)
    raw_policy = jax_backend.JaxPolicy(params, normalized_actions=False)
    assert grade(raw_policy, raw).expected_return == pytest.approx(grade(wide, raw).expected_return, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# The pipeline: a run of two seeds at once, its folder, TensorBoard, table, --evaluate, determinism, signals


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    result = run_command(train_main, *TINY, "--seeds", "2", "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    (run,) = log_dir.iterdir()
    assert run.name == "ppo_jax_MarketMaking-v0_1"
    assert "training PPO (JAX)" in result.stdout and "2 seeds at once" in result.stdout
    groups = min(2, jax_ppo.default_groups())
    assert ("in 2 groups side by side" in result.stdout) == (groups == 2)
    return run


def test_the_run_folder_has_the_pipeline_layout(seeds_run):
    for name in ("model.npz", "model.json", "config.yaml", "comparison.md", "comparison.json", "evaluations.json"):
        assert (seeds_run / name).is_file(), name
    assert not list(seeds_run.glob("*.pkl")) and not list(seeds_run.glob(".*"))
    status = json.loads((seeds_run / "run_status.json").read_text())
    assert status == {"status": "finished", "error": None, "timesteps": 512}
    config = yaml.safe_load((seeds_run / "config.yaml").read_text())
    assert (config["backend"], config["seeds"], config["algo"], config["timesteps"]) == ("jax", 2, "ppo", 512)
    assert config["hyperparams"]["n_epochs"] == 2 and config["hyperparams"]["n_envs"] == 4
    assert {"jax", "optax", "torch"} <= set(config["versions"])
    evaluations = json.loads((seeds_run / "evaluations.json").read_text())
    assert [entry["timesteps"] for entry in evaluations] == [256, 512]
    assert set(evaluations[-1]["exact_pct_of_dp_by_seed"]) == {"0", "1"}


def test_tensorboard_has_the_sb3_tags_and_layout(seeds_run):
    from tensorboard.plugins.custom_scalar import layout_pb2

    accumulator = EventAccumulator(str(seeds_run), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    expected = {
        "rollout/ep_rew_mean",
        "train/value_loss",
        "train/policy_gradient_loss",
        "train/approx_kl",
        "train/std",
        "market/mean_abs_inventory",
        "market/quoted_spread",
        "market/fill_rate",
        "eval/mean_return",
        "eval/pct_of_dp",
        "eval/exact_pct_of_dp",
        "eval/dp_return",
        "eval/article_rule_return",
        "eval_seeds/exact_pct_of_dp_seed_1",
        "eval_seeds/exact_pct_of_dp_mean",
    }
    assert expected <= scalars, expected - scalars
    assert "eval/policy" in accumulator.Tags()["images"]
    assert accumulator.PluginTagToContent("hparams")
    (tag,) = accumulator.PluginTagToContent("custom_scalars")
    layout = layout_pb2.Layout.FromString(accumulator.Tensors(tag)[0].tensor_proto.string_val[0])
    first = layout.category[0].chart[0]
    assert (first.title, list(first.multiline.tag)) == (
        "exact return, % of the DP optimum (100 = optimal)",
        ["^eval/exact_pct_of_dp$"],
    )
    # The log standard deviation on its schedule [-1, -4] over two updates: -1, then -1 - 3/2.
    stds = [event.value for event in accumulator.Scalars("train/std")]
    assert stds == pytest.approx([math.exp(-1.0), math.exp(-2.5)], rel=1e-5)


def test_the_table_has_each_seed_and_their_mean_and_standard_error(seeds_run):
    comparison = json.loads((seeds_run / "comparison.json").read_text())
    rows = {row["policy"]: row for row in comparison["rows"]}
    assert {"PPO-JAX seed 0 (final)", "PPO-JAX seed 1 (final)", "DP optimum"} <= set(rows)
    assert not any("best evaluation" in name for name in rows)  # with several seeds, the final models only
    dp = rows["DP optimum"]["exact_return"]
    pct = [100 * rows[f"PPO-JAX seed {seed} (final)"]["exact_return"] / dp for seed in (0, 1)]
    summary = comparison["seeds"]
    assert summary["n"] == 2 and summary["exact"]
    assert summary["mean"] == pytest.approx(np.mean(pct), rel=1e-12)
    assert summary["se"] == pytest.approx(abs(pct[0] - pct[1]) / 2, rel=1e-9)  # sd/√2 of two values
    line = f"PPO-JAX, 2 seeds: {np.mean(pct):.2f} ± {abs(pct[0] - pct[1]) / 2:.2f}"
    assert line in (seeds_run / "comparison.md").read_text()


def test_evaluate_reproduces_the_table_of_a_jax_run(seeds_run):
    before = (seeds_run / "comparison.json").read_text()
    result = run_command(train_main, "--evaluate", str(seeds_run))
    assert result.returncode == 0, result.stderr
    assert "PPO-JAX seed 1 (final)" in result.stdout and "2 seeds:" in result.stdout
    assert (seeds_run / "comparison.json").read_text() == before


def test_a_damaged_or_foreign_jax_model_is_refused_in_one_line(seeds_run, tmp_path):
    import shutil

    from agents.storage.run_folder import RunFolderError

    config = EnvConfig.from_kwargs(T=20)
    run = Path(shutil.copytree(seeds_run, tmp_path / "run"))
    header = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps({**header, "hyperparams": {"hidden_sizes": [32]}}))
    with pytest.raises(RunFolderError, match="does not fit model.json: the arrays do not fit the network"):
        jax_backend.load_jax_policies(run, config)
    (run / "model.json").write_text(json.dumps(header))
    np.savez(run / "model.npz", log_std=np.array([object()], dtype=object))  # a pickle inside: never loaded
    with pytest.raises(RunFolderError, match="model.npz is damaged"):
        jax_backend.load_jax_policies(run, config)
    (run / "model.npz").write_bytes(b"\x00" * (2 * 1024**2))  # larger than the networks need
    with pytest.raises(RunFolderError, match="more than the .* that the run's networks need"):
        jax_backend.load_jax_policies(run, config)


def test_the_same_seeds_give_the_same_parameters(seeds_run):
    # The run's settings again, outside the pipeline and in one call: every parameter equals the saved one.
    config = yaml.safe_load((seeds_run / "config.yaml").read_text())
    ppo = PPOConfig.from_dict(config["hyperparams"])
    trainer = jax_backend.trainer_for(EnvConfig.from_kwargs(T=20), ppo, config["timesteps"])
    state, _ = trainer.train(trainer.init([0, 1]), trainer.total_updates)
    saved = models.read_arrays(seeds_run, 10**7)
    for name, array in jax_ppo.named_leaves(state.params).items():
        np.testing.assert_array_equal(array, saved[name], err_msg=name)
    assert ppo.seed_groups == jax_ppo.default_groups()  # decided and recorded by the run
    # In one group, a seed's parameters do not depend on the seed trained beside it; another seed gives others.
    one_group = jax_backend.trainer_for(EnvConfig.from_kwargs(T=20), replace(ppo, seed_groups=1), config["timesteps"])
    state, _ = one_group.train(one_group.init([0, 1]), one_group.total_updates)
    other, _ = one_group.train(one_group.init([2, 1]), one_group.total_updates)
    for mine, theirs in zip(jax.tree.leaves(state.params), jax.tree.leaves(other.params), strict=True):
        np.testing.assert_array_equal(mine[1], theirs[1])
    assert not np.allclose(other.params["actor"][0]["kernel"][0], state.params["actor"][0]["kernel"][0])


def test_seeds_split_into_groups_train_as_each_group_alone(monkeypatch):
    # Three seeds in two groups (two and one) trained side by side on threads = each group's slice of the same start
    # trained alone by the same compiled program, to the last bit.
    env = jax_backend.make_jax_env(EnvConfig.from_kwargs(T=20))
    ppo = PPOConfig(n_envs=4, n_steps=64, batch_size=128, n_epochs=2, hidden_sizes=(8, 8), seed_groups=2)
    trainer = jax_ppo.Trainer(env, env.default_params, ppo, 512)
    start = trainer.init([0, 1, 2])
    state, sums = trainer.train(start, 2)
    count = jnp.asarray(2, dtype=jnp.int32)
    first, first_sums = trainer._train(jax.tree.map(lambda x: x[:2], start), count)
    second, second_sums = trainer._train(jax.tree.map(lambda x: x[2:], start), count)
    for leaf, a, b in zip(jax.tree.leaves(state), jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(leaf, np.concatenate([a, b]))
    assert list(sums) == list(jax_ppo.METRICS)
    for name, total in sums.items():
        assert total.shape == (3,), name
        np.testing.assert_array_equal(total, np.concatenate([first_sums[name], second_sums[name]]), err_msg=name)
    assert np.all(sums["episodes"] > 0) and state.updates.tolist() == [2, 2, 2]
    # More groups than seeds: one seed, one group, the same numbers as that seed's slice above.
    alone, alone_sums = trainer.train(jax.tree.map(lambda x: x[2:], start), 2)
    np.testing.assert_array_equal(alone.params["actor"][0]["kernel"], second.params["actor"][0]["kernel"])
    assert list(alone_sums) == list(jax_ppo.METRICS)

    # A group's failure reaches the caller; settings made for the calling thread alone keep the seeds on it.
    calls = []

    def recorded(part, n):
        calls.append((threading.get_ident(), int(part.updates.shape[0])))
        if len(calls) == 2 and not jax.config.jax_debug_nans:
            raise RuntimeError("a group failed")
        return state, sums

    monkeypatch.setattr(trainer, "_train", recorded)
    with pytest.raises(RuntimeError, match="a group failed"):
        trainer.train(start, 2)
    assert sorted(size for _, size in calls) == [1, 2]
    calls.clear()
    with jax.debug_nans(True):
        trainer.train(start, 2)
    assert calls == [(threading.get_ident(), 3)]


def test_the_default_groups_follow_the_cores_and_a_cgroup_quota(tmp_path, monkeypatch):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert jax_ppo.cpu_quota(str(v2)) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert jax_ppo.cpu_quota(str(v2)) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert jax_ppo.cpu_quota(str(v1)) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert jax_ppo.cpu_quota(str(v1)) is None
    assert jax_ppo.cpu_quota(str(tmp_path / "none")) is None
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(jax_ppo, "cpu_quota", lambda: None)
    assert jax_ppo.default_groups() == cores
    monkeypatch.setattr(jax_ppo, "cpu_quota", lambda: 0.5)  # half a core: one group
    assert jax_ppo.default_groups() == 1
    monkeypatch.setattr(jax_ppo, "cpu_quota", lambda: cores + 4.0)  # a quota above the cores: the cores
    assert jax_ppo.default_groups() == cores
    # A configuration decides its groups once; a number given stays.
    assert PPOConfig().resolved().seed_groups == cores and PPOConfig(seed_groups=3).resolved().seed_groups == 3
    assert PPOConfig(seed_groups=np.int64(2)).seed_groups == 2


def test_a_terminal_gets_sb3s_progress_bar_over_each_seeds_steps(tmp_path, monkeypatch):
    # The fixture's settings (compiled already) with stderr a terminal and no --no-progress-bar: the bar counts each
    # seed's steps, chunk by chunk, and is closed.
    bars = []

    class Bar:
        def __init__(self, total, initial):
            self.total, self.done, self.closed = total, initial, False
            bars.append(self)

        def update(self, steps):
            self.done += steps

        def close(self):
            self.closed = True

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(jax_backend, "tqdm", Bar)
    args = [arg for arg in TINY if arg != "--no-progress-bar"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(Terminal()):
        assert train_main([*args, "--seeds", "2", "--log-dir", str(tmp_path)]) == 0
    ((bar,),) = [bars]
    assert (bar.total, bar.done, bar.closed) == (512, 512, True)


def test_ctrl_c_saves_what_was_learned(tmp_path, monkeypatch):
    # The run's settings of the fixture (compiled already); Ctrl-C arrives as the first chunk's scalars are logged.
    sent = []

    def record_then_ctrl_c(self, *args):
        if not sent:
            sent.append(True)
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(jax_backend.JaxPPOModel, "_record", record_then_ctrl_c)
    with sigint_raises():
        result = run_command(train_main, *TINY, "--seeds", "2", "--log-dir", str(tmp_path))
    assert result.returncode == 130, result.stderr
    assert "interrupted: saving what has been learned" in result.stdout
    (run,) = tmp_path.iterdir()
    status = json.loads((run / "run_status.json").read_text())
    assert (status["status"], status["timesteps"]) == ("interrupted", 256)  # the first chunk: one update
    agents = jax_backend.load_jax_policies(run, EnvConfig.from_kwargs(T=20))
    assert [agent.seed for agent in agents] == [0, 1]
    assert not (run / "comparison.json").exists()


def test_sigterm_then_ctrl_c_stop_a_jax_run_in_its_own_process_and_save_it(tmp_path):
    # A budget it never reaches, no evaluation before its end: the signals arrive while it trains (two seeds: on a
    # machine of several cores, two groups side by side on threads while the main thread waits for them).
    settings = [*TINY[:4], "--n-envs", "4", "--seeds", "2", "--hyperparams", "n_steps=64", "batch_size=128"]
    settings += ["n_epochs=2"]
    settings += ["--timesteps", "100000000", "--eval-freq", "100000000", "--log-dir", str(tmp_path)]
    # No preexec function (as start_in_background has): this process runs JAX's threads, which a fork must not copy.
    with sigint_raises():
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *settings],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("training "):
            break
    (run,) = tmp_path.iterdir()
    deadline = time.monotonic() + 120
    while (run / "progress.csv").read_text().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # a first chunk is logged: it trains
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # a second signal only waits for the first one's save
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    assert "interrupted: saving what has been learned" in output and "Traceback" not in errors
    status = json.loads((run / "run_status.json").read_text())
    assert status["status"] == "interrupted" and status["timesteps"] > 0
    assert json.loads((run / "model.json").read_text())["timesteps"] == status["timesteps"]
    assert [agent.seed for agent in jax_backend.load_jax_policies(run, EnvConfig.from_kwargs(T=20))] == [0, 1]


# ---------------------------------------------------------------------------------------------------------------------
# What the backend refuses, and JAX stays optional


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "mm_env/CompetingMarketMakers-v0"], "--backend jax trains one market maker only"),
        (["--algo", "sac"], "--backend jax trains PPO only, not --algo sac"),
        (["--hyperparams", "n_epochs=0"], "n_epochs=0 is invalid"),
        (["--hyperparams", "batch_size=3"], "batch_size=3 is invalid: must be a divisor"),
        (["--seeds", "0"], "'0' is not a positive integer"),
        (["--seed", str(2**32 - 1), "--seeds", "2"], "the last seed, 4294967296, must be at most 2**32 - 1"),
    ],
)
def test_bad_jax_arguments_get_one_line_and_status_2(args, message):
    result = run_command(train_main, "--backend", "jax", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_several_seeds_need_the_jax_backend():
    result = run_command(train_main, "--seeds", "3")
    assert result.returncode == 2 and "--seeds 3 trains several seeds at once with --backend jax only" in result.stderr


def test_without_jax_the_backend_says_how_to_install_it(monkeypatch, tmp_path, seeds_run):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    line = '--backend jax needs jax, which is not installed: pip install -e ".[jax]"'
    result = run_command(train_main, "--backend", "jax", "--log-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"mm-env-train: error: {line}"]
    assert not (tmp_path / "runs").exists()
    evaluated = run_command(train_main, "--evaluate", str(seeds_run))
    assert evaluated.returncode == 2
    assert evaluated.stderr.strip().splitlines() == [f"mm-env-train: error: {seeds_run} is a JAX run: {line}"]


def test_an_sb3_run_imports_no_jax():
    code = "import sys, agents.cli.train as t; t._import_libraries(); print('jax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------------------------------
# The default budget


@pytest.mark.slow
def test_the_default_budget_reaches_99_5_percent_of_the_dp_at_seed_0(tmp_path):
    result = run_command(train_main, "--backend", "jax", "--final-episodes", "1000", "--log-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    rows = {row["policy"]: row for row in json.loads((run / "comparison.json").read_text())["rows"]}
    assert rows["PPO-JAX (final)"]["exact_return"] / rows["DP optimum"]["exact_return"] >= 0.995
