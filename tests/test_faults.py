"""Faults leave a truthful run folder, and signals stop every command alike.

A full disk (a real 200 KiB tmpfs where this runs as root), SIGKILL (``run_status.json`` records the process, so that
a later reader can tell a killed run from one still going), writes cut short (no temporary file left), and Ctrl-C and
SIGTERM in every order and timing on ``train.py`` and ``mm-env-sweep`` (status 130, the folder resumable).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from helpers import run_command, start_in_background
from hypothesis import given
from hypothesis import strategies as st
from stable_baselines3 import PPO

from agents.cli.train import main as train_main
from agents.storage import files, run_folder
from agents.storage.run_folder import RunFailed
from agents.sweep.spec import TrialKey
from agents.training.interrupts import InterruptOnce, PolledInterrupts, interrupt

ROOT = Path(__file__).resolve().parent.parent
# The smallest run with every stage: 5-step episodes, one PPO update, one evaluation, a tiny comparison.
SMALL = ["--env-kwargs", "T=5", "--n-envs", "2", "--eval-episodes", "10", "--final-episodes", "20"]
SMALL += ["--hyperparams", "n_steps=128", "batch_size=256", "n_epochs=1", "--no-progress-bar"]
NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


def start_training(log_dir: Path) -> subprocess.Popen:
    """``train.py`` with a budget it never reaches, returned once it trains (its "training ..." line is out)."""
    budget = ["--timesteps", "100000000", "--log-dir", str(log_dir)]
    process = start_in_background([sys.executable, str(ROOT / "train.py"), *SMALL, *budget])
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("training "):
            return process
    raise AssertionError(process.communicate()[1])


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / run_folder.STATUS_FILE).read_text())


def dead_process() -> dict:
    """This process's record with another start time: a process with this id that is not the one recorded."""
    return {**run_folder.this_process(), "start_ticks": -1}


