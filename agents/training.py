"""Training Stable-Baselines3 agents on the batched env, and comparing them with the baselines (the main job)."""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
import yaml
from gymnasium import spaces
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import HParam, configure
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

import mm_env
from agents import run_folder
from agents.callbacks import (
    NOT_IN_TEXT_LOGS,
    LogStdSchedule,
    MarketMetricsCallback,
    PeriodicEvaluation,
    PolicyEvaluationCallback,
)
from agents.cli import TRAIN_COMMAND, new_numbered_folder
from agents.dp import exact_solution, table_memory_reason
from agents.env_setup import env_config
from agents.evaluate import (
    COMPACT_COLUMNS,
    PolicyReport,
    baseline_policies,
    compare,
    episode_history,
    markdown_table,
    write_report,
)
from agents.interrupts import InterruptOnce
from agents.plots import episode_figure, policy_figure
from agents.policies import Policy
from agents.run_folder import RunFailed, RunFolderError
from agents.sb3_policy import SB3Policy
from agents.tb_layout import market_maker_layout, write_layout
from agents.tuning import best_tuned_heuristic
from mm_env.config import EnvConfig
from mm_env.params import MarketParams
from mm_env.sb3_vec_env import MarketMakingVecEnv

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3, "a2c": A2C}
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "leaky_relu": torch.nn.LeakyReLU}
# Keys of a hyperparameter entry that configure the run rather than the algorithm's constructor.
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "noise_type", "noise_std", "log_std_schedule", "env_kwargs")
SCHEDULED_KEYS = {"learning_rate", "clip_range"}  # values that may name a schedule such as "lin_3e-4"
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


def load_hyperparams(algo: str, env_id: str, overrides: dict[str, Any], directory: Path = HYPERPARAMS_DIR) -> dict:
    """The tuned hyperparameters of ``algo`` for ``env_id`` (or the file's ``default`` entry), with overrides."""
    path = directory / f"{algo}.yml"
    if not path.exists():
        raise ValueError(f"no hyperparameter file {path}")
    entries = yaml.safe_load(path.read_text()) or {}
    entry = entries.get(env_id, entries.get("default"))
    if entry is None:
        raise ValueError(f"{path} has no entry for {env_id!r} and no 'default' entry")
    return {**copy.deepcopy(entry), **overrides}


def _schedule(value: Any) -> Any:
    """Learning-rate schedules by name, as functions of SB3's progress remaining ``p`` (1 at the start, 0 at the end).

    * ``lin_X``: ``X·p``, linear decay to 0 (the RL Zoo's notation);
    * ``restarts_X_N``: ``N`` cycles; cycle ``k = 0 … N−1`` decays linearly from ``X/(k+1)`` to 0 (warm restarts
      with a falling peak: long stretches of small steps settle the quotes precisely, the restarts keep learning).

    SB3's last rollout can overshoot the budget (a whole rollout is collected), which makes ``p`` slightly negative:
    the rate then stays at 0 rather than turning negative.
    """
    if not isinstance(value, str):
        return value
    name, _, rest = value.partition("_")
    try:
        if name == "lin":
            start = float(rest)
            return lambda p: start * max(p, 0.0)
        if name == "restarts":
            peak_text, _, cycles_text = rest.partition("_")
            peak, cycles = float(peak_text), int(cycles_text)
            if cycles >= 1:
                return lambda p: _restart_rate(peak, cycles, min(1.0 - p, 1.0))
    except ValueError:
        pass
    raise ValueError(f"learning rate {value!r} is not a number, lin_X or restarts_X_N")


def _restart_rate(peak: float, cycles: int, done: float) -> float:
    cycle = min(int(done * cycles), cycles - 1)
    within = done * cycles - cycle
    return peak / (cycle + 1) * (1.0 - within)


# The allowed values of the hyperparameters our files and --hyperparams use, checked before anything starts (SB3
# checks few of them, some only mid-run: gamma=2 trains until the values overflow).
_AT_LEAST = {
    "n_envs": 1,
    "n_steps": 1,
    "batch_size": 2,
    "n_epochs": 1,
    "buffer_size": 1,
    "learning_starts": 0,
    "policy_delay": 1,
    "target_update_interval": 1,
    "sde_sample_freq": -1,
    "stats_window_size": 1,
}  # integers
_UNIT_INTERVAL = ("gamma", "gae_lambda", "tau")  # numbers in [0, 1]
_POSITIVE = ("max_grad_norm", "target_policy_noise", "target_noise_clip", "rms_prop_eps")  # numbers > 0
_NON_NEGATIVE = ("vf_coef", "noise_std")  # numbers >= 0
_BOOLEANS = ("use_sde", "normalize_advantage", "optimize_memory_usage", "use_sde_at_warmup", "use_rms_prop")
_NORMALIZE_KEYS = {"norm_obs": bool, "norm_reward": bool, "gamma": float, "clip_obs": float, "clip_reward": float}


