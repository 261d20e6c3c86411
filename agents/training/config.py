"""The settings of a training run: what the command line gives, and what is checked before anything starts."""

from __future__ import annotations

import copy
import math
import platform
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch

import mm_env
from agents.training.family import MarketFamily
from agents.training.hyperparameters import ALGORITHMS, algorithm_kwargs, load_hyperparams
from mm_env.limits import MAX_SEED, check_episodes, check_seed

BACKENDS = ("sb3", "jax")
"""The training backends: Stable-Baselines3 (every algorithm), or PPO on JAX (one market maker)."""
MAX_SEEDS = 1024
"""The most seeds one JAX run trains at once."""
PERIODIC_EVAL_SEED = 1_000_000  # + the run's seed: the same episodes at every periodic evaluation
FINAL_EVAL_SEED = 2_000_000  # + the run's seed: episodes the agent was never selected on


@dataclass
class RunConfig:
    """Everything that defines a training run (saved as ``config.yaml`` in the run folder)."""

    algo: str = "ppo"
    env_id: str = mm_env.MARKET_MAKING_ID
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    timesteps: int | None = None
    seed: int = 0
    n_envs: int | None = None
    device: str = "auto"
    eval_freq: int | None = None
    eval_episodes: int = 1_000
    final_episodes: int = 10_000
    log_dir: str = "runs"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    # False: ``hyperparams`` override the shipped tuned file; True: they are a whole entry (a saved run's own), so that
    # a saved run continues with exactly its settings and needs no file outside its folder.
    hyperparams_complete: bool = False
    progress_bar: bool = False
    verbose: int = 0
    backend: str = "sb3"
    """``sb3`` (Stable-Baselines3 on PyTorch) or ``jax`` (PPO on JAX, :mod:`agents.training.jax_ppo`)."""
    seeds: int = 1
    """Seeds trained at once (``jax`` only): ``seed``, ``seed + 1``, … ``seed + seeds − 1``."""


@dataclass(frozen=True)
class PreparedRun:
    """A run whose every setting has been checked, before anything is built or written."""

    config: RunConfig
    family: MarketFamily
    """The market the run trains in (:mod:`agents.training.family`)."""
    hyperparams: dict[str, Any]
    n_envs: int
    timesteps: int
    eval_freq: int


def with_entry_env_kwargs(config: RunConfig, hyperparams: dict[str, Any]) -> RunConfig:
    """``config`` with the ``env_kwargs`` of its checked hyperparameter entry under its own, which win key by key.

    An entry may set environment keywords as the RL Zoo's files do (``td3.yml`` observes the inventory only). The
    merged keywords are the run's: ``config.yaml`` records them, so ``--evaluate`` and ``--continue-from`` rebuild
    the same environment.
    """
    entry_kwargs = hyperparams.get("env_kwargs")
    if not entry_kwargs:
        return config
    return replace(config, env_kwargs={**entry_kwargs, **config.env_kwargs})


