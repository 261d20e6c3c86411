"""Run folders that never lose work or let anyone in: atomic files, the run's status, damaged and crafted folders.

Through the command line as a user runs it (``train.py``: in a subprocess where real signals matter, else its
``main`` in this process), and with the pieces of :mod:`agents.storage` directly where a property is easier to show
there. One tiny trained run is shared by the module and copied for damaging.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import yaml
from helpers import TINY_TRAIN, run_command, start_in_background
from stable_baselines3 import PPO
from stable_baselines3.common import save_util
from stable_baselines3.common.vec_env import VecNormalize

from agents.cli.train import main as train_main
from agents.storage import files, models, run_folder
from agents.storage.run_folder import RunFolderError
from agents.training.experiment import continued_config, load_agents
from agents.training.hyperparameters import ALGORITHMS, algorithm_kwargs, load_hyperparams
from agents.training.interrupts import DeferredInterrupts, InterruptOnce, interrupt
from mm_env.sb3_vec_env import MarketMakingVecEnv

ROOT = Path(__file__).resolve().parent.parent
TRAIN = [sys.executable, str(ROOT / "train.py")]
AFTER = ["--timesteps", "512", "--eval-episodes", "20", "--final-episodes", "50", "--no-progress-bar"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_train(*args: str) -> subprocess.CompletedProcess:
    """``train.py`` in this process (see ``helpers.run_command``); signals are tested on real processes."""
    return run_command(train_main, *args)


def start_train(*args: str) -> subprocess.Popen:
    """``train.py`` in the background, as from a shell (see :func:`helpers.start_in_background`)."""
    return start_in_background([*TRAIN, *args])


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / run_folder.STATUS_FILE).read_text())


def one_error_line(stderr: str) -> str:
    """The single line of stderr, which must read like argparse's errors."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mm-env-train: error: ") and "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    result = run_train(*TINY_TRAIN, "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    return log_dir / "ppo_MarketMaking-v0_1"


@pytest.fixture
def copy_of(trained, tmp_path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        return Path(shutil.copytree(trained, tmp_path / name))

    return make


# ---------------------------------------------------------------------------------------------------------------------
# Atomic files


def test_an_interrupted_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.zip"
    files.atomic_write_bytes(path, b"old complete version")

    def interrupted(descriptor):
        raise KeyboardInterrupt  # as a second Ctrl-C would, after the new bytes were written, before the rename

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_bytes(path, b"new version, never seen half-written")
    assert path.read_bytes() == b"old complete version"
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]
    monkeypatch.undo()
    files.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # the usual permissions, not mkstemp's owner-only ones


def test_the_final_name_of_a_model_is_only_ever_written_by_a_rename(tmp_path, monkeypatch):
    # Every file of the model's save is opened under a temporary name; model.zip itself appears by os.replace.
    model = PPO("MlpPolicy", MarketMakingVecEnv(2), n_steps=8, batch_size=16, device="cpu")
    opened, replaced = [], []
    real_open, real_replace = os.open, os.replace

    def spy_open(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    def spy_replace(source, target):
        replaced.append(Path(target).name)
        return real_replace(source, target)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "replace", spy_replace)
    models.save_model(model, tmp_path)
    assert "model.zip" not in opened and replaced == ["model.zip"]
    assert PPO.load(tmp_path / "model.zip", device="cpu").n_steps == 8


def test_staged_files_appear_only_when_their_writer_has_finished(tmp_path):
    (tmp_path / "comparison.md").write_text("old")
    with pytest.raises(RuntimeError), files.staged_files(tmp_path) as staging:
        (staging / "comparison.md").write_text("half of the new")
        raise RuntimeError("the writer failed")
    assert [p.name for p in tmp_path.iterdir()] == ["comparison.md"]
    assert (tmp_path / "comparison.md").read_text() == "old"
    with files.staged_files(tmp_path) as staging:
        (staging / "comparison.md").write_text("new")
        (staging / "comparison.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.json", "comparison.md"]


# ---------------------------------------------------------------------------------------------------------------------
# Signals: the first stops, later ones wait


@pytest.fixture
def sigterm_interrupts():
    previous = signal.signal(signal.SIGTERM, interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_during_a_deferred_block_takes_effect_when_the_block_ends(sigterm_interrupts):
    finished = False
    with pytest.raises(KeyboardInterrupt):
        with DeferredInterrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here: it only holds the signal
            finished = True
    assert finished and signal.getsignal(signal.SIGTERM) is interrupt


def test_after_the_first_signal_later_ones_only_print_a_note(sigterm_interrupts, capsys):
    with InterruptOnce():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)  # the second: held while what the first set going is finished
        time.sleep(0.05)
    assert "still saving" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is interrupt


