"""Packaging: the sdist holds the whole repository, and the wheel works in fresh virtual environments outside it.

The core wheel installs with Gymnasium, NumPy and SciPy only; with the ``train`` extra the main job trains, is
evaluated and continues from its run folder alone, in a folder far from the repository.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs build (the dev extra)")

ROOT = Path(__file__).resolve().parent.parent
NOT_IN_SDIST = {".ci/run", ".gitignore"}  # the CI script and git's own file are not part of the distribution
TINY = [
    "--timesteps=1024",
    "--n-envs=4",
    "--env-kwargs",
    "T=50",
    "--hyperparams",
    "n_steps=128",
    "batch_size=256",
    "n_epochs=1",
    "--eval-episodes=20",
    "--final-episodes=50",
    "--no-progress-bar",
]


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    return out


def one(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


def fresh_venv(folder: Path, *requirements: str) -> Path:
    """A new virtual environment (no system packages) with ``requirements``; returns its ``bin`` folder."""
    venv.create(folder, with_pip=True)
    bin_dir = folder / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", *requirements], cwd=folder)
    return bin_dir


def test_sdist_holds_every_tracked_file(dist):
    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listing.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = set(listing.stdout.split()) - NOT_IN_SDIST
    with tarfile.open(one(dist, "*.tar.gz")) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert not tracked - members
    for needed in (
        "tests/conftest.py",
        "tests/helpers.py",
        "agents/training/hyperparams/ppo.yml",
        "train.py",
        "LICENSE",
    ):
        assert needed in members


def test_wheel_carries_hyperparameters_type_marker_and_console_scripts(dist):
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for algo in ("ppo", "sac", "td3", "a2c"):
        assert f"agents/training/hyperparams/{algo}.yml" in names
    assert {"mm_env/py.typed", "agents/py.typed"} <= names
    assert "mm-env-train = agents.cli.train:main" in entry_points
    assert "mm-env-sweep = agents.cli.sweep:main" in entry_points
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


CORE_SCRIPT = """
import importlib.util, sys
import gymnasium as gym
import numpy as np
import mm_env
from agents.exact.dp import exact_solution
from agents.evaluation.compare import baseline_policies, compare
from agents.exact.game import solve_equilibrium
from mm_env.competition import make_competition_params

env = gym.make(mm_env.MARKET_MAKING_ID, T=20)
env.reset(seed=0)
env.step(env.action_space.sample())
params = mm_env.make_params(T=20)
value = exact_solution(params).expected_return
baselines, _ = baseline_policies(params, strawmen=False)
rows = compare(baselines[:2], params, 100, seed=0)
game = solve_equilibrium(make_competition_params(T=10))
for heavy in ("torch", "stable_baselines3", "matplotlib", "pettingzoo", "yaml"):
    assert importlib.util.find_spec(heavy) is None, heavy  # not even installed
for needs, extra in ((lambda: mm_env.competition.parallel_env(), "multiagent"),
                     (lambda: gym.make(mm_env.MARKET_MAKING_ID, render_mode="rgb_array"), "render")):
    try:
        needs()
    except (ModuleNotFoundError, gym.error.DependencyNotInstalled) as error:
        assert f"mm_env[{extra}]" in str(error), error
    else:
        raise AssertionError(extra)
print(mm_env.__version__, round(value, 6), len(rows))
"""


def test_core_wheel_installs_and_runs_with_gymnasium_numpy_and_scipy_only(dist, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", str(one(dist, "*.whl")))
    result = run([str(bin_dir / "python"), "-c", CORE_SCRIPT], cwd=tmp_path)
    version, value, rows = result.stdout.split()
    import mm_env
    from agents.exact.dp import exact_solution

    assert version == mm_env.__version__
    assert float(value) == pytest.approx(exact_solution(mm_env.make_params(T=20)).expected_return, abs=1e-6)
    assert rows == "2"


def test_main_job_trains_evaluates_and_continues_from_a_fresh_venv(dist, tmp_path):
    wheel = one(dist, "*.whl")
    bin_dir = fresh_venv(tmp_path / "venv", "torch==2.13.0", f"{wheel}[train]")
    work = tmp_path / "elsewhere"  # far from the repository: nothing there but what the run writes
    work.mkdir()
    train = str(bin_dir / "mm-env-train")
    run([train, *TINY, "--log-dir", "runs"], cwd=work)
    run_dir = work / "runs" / "ppo_MarketMaking-v0_1"
    assert json.loads((run_dir / "comparison.json").read_text())
    evaluated = run([train, "--evaluate", str(run_dir), "--final-episodes", "20"], cwd=work)
    assert "common-random-number episodes" in evaluated.stdout
    run(
        [str(bin_dir / "python"), "-m", "agents.cli.train", "--continue-from", str(run_dir), "--timesteps=512"]
        + ["--eval-episodes=20", "--final-episodes=20", "--no-progress-bar", "--log-dir", "runs"],
        cwd=work,
    )
    assert (work / "runs" / "ppo_MarketMaking-v0_2" / "model.zip").exists()