def check_hyperparams(hyperparams: dict[str, Any]) -> None:
    """Check the value of every hyperparameter we know; ``ValueError`` names the key, the value and what is allowed."""
    for key, value in hyperparams.items():
        allowed = _allowed(key, value)
        if allowed is not None:
            raise ValueError(f"hyperparameter {key}={value!r} is invalid: must be {allowed}")


def _allowed(key: str, value: Any) -> str | None:
    """What ``key`` allows, if ``value`` is not allowed (``None`` if it is, or if the key is not one we check)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if key in _AT_LEAST:
        ok = is_number and value == int(value) and value >= _AT_LEAST[key]
        return None if ok else f"an integer >= {_AT_LEAST[key]}"
    if key in _UNIT_INTERVAL:
        return None if is_number and 0 <= value <= 1 else "a number in [0, 1]"
    if key in _POSITIVE:
        return None if is_number and value > 0 else "a number > 0"
    if key in _NON_NEGATIVE:
        return None if is_number and value >= 0 else "a number >= 0"
    if key in _BOOLEANS:
        return None if isinstance(value, bool) else "True or False"
    if key == "gradient_steps":
        ok = is_number and value == int(value) and (value >= 1 or value == -1)
        return None if ok else "an integer >= 1, or -1 (as many as the env steps collected)"
    if key == "train_freq":
        count, unit = value if isinstance(value, (list, tuple)) and len(value) == 2 else (value, "step")
        ok = isinstance(count, int) and not isinstance(count, bool) and count >= 1 and unit in ("step", "episode")
        return None if ok else "an integer >= 1, or [n, 'step'] or [n, 'episode']"
    if key in SCHEDULED_KEYS:
        return _allowed_schedule(value)
    if key == "normalize":
        return _allowed_normalize(value)
    if key == "ent_coef":
        ok = (is_number and value >= 0) or value == "auto" or (isinstance(value, str) and _auto_coef(value))
        return None if ok else "a number >= 0, 'auto' or 'auto_X' with X > 0"
    if key == "policy_kwargs":
        return None if value is None or isinstance(value, dict) else "a dict such as {net_arch: [64, 64]}"
    if key == "env_kwargs":
        ok = value is None or (isinstance(value, dict) and all(isinstance(name, str) for name in value))
        return None if ok else "a dict of environment keywords such as {observation_features: [inventory]}"
    if key == "log_std_schedule":
        if value is None:  # learned, as SB3 does (turns off a file's schedule from the command line)
            return None
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)
        return (
            None if ok else "two numbers [start, end] (the log standard deviation at the start and at the end) or None"
        )
    return None


def _allowed_schedule(value: Any) -> str | None:
    allowed = "a number > 0, lin_X or restarts_X_N with X > 0 and N >= 1"
    try:
        rate = _schedule(value)
    except ValueError:
        return allowed
    start = rate(1.0) if callable(rate) else rate
    is_number = isinstance(start, (int, float)) and not isinstance(start, bool) and math.isfinite(start)
    return None if is_number and start > 0 else allowed


def _allowed_normalize(value: Any) -> str | None:
    allowed = f"True, False or a dict of {sorted(_NORMALIZE_KEYS)}"
    if isinstance(value, bool):
        return None
    if not isinstance(value, dict) or not set(value) <= set(_NORMALIZE_KEYS):
        return allowed
    for key, kind in _NORMALIZE_KEYS.items():
        if key not in value:
            continue
        item = value[key]
        if kind is bool and not isinstance(item, bool):
            return allowed + f" ({key}: True or False)"
        if kind is float and not (isinstance(item, (int, float)) and not isinstance(item, bool) and item > 0):
            return allowed + f" ({key}: a number > 0)"
    if "gamma" in value and not value["gamma"] <= 1:
        return allowed + " (gamma: a number in (0, 1])"
    return None


def _auto_coef(value: str) -> bool:
    name, _, start = value.partition("_")
    try:
        return name == "auto" and float(start) > 0
    except ValueError:
        return False


def algorithm_kwargs(algo: str, hyperparams: dict[str, Any], n_actions: int) -> dict[str, Any]:
    """Constructor arguments of the SB3 algorithm from a hyperparameter entry (unknown names raise ValueError)."""
    check_hyperparams(hyperparams)
    if hyperparams.get("log_std_schedule") is not None and (algo not in ("ppo", "a2c") or hyperparams.get("use_sde")):
        used = f"{algo} with use_sde" if hyperparams.get("use_sde") else algo
        raise ValueError(f"log_std_schedule is for PPO and A2C without use_sde, not {used}")
    kwargs = {key: value for key, value in hyperparams.items() if key not in RUN_KEYS}
    for key in SCHEDULED_KEYS & kwargs.keys():
        kwargs[key] = _schedule(kwargs[key])
    managed = {"self", "policy", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}
    accepted = set(inspect.signature(ALGORITHMS[algo].__init__).parameters) - managed
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"unknown {algo} hyperparameters {unknown}; allowed: {sorted(accepted | set(RUN_KEYS))}")
    policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
    if isinstance(policy_kwargs.get("activation_fn"), str):
        name = policy_kwargs["activation_fn"]
        if name not in ACTIVATIONS:
            raise ValueError(f"activation_fn={name!r} is not one of {sorted(ACTIVATIONS)}")
        policy_kwargs["activation_fn"] = ACTIVATIONS[name]
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    noise_type = hyperparams.get("noise_type")
    if noise_type == "normal":
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), hyperparams["noise_std"] * np.ones(n_actions))
    elif noise_type is not None:
        raise ValueError(f"noise_type={noise_type!r} is not supported (use 'normal')")
    return kwargs


def next_run_dir(log_dir: Path, algo: str, env_id: str) -> Path:
    """``runs/<algo>_<env>_<n>`` with ``n`` one more than any existing run of that name (never overwrites)."""
    return new_numbered_folder(log_dir, f"{algo}_{env_id.split('/')[-1].split(':')[-1]}")


def make_training_env(env: EnvConfig, n_envs: int, seed: int, normalize: dict | bool | None) -> VecEnv:
    """The batched SB3 env, monitored, and normalised if the hyperparameters say so."""
    venv: VecEnv = MarketMakingVecEnv(
        n_envs, env.params, observation_features=env.features, normalize_actions=env.normalize_actions
    )
    venv.seed(seed)
    venv = VecMonitor(venv)
    if normalize:
        options = normalize if isinstance(normalize, dict) else {}
        venv = VecNormalize(venv, **options)
    return venv


def _vecnormalize(venv: VecEnv | None) -> VecNormalize | None:
    return run_folder.find_vec_normalize(venv)


def versions() -> dict[str, str]:
    """Library versions, recorded with every run."""
    return {
        "python": platform.python_version(),
        "numpy": str(np.__version__),
        "torch": str(torch.__version__),
        "gymnasium": gym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


@dataclass(frozen=True)
class PreparedRun:
    """A run whose every setting has been checked, before anything is built or written."""

    config: RunConfig
    env: EnvConfig
    hyperparams: dict[str, Any]
    n_envs: int
    timesteps: int
    eval_freq: int


def prepare(config: RunConfig) -> PreparedRun:
    """Check every setting of a run; any problem raises ``ValueError`` with a message for the command line."""
    hyperparams, n_envs, timesteps, eval_freq = run_settings(config)
    config = with_entry_env_kwargs(config, hyperparams)
    env = env_config(config.env_id, config.env_kwargs)
    if not env.params.fill.quotes_matter:
        raise ValueError("article mode has nothing to learn: every order fills whatever the quotes")
    check_table_memory(env.params)
    return PreparedRun(config, env, hyperparams, n_envs, timesteps, eval_freq)


def check_table_memory(params: MarketParams) -> None:
    """Refuse, before anything starts, a model whose exact tables (the DP, exact evaluations) would not fit."""
    reason = table_memory_reason(params)
    if reason is not None:
        raise ValueError(f"--env-kwargs: {reason}; choose a smaller T or I_max")


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
    if config.hyperparams_complete:
        hyperparams = copy.deepcopy(config.hyperparams)
    else:
        hyperparams = load_hyperparams(config.algo, config.env_id, config.hyperparams)
    algorithm_kwargs(config.algo, hyperparams, n_actions=2)
    n_envs = _count("n_envs", config.n_envs or hyperparams.get("n_envs", 1))
    timesteps = _count("timesteps", config.timesteps or float(hyperparams.get("n_timesteps", 1_000_000)))
    eval_freq = _count("eval_freq", config.eval_freq or max(timesteps // 10, 1))
    if not 0 <= config.seed < 2**32:
        raise ValueError(f"--seed {config.seed} is invalid: must be in [0, 2**32 - 1]")
    try:
        if config.device != "auto":
            torch.device(config.device)
    except RuntimeError as error:
        raise ValueError(f"--device {config.device!r} is invalid: {error}") from None
    return hyperparams, n_envs, timesteps, eval_freq


def _count(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 1 and number == int(number)):
        raise ValueError(f"{name}={value!r} is invalid: must be a positive integer")
    return int(number)


def continued_config(source: Path, **changes: Any) -> RunConfig:
    """The configuration of a saved run, to continue training it (with ``changes`` to the run-level settings).

    Its model is the one its ``config.yaml`` records (see :func:`run_env_kwargs`). Raises :class:`RunFolderError`
    (a ``ValueError``) if ``config.yaml`` cannot be used.
    """
    saved = run_folder.read_config(source, ALGORITHMS)
    fields = {name: saved[name] for name in RunConfig.__dataclass_fields__ if name in saved}
    fields["env_kwargs"], differences = run_env_kwargs(saved, source)
    note = recorded_params_note(differences)
    if note is not None:
        print(note)
    return RunConfig(**{**fields, "hyperparams_complete": True, **changes})


def run_env_kwargs(saved: dict[str, Any], run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The env keywords that rebuild exactly the model a run was trained on, and the parameters that needed it.

    ``config.yaml`` records the run's ``env_kwargs`` and the full model parameters they gave (``params``). Should
    the two disagree (a default changed since, or the file was edited), **the recorded params win**: a run is
    evaluated and continued on exactly the model it was trained on. The keywords are then the run's own minus its
    model parameters (``observation_features``, ``normalize_actions``, the game's set-up) plus the recorded params in
    full, and the second value lists the parameters that differ. A run that records no ``params`` keeps its
    ``env_kwargs``. Raises :class:`RunFolderError` if either cannot build a model.
    """
    if is_game_id(saved["env_id"]):
        from agents.game_training import game_env_kwargs  # it builds on this module

        return game_env_kwargs(saved, run_dir)
    env_kwargs = dict(saved.get("env_kwargs") or {})
    path = run_dir / run_folder.CONFIG_FILE
    try:
        current = env_config(saved["env_id"], env_kwargs).params
    except ValueError as error:
        raise RunFolderError(f"{path}: env_kwargs {env_kwargs} cannot build the env: {error}") from None
    if not saved.get("params"):
        return env_kwargs, []
    try:
        recorded = mm_env.make_params("default", **saved["params"])
    except (TypeError, ValueError) as error:
        raise RunFolderError(f"{path}: the recorded params cannot build a model: {error}") from None
    if recorded == current:
        return env_kwargs, []
    kept = {key: value for key, value in env_kwargs.items() if key in ("observation_features", "normalize_actions")}
    return {**kept, **recorded.as_dict()}, _differences(recorded.as_dict(), current.as_dict())


