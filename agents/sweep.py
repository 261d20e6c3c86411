"""Sweeps on Ray Tune: a grid of model parameters × algorithms × seeds, each trial an ordinary training run.

Examples::

    python -m agents.sweep sweeps/example.yml                       # on this machine (Ray started in-process)
    python -m agents.sweep sweeps/example.yml --address HOST:6379   # on a running Ray cluster (or RAY_ADDRESS)
    python -m agents.sweep sweeps/example.yml --out runs/sweeps/try2 --max-failures 3

The YAML file names the grid (``grid``: model parameter → list of values; the cartesian product gives the cells),
the algorithms and the seeds, and the settings every run shares (see ``sweeps/example.yml``). Every trial is one
``train.py`` run in ``<out>/<cell>/seed<seed>/<algo>_<env>_<n>/`` with its TensorBoard logs, model and
``comparison.json``. At the end the sweep writes ``results.md``, ``results.csv`` and ``results.png`` into ``<out>``:
per cell and algorithm, the mean ± standard error across seeds of the final model's return as % of the DP value
(or, where the model has no exact optimum, of the best tuned heuristic). Running the same command again resumes:
finished runs are kept, the others (interrupted or failed) run again.

On a cluster of several machines the trials write their run folders themselves, so ``--out`` must be a folder that
every node sees at the same path (a shared file system), as Ray Tune's own storage requires.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import io
import itertools
import json
import math
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

import mm_env
from agents.arguments import non_negative_integer, positive_integer, positive_number
from agents.env_setup import env_config
from agents.game_training import is_game
from agents.interrupts import interrupt
from agents.run_folder import STATUS_FILE, atomic_write_bytes, atomic_write_text, read_status
from agents.training import ALGORITHMS, PreparedRun, RunConfig, prepare, run_settings

SPEC_KEYS = (
    "name",
    "env",
    "algos",
    "seeds",
    "grid",
    "env_kwargs",
    "timesteps",
    "n_envs",
    "eval_freq",
    "eval_episodes",
    "final_episodes",
    "hyperparams",
    "device",
)
DEFAULT_ROOT = Path("runs") / "sweeps"
TUNE_FOLDER = "tune"  # Ray Tune's own experiment folder inside the sweep folder
BASE_CELL = "base"  # the one cell of a sweep without a grid
DP_BENCHMARK = "DP optimum"  # what comparison.json names the benchmark where the model has an exact optimum
MIN_EPISODES = 2  # train.py's minimum for --eval-episodes and --final-episodes
SETTINGS_COMPARED = (
    "algo",
    "env_id",
    "env_kwargs",
    "seed",
    "n_envs",
    "timesteps",
    "eval_freq",
    "eval_episodes",
    "final_episodes",
    "device",
    "hyperparams",
)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a float as YAML 1.2 does (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"), list("-+.0123456789")
)


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its folder name and its model parameters."""

    name: str
    values: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``lam=0.001, preset=easy`` (``–`` for a sweep without a grid)."""
        return params_label(self.values)


def params_label(values: Mapping[str, Any]) -> str:
    """A cell's parameters as ``lam=0.001, preset=easy`` (``–`` for a sweep without a grid)."""
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "–"


