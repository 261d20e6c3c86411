"""A run folder: its file names, the settings it records (``config.yaml``), its status and its failures.

**Writing.** Every file of a run is written atomically (:mod:`agents.storage.files`): it holds either its previous
complete version or its new complete version, whatever happens meanwhile. TensorBoard's event files and SB3's
``progress.csv`` are append-only streams and are left as they are. (:mod:`agents.training.interrupts` makes a save,
once started, finish despite a second Ctrl-C.)

**Reading.** Nothing in a run folder is unpickled, because unpickling a file runs whatever code it names: the model
and its statistics are read by :mod:`agents.storage.models`; ``config.yaml`` is read with ``yaml.safe_load`` and
checked (:func:`read_config`). Each problem with a folder raises :class:`RunFolderError` with a one-line message.

**Status.** ``run_status.json`` says where a run stands: ``{"status": "running" | "finished" | "interrupted" |
"failed", "error": ..., "timesteps": n}``, rewritten at each transition (:func:`write_status`); while running it also
records the process (id, host, start time), so that a run whose process was killed is told from one still going
(:func:`describe_status`). A failed run also holds its traceback in ``error.log`` (:func:`record_failure`).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
import traceback
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from agents import TRAIN_COMMAND
from agents.storage.files import (
    DataLimits,
    atomic_write_text,
    overwrite_in_place,
    read_data_file,
    remove_temporaries,
    shown,
    write_json,
)

CONFIG_FILE = "config.yaml"
STATUS_FILE = "run_status.json"
ERROR_LOG = "error.log"
EVALUATIONS_FILE = "evaluations.json"
MODEL_FILE = "model.zip"
ARRAYS_MODEL_FILE = "model.npz"
"""A JAX run's model: its parameters as named arrays (with ``model.json``, its hyperparameters)."""
STATISTICS_FILE = "vecnormalize.json"
PICKLED_STATISTICS_FILE = "vecnormalize.pkl"  # what runs wrote before; refused, never loaded
STATUSES = ("running", "finished", "interrupted", "failed")
"""The states a run folder's ``run_status.json`` can record."""
SAFE_LOADING_HELP = "docs/run-folders.md, 'Loading run folders safely'"


MESSAGE_LIMIT = 400
"""The most characters of a :class:`RunFolderError`'s message, whatever the folder's files hold."""


