"""A sweep's runs on disk: the finished run of each trial, checked against the sweep's settings, and its figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.storage.run_folder import (
    COMPARISON_LIMITS,
    CONFIG_LIMITS,
    STATUS_FILE,
    RunFolderError,
    describe_status,
    note_unfinished,
    read_run_file,
    read_status,
)
from agents.sweep.spec import SETTINGS_COMPARED, SweepSpec, TrialKey, trial_dir
from agents.training.config import PreparedRun
from agents.training.families import family_of
from agents.training.family import RunMetrics


@dataclass(frozen=True)
class TrialOutcome:
    """A planned trial, with its finished run if there is one, or the error it failed with."""

    key: TrialKey
    run_dir: Path | None = None
    metrics: RunMetrics | None = None
    error: str | None = None


def read_metrics(run_dir: Path, algo: str) -> RunMetrics:
    """The agent's figures in a run's ``comparison.json``, read by the run's market family.

    ``ValueError`` if the run has no usable comparison.
    """
    env_id = _saved_config(Path(run_dir)).get("env_id")
    if not isinstance(env_id, str):
        raise RunFolderError(f"{run_dir}/config.yaml: env_id={env_id!r} is not an environment id")
    payload = read_run_file(Path(run_dir) / "comparison.json", COMPARISON_LIMITS)
    if not isinstance(payload, dict):
        raise RunFolderError(f"{run_dir}/comparison.json is not a mapping")
    family = family_of(env_id)
    try:
        return family.run_metrics(payload, algo)
    except ValueError as error:  # the message names comparison.json: say whose
        raise ValueError(f"{run_dir}/{error}") from None


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


def unfinished_attempts(keys: Sequence[TrialKey], sweep_dir: Path) -> list[str]:
    """For each pending trial with an earlier attempt, one line saying how its latest attempt ended.

    A killed attempt (its ``run_status.json`` says running, but its process is gone: a sweep stopped by SIGKILL, a
    machine that went down) is not finished: it runs again, in a new run folder, like an interrupted or failed one.
    Its leftover temporary files are removed (:func:`agents.storage.run_folder.note_unfinished`).
    """
    lines = []
    for key in keys:
        attempts = [path for path in trial_dir(sweep_dir, key).glob(f"{key.algo}_*") if path.is_dir()]
        if not attempts:
            continue
        latest = max(attempts, key=lambda path: (_number(path), path.name))
        note = note_unfinished(latest) or describe_status(latest)
        lines.append(f"{key.cell} {key.algo} seed {key.seed}: {latest}: {note}; running it again")
    return lines


def _number(run_dir: Path) -> int:
    suffix = run_dir.name.rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def expected_settings(prepared: PreparedRun) -> dict[str, Any]:
    """The settings a run's ``config.yaml`` records, as :func:`agents.training.experiment.start_run` writes them."""
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
    saved = _saved_config(run_dir)
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


def _saved_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as a mapping, read within its limits (:class:`RunFolderError` if it is not one)."""
    saved = read_run_file(run_dir / "config.yaml", CONFIG_LIMITS)
    if not isinstance(saved, dict):
        raise RunFolderError(f"{run_dir}/config.yaml is not a mapping")
    return saved