@dataclass(frozen=True)
class TrialKey:
    """Which run a trial is: cell, algorithm and seed."""

    cell: str
    algo: str
    seed: int

    def as_dict(self) -> dict[str, Any]:
        """The trial's entry in Ray Tune's parameter space."""
        return {"cell": self.cell, "algo": self.algo, "seed": self.seed}


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: every cell × algorithm × seed is a run that :func:`agents.training.prepare` accepts."""

    name: str
    algos: tuple[str, ...]
    seeds: tuple[int, ...]
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=lambda: MappingProxyType({}))
    env_id: str = mm_env.MARKET_MAKING_ID
    env_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    timesteps: int | None = None
    n_envs: int | None = None
    eval_freq: int | None = None
    eval_episodes: int = 1_000
    final_episodes: int = 10_000
    hyperparams: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    """Overrides of the tuned hyperparameters, per algorithm."""
    device: str = "cpu"

    def __post_init__(self) -> None:
        validate_spec(self)

    def cells(self) -> list[Cell]:
        """The cartesian product of the grid, in the file's order."""
        keys = list(self.grid)
        cells = []
        for values in itertools.product(*(self.grid[key] for key in keys)):
            chosen = dict(zip(keys, values, strict=True))
            name = "_".join(f"{key}-{_folder_text(value)}" for key, value in chosen.items()) or BASE_CELL
            cells.append(Cell(name, MappingProxyType(chosen)))
        return cells

    def trials(self) -> list[TrialKey]:
        """Every run of the sweep: cell × algorithm × seed."""
        return [TrialKey(cell.name, algo, seed) for cell in self.cells() for algo in self.algos for seed in self.seeds]

    def run_config(self, key: TrialKey, sweep_dir: Path) -> RunConfig:
        """The training run of one trial, writing its run folder under ``trial_dir(sweep_dir, key)``."""
        cell = next(cell for cell in self.cells() if cell.name == key.cell)
        return RunConfig(
            algo=key.algo,
            env_id=self.env_id,
            env_kwargs=copy.deepcopy({**self.env_kwargs, **cell.values}),
            timesteps=self.timesteps,
            seed=key.seed,
            n_envs=self.n_envs,
            device=self.device,
            eval_freq=self.eval_freq,
            eval_episodes=self.eval_episodes,
            final_episodes=self.final_episodes,
            log_dir=str(trial_dir(sweep_dir, key)),
            hyperparams=copy.deepcopy(dict(self.hyperparams.get(key.algo, {}))),
            progress_bar=False,
            verbose=0,
        )

    def as_dict(self) -> dict[str, Any]:
        """The sweep in the YAML file's shape (plain types: for ``sweep.yaml`` and for Ray's workers)."""
        return {
            "name": self.name,
            "env": self.env_id,
            "algos": list(self.algos),
            "seeds": list(self.seeds),
            "grid": {key: list(values) for key, values in self.grid.items()},
            "env_kwargs": copy.deepcopy(dict(self.env_kwargs)),
            "timesteps": self.timesteps,
            "n_envs": self.n_envs,
            "eval_freq": self.eval_freq,
            "eval_episodes": self.eval_episodes,
            "final_episodes": self.final_episodes,
            "hyperparams": {algo: copy.deepcopy(dict(values)) for algo, values in self.hyperparams.items()},
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "sweep") -> SweepSpec:
        """Parse the YAML file's mapping; every bad entry raises ``ValueError`` naming the field."""
        if not isinstance(data, dict):
            raise ValueError(f"a sweep file holds a mapping of {list(SPEC_KEYS)}; got {type(data).__name__}")
        unknown = sorted(set(data) - set(SPEC_KEYS), key=str)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; allowed: {list(SPEC_KEYS)}")
        algos = _algos(data.get("algos"))
        return cls(
            name=_text(data.get("name", default_name), "name"),
            algos=algos,
            seeds=_seeds(data.get("seeds")),
            grid=MappingProxyType(_grid(data.get("grid"))),
            env_id=_text(data.get("env", mm_env.MARKET_MAKING_ID), "env"),
            env_kwargs=MappingProxyType(_mapping(data.get("env_kwargs"), "env_kwargs")),
            timesteps=_optional_count(data.get("timesteps"), "timesteps"),
            n_envs=_optional_count(data.get("n_envs"), "n_envs"),
            eval_freq=_optional_count(data.get("eval_freq"), "eval_freq"),
            eval_episodes=_episodes(data.get("eval_episodes", 1_000), "eval_episodes"),
            final_episodes=_episodes(data.get("final_episodes", 10_000), "final_episodes"),
            hyperparams=MappingProxyType(_hyperparams(data.get("hyperparams"), algos)),
            device=_text(data.get("device", "cpu"), "device"),
        )


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep file (``ValueError`` with a one-line message if anything is wrong)."""
    try:
        data = yaml.load(Path(path).read_text(), Loader=_Loader)  # a SafeLoader subclass
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    try:
        return SweepSpec.from_dict(data, default_name=Path(path).stem)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def validate_spec(spec: SweepSpec) -> None:
    """Check what parsing cannot: allowed names, and that every cell × algorithm is a valid training run."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.name):
        raise ValueError(f"name={spec.name!r} is invalid: must be a folder name of letters, digits, '.', '_', '-'")
    if not spec.algos:
        raise ValueError(f"algos must be a non-empty list; allowed: {sorted(ALGORITHMS)}")
    for algo in spec.algos:
        if algo not in ALGORITHMS:
            raise ValueError(f"algos: {algo!r} is not one of {sorted(ALGORITHMS)}")
    _no_duplicates(spec.algos, "algos")
    if not spec.seeds:
        raise ValueError("seeds must be a non-empty list of integers")
    _no_duplicates(spec.seeds, "seeds")
    if is_game(spec.env_id):
        raise ValueError(
            f"env={spec.env_id!r}: sweeps train one market maker; the competing market makers' game is not "
            "supported (train it with train.py)"
        )
    if spec.eval_episodes < MIN_EPISODES or spec.final_episodes < MIN_EPISODES:
        raise ValueError(f"eval_episodes and final_episodes must be at least {MIN_EPISODES}")
    both = sorted(set(spec.grid) & set(spec.env_kwargs))
    if both:
        raise ValueError(f"{both} are both in grid and in env_kwargs: give each parameter in one place only")
    try:
        env_config(spec.env_id, {})
    except ValueError as error:
        raise ValueError(str(error).replace("--env ", "env=")) from None
    cells = spec.cells()
    _no_duplicates([cell.name for cell in cells], "grid cell folder names")
    for algo in spec.algos:  # the hyperparameters and budgets, once per algorithm
        try:
            run_settings(spec.run_config(TrialKey(cells[0].name, algo, spec.seeds[0]), Path(".")))
        except ValueError as error:
            raise ValueError(f"algo {algo}: {str(error).replace('--device ', 'device=')}") from None
    for cell in cells:  # the model, once per cell
        try:
            prepare(spec.run_config(TrialKey(cell.name, spec.algos[0], spec.seeds[0]), Path(".")))
        except ValueError as error:
            where = f"grid cell {cell.label}" if spec.grid else "env_kwargs"
            raise ValueError(f"{where}: {error}") from None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}={value!r} is invalid: must be a non-empty string")
    return value


