"""The training pipeline, once for every market family: prepare, train, save, evaluate, continue, load.

``train.py`` (the main job), ``--evaluate``, ``--continue-from`` and the sweeps' trials all go through here; what
differs between markets (one market maker, competing market makers) is their family's
(:mod:`agents.training.family`), found from the run's env id (:func:`agents.training.families.family_of`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HParam, configure

from agents import TRAIN_COMMAND
from agents.storage import files, models, run_folder
from agents.storage.run_folder import RunFailed, RunFolderError
from agents.training.algorithm import learn, model_on
from agents.training.callbacks import NOT_IN_TEXT_LOGS, LogStdSchedule, PeriodicEvaluation
from agents.training.config import (
    FINAL_EVAL_SEED,
    PERIODIC_EVAL_SEED,
    PreparedRun,
    RunConfig,
    run_settings,
    size_problem,
    versions,
    with_entry_env_kwargs,
)
from agents.training.families import family_of
from agents.training.family import FinalReport, MarketFamily, recorded_params_note, saved_env_kwargs
from agents.training.hyperparameters import ALGORITHMS
from agents.training.interrupts import InterruptOnce
from agents.training.market import OneMarketMaker
from agents.training.tensorboard import close_logger, hparams_of, quiet_writer_threads, write_layout

if TYPE_CHECKING:  # the JAX backend imports JAX: only for --backend jax
    from agents.training.jax_backend import JaxPPOModel

    # A run's model: an SB3 algorithm, or PPO on JAX (--backend jax, agents.training.jax_backend).
    Model = BaseAlgorithm | JaxPPOModel


def prepare(config: RunConfig) -> PreparedRun:
    """Check every setting of a run; any problem raises ``ValueError`` with a message for the command line."""
    hyperparams, n_envs, timesteps, eval_freq = run_settings(config)
    config = with_entry_env_kwargs(config, hyperparams)
    family = family_of(config.env_id).from_env(config.env_id, config.env_kwargs)
    family.check_n_envs(n_envs)
    if config.backend == "jax" and not isinstance(family, OneMarketMaker):
        raise ValueError(
            f"--backend jax trains one market maker only (mm_env/MarketMaking-v0 and its presets), not {config.env_id}"
        )
    return PreparedRun(config, family, hyperparams, n_envs, timesteps, eval_freq)


def next_run_dir(log_dir: Path, algo: str, env_id: str) -> Path:
    """``runs/<algo>_<env>_<n>`` with ``n`` one more than any existing run of that name (never overwrites)."""
    return files.new_numbered_folder(log_dir, f"{algo}_{env_id.split('/')[-1].split(':')[-1]}")


def build_model(prepared: PreparedRun, continue_from: Path | None = None) -> Model:
    """The training env and the algorithm on it: new, or loaded from a saved run to continue it.

    With ``--backend jax``, a new :class:`~agents.training.jax_backend.JaxPPOModel` (a JAX run is not continued:
    :class:`RunFolderError`).
    """
    config, hyperparams = prepared.config, prepared.hyperparams
    if config.backend == "jax":
        if continue_from is not None:
            raise RunFolderError(f"{continue_from}: a JAX run cannot be continued; start a new run")
        from agents.training.jax_backend import build_jax_model

        family = prepared.family
        assert isinstance(family, OneMarketMaker)  # prepare() refuses the other families
        return build_jax_model(family.config, hyperparams, config.seed, config.seeds, prepared.timesteps)
    venv = prepared.family.make_env(prepared.n_envs, config.seed, hyperparams.get("normalize"))
    return model_on(venv, config.algo, hyperparams, config.seed, config.device, config.verbose, continue_from)


def start_run(prepared: PreparedRun, continue_from: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """A new run folder with its ``config.yaml``: every setting, the full model parameters and the versions."""
    config = prepared.config
    name = config.algo if config.backend == "sb3" else f"{config.algo}_{config.backend}"  # ppo_jax_…
    run_dir = next_run_dir(Path(config.log_dir), name, config.env_id)
    saved = {
        **asdict(config),
        "n_envs": prepared.n_envs,
        "timesteps": prepared.timesteps,
        "eval_freq": prepared.eval_freq,
        "hyperparams": prepared.hyperparams,
        "params": prepared.family.recorded_params(),
        "continue_from": str(continue_from) if continue_from else None,
        "versions": {**versions(), **_backend_versions(config.backend)},
    }
    run_folder.write_config(run_dir, saved)
    return run_dir, saved


def _backend_versions(backend: str) -> dict[str, str]:
    if backend != "jax":
        return {}
    from agents.training.jax_backend import jax_versions

    return jax_versions()


def train(prepared: PreparedRun, continue_from: Path | None = None) -> tuple[Path, bool]:
    """Train an agent, log to TensorBoard, save it, and compare it with its family's references.

    Returns the run folder and whether the run was interrupted (Ctrl-C or SIGTERM), during training (what was
    learned is saved, the comparison skipped) or during the final comparison (the model is saved). A problem with
    ``continue_from`` raises :class:`RunFolderError` before the run folder is made; any failure after it raises
    :class:`RunFailed`, with the model saved and the failure recorded in the folder (see :func:`conduct_run`).
    """
    config, family = prepared.config, prepared.family
    if continue_from is not None:
        note = run_folder.note_unfinished(continue_from)  # killed, interrupted or failed: say so
        if note is not None:
            print(f"{continue_from}: {note}")
    model = build_model(prepared, continue_from)
    family.prepare_reference()  # tuning or solving may take a while: before the run folder exists
    run_dir, saved = start_run(prepared, continue_from)

    def begin() -> PeriodicEvaluation:
        formats = ["tensorboard", "csv"] + (["stdout"] if config.verbose else [])
        model.set_logger(configure(str(run_dir), formats))
        seed = PERIODIC_EVAL_SEED + config.seed
        evaluation = family.periodic_evaluation(model, run_dir, prepared.eval_freq, config.eval_episodes, seed)
        write_layout(model.logger, family.layout())
        label = f" ({family.label})" if family.label else ""
        seeds = f", {config.seeds} seeds at once" if config.seeds > 1 else ""
        groups = min(config.seeds, int(prepared.hyperparams.get("seed_groups") or 1))
        seeds += f" in {groups} groups side by side" if groups > 1 else ""
        on = " (JAX)" if config.backend == "jax" else ""
        print(
            f"training {config.algo.upper()}{on} on {config.env_id}{label} for {prepared.timesteps:,} steps "
            f"({prepared.n_envs} envs{seeds}); run: {run_dir}"
        )
        return evaluation

    def compare() -> None:
        agents = family.load_agents(run_dir, saved, config.device)
        report = family.final_comparison(agents, config.final_episodes, FINAL_EVAL_SEED + config.seed, run_dir)
        log_summary(model, report, saved, run_dir.name)

    return conduct_run(
        model, run_dir, begin, compare, prepared.timesteps, prepared.hyperparams, config.progress_bar, continue_from
    )


def log_summary(model: Model, report: FinalReport, saved: dict[str, Any], run_name: str) -> None:
    """The end of the run in TensorBoard: HParams (the settings actually run) and the comparison's short table.

    HParams' metrics are the last periodic evaluation's (that of the final model, exact where it can be): scalars
    with one point each would show as empty charts.
    """
    metrics = dict.fromkeys(report.metrics, math.nan)
    model.logger.record("hparams", HParam(hparams_of(saved, run_name), metrics), exclude=NOT_IN_TEXT_LOGS)
    model.logger.record("comparison", report.table, exclude=NOT_IN_TEXT_LOGS)
    model.logger.dump(model.num_timesteps)
    model.logger.close()


def training_callbacks(hyperparams: dict[str, Any]) -> list[BaseCallback]:
    """The callbacks that a hyperparameter entry asks for besides the logging and evaluations (``log_std_schedule``)."""
    if hyperparams.get("log_std_schedule") is not None:
        return [LogStdSchedule(*hyperparams["log_std_schedule"])]
    return []


def conduct_run(
    model: Model,
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
    ``hyperparams`` asks for, :func:`training_callbacks`; a JAX model runs its own chunks and schedules), is saved,
    evaluated once more and ``compare`` runs the final comparison. The first Ctrl-C or SIGTERM stops the run and
    later ones wait (:class:`~agents.training.interrupts.InterruptOnce`): while it learns (or sets up), what was
    learned is saved, the run marked interrupted and ``(run_dir, True)`` returned; after that, the model is saved all
    the same, the run marked interrupted and the way to redo the comparison printed. Any exception saves the model as
    it is, writes the traceback to ``error.log``, marks the run failed and raises :class:`RunFailed`.
    """
    evaluation: PeriodicEvaluation | None = None
    model_saved, stage = False, "training"
    with InterruptOnce() as signals, quiet_writer_threads():
        try:
            run_folder.write_status(run_dir, "running", model.num_timesteps)
            try:
                evaluation = begin()
                if isinstance(model, BaseAlgorithm):
                    resume = continue_from is not None
                    callbacks = [evaluation, *training_callbacks(hyperparams)]
                    interrupted = learn(model, timesteps, progress_bar, callbacks, resume)
                else:  # PPO on JAX: chunks of updates, the evaluation between them
                    interrupted = model.train_for(evaluation, timesteps, progress_bar)
            except KeyboardInterrupt:  # during the set-up
                print("\ninterrupted: saving what has been learned")
                interrupted = True
            if interrupted:  # later signals only print a note: the save below is finished
                models.save_model(model, run_dir)
                model_saved = True
                _write_evaluations(run_dir, evaluation)
                run_folder.write_status(run_dir, "interrupted", model.num_timesteps, "interrupted during training")
                close_logger(getattr(model, "_logger", None))
                print(
                    f"saved {models.saved_model_path(run_dir)}; compare it with: {TRAIN_COMMAND} --evaluate {run_dir}"
                )
                return run_dir, True
            try:
                models.save_model(model, run_dir)  # atomic: a signal during it leaves no half-written file
                model_saved, stage = True, "the final comparison"
                # Should the process be killed from here on, the folder tells which model it left.
                run_folder.write_status(run_dir, "running", model.num_timesteps, model_timesteps=model.num_timesteps)
                assert evaluation is not None
                evaluation.evaluate()  # the final model, logged like the periodic evaluations
                _write_evaluations(run_dir, evaluation)
                compare()
            except KeyboardInterrupt:
                if not model_saved:
                    models.save_model(model, run_dir)
                    model_saved = True
                _write_evaluations(run_dir, evaluation)
                message = "interrupted during the final comparison"
                run_folder.write_status(run_dir, "interrupted", model.num_timesteps, message)
                close_logger(getattr(model, "_logger", None))
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
    model: Model,
    run_dir: Path,
    evaluation: PeriodicEvaluation | None,
    model_saved: bool,
    error: Exception,
    stage: str,
) -> RunFailed:
    """Save what exists (the model, the evaluations so far) and mark the run failed; never raises itself.

    First the logger is closed, if the run got as far as setting it up (TensorBoard's writer flushed and its thread
    ended; its own errors ignored; SB3's ``model.logger`` raises until ``set_logger`` has run), so that
    nothing writes behind this; each save that fails (a full disk) removes its temporary file, leaving the room to
    the next, and the small ``run_status.json`` has a last resort (:func:`agents.storage.run_folder.write_status`).
    """
    close_logger(getattr(model, "_logger", None))
    if not model_saved:
        try:
            models.save_model(model, run_dir)
            model_saved = True
        except Exception:  # e.g. the disk is full: the failure is still recorded and reported
            pass
    with contextlib.suppress(Exception):
        _write_evaluations(run_dir, evaluation)
    log, status_written = run_folder.record_failure(run_dir, error, model.num_timesteps)
    return RunFailed(run_dir, error, model.num_timesteps, model_saved, log, stage, status_written)


