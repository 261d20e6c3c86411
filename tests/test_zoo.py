"""The RL Zoo (rl_zoo3) trains with our tuned hyperparameters: ``-conf agents.zoo.<algo>``."""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

pytest.importorskip("rl_zoo3")

import rl_zoo3.exp_manager  # noqa: E402
from rl_zoo3.exp_manager import ExperimentManager  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402

import mm_env  # noqa: E402
from agents.training.callbacks import LogStdSchedule  # noqa: E402
from agents.training.experiment import training_callbacks  # noqa: E402
from agents.training.hyperparameters import ALGORITHMS, HYPERPARAMS_DIR, RUN_KEYS, algorithm_kwargs  # noqa: E402
from agents.zoo import ALGOS, zoo_entry, zoo_hyperparams  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENV_ID = mm_env.MARKET_MAKING_ID
PROGRESS = (1.0, 0.9, 0.55, 0.3, 0.05, 0.0)  # SB3's progress remaining, at which schedules are compared


def our_entries(algo: str) -> dict[str, dict[str, Any]]:
    return yaml.safe_load((HYPERPARAMS_DIR / f"{algo}.yml").read_text())


def manager(algo: str, log_folder: Path, config: str | None = None) -> ExperimentManager:
    return ExperimentManager(
        argparse.Namespace(),
        algo,
        ENV_ID,
        str(log_folder),
        eval_freq=-1,
        seed=0,
        verbose=0,
        device="cpu",
        config=config or f"agents.zoo.{algo}",
        env_kwargs={"T": 20},
    )


def at(value: Any, progress: float) -> Any:
    """A schedule's value at ``progress`` (a constant is its own value)."""
    return value(progress) if callable(value) else value


def test_every_algorithm_has_a_zoo_module_and_ours_has_no_other_files():
    assert sorted(path.stem for path in HYPERPARAMS_DIR.glob("*.yml")) == sorted(ALGOS) == sorted(ALGORITHMS)


@pytest.mark.parametrize("algo", ALGOS)
def test_zoo_entries_are_ours_with_restarts_as_linear_decays(algo):
    ours, zoo = our_entries(algo), zoo_hyperparams(algo)
    assert importlib.import_module(f"agents.zoo.{algo}").hyperparams == zoo
    assert zoo.keys() == ours.keys()
    for env_id, entry in ours.items():
        entry = dict(entry)  # YAML aliases load as one shared dict
        if "log_std_schedule" in entry:  # becomes the zoo's callback entry
            start, end = entry.pop("log_std_schedule")
            callback = zoo[env_id].pop("callback")
            assert callback == {"agents.training.callbacks.LogStdSchedule": {"start": start, "end": end}}
        assert zoo[env_id].keys() == entry.keys()
        for key, value in entry.items():
            if isinstance(value, str) and value.startswith("restarts_"):
                peak = value.split("_")[1]
                assert zoo[env_id][key] == f"lin_{peak}", (env_id, key)
            else:
                assert zoo[env_id][key] == value, (env_id, key)