def _algos(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise ValueError(
            f"algos={value!r} is invalid: must be a non-empty list, e.g. [ppo]; allowed: {sorted(ALGORITHMS)}"
        )
    return tuple(value)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(range(value))  # "seeds: 3" means seeds 0, 1 and 2
    if not isinstance(value, list) or not value:
        raise ValueError(f"seeds={value!r} is invalid: must be a non-empty list of integers (or a count)")
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seeds: {seed!r} is invalid: must be an integer in [0, 2**32 - 1]")
    return tuple(value)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} must be a mapping of names to values; got {value!r}")
    return dict(value)


def _grid(value: Any) -> dict[str, tuple[Any, ...]]:
    grid = _mapping(value, "grid")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{key}={values!r} is invalid: must be a non-empty list of values")
        _no_duplicates(values, f"grid.{key}")
        grid[key] = tuple(values)
    return grid


def _hyperparams(value: Any, algos: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """Per-algorithm overrides: keys naming an algorithm hold its own; other keys apply to every algorithm."""
    entries = _mapping(value, "hyperparams")
    common = {key: item for key, item in entries.items() if key not in ALGORITHMS}
    resolved: dict[str, Mapping[str, Any]] = {}
    for algo in algos:
        own = entries.get(algo) or {}
        if not isinstance(own, dict):
            raise ValueError(f"hyperparams.{algo} must be a mapping of hyperparameters; got {own!r}")
        if {**common, **own}:
            resolved[algo] = MappingProxyType({**common, **own})
    return resolved


def _optional_count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{name}={value!r} is invalid: must be a positive integer")
    if value != int(value):
        raise ValueError(f"{name}={value!r} is invalid: must be a positive integer")
    return int(value)


def _episodes(value: Any, name: str) -> int:
    count = _optional_count(value, name)
    if count is None or count < MIN_EPISODES:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer >= {MIN_EPISODES}")
    return count


def _no_duplicates(values: Sequence[Any], name: str) -> None:
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise ValueError(f"{name}: {value!r} appears twice")
        seen.append(value)


def _folder_text(value: Any) -> str:
    """A parameter value as part of a folder name (``[1, 2]`` → ``1-2``)."""
    if isinstance(value, (list, tuple)):
        return "-".join(_folder_text(item) for item in value)
    return re.sub(r"[^A-Za-z0-9.+-]", "", str(value)) or "x"


def trial_dir(sweep_dir: Path, key: TrialKey) -> Path:
    """The folder that holds a trial's run folder(s): ``<sweep>/<cell>/seed<seed>``."""
    return Path(sweep_dir) / key.cell / f"seed{key.seed}"


# ---------------------------------------------------------------------------------------------------------------------
# Runs on disk


@dataclass(frozen=True)
class RunMetrics:
    """What a finished run's ``comparison.json`` says about its agent."""

    pct: float
    """The final model's mean return as % of the benchmark."""
    best_pct: float | None
    """The same for the best periodic evaluation's model (``None`` if the run kept none)."""
    mean_return: float
    benchmark: str
    """``DP optimum`` or the name of the best tuned heuristic."""
    benchmark_value: float
    """The DP value, or the heuristic's mean return on the run's final episodes."""


@dataclass(frozen=True)
class TrialOutcome:
    """A planned trial, with its finished run if there is one, or the error it failed with."""

    key: TrialKey
    run_dir: Path | None = None
    metrics: RunMetrics | None = None
    error: str | None = None


def read_metrics(run_dir: Path, algo: str) -> RunMetrics:
    """The agent's row of a run's ``comparison.json`` (``ValueError`` if the run has no usable comparison)."""
    payload = json.loads((Path(run_dir) / "comparison.json").read_text())
    rows = {row["policy"]: row for row in payload["rows"]}
    final, best = rows.get(f"{algo.upper()} (final)"), rows.get(f"{algo.upper()} (best evaluation)")
    benchmark = payload.get("benchmark")
    if final is None or benchmark not in rows or final["pct_of_benchmark"] is None:
        raise ValueError(f"{run_dir}/comparison.json has no {algo.upper()} row measured against a benchmark")
    reference = rows[benchmark]
    # The DP's row carries its exact value, which is what % of DP divides by; a heuristic is judged by its mean.
    value = reference["exact_return"] if benchmark == DP_BENCHMARK else reference["mean_return"]
    return RunMetrics(
        pct=float(final["pct_of_benchmark"]),
        best_pct=None if best is None or best["pct_of_benchmark"] is None else float(best["pct_of_benchmark"]),
        mean_return=float(final["mean_return"]),
        benchmark=benchmark,
        benchmark_value=float(value),
    )


def finished_run(key: TrialKey, sweep_dir: Path) -> Path | None:
    """The trial's finished run folder (its ``run_status.json`` says ``finished``), or ``None``.

    The main job marks a run finished last, after its comparison and figures; an interrupted or failed attempt
    leaves a folder marked otherwise, and a later attempt gets the next number.
    """
    finished = [
        run_dir
        for run_dir in trial_dir(sweep_dir, key).glob(f"{key.algo}_*")
        if (read_status(run_dir) or {}).get("status") == "finished"
    ]
    return max(finished, key=lambda run_dir: (run_dir / STATUS_FILE).stat().st_mtime, default=None)


def expected_settings(prepared: PreparedRun) -> dict[str, Any]:
    """The settings a run's ``config.yaml`` records, as :func:`agents.training.start_run` writes them."""
    config = prepared.config
    settings = {
        "algo": config.algo,
        "env_id": config.env_id,
        "env_kwargs": config.env_kwargs,
        "seed": config.seed,
        "n_envs": prepared.n_envs,
        "timesteps": prepared.timesteps,
        "eval_freq": prepared.eval_freq,
        "eval_episodes": config.eval_episodes,
        "final_episodes": config.final_episodes,
        "device": config.device,
        "hyperparams": prepared.hyperparams,
    }
    return yaml.safe_load(yaml.safe_dump(settings))  # as read back from config.yaml


def check_finished_run(run_dir: Path, prepared: PreparedRun) -> None:
    """Refuse to count a finished run trained with other settings than the sweep's (the file was edited since)."""
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    expected = expected_settings(prepared)
    changed = [name for name in SETTINGS_COMPARED if saved.get(name) != expected[name]]
    if changed:
        raise ValueError(
            f"{run_dir} was trained with other settings ({', '.join(changed)}) than the sweep file now gives; "
            "use another --out (or name), or delete that folder"
        )


def collect(spec: SweepSpec, sweep_dir: Path, errors: Mapping[TrialKey, str] | None = None) -> list[TrialOutcome]:
    """Every planned trial with its finished run from disk, or the error it failed with in this sweep."""
    outcomes = []
    for key in spec.trials():
        run_dir = finished_run(key, sweep_dir)
        if run_dir is None:
            outcomes.append(TrialOutcome(key, error=(errors or {}).get(key)))
        else:
            outcomes.append(TrialOutcome(key, run_dir, read_metrics(run_dir, key.algo)))
    return outcomes


# ---------------------------------------------------------------------------------------------------------------------
# Statistics and the results table


@dataclass(frozen=True)
class SummaryRow:
    """One cell × algorithm of the results table: statistics across its finished seeds."""

    cell: str
    params: Mapping[str, Any]
    algo: str
    planned: int
    finished: int
    failed: int
    pct_mean: float
    pct_se: float
    best_pct_mean: float
    best_pct_se: float
    return_mean: float
    return_se: float
    benchmark: str
    benchmark_value: float
    pct_values: tuple[float, ...]
    """Each finished seed's % of the benchmark (for the plot)."""
    run_dirs: tuple[str, ...]

    @property
    def label(self) -> str:
        """The cell's parameters, ``lam=0.001, preset=easy``."""
        return params_label(self.params)


def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample sd / √n); NaN where undefined (no value, or one)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan
    variance = math.fsum((value - mean) ** 2 for value in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def summarize(
    outcomes: Sequence[TrialOutcome], cells: Mapping[str, Mapping[str, Any]] | None = None
) -> list[SummaryRow]:
    """One row per cell × algorithm, in the order of ``outcomes``; ``cells`` gives each cell's parameters."""
    groups: dict[tuple[str, str], list[TrialOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.key.cell, outcome.key.algo), []).append(outcome)
    rows = []
    for (cell, algo), group in groups.items():
        done = [outcome for outcome in group if outcome.metrics is not None]
        metrics = [outcome.metrics for outcome in done if outcome.metrics is not None]
        pct = [m.pct for m in metrics]
        pct_mean, pct_se = mean_and_se(pct)
        best_pct_mean, best_pct_se = mean_and_se([m.best_pct for m in metrics if m.best_pct is not None])
        return_mean, return_se = mean_and_se([m.mean_return for m in metrics])
        benchmarks = sorted({m.benchmark for m in metrics})
        rows.append(
            SummaryRow(
                cell=cell,
                params=dict((cells or {}).get(cell, {})),
                algo=algo,
                planned=len(group),
                finished=len(done),
                failed=sum(outcome.error is not None for outcome in group),
                pct_mean=pct_mean,
                pct_se=pct_se,
                best_pct_mean=best_pct_mean,
                best_pct_se=best_pct_se,
                return_mean=return_mean,
                return_se=return_se,
                benchmark=" / ".join(benchmarks) if benchmarks else "–",
                benchmark_value=mean_and_se([m.benchmark_value for m in metrics])[0],
                pct_values=tuple(pct),
                run_dirs=tuple(str(outcome.run_dir) for outcome in done),
            )
        )
    return rows


def _estimate(mean: float, se: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _seeds_text(row: SummaryRow) -> str:
    text = f"{row.finished}/{row.planned}"
    missing = row.planned - row.finished
    if row.failed:
        text += f" ({row.failed} failed)"
    elif missing:
        text += f" ({missing} unfinished)"
    return text


def _benchmark_text(name: str) -> str:
    return name if name in (DP_BENCHMARK, "–") else f"best heuristic: {name}"


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The results table: % of the benchmark (DP, or best heuristic where there is none), mean ± s.e. over seeds."""
    lines = [
        "| cell | algorithm | seeds | % of benchmark (final model) | % of benchmark (best evaluation) "
        "| mean return | benchmark | benchmark value |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        value = "–" if math.isnan(row.benchmark_value) else f"{row.benchmark_value:.2f}"
        lines.append(
            f"| {row.label} | {row.algo.upper()} | {_seeds_text(row)} | {_estimate(row.pct_mean, row.pct_se, 1)} "
            f"| {_estimate(row.best_pct_mean, row.best_pct_se, 1)} | {_estimate(row.return_mean, row.return_se, 2)} "
            f"| {_benchmark_text(row.benchmark)} | {value} |"
        )
    return "\n".join(lines)


def results_markdown(name: str, rows: Sequence[SummaryRow], outcomes: Sequence[TrialOutcome]) -> str:
    """``results.md``: the table, what its columns mean, and the failed trials with their errors."""
    text = [
        f"# Sweep {name}",
        "",
        markdown_table(rows),
        "",
        "Mean ± standard error across seeds of each finished run's final comparison (`comparison.json`): the "
        "agent's mean return as % of the DP value, or of the best tuned heuristic's mean return where the model "
        "has no exact optimum (the benchmark column says which).",
    ]
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        text += ["", "## Failed trials", ""]
        text += [f"- {o.key.cell}, {o.key.algo}, seed {o.key.seed}: {o.error}" for o in failed]
    return "\n".join(text) + "\n"


def results_csv(rows: Sequence[SummaryRow], sweep_dir: Path | None = None) -> str:
    """``results.csv``: one line per cell × algorithm, one column per grid parameter.

    ``run_dirs`` lists the finished run folders, relative to ``sweep_dir`` when given.
    """
    params = list(dict.fromkeys(key for row in rows for key in row.params))
    columns = [
        "cell",
        *params,
        "algo",
        "seeds_planned",
        "seeds_finished",
        "seeds_failed",
        "pct_mean",
        "pct_se",
        "best_pct_mean",
        "best_pct_se",
        "return_mean",
        "return_se",
        "benchmark",
        "benchmark_value",
        "run_dirs",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                row.cell,
                *(_csv_value(row.params.get(key, "")) for key in params),
                row.algo,
                row.planned,
                row.finished,
                row.failed,
                *(repr(value) for value in (row.pct_mean, row.pct_se, row.best_pct_mean, row.best_pct_se)),
                *(repr(value) for value in (row.return_mean, row.return_se)),
                row.benchmark,
                repr(row.benchmark_value),
                ";".join(_relative(path, sweep_dir) for path in row.run_dirs),
            ]
        )
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _relative(path: str, root: Path | None) -> str:
    try:
        return str(Path(path).relative_to(root)) if root is not None else path
    except ValueError:
        return path


def results_figure(name: str, rows: Sequence[SummaryRow]) -> Any:
    """Bars of the mean % of the benchmark per cell, one colour per algorithm, s.e. error bars and each seed's dot."""
    from matplotlib.figure import Figure

    cells = list(dict.fromkeys(row.label for row in rows))
    algos = list(dict.fromkeys(row.algo for row in rows))
    width = 0.8 / len(algos)
    figure = Figure(figsize=(max(6.0, 1.2 * len(cells) * len(algos) + 2), 4.8), layout="constrained")
    axis = figure.subplots()
    for j, algo in enumerate(algos):
        own = [row for row in rows if row.algo == algo]
        xs = [cells.index(row.label) + (j - (len(algos) - 1) / 2) * width for row in own]
        means = [0.0 if math.isnan(row.pct_mean) else row.pct_mean for row in own]  # no finished seed: no bar
        errors = [0.0 if math.isnan(row.pct_se) else row.pct_se for row in own]
        axis.bar(xs, means, width * 0.9, yerr=errors, capsize=4, color=f"C{j}", alpha=0.8, label=algo.upper())
        for x, row in zip(xs, own, strict=True):
            axis.plot([x] * len(row.pct_values), row.pct_values, "o", color="black", markersize=3)
    axis.axhline(100.0, color="grey", lw=1, ls="--")
    tilt = len(cells) > 3  # long cell labels side by side would overlap
    axis.set_xticks(range(len(cells)), cells, rotation=20 if tilt else 0, ha="right" if tilt else "center")
    axis.set_ylabel("% of benchmark (DP, or best heuristic)")
    axis.set_title(f"{name}: final models, mean ± s.e. over seeds (dots)", fontsize="medium")
    figure.legend(loc="outside right upper")  # beside the axes: bars near 100% fill them
    return figure


def write_results(spec: SweepSpec, sweep_dir: Path, outcomes: Sequence[TrialOutcome]) -> str:
    """Write ``results.md``, ``results.csv`` and ``results.png`` into the sweep folder; return the table."""
    rows = summarize(outcomes, {cell.name: cell.values for cell in spec.cells()})
    atomic_write_text(sweep_dir / "results.md", results_markdown(spec.name, rows, outcomes))
    atomic_write_text(sweep_dir / "results.csv", results_csv(rows, sweep_dir))
    image = io.BytesIO()
    results_figure(spec.name, rows).savefig(image, format="png", dpi=110)
    atomic_write_bytes(sweep_dir / "results.png", image.getvalue())
    return markdown_table(rows)


# ---------------------------------------------------------------------------------------------------------------------
# The trials on Ray Tune


def run_trial(config: dict[str, Any], spec: dict[str, Any], sweep_dir: str) -> None:
    """Ray Tune's trainable: one ordinary training run (skipped if it already finished), reported to Tune.

    Runs in a Ray worker: everything it needs comes in its arguments (absolute paths; never the driver's working
    directory). SB3's and the comparison's printing goes to ``<algo>.log`` next to the run folder.
    """
    import torch
    from ray import tune

    from agents.training import train

    torch.set_num_threads(1)  # the small networks gain nothing from more; Ray gives each trial its own CPU
    sweep = SweepSpec.from_dict(spec)
    key = TrialKey(**config["trial"])
    run_dir = finished_run(key, Path(sweep_dir))
    if run_dir is None:
        prepared = prepare(sweep.run_config(key, Path(sweep_dir)))
        log_path = trial_dir(Path(sweep_dir), key) / f"{key.algo}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log, contextlib.redirect_stdout(log):
            run_dir, interrupted = train(prepared)
        if interrupted:
            raise RuntimeError(f"{run_dir}: training was interrupted before the final comparison")
    metrics = read_metrics(run_dir, key.algo)
    tune.report({**asdict(metrics), "run_dir": str(run_dir)})


def pending_trials(spec: SweepSpec, sweep_dir: Path) -> list[TrialKey]:
    """The trials without a finished run; a finished run trained with other settings is an error."""
    pending = []
    for key in spec.trials():
        run_dir = finished_run(key, sweep_dir)
        if run_dir is None:
            pending.append(key)
        else:
            check_finished_run(run_dir, prepare(spec.run_config(key, sweep_dir)))
    return pending


@dataclass(frozen=True)
class TuneRun:
    """What running the pending trials came to."""

    errors: Mapping[TrialKey, str] = field(default_factory=dict)
    """The error of each trial that failed after its retries (one line)."""
    interrupted: bool = False
    """Ctrl-C or SIGTERM stopped the sweep."""
    stopped: str | None = None
    """Why Ray Tune gave up, if it did."""


def run_tune(
    spec: SweepSpec, sweep_dir: Path, pending: Sequence[TrialKey], max_failures: int, cpus_per_trial: float
) -> TuneRun:
    """Run the pending trials with Ray Tune (Ray must be initialised)."""
    from ray import tune
    from ray.exceptions import RayError

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec.as_dict(), sweep_dir=str(sweep_dir)), {"cpu": cpus_per_trial}
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([key.as_dict() for key in pending])},
        # Reusing the workers spares each trial the imports of torch and SB3 (seconds, for short trials).
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_FOLDER,
            storage_path=str(sweep_dir),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,  # Tune's tables are wide and long; one line per trial instead (progress_callback)
            callbacks=[progress_callback(len(pending))],
        ),
    )
    try:
        results = tuner.fit()
    except (RuntimeError, RayError, tune.TuneError) as error:
        # Tune gives up on failures it does not classify, e.g. a worker killed by Ray's out-of-memory monitor
        # (in Ray 2.58). The finished runs are on disk: report them, and a rerun resumes.
        return TuneRun(stopped=f"Ray Tune stopped: {' '.join(str(error).split())[:300]}")
    errors = {}
    for index in range(len(results)):  # a ResultGrid iterates by index: it has __getitem__ but no __iter__
        result = results[index]
        if result.error is not None:
            if result.config is None:  # Tune keeps every trial's config; None would mean a trial it never started
                raise RuntimeError(f"Tune reported a failed trial without its config: {result.error}")
            key = TrialKey(**result.config["trial"])
            errors[key] = " ".join(str(result.error).split())[-300:]  # one line: the end of the message
    return TuneRun(errors)


