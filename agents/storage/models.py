"""Saving and loading a run's model and its normalisation statistics, without unpickling anything from a file.

* ``model.zip`` is loaded by SB3 with every pickled entry of its ``data`` supplied by us (``custom_objects``), rebuilt
  from the run's settings as our training builds them (:func:`expected_objects`); a file with a pickled entry we
  cannot supply is refused (:func:`load_model`). SB3 loads the tensors with ``torch.load(..., weights_only=True)``.
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
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.storage.files import atomic_write_bytes, write_json
from agents.storage.run_folder import (
    MODEL_FILE,
    PICKLED_STATISTICS_FILE,
    SAFE_LOADING_HELP,
    STATISTICS_FILE,
    RunFolderError,
    one_line,
)

STATISTICS_FORMAT = "mm_env VecNormalize statistics 1"

# Keys of a saved model's ``data`` that SB3 pickles and that we always supply ourselves, even when stored as plain
# JSON: what the model observes and does, and its policy class, come from the run's settings, never from the file.
ALWAYS_SUPPLIED = ("observation_space", "action_space", "policy_class")


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


def _number(payload: dict[str, Any], key: str, path: Path) -> float:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RunFolderError(f"{path} is damaged: {key}={value!r} is not a number")
    return float(value)


def _flag(payload: dict[str, Any], key: str, path: Path) -> bool:
    value = payload.get(key)
    if not isinstance(value, bool):
        raise RunFolderError(f"{path} is damaged: {key}={value!r} is not true or false")
    return value


def _restore_rms(entry: Any, shape: tuple[int, ...], name: str, path: Path) -> RunningMeanStd:
    if not isinstance(entry, dict):
        raise RunFolderError(f"{path} is damaged: {name} is missing")
    rms = RunningMeanStd(shape=shape)
    try:
        mean = np.asarray(entry["mean"], dtype=np.float64)
        var = np.asarray(entry["var"], dtype=np.float64)
        count = float(entry["count"])
    except (KeyError, TypeError, ValueError) as error:
        raise RunFolderError(f"{path} is damaged: {name} is not a mean, a variance and a count ({error})") from None
    if mean.shape != shape or var.shape != shape:
        raise RunFolderError(f"{path} is damaged: {name} has shape {mean.shape}, the environment needs {shape}")
    if not (math.isfinite(count) and count > 0) or np.any(var < 0):
        raise RunFolderError(f"{path} is damaged: {name} has count {count} and variances {var.tolist()}")
    rms.mean, rms.var, rms.count = mean, var, count
    return rms


def restore_statistics(path: Path, venv: VecEnv, training: bool = False) -> VecNormalize:
    """A ``VecNormalize`` on ``venv`` with the statistics and settings saved by :func:`save_statistics`.

    ``training=True`` keeps updating the statistics (to continue training), ``False`` freezes them (to evaluate).
    Raises :class:`RunFolderError` if the file is damaged or does not fit ``venv``'s observations.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{path} is damaged: {one_line(error)}") from None
    if not isinstance(payload, dict) or payload.get("format") != STATISTICS_FORMAT:
        raise RunFolderError(f"{path} is damaged: not normalisation statistics ({STATISTICS_FORMAT!r})")
    norm_obs, norm_reward = _flag(payload, "norm_obs", path), _flag(payload, "norm_reward", path)
    normalizer = VecNormalize(
        venv,
        training=training,
        norm_obs=norm_obs,
        norm_reward=norm_reward,
        clip_obs=_number(payload, "clip_obs", path),
        clip_reward=_number(payload, "clip_reward", path),
        gamma=_number(payload, "gamma", path),
        epsilon=_number(payload, "epsilon", path),
    )
    if norm_obs:
        shape = venv.observation_space.shape
        assert shape is not None  # VecNormalize accepts Box observations only
        # VecNormalize types obs_rms for dict spaces too; ours are boxes, whose statistics are one RunningMeanStd.
        normalizer.obs_rms = _restore_rms(payload.get("obs_rms"), tuple(shape), "obs_rms", path)  # type: ignore[assignment]
    normalizer.ret_rms = _restore_rms(payload.get("ret_rms"), (), "ret_rms", path)
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


def save_model(model: BaseAlgorithm, run_dir: Path, prefix: str = "") -> None:
    """Save ``{prefix}model.zip`` and, if the model's env normalises, ``{prefix}vecnormalize.json``, each atomically.

    The statistics are written first, so a model file is never newer than the statistics it needs.
    """
    normalizer = find_vec_normalize(model.get_env())
    if normalizer is not None:
        save_statistics(normalizer, statistics_path(run_dir, prefix))
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write_bytes(model_path(run_dir, prefix), buffer.getvalue())