def _differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {current.get(name)!r} → {value!r}" for name, value in recorded.items() if current.get(name) != value
    ]


def recorded_params_note(differences: list[str]) -> str | None:
    """A one-line note for a run whose recorded params differ from what its ``env_kwargs`` give now."""
    if not differences:
        return None
    return (
        "note: config.yaml's env_kwargs now give another model than the run was trained on "
        f"({'; '.join(differences)}); using the recorded params"
    )


def is_game_id(env_id: str) -> bool:
    """Whether ``env_id`` is the competing market makers' env (see :func:`agents.game_training.is_game`)."""
    from agents.game_training import is_game  # it builds on this module

    return is_game(env_id)


def train(prepared: PreparedRun, continue_from: Path | None = None) -> tuple[Path, bool]:
    """Train an agent, log to TensorBoard, save it, and compare it with the baselines.

    Returns the run folder and whether the run was interrupted (Ctrl-C or SIGTERM), during training (what was
    learned is saved, the comparison skipped) or during the final comparison (the model is saved). A problem with
    ``continue_from`` raises :class:`RunFolderError` before the run folder is made; any failure after it raises
    :class:`RunFailed`, with the model saved and the failure recorded in the folder (see :func:`conduct_run`).
    """
    config = prepared.config
    model = build_model(prepared, continue_from)
    heuristic = benchmark_heuristic(prepared)  # tuning may take a while: before the run folder exists
    run_dir, saved = start_run(prepared, continue_from)

    def begin() -> PeriodicEvaluation:
        formats = ["tensorboard", "csv"] + (["stdout"] if config.verbose else [])
        model.set_logger(configure(str(run_dir), formats))
        evaluation = evaluation_callback(prepared, model, run_dir, heuristic)
        write_layout(model.logger, market_maker_layout(evaluation.benchmark_tag))
        print(
            f"training {config.algo.upper()} on {config.env_id} for {prepared.timesteps:,} steps "
            f"({prepared.n_envs} envs); run: {run_dir}"
        )
        return evaluation

    def compare() -> None:
        rows, benchmark = final_comparison(
            run_dir, config.final_episodes, FINAL_EVAL_SEED + config.seed, device=config.device
        )
        _log_summary(model, rows, benchmark, saved, run_dir.name)

    return conduct_run(
        model, run_dir, begin, compare, prepared.timesteps, prepared.hyperparams, config.progress_bar, continue_from
    )


