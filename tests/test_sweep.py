"""Sweeps on Ray Tune: a tiny sweep in-process and through a Ray head started here, resume after Ctrl-C, the
validation of sweep files, and the results table's statistics."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray.tune")

from helpers import sigint_raises  # noqa: E402

from agents.cli.sweep import main  # noqa: E402  (after the skip: Ray is optional)
from agents.sweep.results import markdown_table, mean_and_se, summarize  # noqa: E402
from agents.sweep.runs import TrialOutcome, read_metrics  # noqa: E402
from agents.sweep.spec import SweepSpec, TrialKey, load_spec  # noqa: E402
from agents.training.family import RunMetrics  # noqa: E402

# A run takes a second or two: short episodes, one PPO update, one periodic evaluation, a small final comparison.
TINY = {
    "env_kwargs": {"T": 20},
    "timesteps": 512,
    "n_envs": 4,
    "eval_freq": 512,
    "eval_episodes": 20,
    "final_episodes": 50,
    "hyperparams": {"ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 1}},
}


def write_spec(folder: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump({"name": name, **TINY, **fields}, sort_keys=False))
    return path


def finished(root: Path, pattern: str) -> list[Path]:
    """The ``run_status.json`` files under ``root`` matching ``pattern`` that say the run finished."""
    return [path for path in root.glob(pattern) if json.loads(path.read_text())["status"] == "finished"]


def run_dirs(sweep_dir: Path) -> list[Path]:
    """The finished run folders (a failed attempt's folder is marked failed)."""
    return sorted(path.parent for path in finished(sweep_dir, "*/seed*/*/run_status.json"))


def results(sweep_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(sweep_dir / "results.csv") as file:
        return {(row["cell"], row["algo"]): row for row in csv.DictReader(file)}


def check_table_against_runs(sweep_dir: Path, cells: list[str], seeds: int) -> None:
    """Every cell's row holds mean ± s.e. over seeds of the runs' own comparison.json."""
    table = results(sweep_dir)
    assert sorted({cell for cell, _ in table}) == sorted(cells)
    markdown = (sweep_dir / "results.md").read_text()
    for cell in cells:
        pct = []
        for seed in range(seeds):
            (run_dir,) = [path.parent for path in finished(sweep_dir / cell / f"seed{seed}", "*/run_status.json")]
            rows = {row["policy"]: row for row in json.loads((run_dir / "comparison.json").read_text())["rows"]}
            pct.append(rows["PPO (final)"]["pct_of_benchmark"])
        row = table[(cell, "ppo")]
        assert int(row["seeds_finished"]) == seeds and row["benchmark"] == "DP optimum"
        assert float(row["pct_mean"]) == pytest.approx(statistics.mean(pct), rel=1e-12)
        assert float(row["pct_se"]) == pytest.approx(statistics.stdev(pct) / math.sqrt(seeds), rel=1e-9)
        assert f"{statistics.mean(pct):.1f} ± {statistics.stdev(pct) / math.sqrt(seeds):.1f}" in markdown


@pytest.fixture(scope="module")
def in_process_sweep(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    spec = write_spec(folder, "tiny", algos=["ppo"], seeds=[0, 1], grid={"lam": [0.002, 0.01]})
    assert main([str(spec), "--out", str(folder / "out"), "--num-cpus", "2"]) == 0
    return folder / "out"


def test_in_process_sweep_writes_ordinary_run_folders(in_process_sweep):
    runs = run_dirs(in_process_sweep)
    assert [path.relative_to(in_process_sweep).parts[:2] for path in runs] == [
        ("lam-0.002", "seed0"),
        ("lam-0.002", "seed1"),
        ("lam-0.01", "seed0"),
        ("lam-0.01", "seed1"),
    ]
    for run_dir in runs:
        for name in ("config.yaml", "model.zip", "comparison.json", "comparison.md", "evaluations.json", "episode.png"):
            assert (run_dir / name).exists(), run_dir / name
        assert list(run_dir.glob("events.out.tfevents.*")), f"no TensorBoard events in {run_dir}"
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["timesteps"] == 512 and config["env_kwargs"]["T"] == 20
        assert json.loads((run_dir / "run_status.json").read_text())["status"] == "finished"  # what resume reads
        assert run_dir.name.startswith("ppo_")
    assert yaml.safe_load((runs[2] / "config.yaml").read_text())["env_kwargs"] == {"T": 20, "lam": 0.01}
    # train.py --evaluate accepts it: the final comparison again, here on fewer episodes (into a subfolder)
    from agents.training.experiment import evaluate_saved_run

    out = evaluate_saved_run(runs[0], episodes=20, seed=None, device="cpu")
    assert (out / "comparison.json").exists()


def test_in_process_sweep_table_is_mean_and_se_of_the_runs(in_process_sweep):
    check_table_against_runs(in_process_sweep, ["lam-0.002", "lam-0.01"], seeds=2)
    assert (in_process_sweep / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert load_spec(in_process_sweep / "sweep.yaml").trials() == [
        TrialKey(cell, "ppo", seed) for cell in ("lam-0.002", "lam-0.01") for seed in (0, 1)
    ]


def test_rerunning_a_finished_sweep_trains_nothing(in_process_sweep, capsys):
    before = {path: path.stat().st_mtime_ns for path in in_process_sweep.glob("*/seed*/*/model.zip")}
    spec = in_process_sweep / "sweep.yaml"
    assert main([str(spec), "--out", str(in_process_sweep)]) == 0
    assert "4 trials, 4 already finished" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in in_process_sweep.glob("*/seed*/*/model.zip")} == before


def test_a_finished_run_trained_with_other_settings_is_refused(in_process_sweep, capsys):
    spec = yaml.safe_load((in_process_sweep / "sweep.yaml").read_text())
    changed = in_process_sweep.parent / "changed.yml"
    changed.write_text(yaml.safe_dump({**spec, "final_episodes": 60}))
    with pytest.raises(SystemExit) as exit_info:
        main([str(changed), "--out", str(in_process_sweep)])
    assert exit_info.value.code == 2
    assert "was trained with other settings (final_episodes) than the sweep file now gives" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1, stopped at the end: ``ray start --block`` in its own process group.

    Not ``ray stop``, which would stop every Ray process of the machine, other users' included: SIGTERM to the
    blocking ``ray start`` shuts down the processes it started (and SIGKILL to its group if it does not).
    """
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 characters
    log_path = Path(temp_dir) / "head.log"
    ray_command = Path(sys.executable).with_name("ray")  # this environment's Ray (a venv's bin, or pyenv's)
    if not ray_command.exists():
        ray_command = Path(shutil.which("ray") or "ray")
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [
                str(ray_command),
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
                "--block",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=temp_dir,  # trials must not depend on the driver's working directory
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log_path.read_text():
            assert head.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        time.sleep(1)
        left = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        assert temp_dir not in left, "Ray processes of the test's head are still running"


def test_sweep_on_a_ray_cluster_retries_and_reports_failed_trials(ray_head, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default folder, runs/sweeps/<name>, is relative to the working directory
    # A2C's runs diverge while training (a valid but absurd learning rate): a fault no up-front check can see.
    hyperparams = {**TINY["hyperparams"], "a2c": {"learning_rate": 1e30}}
    spec = write_spec(tmp_path, "cluster", algos=["ppo", "a2c"], seeds=[0, 1], hyperparams=hyperparams)
    assert main([str(spec), "--address", ray_head, "--max-failures", "1"]) == 1
    output = capsys.readouterr().out
    assert output.count("failed; retrying it") == 2 and output.count("failed after its retries") == 2
    sweep_dir = tmp_path / "runs" / "sweeps" / "cluster"
    assert len(run_dirs(sweep_dir)) == 2
    check_table_against_runs(sweep_dir, ["base"], seeds=2)
    assert results(sweep_dir)[("base", "a2c")]["seeds_failed"] == "2"
    markdown = (sweep_dir / "results.md").read_text()
    assert "| – | A2C | 0/2 (2 failed) | – |" in markdown
    assert "base, a2c, seed 0:" in markdown and "training diverged" in markdown


def test_interrupted_sweep_resumes_without_retraining(ray_head, tmp_path, capsys):
    # Trials of a few seconds each, so that the signal finds the sweep still running even on a loaded machine.
    spec = write_spec(tmp_path, "resume", algos=["ppo"], seeds=[0, 1, 2], timesteps=16_384, eval_freq=16_384)
    out = tmp_path / "out"
    # One trial at a time (2 CPUs each): Ctrl-C after the first lets the second finish or not, never the third.
    command = [sys.executable, "-m", "agents.cli.sweep", str(spec), "--out", str(out), "--cpus-per-trial", "2"]
    command += ["--address", ray_head]
    with open(tmp_path / "first.log", "w") as log:
        with sigint_raises():  # Ctrl-C reaches the driver however the tests were started
            driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        deadline = time.monotonic() + 120
        while not finished(out, "base/seed*/*/run_status.json"):
            assert driver.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.2)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130, (tmp_path / "first.log").read_text()
    first = (tmp_path / "first.log").read_text()
    assert "run the same command again to resume" in first
    done = {path.parent: path.stat().st_mtime_ns for path in finished(out, "base/seed*/*/run_status.json")}
    assert len(done) in (1, 2) and f"| – | PPO | {len(done)}/3 ({3 - len(done)} unfinished) |" in first

    # The same command again (in this process: it spares the imports of a new interpreter).
    assert main(command[3:]) == 0
    assert f"3 trials, {len(done)} already finished" in capsys.readouterr().out
    for run_dir, mtime in done.items():
        assert (run_dir / "run_status.json").stat().st_mtime_ns == mtime  # not trained again
        assert [path.name for path in run_dir.parent.iterdir() if path.is_dir()] == [run_dir.name]
    assert int(results(out)[("base", "ppo")]["seeds_finished"]) == 3
    assert "| – | PPO | 3/3 |" in (out / "results.md").read_text()


BAD_SPECS = [
    ({"algos": ["ppo"], "seeds": [0], "colour": "red"}, "unknown key(s) ['colour']; allowed: ['name', 'env'"),
    ({"algos": ["dqn"], "seeds": [0]}, "algos: 'dqn' is not one of ['a2c', 'ppo', 'sac', 'td3']"),
    ({"algos": [], "seeds": [0]}, "algos=[] is invalid: must be a non-empty list"),
    ({"algos": ["ppo"], "seeds": []}, "seeds=[] is invalid"),
    ({"algos": ["ppo"], "seeds": [0, 0]}, "seeds: 0 appears twice"),
    ({"algos": ["ppo"], "seeds": [0], "grid": {"lamb": [1]}}, "grid cell lamb=1: 'lamb' is not an environment keyword"),
    ({"algos": ["ppo"], "seeds": [0], "grid": {"lam": []}}, "grid.lam=[] is invalid: must be a non-empty list"),
    ({"algos": ["ppo"], "seeds": [0], "grid": {"lam": [-1.0]}}, "grid cell lam=-1.0: lam=-1.0 is invalid"),
    ({"algos": ["ppo"], "seeds": [0], "env_kwargs": {"preset": "nope"}}, "env_kwargs: preset='nope' is not a known"),
    ({"algos": ["ppo"], "seeds": [0], "timesteps": -5}, "timesteps=-5 is invalid: must be a positive integer"),
    ({"algos": ["ppo"], "seeds": [0], "final_episodes": 1}, "final_episodes=1 is invalid: must be an integer >= 2"),
    ({"algos": ["ppo"], "seeds": [0], "hyperparams": {"ppo": {"n_stepz": 8}}}, "algo ppo: unknown ppo hyperparam"),
    ({"algos": ["ppo"], "seeds": [0], "env": "CartPole-v1"}, "env='CartPole-v1' is not a market-making environment"),
    (
        {"algos": ["ppo"], "seeds": [0], "grid": {"lam": [0.01]}, "env_kwargs": {"lam": 0.02}},
        "['lam'] are both in grid and in env_kwargs",
    ),
    ({"algos": ["ppo"], "seeds": [0], "name": "a/b"}, "name='a/b' is invalid"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SPECS)
def test_a_bad_sweep_file_is_one_clear_line_and_status_2(tmp_path, capsys, fields, message):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(fields))
    with pytest.raises(SystemExit) as exit_info:
        main([str(path)])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0] and str(path) in errors[0], errors


def test_invalid_yaml_and_a_missing_file_are_clear_errors(tmp_path, capsys):
    path = tmp_path / "broken.yml"
    path.write_text("algos: [ppo\nseeds: [0]\n")
    for argument, message in ((path, "not valid YAML"), (tmp_path / "missing.yml", "cannot read it")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(argument)])
        assert exit_info.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 1 and message in errors[0], errors


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-failures", "-1", "'-1' is not a non-negative integer"),
        ("--max-failures", "1.5", "'1.5' is not a non-negative integer"),
        ("--max-failures", "x", "'x' is not a number"),
        ("--cpus-per-trial", "0", "'0' is not a positive number"),
        ("--cpus-per-trial", "nan", "'nan' is not a positive number"),
        ("--num-cpus", "0", "'0' is not a positive integer"),
    ],
)
def test_bad_options_are_one_clear_line_and_status_2(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "unread.yml"), option, value])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], errors


def test_spec_reads_floats_in_exponent_notation_and_round_trips(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text(
        "algos: [ppo, a2c]\nseeds: 2\ngrid: {lam: [1e-3, 2.5e-3]}\ntimesteps: 1e5\n"
        "hyperparams: {gamma: 0.98, a2c: {n_steps: 8}}\n"
    )
    spec = load_spec(path)
    assert spec.name == "s" and spec.seeds == (0, 1) and spec.timesteps == 100_000
    assert spec.grid["lam"] == (0.001, 0.0025)  # YAML 1.1 alone would read 1e-3 as a string
    assert spec.hyperparams == {"ppo": {"gamma": 0.98}, "a2c": {"gamma": 0.98, "n_steps": 8}}
    assert SweepSpec.from_dict(spec.as_dict()) == spec
    assert [cell.name for cell in spec.cells()] == ["lam-0.001", "lam-0.0025"]


def outcome(cell: str, seed: int, pct: float | None, error: str | None = None) -> TrialOutcome:
    metrics = None if pct is None else RunMetrics(pct, pct + 1.0, pct / 10, "DP optimum", 111.0, exact=True)
    return TrialOutcome(TrialKey(cell, "ppo", seed), None if pct is None else Path(f"/x/{seed}"), metrics, error)


def test_mean_and_standard_error_by_hand():
    assert mean_and_se([90.0, 92.0, 97.0]) == pytest.approx((93.0, math.sqrt(13.0 / 3.0)))  # sd² = 13
    assert mean_and_se([95.0])[0] == 95.0 and math.isnan(mean_and_se([95.0])[1])
    assert all(math.isnan(value) for value in mean_and_se([]))


def test_summary_rows_and_table_by_hand():
    outcomes = [
        outcome("a", 0, 90.0),
        outcome("a", 1, 92.0),
        outcome("a", 2, 97.0),
        outcome("b", 0, 80.0),
        outcome("b", 1, None, error="RuntimeError: boom"),
        outcome("b", 2, None),
    ]
    rows = summarize(outcomes, {"a": {"lam": 0.002}, "b": {"lam": 0.01}})
    a, b = rows
    assert (a.planned, a.finished, a.failed) == (3, 3, 0) and (b.planned, b.finished, b.failed) == (3, 1, 1)
    assert a.pct_mean == pytest.approx(93.0) and a.pct_se == pytest.approx(2.0816659994661326)
    assert a.best_pct_mean == pytest.approx(94.0) and a.return_mean == pytest.approx(9.3)
    assert b.pct_mean == 80.0 and math.isnan(b.pct_se)
    table = markdown_table(rows).splitlines()
    assert table[2] == "| lam=0.002 | PPO | 3/3 | 93.0 ± 2.1 | 94.0 ± 2.1 | 9.30 ± 0.21 | DP optimum | 111.00 |"
    assert table[3] == "| lam=0.01 | PPO | 1/3 (1 failed) | 80.0 | 81.0 | 8.00 | DP optimum | 111.00 |"


def test_metrics_of_a_run_without_dp_are_against_the_best_heuristic(tmp_path):
    heuristic = "linear skew c=0.86, s=0.0641 (tuned)"
    rows = [
        {"policy": "SAC (final)", "exact_return": None, "mean_return": 40.0, "pct_of_benchmark": 50.0},
        {"policy": heuristic, "exact_return": None, "mean_return": 80.0, "pct_of_benchmark": 100.0},
    ]
    (tmp_path / "comparison.json").write_text(json.dumps({"benchmark": heuristic, "rows": rows}))
    (tmp_path / "config.yaml").write_text("env_id: mm_env/MarketMaking-v0\nalgo: sac\n")
    assert read_metrics(tmp_path, "sac") == RunMetrics(50.0, None, 40.0, heuristic, 80.0, exact=False)
    table = markdown_table(
        summarize([TrialOutcome(TrialKey("base", "sac", 0), tmp_path, read_metrics(tmp_path, "sac"))])
    )
    assert f"| – | SAC | 1/1 | 50.0 | – | 40.00 | best heuristic: {heuristic} | 80.00 |" in table


def test_a_game_sweep_is_valid_and_reads_its_runs_against_the_exact_best_response(tmp_path):
    game = {"env": "mm_env/CompetingMarketMakers-v0", "algos": ["ppo"], "seeds": [0], "grid": {"opponent": ["cartel"]}}
    spec = load_spec(write_spec(tmp_path, "game", **{**game, "env_kwargs": {"T": 20, "I_max": 10}}))
    assert spec.trials() == [TrialKey("opponent-cartel", "ppo", 0)]
    learned = {"name": "PPO (against cartel)", "mean_return": [9.5, 9.0], "exact_return": [10.0, 9.1]}
    rows = [{**learned, "pct_of_best_response": 80.0}, {"name": "equilibrium", "pct_of_best_response": 100.0}]
    (tmp_path / "comparison.json").write_text(json.dumps({"setup": "against cartel", "rows": rows}))
    (tmp_path / "config.yaml").write_text("env_id: mm_env/CompetingMarketMakers-v0\nalgo: ppo\n")
    assert read_metrics(tmp_path, "ppo") == RunMetrics(80.0, None, 9.5, "exact best response", 12.5, exact=True)
