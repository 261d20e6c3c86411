"""Packaging: the sdist holds the whole repository, and the wheel works in virtual environments outside it.

The core wheel installs with Gymnasium, NumPy and SciPy only, in a fresh virtual environment; the main job runs from
the wheel in a folder far from the repository, trains, and is evaluated from its run folder alone (``-m slow``: with
the ``train`` extra installed into a fresh virtual environment too, and continued). The packages are built from a
copy of the repository, so that the build leaves nothing in the checkout, and every command runs without
``PYTHONPATH``, so that it imports the installed wheel rather than the checkout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
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


def clean_environment() -> dict[str, str]:
    """This process's environment without what would make another interpreter import the checkout."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=clean_environment())
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tracked_files() -> list[str] | None:
    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    return listing.stdout.split() if listing.returncode == 0 else None


def build_artefacts() -> set[str]:
    """What a build leaves in a source tree, found in the checkout: ``*.egg-info``, ``build/`` and ``dist/``."""
    return {path.name for path in ROOT.iterdir() if path.name.endswith(".egg-info") or path.name in ("build", "dist")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "mm_env"
    tracked = tracked_files()
    if tracked is None:  # an unpacked sdist: every file
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
    else:
        for name in tracked:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    before = build_artefacts()
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=out)
    assert build_artefacts() == before, "building the packages left files in the checkout"
    return out


def one(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


def fresh_venv(folder: Path, *requirements: str, system_site_packages: bool = False) -> Path:
    """A new virtual environment with ``requirements``; returns its ``bin`` folder.

    Without ``system_site_packages`` it sees no package of this machine's Python; with it, the wheel (installed
    without its dependencies, which the machine has) still comes first.
    """
    venv.create(folder, with_pip=True, system_site_packages=system_site_packages)
    bin_dir = folder / "bin"
    options = ["--no-deps"] if system_site_packages else []
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", *options, *requirements], cwd=folder)
    return bin_dir


def test_sdist_holds_every_tracked_file(dist):
    listing = tracked_files()
    if listing is None:
        pytest.skip("not a git checkout")
    tracked = set(listing) - NOT_IN_SDIST
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


def test_twine_accepts_the_sdist_and_the_wheel(dist):
    # What PyPI checks on upload: the metadata and that the long description (README) renders.
    pytest.importorskip("twine")
    packages = [str(one(dist, "*.tar.gz")), str(one(dist, "*.whl"))]
    result = run([sys.executable, "-m", "twine", "check", "--strict", *packages], cwd=dist)
    assert result.stdout.count("PASSED") == 2


def test_wheel_carries_hyperparameters_type_marker_and_console_scripts(dist):
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for algo in ("ppo", "sac", "td3", "a2c"):
        assert f"agents/training/hyperparams/{algo}.yml" in names
    assert {"mm_env/py.typed", "agents/py.typed"} <= names
    assert "mm-env-train = agents.cli.train:command" in entry_points
    assert "mm-env-sweep = agents.cli.sweep:command" in entry_points
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
    # The commands that need an extra say which, in one line; the evaluation writes its tables without matplotlib.
    for command, extra in (("mm-env-train", "train"), ("mm-env-sweep", "ray")):
        arguments = ["sweep.yml"] if command == "mm-env-sweep" else []
        refused = subprocess.run(
            [str(bin_dir / command), *arguments], cwd=tmp_path, capture_output=True, text=True, env=clean_environment()
        )
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert f'needs pip install "mm_env[{extra}]"' in refused.stderr
    out = tmp_path / "evaluation"
    evaluate = [
        "-m",
        "agents.cli.evaluate",
        "--episodes",
        "20",
        "--no-tuning",
        "--env-kwargs",
        "T=20",
        "--out",
        str(out),
    ]
    evaluated = run([str(bin_dir / "python"), *evaluate], cwd=tmp_path)
    assert "the tables are written, not policies.png" in evaluated.stdout
    assert (out / "comparison.json").exists() and not (out / "policies.png").exists()


def train_and_evaluate(bin_dir: Path, work: Path) -> Path:
    """The main job of the venv in ``bin_dir``, run in ``work`` (far from the repository): a tiny run, evaluated."""
    work.mkdir()
    train = str(bin_dir / "mm-env-train")
    run([train, *TINY, "--log-dir", "runs"], cwd=work)
    run_dir = work / "runs" / "ppo_MarketMaking-v0_1"
    assert json.loads((run_dir / "comparison.json").read_text())
    evaluated = run([train, "--evaluate", str(run_dir), "--final-episodes", "20"], cwd=work)
    assert "common-random-number episodes" in evaluated.stdout
    return run_dir


def test_main_job_trains_and_evaluates_from_the_wheel_outside_the_checkout(dist, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", str(one(dist, "*.whl")), system_site_packages=True)
    where = run(
        [str(bin_dir / "python"), "-c", "import agents, mm_env; print(mm_env.__file__, agents.__file__)"], tmp_path
    )
    assert all(Path(path).is_relative_to(tmp_path / "venv") for path in where.stdout.split()), where.stdout
    train_and_evaluate(bin_dir, tmp_path / "elsewhere")


@pytest.mark.slow
def test_main_job_trains_evaluates_and_continues_from_a_fresh_venv(dist, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", "torch==2.13.0", f"{one(dist, '*.whl')}[train]")
    run_dir = train_and_evaluate(bin_dir, tmp_path / "elsewhere")
    run(
        [str(bin_dir / "python"), "-m", "agents.cli.train", "--continue-from", str(run_dir), "--timesteps=512"]
        + ["--eval-episodes=20", "--final-episodes=20", "--no-progress-bar", "--log-dir", "runs"],
        cwd=tmp_path / "elsewhere",
    )
    assert (tmp_path / "elsewhere" / "runs" / "ppo_MarketMaking-v0_2" / "model.zip").exists()