@pytest.mark.parametrize("algo", ALGOS)
def test_the_zoo_builds_the_model_our_training_would(algo, tmp_path, monkeypatch):
    """The zoo's own preprocessing (ExperimentManager.setup_experiment) accepts the entry and agrees with ours."""
    entry = our_entries(algo)[ENV_ID]
    module = importlib.import_module(f"agents.zoo.{algo}")
    # The zoo edits the entry it reads in place: give it a copy, so that the module's dict stays as imported.
    monkeypatch.setattr(module, "hyperparams", zoo_hyperparams(algo))
    # Record what the zoo passes to the constructor, before SB3 adds its own defaults to policy_kwargs in place.
    passed: dict[str, Any] = {}

    def constructor(**kwargs: Any) -> Any:
        passed.update(copy.deepcopy({key: value for key, value in kwargs.items() if key != "env"}))
        return ALGORITHMS[algo](**kwargs)

    monkeypatch.setitem(rl_zoo3.exp_manager.ALGOS, algo, constructor)
    zoo = manager(algo, tmp_path)
    model, _ = zoo.setup_experiment()
    assert isinstance(model, ALGORITHMS[algo])

    # The run settings.
    assert zoo.n_envs == entry["n_envs"] == model.n_envs
    assert zoo.n_timesteps == int(entry["n_timesteps"])
    normalizer = model.get_vec_normalize_env()
    if entry["normalize"]:
        assert isinstance(entry["normalize"], dict)
        for key, value in entry["normalize"].items():
            assert getattr(normalizer, key) == value, key
    else:
        assert normalizer is None

    # The algorithm's constructor arguments, against those train.py passes.
    ours = algorithm_kwargs(algo, entry, n_actions=2)
    managed = {"tensorboard_log", "seed", "verbose", "device"}  # the zoo's own arguments, as train.py sets them itself
    theirs = {key: value for key, value in passed.items() if key not in managed}
    assert theirs.pop("policy") == entry["policy"]
    assert theirs.keys() == ours.keys()
    for key, value in ours.items():
        if key == "learning_rate" and str(entry[key]).startswith("restarts_"):
            # The zoo's one linear decay from our first peak X: lin_X.
            peak = float(entry[key].split("_")[1])
            assert at(value, 1.0) == pytest.approx(peak)
            assert [theirs[key](p) for p in PROGRESS] == pytest.approx([peak * p for p in PROGRESS])
        elif key in ("learning_rate", "clip_range"):
            assert [at(theirs[key], p) for p in PROGRESS] == pytest.approx([at(value, p) for p in PROGRESS]), key
        elif key == "action_noise":
            assert type(theirs[key]) is type(value)
            np.testing.assert_array_equal(theirs[key]._mu, value._mu)
            np.testing.assert_array_equal(theirs[key]._sigma, value._sigma)
        else:
            assert theirs[key] == value, key
    assert set(entry) - set(RUN_KEYS) - {"policy"} <= ours.keys()
    # The callbacks train.py adds for the entry (besides its logging and evaluations), the zoo adds too.
    ours_callbacks = [(type(c), vars(c).get("start"), vars(c).get("end")) for c in training_callbacks(entry)]
    theirs_callbacks = [(type(c), vars(c).get("start"), vars(c).get("end")) for c in zoo.callbacks]
    assert [c for c in theirs_callbacks if c in ours_callbacks] == ours_callbacks
    model.get_env().close()


def test_conversions_the_zoo_needs_beyond_the_learning_rate(tmp_path):
    ours = {
        "n_timesteps": 1e4,
        "policy": "MlpPolicy",
        "learning_rate": 3e-4,
        "clip_range": "restarts_0.2_4",
        "policy_kwargs": {"net_arch": [32, 32], "activation_fn": "tanh"},
    }
    zoo = zoo_entry(ours)
    assert zoo["clip_range"] == "lin_0.2"
    assert isinstance(zoo["policy_kwargs"], str)  # evaluated by the zoo
    processed, *_ = manager("ppo", tmp_path)._preprocess_hyperparams(copy.deepcopy(zoo))
    assert processed["policy_kwargs"] == algorithm_kwargs("ppo", ours, n_actions=2)["policy_kwargs"]
    assert [processed["clip_range"](p) for p in PROGRESS] == pytest.approx([0.2 * p for p in PROGRESS])
    assert processed["learning_rate"](0.5) == 3e-4


def test_a_log_std_schedule_becomes_the_zoo_callback_that_sets_it(tmp_path):
    zoo = zoo_entry({"n_timesteps": 1e4, "policy": "MlpPolicy", "log_std_schedule": [-1.0, -4.0]})
    assert "log_std_schedule" not in zoo
    _, _, callbacks, _ = manager("ppo", tmp_path)._preprocess_hyperparams(copy.deepcopy(zoo))
    assert [(type(c), c.start, c.end) for c in callbacks] == [(LogStdSchedule, -1.0, -4.0)]
    learned = zoo_entry({"n_timesteps": 1e4, "policy": "MlpPolicy", "log_std_schedule": None})
    assert "log_std_schedule" not in learned and "callback" not in learned