def saved_run(run_dir: Path) -> tuple[MarketFamily, dict[str, Any], dict[str, Any], list[str]]:
    """A saved run's market, its settings, the env keywords that rebuild its market, and the parameters that needed it.

    The market is the one ``config.yaml`` records (``params``), which wins over ``env_kwargs`` if the two disagree
    (:func:`agents.training.family.saved_env_kwargs`). Raises :class:`RunFolderError` (a ``ValueError``) with a
    one-line message if the folder cannot be used.
    """
    run_dir = Path(run_dir)
    path = run_dir / run_folder.CONFIG_FILE
    saved = run_folder.read_config(run_dir, ALGORITHMS)
    try:
        family_type = family_of(saved["env_id"])
        try:
            family, env_kwargs, differences = saved_env_kwargs(family_type, saved, run_dir)
        except TypeError as error:  # a value of a type the market's code does not take
            raise ValueError(f"env_kwargs or params cannot build the env: {error}") from None
        check_saved_settings(saved, env_kwargs)
    except RunFolderError:
        raise
    except (TypeError, ValueError) as error:
        raise RunFolderError(f"{path}: {error}") from None
    return family, saved, env_kwargs, differences


def check_saved_settings(saved: dict[str, Any], env_kwargs: dict[str, Any]) -> PreparedRun:
    """Check the settings ``config.yaml`` records exactly as the same settings given on the command line are.

    The run's configuration goes through :func:`prepare` and :func:`~agents.training.config.size_problem`, as a new
    run's does: algorithm, hyperparameters, counts, seed, episode counts, market, number of envs. The recorded
    ``device`` must be a device torch can name, but need not be on this machine: evaluating and continuing use the
    command line's, so a run trained on a GPU can be evaluated on a CPU. ``ValueError`` naming the value.
    """
    device = saved.get("device", "auto")
    try:
        if device != "auto":
            torch.device(device)
    except RuntimeError:
        shown = run_folder.shown(device)
        raise ValueError(f"device={shown} is invalid: not a torch device such as cpu or cuda") from None
    fields = {name: saved[name] for name in RunConfig.__dataclass_fields__ if saved.get(name) is not None}
    config = RunConfig(**{**fields, "env_kwargs": env_kwargs, "hyperparams_complete": True, "device": "auto"})
    prepared = prepare(config)
    problem = size_problem(prepared)
    if problem is not None:
        raise ValueError(problem)
    return prepared