class RunFolderError(ValueError):
    """A run folder that cannot be used: damaged, incomplete, or holding what we refuse to load (one-line message).

    The message is made one line (runs of white space become one space) and cut at :data:`MESSAGE_LIMIT` characters.
    """

    def __init__(self, message: object):
        text = " ".join(str(message).split())
        super().__init__(text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…")


class RunFailed(Exception):
    """Training failed after its run folder existed; what could be saved is saved there and the failure recorded.

    Attributes:
        run_dir: the run folder.
        error: the exception the run failed with.
        timesteps: the model's step count when it failed.
        model_saved: whether ``model.zip`` holds the model as it was then.
        log: the traceback file in the run folder (``None`` if it could not be written).
        stage: ``"training"``, or ``"the final comparison"`` (then the model was complete and saved before).
        status_written: whether ``run_status.json`` says "failed" (it could not be written, on a full disk say).
    """

    def __init__(
        self,
        run_dir: Path,
        error: BaseException,
        timesteps: int,
        model_saved: bool,
        log: Path | None,
        stage: str = "training",
        status_written: bool = True,
    ):
        self.run_dir, self.error, self.timesteps = run_dir, error, timesteps
        self.model_saved, self.log, self.stage, self.status_written = model_saved, log, stage, status_written
        super().__init__(self.message())

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields when unpickled (a sweep's trial hands its failure to the driver this way).
        fields = (self.run_dir, self.error, self.timesteps, self.model_saved, self.log, self.stage, self.status_written)
        return type(self), fields

    def message(self) -> str:
        """One line: what failed, and what the run folder holds."""
        name = ARRAYS_MODEL_FILE if (Path(self.run_dir) / ARRAYS_MODEL_FILE).is_file() else MODEL_FILE
        saved = f"the model as it was is in {self.run_dir / name}" if self.model_saved else "no model was saved"
        where = f"the traceback is in {self.log}" if self.log is not None else f"no {ERROR_LOG} could be written"
        if not self.status_written:
            where += f", and {STATUS_FILE} could not be updated (it may still say running)"
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


STATUS_LIMIT = 65_536
"""The most bytes of ``run_status.json`` read (it holds a few hundred): a larger file is treated as unreadable."""


def write_status(
    run_dir: Path, status: str, timesteps: int, error: str | None = None, model_timesteps: int | None = None
) -> None:
    """Record where the run stands in ``run_status.json``: one of :data:`STATUSES`.

    ``running`` also records this process (:func:`this_process`), so that a later reader can tell a run still going
    from one whose process was killed (:func:`describe_status`), and ``model_timesteps``, the steps of the model
    ``model.zip`` holds once it is saved. Written atomically; if that fails (a full disk has no room for the
    temporary file), the existing file is overwritten in place as a last resort
    (:func:`~agents.storage.files.overwrite_in_place`); ``OSError`` if both fail.
    """
    if status not in STATUSES:
        raise ValueError(f"status={status!r} is not one of {STATUSES}")
    record: dict[str, Any] = {"status": status, "error": error, "timesteps": int(timesteps)}
    if status == "running":
        record["process"] = this_process()
        if model_timesteps is not None:
            record["model_timesteps"] = int(model_timesteps)
    path = Path(run_dir) / STATUS_FILE
    try:
        write_json(path, record)
    except OSError:
        overwrite_in_place(path, json.dumps(record, indent=2).encode("utf-8"))


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``run_status.json``, or ``None`` if it has none (runs from before it existed) or it is unreadable.

    At most :data:`STATUS_LIMIT` bytes, 1,000 values and 8 levels of nesting are read
    (:func:`~agents.storage.files.read_data_file`); a larger, malformed or more deeply nested file is unreadable.
    """
    try:
        status = read_data_file(Path(run_dir) / STATUS_FILE, DataLimits(bytes=STATUS_LIMIT, values=1_000, depth=8))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def this_process() -> dict[str, Any]:
    """What identifies this process for :func:`process_alive`: its id, host, boot, PID namespace and start time.

    ``start_ticks`` (the start time in clock ticks since boot, from ``/proc/<pid>/stat``), ``boot_id`` and
    ``pid_namespace`` where the system has them (Linux), so that a later process given the same id is not mistaken
    for this one, nor a process id of another container for one of this; ``started`` (the wall time, ISO 8601) for
    people, and the only start time elsewhere.
    """
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid_namespace": _pid_namespace(),
        "start_ticks": _start_ticks(pid),
        "started": datetime.datetime.fromtimestamp(_start_time(), datetime.timezone.utc)
        .astimezone()
        .isoformat(timespec="seconds"),
    }


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    """This process's PID namespace (``pid:[4026531836]``), where the system names it (Linux), else ``None``."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):
        return None


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (after the command name, which may hold spaces and parentheses)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _start_time() -> float:
    """This process's start as a Unix time: from ``/proc`` where there is one, else now (the run's start)."""
    ticks = _start_ticks(os.getpid())
    try:
        if ticks is not None:
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return time.time()


MAX_PID = 2**31 - 1
"""The largest process id any system gives (``pid_t`` is a 32-bit integer)."""


def _valid_pid(pid: Any) -> TypeGuard[int]:
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= MAX_PID


def process_alive(process: dict[str, Any]) -> bool | None:
    """Whether the process that :func:`this_process` described is still running: ``None`` if this machine cannot tell.

    ``False`` only when it is certain the process is gone, since a killed run's temporary files are then removed.
    It cannot tell for a process on another host or in another PID namespace (another container on this host, whose
    process ids are not this one's; a record without its namespace counts as another, where the system has them),
    nor when the process with that id cannot be examined (``/proc`` mounted with ``hidepid``, another user's
    process). Gone if the machine has booted since (another ``boot_id``), if no process has the id, or if the
    process with that id started at another time (the id was reused); alive if it started at the recorded time or,
    where the system records no start time, if a process with the id exists.
    """
    pid = process.get("pid")
    if not _valid_pid(pid):
        return None
    if process.get("host") != socket.gethostname() or process.get("pid_namespace") != _pid_namespace():
        return None
    boot_id = _boot_id()
    if process.get("boot_id") is not None and boot_id is not None and process["boot_id"] != boot_id:
        return False
    recorded = process.get("start_ticks")
    if recorded is not None:
        ticks = _start_ticks(pid)
        if ticks is not None:
            return ticks == recorded
    exists = _pid_exists(pid)
    return None if exists and recorded is not None else exists  # exists, but its start time cannot be read


def _pid_exists(pid: int) -> bool | None:
    """Whether a process has the id ``pid`` in this PID namespace; ``None`` if another user's may (no permission)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return None
    return True


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _steps(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def describe_status(run_dir: Path) -> str:
    """One line saying where the run stands, from its ``run_status.json`` and, for a running one, its process.

    A run marked ``running`` whose process is gone (:func:`process_alive`) is described as killed, with what it left:
    the model ``model.zip`` holds (saved before the final comparison), or ``best_model.zip`` (the best periodic
    evaluation's), or none. A ``running`` status that records no process (written before processes were recorded)
    reads "running or killed (no process recorded)"; one whose record is not a mapping with a valid process id,
    "running or killed (its process record is unreadable)". Every value quoted from the file is shortened
    (:func:`~agents.storage.files.shown`), so the line stays short whatever the file holds.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None:
        return f"no readable {STATUS_FILE}"
    state, steps, error = status.get("status"), _steps(status.get("timesteps")), status.get("error")
    if state == "finished":
        return f"finished at step {steps}"
    if state in ("interrupted", "failed"):
        return f"{state} at step {steps}" + (f": {_cut(' '.join(str(error).split()), 300)}" if error else "")
    if state != "running":
        return f"{STATUS_FILE} holds an unknown status {shown(state)}"
    process = status.get("process")
    if process is None:
        return "running or killed (no process recorded)"
    if not isinstance(process, dict) or not _valid_pid(process.get("pid")):
        return "running or killed (its process record is unreadable)"
    who = f"pid {process['pid']} on {shown(process.get('host'))}, started {shown(process.get('started'))}"
    alive = process_alive(process)
    if alive is None:
        return f"running or killed: its process ({who}) is not one this machine can check"
    if alive:
        return f"running (the process that runs it, {who}, is alive)"
    return f"killed: the process that ran it ({who}) is gone: the run was killed or the machine stopped; " + _left(
        run_dir, status
    )


def _left(run_dir: Path, status: dict[str, Any]) -> str:
    """What a killed run left: which model, saved at which step."""
    for name in (MODEL_FILE, ARRAYS_MODEL_FILE):
        if (run_dir / name).is_file():
            steps = status.get("model_timesteps")
            at = f" at step {_steps(steps)}" if steps is not None else ""
            return f"the model is the last one saved{at} ({name}, before the final comparison)"
    for name in (MODEL_FILE, ARRAYS_MODEL_FILE):
        if (run_dir / f"best_{name}").is_file():
            return f"no final model was saved; best_{name} holds the best periodic evaluation's model"
    return "no model was saved"


def was_killed(run_dir: Path) -> bool:
    """Whether the run is marked ``running`` but the process that ran it is gone (see :func:`describe_status`)."""
    status = read_status(run_dir) or {}
    process = status.get("process")
    return status.get("status") == "running" and isinstance(process, dict) and process_alive(process) is False


def note_unfinished(run_dir: Path) -> str | None:
    """For a run about to be used (evaluated, continued): the description of its status unless it finished.

    ``None`` for a finished run or one with no ``run_status.json``. A killed run's leftover temporary files (from a
    write its death cut short) are removed on the way (:func:`~agents.storage.files.remove_temporaries`): no live
    process writes there any more.
    """
    status = read_status(run_dir)
    if status is None or status.get("status") == "finished":
        return None
    if was_killed(run_dir):
        remove_temporaries(run_dir)
    return describe_status(run_dir)


def record_failure(run_dir: Path, error: BaseException, timesteps: int) -> tuple[Path | None, bool]:
    """Mark the run failed, then write the traceback to ``error.log``; return the log and whether the status is written.

    The log is ``None`` if it could not be written. Never raises: it runs while handling a failure, perhaps on a full
    disk. The status, a few hundred bytes, goes first and has a last resort (:func:`write_status`); the traceback may
    need more room than is left.
    """
    status_written = True
    try:
        write_status(run_dir, "failed", timesteps, one_line(error))
    except Exception:
        status_written = False
    log = Path(run_dir) / ERROR_LOG
    try:
        atomic_write_text(log, "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    except Exception:
        return None, status_written
    return log, status_written


# ---------------------------------------------------------------------------------------------------------------------
# config.yaml and evaluations.json

CONFIG_LIMITS = DataLimits(bytes=256 * 1024, values=10_000, depth=32)
"""The most of ``config.yaml`` read: 256 KiB (a run writes about 1.5 KiB), 10,000 values with YAML's aliases
expanded, 32 levels of nesting."""
COMPARISON_LIMITS = DataLimits(bytes=4 * 1024**2, values=100_000, depth=32)
"""The most of ``comparison.json`` read (a run writes about 6 KiB)."""

# The type of every setting config.yaml records (a missing or null one is left to the defaults); the values are then
# checked as the command line's are (agents.training.experiment.saved_run).
_TYPES: dict[str, tuple[type, ...]] = {
    "algo": (str,),
    "env_id": (str,),
    "env_kwargs": (dict,),
    "hyperparams": (dict,),
    "params": (dict,),
    "versions": (dict,),
    "seed": (int,),
    "n_envs": (int,),
    "timesteps": (int,),
    "eval_freq": (int,),
    "eval_episodes": (int,),
    "final_episodes": (int,),
    "verbose": (int,),
    "device": (str,),
    "log_dir": (str,),
    "continue_from": (str,),
    "hyperparams_complete": (bool,),
    "progress_bar": (bool,),
    "backend": (str,),
    "seeds": (int,),
}
_TYPE_NAMES = {str: "a string", dict: "a mapping", int: "an integer", bool: "true or false"}
_KEYWORD_MAPPINGS = ("env_kwargs", "hyperparams", "params")  # keyword arguments: their keys must be names


def write_config(run_dir: Path, saved: dict[str, Any]) -> None:
    """Write the run's settings as ``config.yaml`` (atomically)."""
    atomic_write_text(Path(run_dir) / CONFIG_FILE, yaml.safe_dump(saved, sort_keys=False))


def read_run_file(path: Path, limits: DataLimits) -> Any:
    """The plain data of a JSON or YAML file of a run folder, read within ``limits``; :class:`RunFolderError` if not.

    See :func:`agents.storage.files.read_data_file`: the size is checked before reading, YAML is read as
    ``yaml.safe_load`` reads it with aliases counted as expanded, and the number of values and the depth are bounded.
    """
    path = Path(path)
    try:
        return read_data_file(path, limits)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise RunFolderError(f"{path} cannot be read: {reason}") from None


def read_config(run_dir: Path, algorithms: Collection[str]) -> dict[str, Any]:
    """The settings recorded in a run's ``config.yaml``, checked; :class:`RunFolderError` if it cannot be used.

    Read within :data:`CONFIG_LIMITS` (:func:`read_run_file`), as plain data only. Checked here: a non-empty mapping,
    ``algo`` one of ``algorithms``, a non-empty ``env_id``, the type of every setting a run records (mappings with
    string keys where keyword arguments belong, integers ≥ 0 where counts belong). The values themselves are checked
    as the command line's are by :func:`agents.training.experiment.saved_run`.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    saved = read_run_file(path, CONFIG_LIMITS)
    if not isinstance(saved, dict) or not saved:
        raise RunFolderError(f"{path} is empty or not a mapping of settings")
    algo = saved.get("algo")
    if not isinstance(algo, str) or algo not in algorithms:
        raise RunFolderError(f"{path}: algo={shown(algo)} is not one of {sorted(algorithms)}")
    if not isinstance(saved.get("env_id"), str) or not saved["env_id"]:
        raise RunFolderError(f"{path}: env_id={shown(saved.get('env_id'))} is not an environment id")
    for key, types in _TYPES.items():
        value = saved.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            if types == (dict,):
                raise RunFolderError(f"{path}: {key} must be a mapping, not {shown(value)}")
            raise RunFolderError(f"{path}: {key}={shown(value)} is invalid: must be {_TYPE_NAMES[types[0]]}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise RunFolderError(f"{path}: {key}={shown(value)} is not a non-negative integer")
    for key in _KEYWORD_MAPPINGS:
        names = [name for name in saved.get(key) or {} if not isinstance(name, str)]
        if names:
            raise RunFolderError(f"{path}: {key} has a key {shown(names[0])} that is not a name")
    return saved


def write_evaluations(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Write the periodic evaluations as ``evaluations.json`` (atomically)."""
    write_json(Path(run_dir) / EVALUATIONS_FILE, history)