def training_callbacks(hyperparams: dict[str, Any]) -> list[BaseCallback]:
    """The callbacks that a hyperparameter entry asks for besides the logging and evaluations (``log_std_schedule``)."""
    if hyperparams.get("log_std_schedule") is not None:
        return [LogStdSchedule(*hyperparams["log_std_schedule"])]
    return []


def conduct_run(
    model: BaseAlgorithm,
    run_dir: Path,
    begin: Callable[[], PeriodicEvaluation],
    compare: Callable[[], None],
    timesteps: int,
    hyperparams: dict[str, Any],
    progress_bar: bool,
    continue_from: Path | None,
) -> tuple[Path, bool]:
    """Everything a run does once its folder exists, with its status recorded in ``run_status.json`` at each step.

    ``begin`` sets up the logger and returns the periodic evaluation; then the model learns (with the callbacks that
    ``hyperparams`` asks for, :func:`training_callbacks`), is saved, evaluated once more and ``compare`` runs the
    final comparison. The first Ctrl-C or SIGTERM stops the run and later ones wait
    (:class:`~agents.interrupts.InterruptOnce`): while it learns (or sets up), what was learned is saved, the run
    marked interrupted and ``(run_dir, True)`` returned; after that, the model is saved all the same, the run marked
    interrupted and the way to redo the comparison printed. Any exception saves the model as it is, writes the
    traceback to ``error.log``, marks the run failed and raises :class:`RunFailed`.
    """
    evaluation: PeriodicEvaluation | None = None
    model_saved, stage = False, "training"
    with InterruptOnce() as signals:
        try:
            run_folder.write_status(run_dir, "running", model.num_timesteps)
            try:
                evaluation = begin()
                resume = continue_from is not None
                callbacks = [evaluation, *training_callbacks(hyperparams)]
                interrupted = learn(model, timesteps, progress_bar, callbacks, resume)
            except KeyboardInterrupt:  # during the set-up
                print("\ninterrupted: saving what has been learned")
                interrupted = True
            if interrupted:  # later signals only print a note: the save below is finished
                run_folder.save_model(model, run_dir)
                model_saved = True
                _write_evaluations(run_dir, evaluation)
                run_folder.write_status(run_dir, "interrupted", model.num_timesteps, "interrupted during training")
                print(f"saved {run_folder.model_path(run_dir)}; compare it with: {TRAIN_COMMAND} --evaluate {run_dir}")
                return run_dir, True
            try:
                run_folder.save_model(model, run_dir)  # atomic: a signal during it leaves no half-written file
                model_saved, stage = True, "the final comparison"
                assert evaluation is not None
                evaluation.evaluate()  # the final model, logged like the periodic evaluations
                _write_evaluations(run_dir, evaluation)
                compare()
            except KeyboardInterrupt:
                if not model_saved:
                    run_folder.save_model(model, run_dir)
                    model_saved = True
                _write_evaluations(run_dir, evaluation)
                message = "interrupted during the final comparison"
                run_folder.write_status(run_dir, "interrupted", model.num_timesteps, message)
                print(
                    f"\n{message}; the model is saved in {run_dir}; "
                    f"redo the comparison with: {TRAIN_COMMAND} --evaluate {run_dir}"
                )
                return run_dir, True
            run_folder.write_status(run_dir, "finished", model.num_timesteps)
            return run_dir, False
        except Exception as error:
            signals.hold()
            raise _record_failure(model, run_dir, evaluation, model_saved, error, stage) from error