def test_sigint_twice_in_quick_succession_during_the_save_leaves_a_loadable_model(tmp_path):
    # A big network makes the save take about a second: the second SIGINT, sent as soon as the first has been taken
    # into account, arrives while the model is being written.
    big = "policy_kwargs={'net_arch': {'pi': [2048, 2048], 'vf': [2048, 2048]}}"
    args = ["--timesteps", "10000000", "--n-envs", "4", "--eval-freq", "9000000", "--no-progress-bar"]
    process = start_train(*args, "--hyperparams", "n_steps=64", "batch_size=256", big, "--log-dir", str(tmp_path))
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("training "):
            break
    time.sleep(2)  # inside model.learn
    process.send_signal(signal.SIGINT)
    for line in process.stdout:
        lines.append(line)
        if "interrupted: saving" in line:
            process.send_signal(signal.SIGINT)
            break
    output, errors = process.communicate(timeout=300)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors and "still saving" in errors
    run_dir = tmp_path / "ppo_MarketMaking-v0_1"
    assert status(run_dir)["status"] == "interrupted"
    assert PPO.load(run_dir / "model.zip", device="cpu").num_timesteps > 0
    assert not list(run_dir.glob(".*"))


# Python, NumPy, torch, SB3 and the parser: a signal inside a C extension's initialisation once aborted (SIGABRT).
@pytest.mark.parametrize("delay", [0.2, 0.5, 1.0, 2.0])
def test_ctrl_c_during_start_up_is_one_line_and_status_130(tmp_path, delay):
    process = start_train("--log-dir", str(tmp_path / "runs"))
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=60)
    assert process.returncode == 130
    assert errors.strip() == "mm-env-train: interrupted before the run started; nothing was written"
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_sigterm_during_the_final_comparison_keeps_the_model_and_says_how_to_redo_it(tmp_path):
    args = [*TINY_TRAIN[: TINY_TRAIN.index("--final-episodes")], "--final-episodes", "200000", "--no-progress-bar"]
    process = start_train(*args, "--log-dir", str(tmp_path))
    run_dir = tmp_path / "ppo_MarketMaking-v0_1"
    deadline = time.monotonic() + 240
    while not (run_dir / "evaluations.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # written just before the comparison starts: 200,000 episodes per policy take a while
    process.send_signal(signal.SIGTERM)
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    assert f"redo the comparison with: mm-env-train --evaluate {run_dir}" in output
    assert "Traceback" not in errors
    assert status(run_dir) == {
        "status": "interrupted",
        "error": "interrupted during the final comparison",
        "timesteps": 2048,
    }
    assert PPO.load(run_dir / "model.zip", device="cpu").num_timesteps == 2048


# ---------------------------------------------------------------------------------------------------------------------
# A failure after the run folder exists


def train_until_best_model_cannot_be_written(log_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """A run whose first periodic evaluation cannot save ``best_model.zip`` (a folder took its name)."""
    process = start_train(*TINY_TRAIN, "--log-dir", str(log_dir), *extra)
    run_dir = log_dir / "ppo_MarketMaking-v0_1"
    deadline = time.monotonic() + 120
    while not (run_dir / "config.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    (run_dir / "best_model.zip").mkdir()  # before the first evaluation, 1,024 steps in
    output, errors = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, output, errors)


def test_a_failure_mid_run_saves_the_model_marks_the_run_failed_and_exits_1(tmp_path):
    result = train_until_best_model_cannot_be_written(tmp_path)
    run_dir = tmp_path / "ppo_MarketMaking-v0_1"
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "training failed at step 1,024: IsADirectoryError" in line and str(run_dir) in line
    assert status(run_dir)["status"] == "failed" and status(run_dir)["timesteps"] == 1024
    assert "IsADirectoryError" in status(run_dir)["error"]
    assert "Traceback (most recent call last)" in (run_dir / "error.log").read_text()
    (run_dir / "best_model.zip").rmdir()  # the fault we made
    agents, _, _ = load_agents(run_dir, device="cpu")  # the model as it was, with its statistics
    assert [agent.name for agent in agents] == ["PPO (final)"]
    assert PPO.load(run_dir / "model.zip", device="cpu").num_timesteps == 1024


def test_verbose_prints_the_traceback_of_a_failure(tmp_path):
    result = train_until_best_model_cannot_be_written(tmp_path, "--verbose")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("mm-env-train: error: training failed")


# ---------------------------------------------------------------------------------------------------------------------
# Damaged folders: one line, exit status 2


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def replace_in_config(run_dir: Path, old: str, new: str) -> None:
    text = (run_dir / "config.yaml").read_text()
    assert old in text
    (run_dir / "config.yaml").write_text(text.replace(old, new))


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated model": (lambda run: truncate(run / "model.zip"), "model.zip is damaged (truncated"),
    "corrupt model": (lambda run: (run / "model.zip").write_bytes(b"PK\x03\x04 not a zip"), "model.zip is damaged"),
    "no model": (lambda run: (run / "model.zip").unlink(), "has no model.zip"),
    "empty config": (lambda run: (run / "config.yaml").write_text(""), "config.yaml is empty or not a mapping"),
    "malformed config": (lambda run: (run / "config.yaml").write_text("algo: [ppo\n"), "config.yaml cannot be read"),
    "unknown algorithm": (lambda run: replace_in_config(run, "algo: ppo", "algo: dqn"), "algo='dqn' is not one of"),
    "corrupt statistics": (lambda run: truncate(run / "vecnormalize.json"), "vecnormalize.json is damaged"),
    "unknown env kwargs": (
        lambda run: replace_in_config(run, "env_kwargs: {}", "env_kwargs: {no_such_knob: 1}"),
        "'no_such_knob' is not an environment keyword",
    ),
    "pickled statistics only": (
        lambda run: (run / "vecnormalize.json").rename(run / "vecnormalize.pkl"),
        "vecnormalize.pkl: normalisation statistics in the old pickle format",
    ),
}


def test_every_damaged_folder_gets_one_line_and_exit_status_2(copy_of, tmp_path):
    cases = []
    for name, (damage, message) in DAMAGES.items():
        run_dir = copy_of(name.replace(" ", "_"))
        if name == "no model":
            (run_dir / "best_model.zip").unlink()
        damage(run_dir)
        for mode in ("--evaluate", "--continue-from"):
            cases.append((name, mode, run_dir, message))

    def attempt(case):
        name, mode, run_dir, _ = case
        return run_train(mode, str(run_dir), *AFTER, "--log-dir", str(tmp_path / "continued"))

    results = [attempt(case) for case in cases]
    for (name, mode, _, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (name, mode, result.stderr)
        assert message in one_error_line(result.stderr), (name, mode)
    assert not (tmp_path / "continued").exists() or not list((tmp_path / "continued").iterdir())


def test_continuing_a_normalising_run_without_its_statistics_is_refused(copy_of, tmp_path):
    run_dir = copy_of("no_statistics")
    (run_dir / "vecnormalize.json").unlink()
    result = run_train("--continue-from", str(run_dir), *AFTER, "--log-dir", str(tmp_path / "continued"))
    assert result.returncode == 2
    assert f"{run_dir / 'vecnormalize.json'} is missing" in one_error_line(result.stderr)
    # Evaluating needs no statistics here: the run normalised its rewards only.
    final, best = load_agents(run_dir, device="cpu")[0]
    assert final.obs_normalizer is None and best.obs_normalizer is not None  # best_vecnormalize.json is still there


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty or not a mapping"),
        ("- a list\n", "empty or not a mapping"),
        ("algo: ppo\n", "env_id=None is not an environment id"),
        ("algo: ppo\nenv_id: mm_env/MarketMaking-v0\nhyperparams: [1]\n", "hyperparams must be a mapping"),
        ("algo: ppo\nenv_id: mm_env/MarketMaking-v0\nseed: -3\n", "seed=-3 is not a non-negative integer"),
        ("algo: !!python/object/apply:os.system ['true']\n", "cannot be read"),  # safe_load: plain data only
    ],
)
def test_config_yaml_is_checked(tmp_path, text, message):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(RunFolderError, match=message):
        run_folder.read_config(tmp_path, ALGORITHMS)


# ---------------------------------------------------------------------------------------------------------------------
# The recorded model wins


def test_evaluate_and_continue_use_the_recorded_params_when_env_kwargs_disagree(copy_of):
    run_dir = copy_of("edited")
    original = (run_dir / "comparison.json").read_text()
    replace_in_config(run_dir, "env_kwargs: {}", "env_kwargs: {lam: 0.003}")  # as if the default lam had changed
    result = run_train("--evaluate", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "(lam: 0.003 → 0.005); using the recorded params" in result.stdout
    assert (run_dir / "comparison.json").read_text() == original  # the same model, seed and episodes
    config = continued_config(run_dir)
    assert config.env_kwargs["lam"] == 0.005 and config.env_kwargs["T"] == 200


def test_a_game_run_records_its_whole_game_and_loads_it(game_run):
    saved = yaml.safe_load((game_run / "config.yaml").read_text())
    assert saved["params"]["num_market_makers"] == 2 and saved["params"]["tick"] == 0.01
    assert saved["params"]["T"] == 20 and saved["params"]["lam"] == 0.005
    (agent,), family, _ = load_agents(game_run, device="cpu")
    assert family.self_play and family.params.market.T == 20
    assert not agent.obs_normalizer.norm_obs  # read and checked, but the run normalised its rewards only


# ---------------------------------------------------------------------------------------------------------------------
# Nothing from a run folder is unpickled


class Payload:
    """Creates ``marker`` when unpickled: what a crafted run folder would do with worse code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def rewrite_zip(path: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    change(entries)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def plant(path: Path, key: str, marker: Path) -> None:
    """Put a cloudpickled payload under ``key`` of the model's ``data``, as SB3 stores objects it pickles."""

    def change(entries: dict[str, bytes]) -> None:
        data = json.loads(entries["data"])
        serialized = base64.b64encode(cloudpickle.dumps(Payload(marker))).decode()
        data[key] = {":type:": "<class 'function'>", ":serialized:": serialized}
        entries["data"] = json.dumps(data).encode()

    rewrite_zip(path, change)


def craft(run_dir: Path, kind: str, marker: Path) -> None:
    if kind == "payload in an entry we supply":
        plant(run_dir / "model.zip", "learning_rate", marker)
        if (run_dir / "best_model.zip").exists():
            plant(run_dir / "best_model.zip", "lr_schedule", marker)
    elif kind == "payload in an entry of its own":
        plant(run_dir / "model.zip", "helper", marker)
    elif kind == "payload in the tensors":
        rewrite_zip(
            run_dir / "model.zip", lambda entries: entries.update({"policy.pth": pickle.dumps(Payload(marker))})
        )
    elif kind == "pickled statistics":
        (run_dir / "vecnormalize.json").unlink()
        (run_dir / "vecnormalize.pkl").write_bytes(pickle.dumps(Payload(marker)))


KINDS = [
    "payload in an entry we supply",
    "payload in an entry of its own",
    "payload in the tensors",
    "pickled statistics",
]


def test_the_crafted_payload_is_live(copy_of, tmp_path):
    # The control: plain SB3 loading runs it, which is what the tests below show never happens through our code.
    run_dir, marker = copy_of("control"), tmp_path / "ran"
    craft(run_dir, "payload in an entry we supply", marker)
    with pytest.raises(AssertionError):  # the payload ran, then SB3 found no learning rate in what it returned
        PPO.load(run_dir / "model.zip", device="cpu")
    assert marker.exists()


def test_a_crafted_folder_runs_nothing_through_evaluate_and_continue_from(copy_of, tmp_path):
    cases = []
    for number, kind in enumerate(KINDS):
        for mode in ("--evaluate", "--continue-from"):
            run_dir, marker = copy_of(f"crafted_{number}{mode}"), tmp_path / f"ran_{number}{mode}"
            craft(run_dir, kind, marker)
            cases.append((kind, mode, run_dir, marker))

    def attempt(case):
        kind, mode, run_dir, _ = case
        return run_train(mode, str(run_dir), *AFTER, "--log-dir", str(tmp_path / f"continued_{run_dir.name}"))

    results = [attempt(case) for case in cases]
    for (kind, mode, _, marker), result in zip(cases, results, strict=True):
        assert not marker.exists(), (kind, mode, result.stdout, result.stderr)
        if kind == "payload in an entry we supply":  # our own objects stand in for it: the model loads and works
            assert result.returncode == 0, (mode, result.stderr)
        else:
            line = one_error_line(result.stderr)
            assert result.returncode == 2 and ("refusing to unpickle" in line or "old pickle format" in line), line


@pytest.mark.parametrize("kind", KINDS)
def test_a_crafted_folder_runs_nothing_through_load_agents(copy_of, tmp_path, kind):
    run_dir, marker = copy_of("crafted"), tmp_path / "ran"
    craft(run_dir, kind, marker)
    if kind == "payload in an entry we supply":
        agents, _, _ = load_agents(run_dir, device="cpu")
        assert len(agents) == 2
    else:
        with pytest.raises(RunFolderError, match="refusing to unpickle|old pickle format"):
            load_agents(run_dir, device="cpu")
    assert not marker.exists()


@pytest.fixture(scope="module")
def game_run(tmp_path_factory) -> Path:
    """A game run folder made by the real code paths, without training (its untrained model is saved)."""
    from agents.training.config import RunConfig
    from agents.training.experiment import build_model, prepare, start_run

    config = RunConfig(
        env_id="mm_env/CompetingMarketMakers-v0",
        env_kwargs={"self_play": True, "T": 20, "I_max": 10},
        n_envs=2,
        hyperparams={"n_steps": 64, "batch_size": 64},
        device="cpu",
        log_dir=str(tmp_path_factory.mktemp("game_runs")),
    )
    prepared = prepare(config)
    model = build_model(prepared)
    run_dir, _ = start_run(prepared)
    models.save_model(model, run_dir)
    return run_dir


@pytest.mark.parametrize("kind", KINDS)
def test_a_crafted_game_folder_runs_nothing_through_load_agents(game_run, tmp_path, kind):
    run_dir, marker = Path(shutil.copytree(game_run, tmp_path / "crafted")), tmp_path / "ran"
    craft(run_dir, kind, marker)
    if kind == "payload in an entry we supply":
        (agent,), _, _ = load_agents(run_dir, device="cpu")
        assert agent.seats == (0, 1)
    else:
        with pytest.raises(RunFolderError, match="refusing to unpickle|old pickle format"):
            load_agents(run_dir, device="cpu")
    assert not marker.exists()


def test_sb3_loads_the_tensors_with_weights_only():
    # What makes policy.pth and the optimizers safe to read; an SB3 that stopped doing it must fail here.
    source = inspect.getsource(save_util.load_from_zip_file)
    assert "th.load(param_file, map_location=device, weights_only=True)" in source


def small_model(algo: str, tmp_path: Path) -> tuple[Path, dict]:
    """A model of ``algo`` with the shipped hyperparameters (budgets shrunk), trained a little and saved."""
    small = {"n_envs": 4, "n_steps": 16, "batch_size": 64}
    if algo in ("sac", "td3"):
        small = {"n_envs": 4, "learning_starts": 10, "buffer_size": 1000, "batch_size": 64}
    elif algo == "a2c":
        small = {"n_envs": 4, "n_steps": 16}
    hyperparams = load_hyperparams(algo, "mm_env/MarketMaking-v0", small)
    model = ALGORITHMS[algo](
        hyperparams["policy"], MarketMakingVecEnv(4), device="cpu", **algorithm_kwargs(algo, hyperparams, 2)
    )
    model.learn(200)
    path = tmp_path / f"{algo}.zip"
    model.save(path)
    return path, hyperparams


@pytest.mark.filterwarnings("ignore:`n_steps=3` is ignored")  # SB3's own loading, of the trusted file
@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_the_objects_we_supply_make_the_model_unpickling_would(algo, tmp_path):
    from agents.training.algorithm import load_model

    path, hyperparams = small_model(algo, tmp_path)
    env = MarketMakingVecEnv(4)
    trusted = ALGORITHMS[algo].load(path, env=env, device="cpu")  # our own file: plain loading is fine here
    safe = load_model(algo, path, hyperparams, env.observation_space, env.action_space, env=env, device="cpu")
    obs = np.random.default_rng(0).uniform([-1, 0], [1, 1], size=(16, 2)).astype(np.float32)
    np.testing.assert_array_equal(trusted.predict(obs, deterministic=True)[0], safe.predict(obs, deterministic=True)[0])
    assert type(safe.policy) is type(trusted.policy) and safe.policy_kwargs == trusted.policy_kwargs
    for progress in (1.0, 0.73, 0.2, 0.0):
        assert safe.lr_schedule(progress) == trusted.lr_schedule(progress)
        if algo == "ppo":
            assert safe.clip_range(progress) == trusted.clip_range(progress)
    for buffer in ("rollout_buffer", "replay_buffer"):
        if hasattr(trusted, buffer):
            assert type(getattr(safe, buffer)) is type(getattr(trusted, buffer))
            assert getattr(safe, f"{buffer}_kwargs") == getattr(trusted, f"{buffer}_kwargs")
    if algo in ("sac", "td3"):
        assert safe.train_freq == trusted.train_freq
    safe.learn(16, reset_num_timesteps=False)  # and it trains on


# ---------------------------------------------------------------------------------------------------------------------
# Normalisation statistics as plain JSON


def test_statistics_round_trip_through_json(tmp_path):
    venv = VecNormalize(MarketMakingVecEnv(4), norm_obs=True, norm_reward=True, clip_obs=5.0, gamma=0.95)
    venv.seed(0)
    venv.reset()
    for _ in range(50):
        venv.step(np.random.default_rng(1).uniform(-1, 1, (4, 2)).astype(np.float32))
    models.save_statistics(venv, tmp_path / "vecnormalize.json")
    restored = models.restore_statistics(tmp_path / "vecnormalize.json", MarketMakingVecEnv(1))
    assert isinstance(restored.obs_rms, type(venv.obs_rms))
    np.testing.assert_array_equal(restored.obs_rms.mean, venv.obs_rms.mean)
    np.testing.assert_array_equal(restored.obs_rms.var, venv.obs_rms.var)
    assert restored.obs_rms.count == venv.obs_rms.count and restored.ret_rms.var == venv.ret_rms.var
    assert (restored.clip_obs, restored.gamma, restored.norm_obs, restored.training) == (5.0, 0.95, True, False)
    obs = np.array([[0.3, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(restored.normalize_obs(obs), venv.normalize_obs(obs))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda payload: payload.pop("format"), "not normalisation statistics"),
        (lambda payload: payload["obs_rms"].update(mean=[0.0, 0.0, 0.0]), r"obs_rms has shape \(3,\)"),
        (lambda payload: payload["ret_rms"].update(count=-1), "ret_rms has count -1"),
        (lambda payload: payload.update(clip_obs="10"), "clip_obs='10' is not a number"),
        (lambda payload: payload.update(norm_obs=1), "norm_obs=1 is not true or false"),
    ],
)
def test_damaged_statistics_are_refused(tmp_path, edit, message):
    venv = VecNormalize(MarketMakingVecEnv(2))
    models.save_statistics(venv, tmp_path / "vecnormalize.json")
    payload = json.loads((tmp_path / "vecnormalize.json").read_text())
    edit(payload)
    (tmp_path / "vecnormalize.json").write_text(json.dumps(payload))
    with pytest.raises(RunFolderError, match=message):
        models.restore_statistics(tmp_path / "vecnormalize.json", MarketMakingVecEnv(1))


def test_the_documented_conversion_of_old_pickled_statistics(tmp_path):
    # What a user who trusts an old folder runs once (the snippet in docs/run-folders.md), here on statistics we
    # pickled ourselves.
    old = VecNormalize(MarketMakingVecEnv(2), norm_obs=False, gamma=0.999)
    old.ret_rms.update(np.array([1.0, 5.0, -2.0]))
    old.save(str(tmp_path / "vecnormalize.pkl"))
    run = tmp_path
    for prefix in ("", "best_"):
        pickled = run / f"{prefix}vecnormalize.pkl"
        if pickled.exists():
            models.save_statistics(pickle.loads(pickled.read_bytes()), run / f"{prefix}vecnormalize.json")
            pickled.unlink()
    restored = models.read_statistics(run, MarketMakingVecEnv(1))
    assert restored is not None and restored.ret_rms.var == old.ret_rms.var and restored.gamma == 0.999


def test_model_saves_go_through_a_buffer_sb3_accepts():
    # save_model hands SB3 an in-memory file: SB3 must keep accepting file objects.
    model = PPO("MlpPolicy", MarketMakingVecEnv(2), n_steps=8, batch_size=16, device="cpu")
    buffer = io.BytesIO()
    model.save(buffer)
    assert zipfile.is_zipfile(io.BytesIO(buffer.getvalue()))


def test_the_command_name_known_before_the_imports_is_the_console_script():
    from importlib.metadata import entry_points

    from agents import TRAIN_COMMAND

    (script,) = [point for point in entry_points(group="console_scripts") if point.name == TRAIN_COMMAND]
    assert script.value.split(":")[0] == "agents.cli.train"
