"""Saving and loading a run's model and its normalisation statistics, without unpickling anything from a file.

* ``model.zip`` is loaded by SB3 with every setting of its ``data`` supplied by us (``custom_objects``), rebuilt
  from the run's settings as our training builds them (:func:`expected_objects`), and only the training's state
  (step counts) read from the file; a file with a pickled entry we cannot supply is refused (:func:`load_model`).
  The file is read within a budget derived from the run's network before anything is inflated
  (:func:`read_model_entries`). SB3 loads the tensors with ``torch.load(..., weights_only=True)``.
* The ``VecNormalize`` statistics are plain JSON (``vecnormalize.json``, ``best_vecnormalize.json``); the pickles of
  older runs (``vecnormalize.pkl``) are refused with a message saying how to convert them (:func:`read_statistics`).

Each problem raises :class:`~agents.storage.run_folder.RunFolderError` with a one-line message.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.storage.files import DataLimits, atomic_write_bytes, parse_data, shown, write_json
from agents.storage.run_folder import (
    ARRAYS_MODEL_FILE,
    MODEL_FILE,
    PICKLED_STATISTICS_FILE,
    SAFE_LOADING_HELP,
    STATISTICS_FILE,
    RunFolderError,
    one_line,
    read_run_file,
)

STATISTICS_FORMAT = "mm_env VecNormalize statistics 1"

# Keys of a saved model's ``data`` that we always supply ourselves, even where the file lacks them or stores them as
# plain JSON: what the model observes and does, its policy class and its keywords (hence the network's size) come from
# the run's settings, never from the file. Every other setting is supplied too wherever the file has it.
ALWAYS_SUPPLIED = ("observation_space", "action_space", "policy_class", "policy_kwargs")


def find_vec_normalize(venv: VecEnv | None) -> VecNormalize | None:
    """The ``VecNormalize`` among ``venv`` and the envs it wraps, or ``None``."""
    while venv is not None:
        if isinstance(venv, VecNormalize):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def statistics_path(run_dir: Path, prefix: str = "") -> Path:
    """``vecnormalize.json`` (``prefix=""``, the final model's) or ``best_vecnormalize.json`` in the run folder."""
    return Path(run_dir) / f"{prefix}{STATISTICS_FILE}"


def _rms(rms: RunningMeanStd | None) -> dict[str, Any] | None:
    if rms is None:
        return None
    return {"mean": np.asarray(rms.mean).tolist(), "var": np.asarray(rms.var).tolist(), "count": float(rms.count)}


def save_statistics(normalizer: VecNormalize, path: Path) -> None:
    """Write a ``VecNormalize``'s statistics and settings to ``path`` as plain JSON (atomically).

    ``obs_rms`` (``null`` without observation normalisation) and ``ret_rms`` hold ``mean``, ``var`` and ``count``;
    with ``clip_obs``, ``clip_reward``, ``gamma``, ``epsilon``, ``norm_obs`` and ``norm_reward`` that is everything
    SB3's own pickle restores (it too drops the running returns, which restart at zero).
    """
    obs_rms = normalizer.obs_rms if normalizer.norm_obs else None
    if isinstance(obs_rms, dict):
        raise ValueError("dict observation spaces are not supported")
    payload = {
        "format": STATISTICS_FORMAT,
        "obs_rms": _rms(obs_rms),
        "ret_rms": _rms(normalizer.ret_rms),
        "clip_obs": float(normalizer.clip_obs),
        "clip_reward": float(normalizer.clip_reward),
        "gamma": float(normalizer.gamma),
        "epsilon": float(normalizer.epsilon),
        "norm_obs": bool(normalizer.norm_obs),
        "norm_reward": bool(normalizer.norm_reward),
    }
    write_json(path, payload)


STATISTICS_LIMITS = DataLimits(bytes=1024**2, values=100_000, depth=8)
"""The most of ``vecnormalize.json`` read: 1 MiB (a run writes about 300 bytes), 100,000 values, 8 levels."""
_SETTINGS: dict[str, tuple[Any, str]] = {
    "clip_obs": (lambda x: x > 0, "a number > 0"),
    "clip_reward": (lambda x: x > 0, "a number > 0"),
    "gamma": (lambda x: 0 < x <= 1, "a number in (0, 1]"),
    "epsilon": (lambda x: 0 < x <= 1, "a number in (0, 1]"),
}
"""The settings of saved statistics and what each allows (finite numbers only)."""
MAX_STATISTIC = 1e100
"""The largest magnitude of a saved mean or variance: the running update multiplies them by counts up to 2**53."""
MAX_COUNT = 2.0**53
"""The largest count of saved statistics (the steps seen): where float64 still counts one by one."""


def _number(payload: dict[str, Any], key: str, path: Path) -> float:
    value = payload.get(key)
    test, allowed = _SETTINGS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not test(value):
        raise RunFolderError(f"{path} is damaged: {key}={shown(value)} is not {allowed}")
    return float(value)


def _flag(payload: dict[str, Any], key: str, path: Path) -> bool:
    value = payload.get(key)
    if not isinstance(value, bool):
        raise RunFolderError(f"{path} is damaged: {key}={shown(value)} is not true or false")
    return value


def _numbers(value: Any, name: str) -> np.ndarray:
    """A number or a list of numbers as an array (``TypeError`` for anything else: booleans, strings, nesting)."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        raise TypeError(f"{name}={shown(value)} is not a number or a list of numbers")
    return np.asarray(value, dtype=np.float64)


def _restore_rms(entry: Any, shape: tuple[int, ...], name: str, path: Path) -> RunningMeanStd:
    """A mean, a variance and a count, checked against their ranges.

    The environment's shape; finite; ``|mean|`` and ``var`` at most :data:`MAX_STATISTIC`, ``var >= 0``;
    ``0 < count <= 2**53``.
    """
    if not isinstance(entry, dict):
        raise RunFolderError(f"{path} is damaged: {name} is missing")
    rms = RunningMeanStd(shape=shape)
    try:
        mean, var = _numbers(entry["mean"], "mean"), _numbers(entry["var"], "var")
        count = float(_numbers(entry["count"], "count"))
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        reason = shown(error.args[0]) if isinstance(error, KeyError) else one_line(error, 120)
        raise RunFolderError(f"{path} is damaged: {name} is not a mean, a variance and a count ({reason})") from None
    if mean.shape != shape or var.shape != shape:
        raise RunFolderError(f"{path} is damaged: {name} has shape {mean.shape}, the environment needs {shape}")
    if not (math.isfinite(count) and 0 < count <= MAX_COUNT):
        raise RunFolderError(f"{path} is damaged: {name} has count {count!r}, must be in (0, 2**53]")
    if not np.all(np.abs(mean) <= MAX_STATISTIC):  # also NaN
        raise RunFolderError(
            f"{path} is damaged: {name} has mean {shown(mean.tolist())}, must be finite, |mean| <= 1e100"
        )
    if not np.all((var >= 0) & (var <= MAX_STATISTIC)):
        raise RunFolderError(f"{path} is damaged: {name} has variances {shown(var.tolist())}, must be in [0, 1e100]")
    rms.mean, rms.var, rms.count = mean, var, count
    return rms


def restore_statistics(path: Path, venv: VecEnv, training: bool = False) -> VecNormalize:
    """A ``VecNormalize`` on ``venv`` with the statistics and settings saved by :func:`save_statistics`.

    ``training=True`` keeps updating the statistics (to continue training), ``False`` freezes them (to evaluate).
    The file is read within :data:`STATISTICS_LIMITS` and every value checked against its range before anything is
    built: ``clip_obs`` and ``clip_reward`` > 0, ``gamma`` and ``epsilon`` in (0, 1], the flags true or false, each
    mean, variance and count as :func:`_restore_rms` says. Raises :class:`RunFolderError` if the file is damaged or
    does not fit ``venv``'s observations.
    """
    path = Path(path)
    try:
        payload = read_run_file(path, STATISTICS_LIMITS)
    except RunFolderError as error:
        raise RunFolderError(str(error).replace(f"{path} cannot be read", f"{path} is damaged", 1)) from None
    if not isinstance(payload, dict) or payload.get("format") != STATISTICS_FORMAT:
        raise RunFolderError(f"{path} is damaged: not normalisation statistics ({STATISTICS_FORMAT!r})")
    norm_obs, norm_reward = _flag(payload, "norm_obs", path), _flag(payload, "norm_reward", path)
    settings = {key: _number(payload, key, path) for key in _SETTINGS}
    obs_rms = None
    if norm_obs:
        shape = venv.observation_space.shape
        assert shape is not None  # VecNormalize accepts Box observations only
        obs_rms = _restore_rms(payload.get("obs_rms"), tuple(shape), "obs_rms", path)
    ret_rms = _restore_rms(payload.get("ret_rms"), (), "ret_rms", path)
    normalizer = VecNormalize(
        venv,
        training=training,
        norm_obs=norm_obs,
        norm_reward=norm_reward,
        clip_obs=settings["clip_obs"],
        clip_reward=settings["clip_reward"],
        gamma=settings["gamma"],
        epsilon=settings["epsilon"],
    )
    if obs_rms is not None:
        # VecNormalize types obs_rms for dict spaces too; ours are boxes, whose statistics are one RunningMeanStd.
        normalizer.obs_rms = obs_rms  # type: ignore[assignment]
    normalizer.ret_rms = ret_rms
    return normalizer


def read_statistics(
    run_dir: Path, venv: VecEnv, prefix: str = "", required: bool = False, training: bool = False
) -> VecNormalize | None:
    """The run's saved statistics on ``venv`` (see :func:`restore_statistics`), or ``None`` if there are none.

    ``required``: the run's hyperparameters say it normalises what the caller needs, so a missing file is an error.
    The pickles older runs wrote (``vecnormalize.pkl``) are refused, never loaded: unpickling runs code.
    """
    path = statistics_path(run_dir, prefix)
    if path.is_file():
        return restore_statistics(path, venv, training)
    pickled = Path(run_dir) / f"{prefix}{PICKLED_STATISTICS_FILE}"
    if pickled.exists():
        raise RunFolderError(
            f"{pickled}: normalisation statistics in the old pickle format, which is not loaded because unpickling "
            f"a file can run any code in it; if you trust this folder, convert it once to {path.name} "
            f"({SAFE_LOADING_HELP})"
        )
    if required:
        raise RunFolderError(
            f"{path} is missing: the run's hyperparameters normalise (normalize=...), and without its statistics the "
            "model would see differently scaled inputs"
        )
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Models


def model_path(run_dir: Path, prefix: str = "") -> Path:
    """``model.zip`` (``prefix=""``, the final model) or ``best_model.zip`` in the run folder."""
    return Path(run_dir) / f"{prefix}{MODEL_FILE}"


@runtime_checkable
class ArraysModel(Protocol):
    """A model saved as named arrays and a JSON header (a JAX run's, :mod:`agents.training.jax_backend`)."""

    def saved_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The model's parameters by name, and what rebuilds its networks (plain JSON values)."""


def save_model(model: BaseAlgorithm | ArraysModel, run_dir: Path, prefix: str = "") -> None:
    """Save ``{prefix}model.zip`` and, if the model's env normalises, ``{prefix}vecnormalize.json``, each atomically.

    The statistics are written first, so a model file is never newer than the statistics it needs. A model saved as
    named arrays (:class:`ArraysModel`) writes ``{prefix}model.json`` then ``{prefix}model.npz`` instead
    (:func:`save_arrays`).
    """
    if isinstance(model, ArraysModel):
        arrays, header = model.saved_arrays()
        save_arrays(run_dir, arrays, header, prefix)
        return
    normalizer = find_vec_normalize(model.get_env())
    if normalizer is not None:
        save_statistics(normalizer, statistics_path(run_dir, prefix))
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write_bytes(model_path(run_dir, prefix), buffer.getvalue())


MODEL_DATA_LIMITS = DataLimits(bytes=4 * 1024**2, values=100_000, depth=16)
"""The most of a saved model's ``data`` entry read: 4 MiB (a run writes about 20 KiB), 100,000 values, 16 levels."""
MODEL_MEMBERS = 64
"""The most entries of ``model.zip`` (and of each tensor file in it) read: SB3 writes 6 to 8."""
MODEL_SLACK = 4 * 1024**2
"""Bytes allowed in ``model.zip`` beyond four times the network's weights (:func:`model_budget`)."""
_MODEL_ENTRIES = ("data", "_stable_baselines3_version")  # besides the tensor files (*.pth); others are not read

# The training's state in a saved model's data: read from the file (checked), unlike everything else, which is
# rebuilt from the run's settings. Integers >= 0, except the progress (a number) and the seed (an integer or null).
_STATE_COUNTS = ("num_timesteps", "_num_timesteps_at_start", "_total_timesteps", "_episode_num", "_n_updates")
_MAX_STATE = 2**62


def model_budget(network_bytes: int) -> int:
    """The most bytes a saved model of a network with ``network_bytes`` of weights may hold, inflated.

    Four times the weights (the weights and up to three optimizer moments: Adam's two, three with amsgrad) plus
    :data:`MODEL_SLACK` (the data entry, the tensor files' own headers): the size of the zip, each entry's and the
    entries' total, with the tensor files' own entries counted again, are all held to it.
    """
    return 4 * network_bytes + MODEL_SLACK


def _members(archive: zipfile.ZipFile, budget: int, path: Path, what: str) -> list[zipfile.ZipInfo]:
    """The archive's entries; refused before any is read if too many, or if their declared sizes exceed ``budget``."""
    entries = archive.infolist()
    if len(entries) > MODEL_MEMBERS:
        raise RunFolderError(f"{path}: {what} has {len(entries):,} entries, more than the {MODEL_MEMBERS} allowed")
    total = sum(entry.file_size for entry in entries)
    if total > budget:
        raise RunFolderError(
            f"{path}: {what} would inflate to {total:,} bytes, more than the {budget:,} that the run's network "
            "(config.yaml's hyperparameters) needs; refusing to read it"
        )
    return entries


def _read_member(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    """An entry's bytes, read no further than its declared size.

    ``zipfile`` stops there, and its CRC check finds an entry that holds more or other bytes than it declares.
    """
    with archive.open(entry) as file:
        data = file.read(entry.file_size + 1)
    if len(data) != entry.file_size:
        raise zipfile.BadZipFile(f"{entry.filename} holds another size than it declares")
    return data


def read_model_entries(path: Path, budget: int) -> dict[str, bytes]:
    """The entries of ``model.zip`` that loading needs (``data``, the tensor files, the version), read bounded.

    Before anything is inflated: the file's size, the number of entries and their declared sizes (and those of the
    entries of each tensor file, itself a zip) are held to ``budget`` (:func:`model_budget`); each entry is then read
    with a limit of its declared size. :class:`RunFolderError` (one line) for a missing, damaged or oversized file.
    """
    path = Path(path)
    if not path.exists():
        raise RunFolderError(f"{path.parent} has no {path.name}")
    if not path.is_file():
        raise RunFolderError(f"{path} is not a file")
    try:
        if path.stat().st_size > budget:
            raise RunFolderError(
                f"{path}: {path.stat().st_size:,} bytes, more than the {budget:,} that the run's network "
                "(config.yaml's hyperparameters) needs; refusing to read it"
            )
        with zipfile.ZipFile(path) as archive:
            wanted = [
                entry
                for entry in _members(archive, budget, path, "the file")
                if entry.filename in _MODEL_ENTRIES or entry.filename.endswith(".pth")
            ]
            entries = {entry.filename: _read_member(archive, entry) for entry in wanted}
        inner = 0
        for name, data in entries.items():
            if name.endswith(".pth"):
                if not zipfile.is_zipfile(io.BytesIO(data)):
                    raise RunFolderError(
                        f"{path}: its {name} is not in PyTorch's zip format (a plain pickle?); refusing to unpickle "
                        "it (it could run any code)"
                    )
                with zipfile.ZipFile(io.BytesIO(data)) as tensors:
                    inner += sum(entry.file_size for entry in _members(tensors, budget, path, name))
        if inner > budget:
            raise RunFolderError(f"{path}: its tensor files would inflate to {inner:,} bytes, more than {budget:,}")
    except RunFolderError:
        raise
    except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error) as error:
        raise RunFolderError(f"{path} is damaged (truncated or not a saved model): {one_line(error)}") from None
    if "data" not in entries:
        raise RunFolderError(f"{path} is damaged (truncated, or not a saved SB3 model): no 'data' entry")
    return entries


def _model_data(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = parse_data(raw, MODEL_DATA_LIMITS)
    except ValueError as error:
        raise RunFolderError(f"{path} is damaged: its 'data' entry cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is damaged: its 'data' entry is not a mapping")
    return data


def pickled_keys(data: dict[str, Any]) -> set[str]:
    """The keys of a saved model's ``data`` whose values SB3 would unpickle."""
    return {key for key, value in data.items() if isinstance(value, dict) and ":serialized:" in value}


def expected_objects(
    algo_class: type[BaseAlgorithm],
    policy: str,
    algo_kwargs: dict[str, Any],
    observation_space: spaces.Space,
    action_space: spaces.Space,
) -> dict[str, Any]:
    """What a model of ours saves in its ``data``, rebuilt from the run's settings instead of read from the file.

    ``algo_kwargs`` are the constructor arguments our training passes (with schedules and action noise built): an
    instance made from them without its networks gives every setting SB3 saves (the policy class and its keywords,
    hence the network's size; the schedules, the buffer classes and sizes, the train frequency, the action noise,
    every plain hyperparameter). The spaces are the env's; ``n_envs`` is 1 (loading on an env sets the env's). The
    episode buffers and last observations are ``None``: SB3 rebuilds them when training resumes. Only the training's
    state (step counts, progress, seed) is read from the file (:func:`load_model`). :class:`RunFolderError` if the
    settings cannot build the algorithm (an unknown policy, say).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. PPO's batch-size advice, irrelevant without an env
            reference = algo_class(policy, None, device="cpu", _init_setup_model=False, **algo_kwargs)  # type: ignore[call-arg]
    except (TypeError, ValueError, KeyError) as error:
        raise RunFolderError(f"the run's hyperparameters cannot build its model: {one_line(error)}") from None
    excluded = set(reference._excluded_save_params())
    objects: dict[str, Any] = {
        name: value for name, value in vars(reference).items() if name not in excluded and not name.startswith("__")
    }
    objects.update(
        {
            "policy_class": reference.policy_class,
            "policy_kwargs": reference.policy_kwargs,
            "learning_rate": reference.learning_rate,
            "lr_schedule": FloatSchedule(reference.learning_rate),
            "observation_space": observation_space,
            "action_space": action_space,
            "n_envs": 1,
            "_last_obs": None,
            "_last_episode_starts": None,
            "_last_original_obs": None,
            "ep_info_buffer": None,
            "ep_success_buffer": None,
        }
    )
    if "action_noise" in algo_kwargs:
        objects["action_noise"] = algo_kwargs["action_noise"]
    if objects.get("target_entropy") == "auto":  # as SAC's set-up computes it, which needs an env otherwise
        objects["target_entropy"] = float(-np.prod(action_space.shape or (1,)).astype(np.float32))
    for name in (*_STATE_COUNTS, "_current_progress_remaining", "seed", "start_time"):
        objects.pop(name, None)
    return objects


def network_bytes(algo_class: type[BaseAlgorithm], expected: dict[str, Any]) -> int:
    """The bytes of the weights of the network that ``expected`` (:func:`expected_objects`) builds, on the CPU.

    The policy is built as SB3's own set-up builds it (on-policy algorithms pass ``use_sde`` beside the policy's
    keywords; off-policy ones hold it in them).
    """
    kwargs = dict(expected.get("policy_kwargs") or {})
    if issubclass(algo_class, OnPolicyAlgorithm):
        kwargs["use_sde"] = bool(expected.get("use_sde", False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = expected["policy_class"](
            expected["observation_space"], expected["action_space"], expected["lr_schedule"], **kwargs
        )
    return sum(tensor.numel() * tensor.element_size() for tensor in policy.state_dict().values())


def _check_space(path: Path, entry: Any, space: spaces.Space, what: str) -> None:
    # The pickled space also stores its plain attributes beside the pickle: a mismatch gets a clear message here
    # rather than a tensor-shape error deep inside SB3.
    shape = entry.get("_shape") if isinstance(entry, dict) else None
    if isinstance(shape, list) and tuple(shape) != space.shape:
        raise RunFolderError(
            f"{path}: the model's {what} space has shape {shown(tuple(shape))}, the run's settings give {space.shape}"
        )


def _state(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The training's state in a saved model's data, each value checked against its range."""
    state: dict[str, Any] = {}
    for name in _STATE_COUNTS:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_STATE:
            raise RunFolderError(f"{path} is damaged: {name}={shown(value)} is not an integer in [0, 2**62]")
        state[name] = value
    progress = data.get("_current_progress_remaining", 1.0)
    if isinstance(progress, bool) or not isinstance(progress, (int, float)) or not -1e6 <= progress <= 1:
        raise RunFolderError(f"{path} is damaged: _current_progress_remaining={shown(progress)} is not a number <= 1")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise RunFolderError(f"{path} is damaged: seed={shown(seed)} is not null or an integer in [0, 2**32 - 1]")
    state.update(_current_progress_remaining=float(progress), seed=seed)
    return state


def load_model(path: Path, algo_class: type[BaseAlgorithm], expected: dict[str, Any], **kwargs: Any) -> BaseAlgorithm:
    """Load a saved model without unpickling anything from it, and without letting the file choose its size.

    The file is read within the budget of the network that ``expected`` (see :func:`expected_objects`, built from
    ``config.yaml``) builds (:func:`read_model_entries`, :func:`model_budget`). A file with a pickled entry no model
    of ours has is refused. SB3 then loads a copy of it whose ``data`` holds the training's state (checked) and,
    for everything else, the settings of ``expected``, supplied through ``custom_objects`` (SB3 deserialises none
    of them): the policy class and its keywords, hence the network, come from the run's settings, never from the
    file, and weights of other shapes are refused. The tensors are read by SB3 with
    ``torch.load(..., weights_only=True)``. ``kwargs`` go to ``algo_class.load`` (``env``, ``device``).

    Raises:
        RunFolderError: the file is missing, damaged, too large, holds an entry we would have to unpickle, or does
            not fit the run's network.
    """
    path = Path(path)
    try:
        budget = model_budget(network_bytes(algo_class, expected))
    except Exception as error:  # whatever SB3 or PyTorch raises for settings it cannot build
        raise RunFolderError(f"the run's hyperparameters cannot build its model: {one_line(error)}") from None
    entries = read_model_entries(path, budget)
    data = _model_data(path, entries["data"])
    unknown = sorted(pickled_keys(data) - expected.keys())
    if unknown:
        raise RunFolderError(
            f"{path} holds pickled entries no model of ours has ({shown(', '.join(unknown))}); refusing to unpickle "
            "them (it could run any code)"
        )
    _check_space(path, data.get("observation_space"), expected["observation_space"], "observation")
    _check_space(path, data.get("action_space"), expected["action_space"], "action")
    supplied = {key: expected[key] for key in (*ALWAYS_SUPPLIED, *data) if key in expected}
    safe_data = {**dict.fromkeys(supplied), **_state(data, path)}
    copy_of_file = io.BytesIO()
    with zipfile.ZipFile(copy_of_file, "w") as archive:
        archive.writestr("data", json.dumps(safe_data))
        for name, raw in entries.items():
            if name != "data":
                archive.writestr(name, raw)
    copy_of_file.seek(0)
    # Warnings are held back until the model has loaded: a damaged file gets its one line, not torch's warnings too.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = algo_class.load(copy_of_file, custom_objects=supplied, **kwargs)
        except pickle.UnpicklingError:
            # torch.load(weights_only=True) met objects other than tensors: refused, and rightly so.
            raise RunFolderError(
                f"{path}: its tensor files hold other objects than tensors; refusing to unpickle them "
                "(it could run any code)"
            ) from None
        except Exception as error:
            if "state_dict" in str(error) or "size mismatch" in str(error):
                message = (
                    f"{path}: its weights do not fit the network that config.yaml's hyperparameters build "
                    f"({one_line(error, 200)})"
                )
            else:
                message = f"{path} cannot be loaded (damaged, or not this run's model): {one_line(error)}"
            raise RunFolderError(message) from error
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model


# ---------------------------------------------------------------------------------------------------------------------
# Models saved as named arrays (JAX runs)

ARRAYS_HEADER_FILE = "model.json"
"""Beside ``model.npz``: what rebuilds the networks (format, sizes, hyperparameters), plain JSON."""
ARRAYS_HEADER_LIMITS = DataLimits(bytes=1024**2, values=10_000, depth=8)
"""The most of ``model.json`` read: 1 MiB (a run writes about 1 KiB), 10,000 values, 8 levels."""
MAX_ARRAYS = 256
"""The most arrays ``model.npz`` may hold (a network of 16 hidden layers has 70)."""


def arrays_paths(run_dir: Path, prefix: str = "") -> tuple[Path, Path]:
    """``{prefix}model.npz`` and ``{prefix}model.json`` in the run folder."""
    return Path(run_dir) / f"{prefix}{ARRAYS_MODEL_FILE}", Path(run_dir) / f"{prefix}{ARRAYS_HEADER_FILE}"


def saved_model_path(run_dir: Path, prefix: str = "") -> Path:
    """The run's saved model file: ``model.npz`` where a JAX run saved one, else ``model.zip`` (with ``prefix``)."""
    arrays, _ = arrays_paths(run_dir, prefix)
    return arrays if arrays.is_file() else model_path(run_dir, prefix)


def save_arrays(run_dir: Path, arrays: dict[str, np.ndarray], header: dict[str, Any], prefix: str = "") -> None:
    """Write named arrays as an uncompressed ``.npz`` and the header as JSON, each atomically (the JSON first)."""
    arrays_path, header_path = arrays_paths(run_dir, prefix)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # the names are plain keys
    write_json(header_path, header)
    atomic_write_bytes(arrays_path, buffer.getvalue())


def read_arrays_header(run_dir: Path, prefix: str = "") -> dict[str, Any]:
    """``{prefix}model.json``, read within :data:`ARRAYS_HEADER_LIMITS`; :class:`RunFolderError` if missing, damaged."""
    arrays_path, header_path = arrays_paths(run_dir, prefix)
    if not arrays_path.is_file():
        raise RunFolderError(f"{run_dir} has no {arrays_path.name}")
    if not header_path.is_file():
        raise RunFolderError(f"{run_dir} has no {header_path.name} (what rebuilds the networks of {arrays_path.name})")
    header = read_run_file(header_path, ARRAYS_HEADER_LIMITS)
    if not isinstance(header, dict):
        raise RunFolderError(f"{header_path} is damaged: not a mapping")
    return header


def read_arrays(run_dir: Path, budget: int, prefix: str = "") -> dict[str, np.ndarray]:
    """The named arrays of ``{prefix}model.npz`` (:func:`save_arrays`), read without unpickling anything.

    Refused before anything is read if the file, or the arrays it declares, exceed ``budget`` bytes (what the run's
    networks need, from its ``model.json``), or if it holds more than :data:`MAX_ARRAYS` arrays; NumPy then reads it
    with ``allow_pickle=False``. :class:`RunFolderError` (one line) for a missing or damaged file.
    """
    arrays_path, _ = arrays_paths(run_dir, prefix)
    if not arrays_path.is_file():
        raise RunFolderError(f"{run_dir} has no {arrays_path.name}")
    try:
        if arrays_path.stat().st_size > budget:
            raise RunFolderError(
                f"{arrays_path}: {arrays_path.stat().st_size:,} bytes, more than the {budget:,} that the run's "
                "networks need; refusing to read it"
            )
        with zipfile.ZipFile(arrays_path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ARRAYS or sum(entry.file_size for entry in entries) > budget:
                raise RunFolderError(f"{arrays_path}: more arrays or bytes than the run's networks have")
        with np.load(arrays_path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except RunFolderError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        raise RunFolderError(f"{arrays_path} is damaged (truncated or not named arrays): {one_line(error)}") from None