@pytest.mark.parametrize(
    "entry",
    [
        {"learning_rate": "cosine_1e-3"},
        {"learning_rate": "restarts_1e-3"},
        {"learning_rate": "restarts_1e-3_0"},
        {"clip_range": "lin_0.2_3"},
        {"policy_kwargs": {"activation_fn": "gelu"}},
        # The zoo would normalise the rewards with gamma 0.999 where train.py uses VecNormalize's default 0.99.
        {"gamma": 0.999, "normalize": {"norm_obs": False}},
        {"gamma": 0.999, "normalize": True},
        {"gamma": 0.99, "normalize": {"gamma": 0.9}},
    ],
)
def test_entries_the_zoo_cannot_express_are_refused(entry):
    with pytest.raises(ValueError):
        zoo_entry(entry)


def run_zoo(algo: str, log_folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m rl_zoo3.train`` on our env and our hyperparameters, in ``log_folder`` (never in the checkout)."""
    command = [
        *(sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", ENV_ID, "--gym-packages", "mm_env"),
        *("-conf", f"agents.zoo.{algo}", "-f", str(log_folder), "--env-kwargs", "T:20"),
        # One thread: on a busy 2-core machine PyTorch's default threads make a 10 s run take over a minute.
        *("--seed", "0", "--device", "cpu", "--num-threads", "1", "--verbose", "0", *args),
    ]
    # The package is importable by name as installed (pip install -e .) or, failing that, from this checkout.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(command, cwd=log_folder, env=env, capture_output=True, text=True, timeout=300)


RUNS = {
    "ppo": (
        *("-n", "2048", "--eval-freq", "1024", "--eval-episodes", "2", "--n-eval-envs", "1"),
        *("--hyperparams", "n_envs:2", "n_steps:64", "batch_size:64", "n_epochs:2"),
    ),
    "td3": (
        *("-n", "1000", "--eval-freq", "-1"),
        *("--hyperparams", "n_envs:2", "learning_starts:200", "batch_size:64", "buffer_size:2000", "gradient_steps:1"),
    ),
}


@pytest.mark.parametrize("algo", sorted(RUNS))
def test_rl_zoo_trains_on_our_env_and_the_model_acts_in_it(algo, tmp_path):
    result = run_zoo(algo, tmp_path, *RUNS[algo])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / algo / "mm_env-MarketMaking-v0_1"  # the zoo writes <log folder>/<algo>/<env id, / as ->_<n>/
    config = (run / "mm_env-MarketMaking-v0" / "config.yml").read_text()
    assert zoo_hyperparams(algo)[ENV_ID]["learning_rate"] in config

    model = ALGORITHMS[algo].load(run / "mm_env-MarketMaking-v0.zip", device="cpu")
    assert model.num_timesteps == int(RUNS[algo][1])
    stats = run / "mm_env-MarketMaking-v0" / "vecnormalize.pkl"
    if algo == "ppo":
        assert (run / "best_model.zip").exists() and (run / "evaluations.npz").exists()
        normalizer = VecNormalize.load(str(stats), DummyVecEnv([lambda: gym.make(ENV_ID, T=20)]))
        assert normalizer.norm_reward and not normalizer.norm_obs  # so the policy acts on raw observations
    else:
        assert not stats.exists()

    env = gym.make(ENV_ID, T=20)
    observation, _ = env.reset(seed=1)
    steps, terminated = 0, False
    while not terminated and steps < 100:
        action, _ = model.predict(observation, deterministic=True)
        assert env.action_space.contains(action)
        observation, reward, terminated, truncated, _ = env.step(action)
        assert np.isfinite(reward) and not truncated
        steps += 1
    assert terminated and steps == 20