def _write_evaluations(run_dir: Path, evaluation: PeriodicEvaluation | None) -> None:
    if evaluation is not None:
        run_folder.write_evaluations(run_dir, evaluation.history)


def _record_failure(
    model: BaseAlgorithm,
    run_dir: Path,
    evaluation: PeriodicEvaluation | None,
    model_saved: bool,
    error: Exception,
    stage: str,
) -> RunFailed:
    """Save what exists (the model, the evaluations so far) and mark the run failed; never raises itself."""
    if not model_saved:
        try:
            run_folder.save_model(model, run_dir)
            model_saved = True
        except Exception:  # e.g. the disk is full: the failure is still recorded and reported
            pass
    with contextlib.suppress(Exception):
        _write_evaluations(run_dir, evaluation)
    log = run_folder.record_failure(run_dir, error, model.num_timesteps)
    return RunFailed(run_dir, error, model.num_timesteps, model_saved, log, stage)


def build_model(prepared: PreparedRun, continue_from: Path | None = None) -> BaseAlgorithm:
    """The training env and the algorithm on it: new, or loaded from a saved run to continue it."""
    config, hyperparams = prepared.config, prepared.hyperparams
    venv = make_training_env(prepared.env, prepared.n_envs, config.seed, hyperparams.get("normalize"))
    return model_on(venv, config, hyperparams, continue_from)