def mark_running(run_dir: Path, process: dict | None) -> None:
    record = {"status": "running", "error": None, "timesteps": 0, **({"process": process} if process else {})}
    (run_dir / run_folder.STATUS_FILE).write_text(json.dumps(record))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    result = run_command(train_main, *SMALL, "--timesteps", "256", "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    return log_dir / "ppo_MarketMaking-v0_1"


# ---------------------------------------------------------------------------------------------------------------------
# No temporary file left behind


@pytest.mark.parametrize("fault", [NO_SPACE, KeyboardInterrupt(), SystemExit(1)], ids=type)
def test_a_write_cut_between_its_bytes_and_its_rename_leaves_no_temporary_file(tmp_path, monkeypatch, fault):
    path = tmp_path / "model.zip"
    files.atomic_write_bytes(path, b"old")

    def cut(source, target):
        assert Path(source).read_bytes() == b"new"  # written, not yet renamed
        raise fault

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(type(fault)):
        files.atomic_write_bytes(path, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"] and path.read_bytes() == b"old"


NEAR_MISSES = {
    "model.zip",
    "config.yaml",
    ".backup.20240101.tmp",  # a user's file of the shape tempfile gives, without this module's prefix
    ".model.zip.abcd_123.tmp",
    ".mm_env-model.zip.abc.tmp",
    ".mm_env-model.zip.abcd12345.tmp",
    ".mm_env-model.zip.ABCD1234.tmp",
    "mm_env-model.zip.abcd1234.tmp",
    ".mm_env-.abcd1234.tmp",
    ".mm_env-model.zip.abcd1234.tmp.old",
    ".staging-k2j4h5g6",
    ".mm_env-staging-x",
    ".mm_env-staging-k2j4h5g67",
    "a.tmp",
}


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=20).filter(
        lambda name: name not in (".", "..")
    )
)
def test_only_the_exact_temporary_names_are_removed(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("tidy")
    (folder / ".mm_env-model.zip.abcd_123.tmp").write_text("left by a killed write")
    (folder / ".mm_env-staging-k2j4h5g6").mkdir()
    kept = set(NEAR_MISSES)
    if not name.startswith(".mm_env-"):
        kept.add(name)
    for item in kept:
        (folder / item).write_text("kept")
    removed = files.remove_temporaries(folder)
    assert sorted(p.name for p in removed) == [".mm_env-model.zip.abcd_123.tmp", ".mm_env-staging-k2j4h5g6"]
    assert {p.name for p in folder.iterdir()} == kept


def test_the_temporary_files_this_module_writes_have_the_removable_shape(tmp_path, monkeypatch):
    seen = []

    def cut(source, target):
        seen.append(Path(source).name)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_bytes(tmp_path / "model.zip", b"new")
    with files.staged_files(tmp_path) as scratch:
        seen.append(scratch.name)
    (temporary, staging) = seen
    assert temporary.startswith(".mm_env-model.zip.") and temporary.endswith(".tmp")
    assert staging.startswith(".mm_env-staging-")
    (tmp_path / temporary).write_bytes(b"left")
    (tmp_path / staging).mkdir()
    assert sorted(p.name for p in files.remove_temporaries(tmp_path)) == sorted(seen)


# ---------------------------------------------------------------------------------------------------------------------
# A full disk


def test_the_status_is_written_in_place_when_no_new_file_fits(tmp_path, monkeypatch):
    run_folder.write_status(tmp_path, "running", 0)

    def full(path, payload):
        raise NO_SPACE

    monkeypatch.setattr(run_folder, "write_json", full)
    log, written = run_folder.record_failure(tmp_path, NO_SPACE, 1636)
    assert written and status(tmp_path) == {
        "status": "failed",
        "error": "OSError: [Errno 28] No space left on device",
        "timesteps": 1636,
    }
    assert log == tmp_path / "error.log"


def test_a_status_that_cannot_be_written_at_all_is_said_in_the_one_line(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise NO_SPACE

    monkeypatch.setattr(run_folder, "write_json", full)
    monkeypatch.setattr(run_folder, "overwrite_in_place", full)
    monkeypatch.setattr(run_folder, "atomic_write_text", full)
    log, written = run_folder.record_failure(tmp_path, NO_SPACE, 7)
    assert (log, written) == (None, False)
    message = str(RunFailed(tmp_path, NO_SPACE, 7, False, log, status_written=written))
    assert "\n" not in message
    end = "no error.log could be written, and run_status.json could not be updated (it may still say running)"
    assert message.endswith(f"no model was saved, {end}")


@pytest.fixture
def full_disk(tmp_path):
    """A 200 KiB tmpfs (root only): the disk fills up during a run's first evaluations."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_failure_before_the_logger_exists_is_recorded_with_one_line(tmp_path, monkeypatch):
    import agents.training.experiment as experiment

    def no_room(*args, **kwargs):  # configure() cannot create progress.csv (a full disk, no file descriptors left)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(experiment, "configure", no_room)
    result = run_command(train_main, *SMALL, "--timesteps", "256", "--log-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mm-env-train: error: training failed at step 0: OSError: ")
    (run_dir,) = tmp_path.iterdir()
    assert status(run_dir)["status"] == "failed" and "No space left" in status(run_dir)["error"]


def test_a_full_disk_ends_the_run_with_one_line_and_a_failed_status(full_disk):
    args = ["--timesteps", "4096", "--n-envs", "4", "--eval-episodes", "50", "--final-episodes", "500"]
    result = run_command(train_main, *args, "--no-progress-bar", "--log-dir", str(full_disk))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "Exception in thread" not in result.stderr
    assert lines[0].startswith("mm-env-train: error: training failed at step ")
    assert "No space left on device" in lines[0]
    (run_dir,) = full_disk.iterdir()
    assert status(run_dir)["status"] == "failed" and "No space left" in status(run_dir)["error"]
    assert not list(run_dir.glob(".*"))
    assert run_folder.describe_status(run_dir).startswith("failed at step ")


# ---------------------------------------------------------------------------------------------------------------------
# SIGKILL: the status says running, the recorded process tells it was killed


def test_a_running_status_records_this_process_and_reads_as_running():
    process = run_folder.this_process()
    assert process["pid"] == os.getpid() and run_folder.process_alive(process) is True
    assert run_folder.process_alive({**process, "host": "elsewhere"}) is None
    assert run_folder.process_alive(dead_process()) is False


def test_a_process_in_another_pid_namespace_or_that_cannot_be_examined_is_not_judged_killed(tmp_path, monkeypatch):
    process = run_folder.this_process()
    assert process["pid_namespace"] == os.readlink("/proc/self/ns/pid")
    mark_running(tmp_path, {**process, "pid_namespace": "pid:[1]"})  # another container on this host
    (tmp_path / ".mm_env-model.zip.q1w2e3r4.tmp").write_bytes(b"a live run's write")
    note = run_folder.note_unfinished(tmp_path)
    assert note is not None and note.startswith("running or killed: its process (pid ")
    assert note.endswith(") is not one this machine can check")
    assert (tmp_path / ".mm_env-model.zip.q1w2e3r4.tmp").exists()
    assert run_folder.process_alive({key: value for key, value in process.items() if key != "pid_namespace"}) is None
    # /proc/<pid>/stat unreadable (hidepid=2): the process exists, its start time cannot be compared
    monkeypatch.setattr(run_folder, "_start_ticks", lambda pid: None)
    assert run_folder.process_alive(dead_process()) is None
    mark_running(tmp_path, dead_process())
    assert not run_folder.was_killed(tmp_path) and run_folder.describe_status(tmp_path).startswith("running or killed")
    monkeypatch.setattr(os, "kill", lambda pid, signum: (_ for _ in ()).throw(PermissionError(errno.EPERM, "")))
    assert run_folder.process_alive(dead_process()) is None  # another user's process has the id


@given(
    pid=st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=60_000), st.integers(), st.floats(), st.none()),
    text=st.text(max_size=3_000),
)
def test_a_running_status_is_one_short_line_whatever_its_process_record_holds(tmp_path_factory, pid, text):
    folder = tmp_path_factory.mktemp("status")
    mark_running(folder, {"pid": pid, "host": text, "started": text, "boot_id": text, "start_ticks": text})
    line = run_folder.describe_status(folder)
    assert "\n" not in line and len(line) < 400, line
    if not (isinstance(pid, int) and 0 < pid < 2**31):
        assert line == "running or killed (its process record is unreadable)"


def test_a_killed_run_is_described_by_evaluate_and_its_temporary_files_removed(trained, tmp_path):
    run_dir = Path(shutil.copytree(trained, tmp_path / "run"))
    mark_running(run_dir, dead_process())
    (run_dir / ".mm_env-model.zip.q1w2e3r4.tmp").write_bytes(b"half a model")
    result = run_command(train_main, "--evaluate", str(run_dir), "--final-episodes", "4")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{run_dir}: killed: the process that ran it (pid {os.getpid()} on ")
    assert "is gone: the run was killed or the machine stopped; the model is the last one saved" in first
    assert not list(run_dir.glob(".mm_env-*.tmp"))
    mark_running(run_dir, None)  # written before processes were recorded
    assert run_folder.describe_status(run_dir) == "running or killed (no process recorded)"


def test_sigkill_leaves_a_folder_that_reads_as_killed(tmp_path):
    process = start_training(tmp_path)
    time.sleep(0.5)
    process.kill()
    process.communicate(timeout=60)
    (run_dir,) = tmp_path.iterdir()
    assert status(run_dir)["status"] == "running"
    description = run_folder.describe_status(run_dir)
    assert description.startswith(f"killed: the process that ran it (pid {process.pid} on "), description


def test_a_sweep_reruns_a_killed_trial_and_says_so(tmp_path):
    from agents.sweep.runs import finished_run, unfinished_attempts

    key = TrialKey(cell="base", algo="ppo", seed=0)
    run_dir = tmp_path / "base" / "seed0" / "ppo_MarketMaking-v0_1"
    run_dir.mkdir(parents=True)
    mark_running(run_dir, dead_process())
    assert finished_run(key, tmp_path) is None
    (line,) = unfinished_attempts([key], tmp_path)
    assert line.startswith(f"base ppo seed 0: {run_dir}: killed: the process that ran it (pid ")
    assert line.endswith("no model was saved; running it again")


# ---------------------------------------------------------------------------------------------------------------------
# Signals


@pytest.mark.parametrize("delay", [0, 0.005, 0.02, 0.1])
def test_sigint_then_sigterm_exits_130_with_the_run_interrupted(tmp_path, delay):
    process = start_training(tmp_path)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors
    (run_dir,) = tmp_path.iterdir()
    assert status(run_dir)["status"] == "interrupted"
    assert PPO.load(run_dir / "model.zip", device="cpu").num_timesteps > 0


def test_a_polled_block_only_records_a_signal_and_hands_it_to_the_enclosing_block():
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with InterruptOnce(note=None) as outer:
            with PolledInterrupts(note=None) as polled:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here: no exception, only the record
                assert polled.received == signal.SIGTERM
            assert outer.received == signal.SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)  # a later one only waits
            time.sleep(0.05)
        assert signal.getsignal(signal.SIGTERM) is interrupt
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow
@pytest.mark.parametrize("first, second", [("SIGTERM", None), ("SIGTERM", "SIGINT"), ("SIGINT", "SIGTERM")])
def test_a_signal_stops_a_sweep_with_status_130_and_no_stack_dump(tmp_path, first, second):
    pytest.importorskip("ray.tune")
    spec = {"name": "signals", "algos": ["ppo"], "seeds": [0, 1], "env_kwargs": {"T": 5}, "timesteps": 100_000_000}
    spec |= {"n_envs": 2, "eval_freq": 100_000_000, "eval_episodes": 10, "final_episodes": 20}
    spec["hyperparams"] = {"ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 1}}
    (tmp_path / "signals.yml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    sweep = [sys.executable, "-m", "agents.cli.sweep", str(tmp_path / "signals.yml"), "--out", str(out)]
    process = start_in_background([*sweep, "--num-cpus", "2"])
    deadline = time.monotonic() + 180
    while not list(out.glob("base/seed*/ppo_*/run_status.json")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)  # the first trial has started
    process.send_signal(getattr(signal, first))
    if second is not None:
        time.sleep(0.02)
        process.send_signal(getattr(signal, second))
    output, errors = process.communicate(timeout=180)
    assert process.returncode == 130, errors
    assert "SIGTERM received" not in errors and "Traceback" not in errors
    assert "interrupted with 2 of 2 trials unfinished: run the same command again to resume" in output
    from agents.sweep.runs import unfinished_attempts
    from agents.sweep.spec import load_spec

    lines = unfinished_attempts(load_spec(tmp_path / "signals.yml").trials(), out)
    assert lines and all(line.endswith("; running it again") for line in lines)


def test_a_command_called_from_python_gives_the_handlers_back_after_a_signal(monkeypatch):
    import agents.cli.train as train_cli

    def signalled(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises KeyboardInterrupt here
        raise AssertionError("no KeyboardInterrupt")

    monkeypatch.setattr(train_cli, "_main", signalled)
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    result = run_command(train_main, "--timesteps", "256")  # a notebook's main([...]), or main() with sys.argv
    assert result.returncode == 130 and result.stderr.count("\n") == 1
    assert {number: signal.getsignal(number) for number in before} == before


def test_only_the_command_entry_points_own_the_process():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"mm-env-train": "agents.cli.train:command", "mm-env-sweep": "agents.cli.sweep:command"}
    assert "command()" in (ROOT / "train.py").read_text()


RAY_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(INFO|WARNING) ")  # Ray's own start-up lines


def ray_processes(root: Path) -> list[str]:
    """The command lines of the processes that name ``root`` (Ray's temporary folder of one sweep)."""
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if str(root) in line]


@pytest.mark.parametrize(
    "delay", [0.0, pytest.param(1.5, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)]
)
def test_sigterm_while_ray_starts_stops_the_sweep_with_130_and_leaves_no_ray_process(tmp_path, delay):
    pytest.importorskip("ray.tune")
    spec = {"name": "start", "algos": ["ppo"], "seeds": [0], "env_kwargs": {"T": 5}, "timesteps": 256}
    spec |= {"n_envs": 2, "eval_episodes": 10, "final_episodes": 20}
    (tmp_path / "start.yml").write_text(yaml.safe_dump(spec))
    ray_root = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    command = [sys.executable, "-m", "agents.cli.sweep", str(tmp_path / "start.yml"), "--out", str(tmp_path / "out")]
    process = subprocess.Popen(
        [*command, "--num-cpus", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(ray_root)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("sweep start: 1 trials")
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=120)
        assert process.returncode == 130, (output, errors)
        ours = [line for line in errors.splitlines() if line and not RAY_LOG_LINE.match(line)]
        assert len(ours) == 1 and "Traceback" not in errors and "SIGTERM received" not in errors, errors
        assert ours[0].startswith(("stopping the sweep: ", "mm-env-sweep: interrupted before the trials started"))
        deadline = time.monotonic() + 30  # Ray's processes end within a second or two, longer on a loaded machine
        while ray_processes(ray_root) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray_processes(ray_root) == []
    finally:
        process.kill()
        process.communicate()
        shutil.rmtree(ray_root, ignore_errors=True)