def read_model_data(path: Path) -> dict[str, Any]:
    """The ``data`` entry of a saved model (JSON; pickled values are objects with a ``":serialized:"`` key).

    Reads the zip's directory and that one entry, unpickling nothing; :class:`RunFolderError` if it is missing,
    truncated or not a saved model.
    """
    path = Path(path)
    if not path.exists():
        raise RunFolderError(f"{path.parent} has no {path.name}")
    if not path.is_file():
        raise RunFolderError(f"{path} is not a file")
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
    except KeyError:
        raise RunFolderError(f"{path} is damaged (truncated, or not a saved SB3 model): no 'data' entry") from None
    except (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile, zlib.error) as error:
        raise RunFolderError(f"{path} is damaged (truncated or not a saved model): {one_line(error)}") from None
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
    """What a model of ours pickles into its ``data``, rebuilt from the run's settings instead of read from the file.

    ``algo_kwargs`` are the constructor arguments our training passes (with schedules and action noise built): an
    instance made from them without its networks gives the policy class and its keywords, the learning-rate and
    clip-range schedules, the buffer classes (``None`` where SB3 picks them when the model is set up, as it did in
    training), the train frequency and the action noise. The spaces are the env's. The rest is state that SB3 rebuilds
    when training resumes (``_setup_learn`` resets the env and the episode buffers when they are ``None``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. PPO's batch-size advice, irrelevant without an env
        reference = algo_class(policy, None, device="cpu", _init_setup_model=False, **algo_kwargs)  # type: ignore[call-arg]
    objects: dict[str, Any] = {
        "policy_class": reference.policy_class,
        "policy_kwargs": reference.policy_kwargs,
        "learning_rate": reference.learning_rate,
        "lr_schedule": FloatSchedule(reference.learning_rate),
        "observation_space": observation_space,
        "action_space": action_space,
        "_last_obs": None,
        "_last_episode_starts": None,
        "_last_original_obs": None,
        "ep_info_buffer": None,
        "ep_success_buffer": None,
    }
    for name in ("clip_range", "clip_range_vf", "rollout_buffer_class", "replay_buffer_class", "train_freq"):
        if hasattr(reference, name):
            objects[name] = getattr(reference, name)
    if "action_noise" in algo_kwargs:
        objects["action_noise"] = algo_kwargs["action_noise"]
    return objects


def _check_space(path: Path, entry: Any, space: spaces.Space, what: str) -> None:
    # The pickled space also stores its plain attributes beside the pickle: a mismatch gets a clear message here
    # rather than a tensor-shape error deep inside SB3.
    shape = entry.get("_shape") if isinstance(entry, dict) else None
    if isinstance(shape, list) and tuple(shape) != space.shape:
        raise RunFolderError(
            f"{path}: the model's {what} space has shape {tuple(shape)}, the run's settings give {space.shape}"
        )


def load_model(path: Path, algo_class: type[BaseAlgorithm], expected: dict[str, Any], **kwargs: Any) -> BaseAlgorithm:
    """Load a saved model without unpickling anything from it.

    Every pickled entry of the file's ``data`` (and the spaces and policy class, however stored) is supplied from
    ``expected`` (see :func:`expected_objects`) through SB3's ``custom_objects``, which then skips deserialising it;
    a file with a pickled entry ``expected`` lacks is refused. The tensors are read by SB3 with
    ``torch.load(..., weights_only=True)``. ``kwargs`` go to ``algo_class.load`` (``env``, ``device``).

    Raises:
        RunFolderError: the file is missing, damaged, holds an entry we would have to unpickle, or does not fit.
    """
    path = Path(path)
    data = read_model_data(path)
    pickled = pickled_keys(data)
    unknown = sorted(pickled - expected.keys())
    if unknown:
        raise RunFolderError(
            f"{path} holds pickled entries no model of ours has ({', '.join(unknown)}); refusing to unpickle them "
            "(it could run any code)"
        )
    _check_space(path, data.get("observation_space"), expected["observation_space"], "observation")
    _check_space(path, data.get("action_space"), expected["action_space"], "action")
    supplied = {key: expected[key] for key in data if key in pickled or key in ALWAYS_SUPPLIED}
    # Warnings are held back until the model has loaded: a damaged file gets its one line, not torch's warnings too.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = algo_class.load(path, custom_objects=supplied, **kwargs)
        except pickle.UnpicklingError:
            # torch.load(weights_only=True) met objects other than tensors: refused, and rightly so.
            raise RunFolderError(
                f"{path}: its tensor files hold other objects than tensors; refusing to unpickle them "
                "(it could run any code)"
            ) from None
        except Exception as error:
            message = f"{path} cannot be loaded (damaged, or not this run's model): {one_line(error)}"
            raise RunFolderError(message) from error
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model