def model_on(
    venv: VecEnv, config: RunConfig, hyperparams: dict[str, Any], continue_from: Path | None = None
) -> BaseAlgorithm:
    """The algorithm on a training env: new, or loaded (with its normalisation statistics) from a saved run.

    A continued run that normalises needs its statistics: without them it would restart them from nothing, so their
    absence raises :class:`RunFolderError`, as does any problem with the saved model.
    """
    algo_class = ALGORITHMS[config.algo]
    if continue_from is not None:
        if isinstance(venv, VecNormalize):
            statistics = run_folder.read_statistics(continue_from, venv.venv, required=True, training=True)
            assert statistics is not None  # required
            venv = statistics
        path = run_folder.model_path(continue_from)
        model = load_model(
            config.algo, path, hyperparams, venv.observation_space, venv.action_space, env=venv, device=config.device
        )
        model.set_random_seed(config.seed)
        return model
    kwargs = algorithm_kwargs(config.algo, hyperparams, n_actions=2)
    policy = hyperparams.get("policy", "MlpPolicy")
    return algo_class(policy, venv, seed=config.seed, device=config.device, verbose=config.verbose, **kwargs)


def start_run(prepared: PreparedRun, continue_from: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """A new run folder with its ``config.yaml``: every setting, the full model parameters and the versions."""
    config = prepared.config
    run_dir = next_run_dir(Path(config.log_dir), config.algo, config.env_id)
    saved = {
        **asdict(config),
        "n_envs": prepared.n_envs,
        "timesteps": prepared.timesteps,
        "eval_freq": prepared.eval_freq,
        "hyperparams": prepared.hyperparams,
        "params": prepared.env.params.as_dict(),
        "continue_from": str(continue_from) if continue_from else None,
        "versions": versions(),
    }
    run_folder.write_config(run_dir, saved)
    return run_dir, saved


def benchmark_heuristic(prepared: PreparedRun) -> Policy | None:
    """The best tuned heuristic where the model has no exact optimum (the periodic evaluations' benchmark), or None."""
    params = prepared.env.params
    return None if exact_solution(params) is not None else best_tuned_heuristic(params).policy


def evaluation_callback(
    prepared: PreparedRun, model: BaseAlgorithm, run_dir: Path, heuristic: Policy | None = None
) -> PolicyEvaluationCallback:
    """The periodic evaluations: against the DP where the model has one, else against the best tuned heuristic.

    ``heuristic``: that heuristic if already found (:func:`benchmark_heuristic`); found here otherwise.
    """
    if heuristic is None:
        heuristic = benchmark_heuristic(prepared)
    return PolicyEvaluationCallback(
        prepared.env,
        prepared.eval_freq,
        prepared.config.eval_episodes,
        PERIODIC_EVAL_SEED + prepared.config.seed,
        run_dir,
        obs_normalizer_getter=lambda: _vecnormalize(model.get_env()),
        benchmark=heuristic,
    )


def learn(
    model: BaseAlgorithm, timesteps: int, progress_bar: bool, callbacks: Sequence[BaseCallback], resume: bool
) -> bool:
    """Train for ``timesteps``; returns whether Ctrl-C or SIGTERM stopped it (what was learned stays in ``model``)."""
    try:
        model.learn(
            timesteps,
            callback=CallbackList([MarketMetricsCallback(), *callbacks]),
            progress_bar=progress_bar,
            reset_num_timesteps=not resume,
        )
    except KeyboardInterrupt:
        print("\ninterrupted: saving what has been learned")
        return True
    return False


def save_model(model: BaseAlgorithm, run_dir: Path) -> None:
    """Save the model and, if the env normalises, its statistics into the run folder, atomically (see run_folder)."""
    run_folder.save_model(model, run_dir)


def saved_model_objects(
    algo: str, hyperparams: dict[str, Any], observation_space: spaces.Space, action_space: spaces.Space
) -> dict[str, Any]:
    """The objects a saved model of this run pickles, rebuilt from its hyperparameters as :func:`model_on` builds them.

    See :func:`agents.run_folder.expected_objects`; bad hyperparameters raise :class:`RunFolderError`.
    """
    try:
        kwargs = algorithm_kwargs(algo, hyperparams, n_actions=int(np.prod(action_space.shape or (1,))))
    except ValueError as error:
        raise RunFolderError(f"the run's hyperparameters cannot build its model: {error}") from None
    policy = hyperparams.get("policy", "MlpPolicy")
    return run_folder.expected_objects(ALGORITHMS[algo], policy, kwargs, observation_space, action_space)


def load_model(
    algo: str,
    path: Path,
    hyperparams: dict[str, Any],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    **kwargs: Any,
) -> BaseAlgorithm:
    """A saved model of a run with these hyperparameters and spaces, loaded without unpickling anything.

    ``kwargs`` go to SB3's ``load`` (``env``, ``device``). Raises :class:`RunFolderError` for a missing, damaged or
    foreign file (see :func:`agents.run_folder.load_model`).
    """
    expected = saved_model_objects(algo, hyperparams, observation_space, action_space)
    return run_folder.load_model(path, ALGORITHMS[algo], expected, **kwargs)


def normalises_observations(hyperparams: dict[str, Any]) -> bool:
    """Whether a run with these hyperparameters normalised its observations (``VecNormalize`` with ``norm_obs``)."""
    normalize = hyperparams.get("normalize")
    if isinstance(normalize, dict):
        return bool(normalize.get("norm_obs", True))
    return bool(normalize)


def load_agents(run_dir: Path, device: str = "auto") -> tuple[list[SB3Policy], EnvConfig, dict]:
    """The saved final (and best, if any) agents of a run, with the run's model setup and configuration.

    Nothing is unpickled (see :mod:`agents.run_folder`). The env is the model recorded in ``config.yaml``
    (``params``), which wins over ``env_kwargs`` if the two disagree (:func:`run_env_kwargs`). Saved statistics are
    read if there, and must be there if the run normalised observations. Raises
    :class:`RunFolderError` (a ``ValueError``) with a one-line message if the folder cannot be used.
    """
    run_dir = Path(run_dir)
    saved = run_folder.read_config(run_dir, ALGORITHMS)
    if is_game_id(saved["env_id"]):
        raise RunFolderError(f"{run_dir} is a run of the competing market makers: load it with load_game_agent")
    env_kwargs, _ = run_env_kwargs(saved, run_dir)
    env = env_config(saved["env_id"], env_kwargs)
    hyperparams = saved.get("hyperparams") or {}
    label = saved["algo"].upper()
    agents = []
    for prefix, name in (("", f"{label} (final)"), ("best_", f"{label} (best evaluation)")):
        path = run_folder.model_path(run_dir, prefix)
        if not path.exists():
            continue
        shell = MarketMakingVecEnv(
            1, env.params, observation_features=env.features, normalize_actions=env.normalize_actions
        )
        model = load_model(saved["algo"], path, hyperparams, shell.observation_space, shell.action_space, device=device)
        # Statistics that are there are read (and checked) even where they change nothing (rewards only).
        normalizer = run_folder.read_statistics(run_dir, shell, prefix, required=normalises_observations(hyperparams))
        agents.append(SB3Policy(model, name, normalizer, env.normalize_actions, env.features))
    if not agents:
        raise RunFolderError(f"{run_dir} has no {run_folder.model_path(run_dir).name} (nor a best model)")
    return agents, env, saved


def _print_now(line: str) -> None:
    print(line, flush=True)


def final_comparison(
    run_dir: Path, episodes: int, seed: int, device: str = "auto", out_dir: Path | None = None
) -> tuple[list[PolicyReport], str | None]:
    """Compare the run's agents with the baselines of :func:`agents.evaluate.baseline_policies`.

    The DP optimum where it exists, the article's rule (published and tuned), the linear skew (tuned and the
    reference), the closed forms where they apply. Runs ``episodes`` common-random-number episodes, prints the
    table and writes it and the figures into ``out_dir`` (default: the run folder), each file atomically. Returns
    the rows and the benchmark heuristic's name where there is no DP.
    """
    out_dir = out_dir or run_dir
    agents, env, _ = load_agents(run_dir, device)
    params = env.params
    print("final comparison: tuning the article rule and the linear skew …", flush=True)
    baselines, benchmark = baseline_policies(params, strawmen=False)
    policies = [*agents, *baselines]
    print(f"final comparison: {len(policies)} policies on {episodes:,} common-random-number episodes", flush=True)
    rows = compare(policies, params, episodes, seed, benchmark=benchmark, progress=_print_now)
    table = markdown_table(rows, benchmark)
    print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}")
    with run_folder.staged_files(out_dir) as staging:  # write_report writes plain files: staged, then renamed
        write_report(rows, params, staging, {"episodes": episodes, "seed": seed}, benchmark)
    markov_agents = [agent for agent, row in zip(agents, rows, strict=False) if row.exact_return is not None]
    shown = [*baselines[:5], *markov_agents]
    run_folder.write_figure(policy_figure(shown, params), out_dir / "policies.png")
    history = episode_history(agents[0], params, seed)
    figure = episode_figure(history, title=f"{agents[0].name}, one episode (seed {seed})")
    run_folder.write_figure(figure, out_dir / "episode.png")
    print(f"wrote {out_dir / 'comparison.md'}, comparison.json, policies.png and episode.png")
    return rows, benchmark