def run_settings(config: RunConfig) -> tuple[dict[str, Any], int, int, int]:
    """The checked hyperparameters, number of envs, budget and evaluation period of a run (``ValueError`` if bad)."""
    if config.algo not in ALGORITHMS:
        raise ValueError(f"--algo {config.algo!r} is not one of {sorted(ALGORITHMS)}")
    _check_backend(config)
    if config.backend == "jax":
        from agents.training.jax_backend import jax_hyperparams  # imports JAX: for --backend jax only

        hyperparams = jax_hyperparams(config.hyperparams, config.n_envs)
    elif config.hyperparams_complete:
        hyperparams = copy.deepcopy(config.hyperparams)
    else:
        hyperparams = load_hyperparams(config.algo, config.env_id, config.hyperparams)
    if config.backend == "sb3":
        algorithm_kwargs(config.algo, hyperparams, n_actions=2)
    n_envs = _count("n_envs", config.n_envs or hyperparams.get("n_envs", 1))
    timesteps = _count("timesteps", config.timesteps or float(hyperparams.get("n_timesteps", 1_000_000)))
    eval_freq = _count("eval_freq", config.eval_freq or max(timesteps // 10, 1))
    check_seed(config.seed, "--seed")
    check_episodes(config.eval_episodes, "--eval-episodes", minimum=2)
    check_episodes(config.final_episodes, "--final-episodes", minimum=2)
    problem = device_problem(config.device)
    if problem is not None:
        raise ValueError(problem)
    return hyperparams, n_envs, timesteps, eval_freq


def _check_backend(config: RunConfig) -> None:
    """The backend, and what it allows: JAX trains PPO only; several seeds at once need JAX (``ValueError``)."""
    if config.backend not in BACKENDS:
        raise ValueError(f"--backend {config.backend!r} is not one of {list(BACKENDS)}")
    if config.backend == "jax" and config.algo != "ppo":
        raise ValueError(f"--backend jax trains PPO only, not --algo {config.algo}")
    seeds = config.seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds {seeds!r} is invalid: must be an integer in [1, {MAX_SEEDS}]")
    if seeds > 1 and config.backend != "jax":
        raise ValueError(f"--seeds {seeds} trains several seeds at once with --backend jax only")
    if seeds > 1:
        check_seed(config.seed, "--seed")
        last = config.seed + seeds - 1
        if last > MAX_SEED:
            raise ValueError(
                f"--seed {config.seed} with --seeds {seeds} is invalid: "
                f"the last seed, {last}, must be at most 2**32 - 1"
            )


def size_problem(prepared: PreparedRun) -> str | None:
    """Why the run's evaluations would not fit in memory or time (``mm_env.limits``), in one line, or ``None``."""
    return prepared.family.size_problem(prepared.config.eval_episodes, prepared.config.final_episodes)


def _count(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 1 and number == int(number)):
        raise ValueError(f"{name}={value!r} is invalid: must be a positive integer")
    return int(number)


def device_problem(device: str) -> str | None:
    """Why torch cannot use ``device`` on this machine (one line), or ``None`` if it can.

    ``auto``, ``cpu`` and ``cpu:0`` always work (no other CPU index: a model saved from it cannot be loaded);
    ``cuda`` and ``cuda:N`` need ``torch.cuda.is_available()`` and
    ``N < torch.cuda.device_count()``; ``mps`` needs ``torch.backends.mps.is_available()``; any other type needs its
    torch module to say it is available.
    """
    if device == "auto":
        return None
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        return f"--device {device!r} is invalid: {error}"
    kind, index = parsed.type, parsed.index
    if kind == "cpu":
        return None if index in (None, 0) else f"--device {device!r} is not available: the CPU is cpu or cpu:0"
    if kind == "cuda":
        if not torch.cuda.is_available():
            return f"--device {device!r} is not available: torch finds no CUDA device on this machine (use cpu)"
        if index is not None and index >= torch.cuda.device_count():
            return f"--device {device!r} is not available: this machine has {torch.cuda.device_count()} CUDA device(s)"
        available = True
    elif kind == "mps":
        available = torch.backends.mps.is_available()
    else:
        is_available = getattr(getattr(torch, kind, None), "is_available", None)
        available = bool(is_available()) if callable(is_available) else False
    if not available:
        return f"--device {device!r} is not available on this machine (use cpu)"
    try:  # the device exists: that torch can also put a tensor there
        torch.zeros(1, device=parsed)
    except Exception as error:  # whatever the device's backend raises
        return f"--device {device!r} is not usable: {' '.join(str(error).split())[:200]}"
    return None


def versions() -> dict[str, str]:
    """Library versions, recorded with every run."""
    return {
        "python": platform.python_version(),
        "numpy": str(np.__version__),
        "torch": str(torch.__version__),
        "gymnasium": gym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }
