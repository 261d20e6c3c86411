"""A run folder: its file names, the settings it records (``config.yaml``), its status and its failures.

**Writing.** Every file of a run is written atomically (:mod:`agents.storage.files`): it holds either its previous
complete version or its new complete version, whatever happens meanwhile. TensorBoard's event files and SB3's
``progress.csv`` are append-only streams and are left as they are. (:mod:`agents.training.interrupts` makes a save,
once started, finish despite a second Ctrl-C.)

**Reading.** Nothing in a run folder is unpickled, because unpickling a file runs whatever code it names: the model
and its statistics are read by :mod:`agents.storage.models`; ``config.yaml`` is read with ``yaml.safe_load`` and
checked (:func:`read_config`). Each problem with a folder raises :class:`RunFolderError` with a one-line message.

**Status.** ``run_status.json`` says where a run stands: ``{"status": "running" | "finished" | "interrupted" |
"failed", "error": ..., "timesteps": n}``, rewritten atomically at each transition (:func:`write_status`); a failed
run also holds its traceback in ``error.log`` (:func:`record_failure`).
"""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from agents import TRAIN_COMMAND
from agents.storage.files import atomic_write_text, write_json

CONFIG_FILE = "config.yaml"
STATUS_FILE = "run_status.json"
ERROR_LOG = "error.log"
EVALUATIONS_FILE = "evaluations.json"
MODEL_FILE = "model.zip"
STATISTICS_FILE = "vecnormalize.json"
PICKLED_STATISTICS_FILE = "vecnormalize.pkl"  # what runs wrote before; refused, never loaded
STATUSES = ("running", "finished", "interrupted", "failed")
"""The states a run folder's ``run_status.json`` can record."""
SAFE_LOADING_HELP = "docs/run-folders.md, 'Loading run folders safely'"


class RunFolderError(ValueError):
    """A run folder that cannot be used: damaged, incomplete, or holding what we refuse to load (one-line message)."""


class RunFailed(Exception):
    """Training failed after its run folder existed; what could be saved is saved there and the failure recorded.

    Attributes:
        run_dir: the run folder.
        error: the exception the run failed with.
        timesteps: the model's step count when it failed.
        model_saved: whether ``model.zip`` holds the model as it was then.
        log: the traceback file in the run folder (``None`` if it could not be written).
        stage: ``"training"``, or ``"the final comparison"`` (then the model was complete and saved before).
    """

    def __init__(
        self,
        run_dir: Path,
        error: BaseException,
        timesteps: int,
        model_saved: bool,
        log: Path | None,
        stage: str = "training",
    ):
        self.run_dir, self.error, self.timesteps = run_dir, error, timesteps
        self.model_saved, self.log, self.stage = model_saved, log, stage
        super().__init__(self.message())

    def message(self) -> str:
        """One line: what failed, and what the run folder holds."""
        saved = f"the model as it was is in {self.run_dir / MODEL_FILE}" if self.model_saved else "no model was saved"
        where = f"the traceback is in {self.log}" if self.log is not None else "the folder could not record it"
        redo = f"; redo it with: {TRAIN_COMMAND} --evaluate {self.run_dir}" if self.stage != "training" else ""
        return (
            f"{self.stage} failed at step {self.timesteps:,}: {one_line(self.error)}{failure_hint(self.error)}; "
            f"run folder {self.run_dir}: {saved}, {where}{redo}"
        )


def one_line(error: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, shortened: for messages that must stay on one line."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0].rstrip(': ')}" if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_hint(error: BaseException) -> str:
    """A hint for the failures whose cause the message hides (a diverged network shows only a tensor of NaNs)."""
    text = str(error).lower()
    if "nan" in text.replace(",", " ").replace("[", " ").split() or "invalid values" in text:
        return " (the network's outputs became NaN: training diverged; check the hyperparameters)"
    return ""


# ---------------------------------------------------------------------------------------------------------------------
# The status of a run


def write_status(run_dir: Path, status: str, timesteps: int, error: str | None = None) -> None:
    """Record where the run stands in ``run_status.json`` (atomically): one of :data:`STATUSES`."""
    if status not in STATUSES:
        raise ValueError(f"status={status!r} is not one of {STATUSES}")
    write_json(Path(run_dir) / STATUS_FILE, {"status": status, "error": error, "timesteps": int(timesteps)})


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``run_status.json``, or ``None`` if it has none (runs from before it existed) or it is unreadable."""
    try:
        status = json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def record_failure(run_dir: Path, error: BaseException, timesteps: int) -> Path | None:
    """Write the traceback to ``error.log`` and mark the run failed; returns the log (``None`` if it was not written).

    Never raises: it runs while handling a failure, perhaps on a full disk.
    """
    log = Path(run_dir) / ERROR_LOG
    written = True
    try:
        atomic_write_text(log, "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    except Exception:
        written = False
    with contextlib.suppress(Exception):
        write_status(run_dir, "failed", timesteps, one_line(error))
    return log if written else None


# ---------------------------------------------------------------------------------------------------------------------
# config.yaml and evaluations.json

_MAPPINGS = ("env_kwargs", "hyperparams", "params")
_COUNTS = ("seed", "n_envs", "timesteps", "eval_freq", "eval_episodes", "final_episodes")


def write_config(run_dir: Path, saved: dict[str, Any]) -> None:
    """Write the run's settings as ``config.yaml`` (atomically)."""
    atomic_write_text(Path(run_dir) / CONFIG_FILE, yaml.safe_dump(saved, sort_keys=False))


def read_config(run_dir: Path, algorithms: Collection[str]) -> dict[str, Any]:
    """The settings recorded in a run's ``config.yaml``, checked; :class:`RunFolderError` if it cannot be used.

    Read with ``yaml.safe_load`` (plain data only). Checked: a non-empty mapping, ``algo`` one of ``algorithms``, a
    string ``env_id``, mappings where mappings belong, non-negative integers where counts belong.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise RunFolderError(f"{path} cannot be read: {one_line(error)}") from None
    if not isinstance(saved, dict) or not saved:
        raise RunFolderError(f"{path} is empty or not a mapping of settings")
    algo = saved.get("algo")
    if algo not in algorithms:
        raise RunFolderError(f"{path}: algo={algo!r} is not one of {sorted(algorithms)}")
    if not isinstance(saved.get("env_id"), str) or not saved["env_id"]:
        raise RunFolderError(f"{path}: env_id={saved.get('env_id')!r} is not an environment id")
    for key in _MAPPINGS:
        if saved.get(key) is not None and not isinstance(saved[key], dict):
            raise RunFolderError(f"{path}: {key} must be a mapping, not {saved[key]!r}")
    for key in _COUNTS:
        value = saved.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise RunFolderError(f"{path}: {key}={value!r} is not a non-negative integer")
    return saved


def write_evaluations(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Write the periodic evaluations as ``evaluations.json`` (atomically)."""
    write_json(Path(run_dir) / EVALUATIONS_FILE, history)