def evaluate_saved_run(run_dir: Path, episodes: int | None, seed: int | None, device: str = "auto") -> Path:
    """``mm-env-train --evaluate``: the final comparison of a saved run again.

    With the run's own episode count and seed (the defaults) it reproduces the run's table in place; otherwise the
    new table goes into a subfolder, so the training-time comparison is kept. The model is the one recorded in
    ``config.yaml`` (``params``), which wins over ``env_kwargs`` if they disagree (a note says so). Raises
    :class:`RunFolderError` if the folder cannot be used.
    """
    run_dir = Path(run_dir)
    saved = run_folder.read_config(run_dir, ALGORITHMS)
    note = recorded_params_note(run_env_kwargs(saved, run_dir)[1])
    if note is not None:
        print(note)
    own_episodes, own_seed = saved.get("final_episodes") or 10_000, saved.get("seed") or 0
    episodes, seed = episodes or own_episodes, own_seed if seed is None else seed
    same = (episodes, seed) == (own_episodes, own_seed)
    out_dir = run_dir if same else run_dir / f"evaluation_seed{seed}_episodes{episodes}"
    from agents.game_training import game_comparison, is_game  # it builds on this module

    compare_run = game_comparison if is_game(saved["env_id"]) else final_comparison
    compare_run(run_dir, episodes, FINAL_EVAL_SEED + seed, device=device, out_dir=out_dir)
    return out_dir


