"""A sweep's file: a grid of model parameters × algorithms × seeds, validated, and the training run of each trial.

The YAML file names the grid (``grid``: model parameter → list of values; the cartesian product gives the cells),
the algorithms and the seeds, and the settings every run shares (see ``sweeps/example.yml``). Every trial is one
ordinary training run (:mod:`agents.training.experiment`), of any market family, in
``<out>/<cell>/seed<seed>/<algo>_<env>_<n>/``. The command is ``mm-env-sweep`` (:mod:`agents.cli.sweep`).
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

import mm_env
from agents.training.algorithm import check_run
from agents.training.config import PreparedRun, RunConfig, run_settings, size_problem, with_entry_env_kwargs
from agents.training.experiment import prepare
from agents.training.families import family_of
from agents.training.hyperparameters import ALGORITHMS
from mm_env.limits import check_episodes

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
MIN_EPISODES = 2  # train.py's minimum for --eval-episodes and --final-episodes
MAX_TRIALS = 10_000
"""The most trials (cells × algorithms × seeds) of one sweep: every one is a training run, and the file is checked
cell by cell before any starts (in time linear in the number of cells)."""
MAX_SEEDS = 1_000
"""The most seeds of one sweep (``seeds: N`` or a list)."""
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
    """A validated sweep: each cell × algorithm × seed is a run :func:`~agents.training.experiment.prepare` takes."""

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
        return list(self._cells_by_name.values())

    @functools.cached_property
    def _cells_by_name(self) -> dict[str, Cell]:
        # Built once (a frozen dataclass may cache: the cache is no field), so finding a trial's cell is one lookup.
        keys = list(self.grid)
        cells = []
        for values in itertools.product(*(self.grid[key] for key in keys)):
            chosen = dict(zip(keys, values, strict=True))
            name = "_".join(f"{key}-{_folder_text(value)}" for key, value in chosen.items()) or BASE_CELL
            cells.append(Cell(name, MappingProxyType(chosen)))
        return {cell.name: cell for cell in cells}

    def trials(self) -> list[TrialKey]:
        """Every run of the sweep: cell × algorithm × seed."""
        return [TrialKey(cell.name, algo, seed) for cell in self.cells() for algo in self.algos for seed in self.seeds]

    def run_config(self, key: TrialKey, sweep_dir: Path) -> RunConfig:
        """The training run of one trial, writing its run folder under ``trial_dir(sweep_dir, key)``."""
        cell = self._cells_by_name[key.cell]
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
    if spec.eval_episodes < MIN_EPISODES or spec.final_episodes < MIN_EPISODES:
        raise ValueError(f"eval_episodes and final_episodes must be at least {MIN_EPISODES}")
    both = sorted(set(spec.grid) & set(spec.env_kwargs))
    if both:
        raise ValueError(f"{both} are both in grid and in env_kwargs: give each parameter in one place only")
    try:
        family_of(spec.env_id)
    except ValueError as error:
        raise ValueError(str(error).replace("--env ", "env=")) from None
    trials = math.prod(len(values) for values in spec.grid.values()) * len(spec.algos) * len(spec.seeds)
    if trials > MAX_TRIALS:
        raise ValueError(
            f"the sweep has {trials:,} trials (grid cells × algos × seeds), more than {MAX_TRIALS:,}: "
            "split it into several sweeps"
        )
    cells = spec.cells()
    _no_duplicates([cell.name for cell in cells], "grid cell folder names")
    settings = {}
    for algo in spec.algos:  # the hyperparameters and budgets, once per algorithm
        try:
            settings[algo] = run_settings(spec.run_config(TrialKey(cells[0].name, algo, spec.seeds[0]), Path(".")))
        except ValueError as error:
            raise ValueError(f"algo {algo}: {_as_key(error)}") from None
    for cell in cells:  # the model and the evaluations' sizes, once per cell and algorithm (no file is read again)
        for algo in spec.algos:
            try:
                _check_cell(spec.run_config(TrialKey(cell.name, algo, spec.seeds[0]), Path(".")), settings[algo])
            except ValueError as error:
                where = f"grid cell {cell.label}" if spec.grid else "env_kwargs"
                raise ValueError(f"{where}: {error}") from None
    for algo in spec.algos:  # that SB3 builds each algorithm's model on the first cell's spaces
        try:
            check_run(prepare(spec.run_config(TrialKey(cells[0].name, algo, spec.seeds[0]), Path("."))))
        except ValueError as error:
            raise ValueError(f"algo {algo}: {_as_key(error)}") from None


def _as_key(error: ValueError) -> str:
    # The file's key for a message that names the command's option.
    return str(error).replace("--device ", "device=").replace("--final-episodes ", "final_episodes=")


def _check_cell(config: RunConfig, settings: tuple[dict[str, Any], int, int, int]) -> None:
    """What :func:`~agents.training.experiment.prepare` checks of a run's market, with its algorithm's settings."""
    hyperparams, n_envs, timesteps, eval_freq = settings
    config = with_entry_env_kwargs(config, hyperparams)
    family = family_of(config.env_id).from_env(config.env_id, config.env_kwargs)
    family.check_n_envs(n_envs)
    problem = size_problem(PreparedRun(config, family, hyperparams, n_envs, timesteps, eval_freq))
    if problem is not None:
        raise ValueError(problem)


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
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_SEEDS:
        raise ValueError(f"seeds={value!r} is invalid: must be a count or a list of at most {MAX_SEEDS:,} seeds")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(range(value))  # "seeds: 3" means seeds 0, 1 and 2
    if not isinstance(value, list) or not value:
        raise ValueError(f"seeds={value!r} is invalid: must be a non-empty list of integers (or a count)")
    if len(value) > MAX_SEEDS:
        raise ValueError(f"seeds: {len(value):,} seeds is invalid: must be at most {MAX_SEEDS:,}")
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
    return check_episodes(count, name, MIN_EPISODES)


def _no_duplicates(values: Sequence[Any], name: str) -> None:
    seen: set[Any] = set()  # linear: values are compared by a hashable form (lists as tuples, mappings as items)
    for value in values:
        key = _hashable(value)
        if key in seen:
            raise ValueError(f"{name}: {value!r} appears twice")
        seen.add(key)


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ("sequence", tuple(_hashable(item) for item in value))
    if isinstance(value, dict):
        return ("mapping", frozenset((_hashable(key), _hashable(item)) for key, item in value.items()))
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return value


def _folder_text(value: Any) -> str:
    """A parameter value as part of a folder name (``[1, 2]`` → ``1-2``)."""
    if isinstance(value, (list, tuple)):
        return "-".join(_folder_text(item) for item in value)
    return re.sub(r"[^A-Za-z0-9.+-]", "", str(value)) or "x"


def trial_dir(sweep_dir: Path, key: TrialKey) -> Path:
    """The folder that holds a trial's run folder(s): ``<sweep>/<cell>/seed<seed>``."""
    return Path(sweep_dir) / key.cell / f"seed{key.seed}"