def load_agents(run_dir: Path, device: str = "auto") -> tuple[list[Any], MarketFamily, dict[str, Any]]:
    """The saved agents of a run as policies of its family, with the run's market and settings.

    One market maker: the final model and, if kept, the best evaluation's (:class:`agents.policies.learned.SB3Policy`);
    competing market makers: the final model as a joint policy (:class:`~agents.policies.learned.LearnedJointPolicy`).
    Nothing is unpickled (see :mod:`agents.storage.models`). Saved statistics are read if there, and must be there if
    the run normalised observations. Raises :class:`RunFolderError` if the folder cannot be used.
    """
    run_dir = Path(run_dir)
    family, saved, _, _ = saved_run(run_dir)
    return family.load_agents(run_dir, saved, device), family, saved


def evaluate_saved_run(run_dir: Path, episodes: int | None, seed: int | None, device: str = "auto") -> Path:
    """``mm-env-train --evaluate``: the final comparison of a saved run again.

    With the run's own episode count and seed (the defaults) it reproduces the run's table in place; otherwise the
    new table goes into a subfolder, so the training-time comparison is kept. The market is the one recorded in
    ``config.yaml``, which wins over ``env_kwargs`` if they disagree (a note says so). Raises
    :class:`RunFolderError` if the folder cannot be used.
    """
    run_dir = Path(run_dir)
    family, saved, _, differences = saved_run(run_dir)
    note = recorded_params_note(differences)
    if note is not None:
        print(note)
    own_episodes, own_seed = saved.get("final_episodes") or 10_000, saved.get("seed") or 0
    episodes, seed = episodes or own_episodes, own_seed if seed is None else seed
    same = (episodes, seed) == (own_episodes, own_seed)
    out_dir = run_dir if same else run_dir / f"evaluation_seed{seed}_episodes{episodes}"
    agents = family.load_agents(run_dir, saved, device)
    family.final_comparison(agents, episodes, FINAL_EVAL_SEED + seed, out_dir)
    return out_dir


def continued_config(source: Path, **changes: Any) -> RunConfig:
    """The configuration of a saved run, to continue training it (with ``changes`` to the run-level settings).

    Its market is the one its ``config.yaml`` records (see :func:`saved_run`). Raises :class:`RunFolderError` (a
    ``ValueError``) if ``config.yaml`` cannot be used.
    """
    _, saved, env_kwargs, differences = saved_run(source)
    fields = {name: saved[name] for name in RunConfig.__dataclass_fields__ if name in saved}
    fields["env_kwargs"] = env_kwargs
    note = recorded_params_note(differences)
    if note is not None:
        print(note)
    return RunConfig(**{**fields, "hyperparams_complete": True, **changes})