def _log_summary(
    model: BaseAlgorithm, rows: list[PolicyReport], benchmark: str | None, saved: dict, run_name: str
) -> None:
    """The end of the run in TensorBoard: HParams (the settings actually run) and the comparison's short table.

    HParams' metrics are the last periodic evaluation's (that of the final model, exact where it can be): scalars
    with one point each would show as empty charts.
    """
    tag = "dp" if benchmark is None else "best_heuristic"
    metrics = {f"eval/exact_pct_of_{tag}": math.nan, f"eval/pct_of_{tag}": math.nan, "eval/mean_return": math.nan}
    model.logger.record("hparams", HParam(hparams_of(saved, run_name), metrics), exclude=NOT_IN_TEXT_LOGS)
    table = markdown_table(rows, benchmark, columns=COMPACT_COLUMNS)
    note = "\n\nAll columns (P&L, risk, inventory, fills, spread): comparison.md in the run folder."
    model.logger.record("comparison", table + note, exclude=NOT_IN_TEXT_LOGS)
    model.logger.dump(model.num_timesteps)
    model.logger.close()


def hparams_of(saved: dict[str, Any], run_name: str) -> dict[str, bool | int | float | str]:
    """A run's settings for TensorBoard's HParams: its name, budget actually run, hyperparameters, model parameters.

    ``Run`` repeats the run folder's name in a column of its own, first (HParams sorts names, capitals first, and
    shows the first five; its "Trial ID" column cuts long names short).
    ``n_timesteps`` of the hyperparameter file is replaced by the steps the run was given (``--timesteps`` wins over
    the file); lists and dicts become JSON text, as HParams takes only numbers, booleans and strings.
    """
    hyperparams = {key: value for key, value in saved["hyperparams"].items() if key not in ("n_timesteps", "n_envs")}
    settings = {
        "Run": run_name,
        "algo": saved["algo"],
        "seed": saved["seed"],
        "timesteps": saved["timesteps"],
        "n_envs": saved["n_envs"],
        **hyperparams,
        **{f"model/{key}": value for key, value in saved["params"].items()},
    }
    return {
        key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
        for key, value in settings.items()
    }