def progress_callback(total: int) -> Any:
    """A Tune callback printing one line per finished, retried or failed trial."""
    from ray import tune

    class Progress(tune.Callback):
        def __init__(self) -> None:
            self.done = 0

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            self.done += 1
            print(
                f"[{self.done}/{total}] {_trial_text(trial)}: {result['pct']:.1f}% of "
                f"{_benchmark_text(result['benchmark'])} ({result['time_total_s']:.0f} s)",
                flush=True,
            )

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"{_trial_text(trial)} failed; retrying it", flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"{_trial_text(trial)} failed after its retries (error in {trial.error_file})", flush=True)

    return Progress()


def _trial_text(trial: Any) -> str:
    key = trial.config["trial"]
    return f"{key['cell']} {key['algo']} seed {key['seed']}"


def start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to a Ray cluster at ``address``, or start Ray in-process; return whether this call started it."""
    import ray

    if ray.is_initialized():
        return False  # a caller's session (a notebook, the tests)
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    return True


# ---------------------------------------------------------------------------------------------------------------------
# The command line


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="mm-env-sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("spec", type=Path, help="the sweep's YAML file (see sweeps/example.yml)")
    parser.add_argument(
        "--address", help="a running Ray cluster, e.g. HOST:6379 (default: $RAY_ADDRESS, else Ray in-process)"
    )
    parser.add_argument(
        "--out", type=Path, help="the sweep folder (default: runs/sweeps/<name>; on a cluster: on a shared file system)"
    )
    parser.add_argument(
        "--max-failures", type=non_negative_integer, default=2, help="retries of a failed trial (default: %(default)s)"
    )
    parser.add_argument(
        "--cpus-per-trial", type=positive_number, default=1.0, help="CPUs Ray reserves per trial (default: 1)"
    )
    parser.add_argument(
        "--num-cpus", type=positive_integer, help="CPUs of the in-process Ray (default: all of this machine's)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: validate the sweep, run its pending trials on Ray Tune, write and print the results.

    Returns 0 when every trial finished, 1 when some failed after their retries or Ray Tune gave up, 130 when
    interrupted (run the same command again to resume), 2 for bad arguments or a bad sweep file.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    if address and args.num_cpus is not None:
        parser.error("--num-cpus sizes the in-process Ray; a cluster (--address or RAY_ADDRESS) has its own")
    try:
        spec = load_spec(args.spec)
        sweep_dir = (args.out or DEFAULT_ROOT / spec.name).resolve()
        pending = pending_trials(spec, sweep_dir)
        if not address and args.cpus_per_trial > (args.num_cpus or os.cpu_count() or 1):
            # Such a trial would wait for ever on this machine; a cluster's autoscaler may add nodes, so only here.
            raise ValueError(f"--cpus-per-trial {args.cpus_per_trial:g} is more than the CPUs Ray would have")
    except ValueError as error:
        parser.error(str(error))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sweep_dir / "sweep.yaml", yaml.safe_dump(spec.as_dict(), sort_keys=False))
    total = len(spec.trials())
    print(f"sweep {spec.name}: {total} trials, {total - len(pending)} already finished; folder {sweep_dir}")
    try:
        run = _run_pending(spec, sweep_dir, pending, args, address)
    except ValueError as error:  # no Ray Tune, or no Ray cluster at that address
        parser.error(" ".join(str(error).split()))
    outcomes = collect(spec, sweep_dir, run.errors)
    table = write_results(spec, sweep_dir, outcomes)
    print(f"\n{table}\n\nwrote {sweep_dir / 'results.md'}, results.csv and results.png")
    print(f"TensorBoard: tensorboard --logdir {sweep_dir}")
    unfinished = sum(outcome.metrics is None and outcome.error is None for outcome in outcomes)
    failed = sum(outcome.error is not None for outcome in outcomes)
    resume = "run the same command again to resume"
    if run.stopped:
        print(f"{run.stopped}\n{unfinished} of {total} trials unfinished: {resume}")
        return 1
    # Tune handles the first Ctrl-C itself: it stops the trials and returns, so unfinished trials also tell.
    if run.interrupted or unfinished:
        print(f"interrupted with {unfinished} of {total} trials unfinished: {resume}")
        return 130
    if failed:
        print(f"{failed} trial(s) failed after {args.max_failures} retries (see results.md): rerun to retry them")
        return 1
    return 0


def _run_pending(
    spec: SweepSpec, sweep_dir: Path, pending: Sequence[TrialKey], args: argparse.Namespace, address: str | None
) -> TuneRun:
    """Run the pending trials on Ray, started here or joined (``ValueError`` if there is no Ray at ``address``)."""
    if not pending:
        return TuneRun()
    try:
        import ray
        import ray.tune  # noqa: F401  (Ray without its Tune extra lacks it)
    except ImportError:
        raise ValueError("sweeps run on Ray Tune, which is not installed: pip install 'ray[tune]'") from None

    previous = signal.signal(signal.SIGTERM, interrupt)  # SIGTERM (timeout, Slurm, systemd) stops like Ctrl-C
    started = False
    try:
        started = start_ray(address, args.num_cpus)
        print(f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs, {args.cpus_per_trial:g} per trial", flush=True)
        return run_tune(spec, sweep_dir, pending, args.max_failures, args.cpus_per_trial)
    except KeyboardInterrupt:
        return TuneRun(interrupted=True)
    except ConnectionError as error:
        raise ValueError(f"cannot connect to Ray at {address}: {error}") from None
    finally:
        if started:
            ray.shutdown()
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    # Run the module's own copy, not __main__'s: Ray pickles the trial function by reference to agents.sweep.
    from agents.sweep import main as sweep_main

    sys.exit(sweep_main())
