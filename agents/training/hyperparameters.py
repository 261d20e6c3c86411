"""Hyperparameters: the tuned entries shipped per algorithm and env id, their checks, and the algorithm's arguments.

An entry (``agents/training/hyperparams/<algo>.yml``, keyed by env id, as in the RL Zoo) holds the algorithm's
constructor arguments plus run settings (:data:`RUN_KEYS`). Every value we know is checked before anything starts
(:func:`check_hyperparams`): SB3 checks few of them, some only mid-run.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3, "a2c": A2C}
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "leaky_relu": torch.nn.LeakyReLU}
# Keys of a hyperparameter entry that configure the run rather than the algorithm's constructor.
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "noise_type", "noise_std", "log_std_schedule", "env_kwargs")
SCHEDULED_KEYS = {"learning_rate", "clip_range", "clip_range_vf"}  # values that may name a schedule such as "lin_3e-4"


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
}  # integers, each at most MAX_COUNT
MAX_COUNT = 100_000_000
"""The largest value of an integer hyperparameter (steps, sizes, epochs): a buffer of this many steps already takes
gigabytes."""
MAX_LOG_STD = 20.0
"""``log_std_schedule``'s values lie in ``[-MAX_LOG_STD, MAX_LOG_STD]`` (standard deviations from 2e-9 to 5e8)."""
MAX_NUMBER = 1e38
"""The largest magnitude of a real hyperparameter: PyTorch computes in float32, whose largest value is 3.4e38."""
_NONE_ONLY = ("action_noise", "rollout_buffer_class", "replay_buffer_class")  # set by noise_type, or SB3's default
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
    is_number = _is_number(value)
    if key in _AT_LEAST:
        ok = is_number and value == int(value) and _AT_LEAST[key] <= value <= MAX_COUNT
        return None if ok else f"an integer >= {_AT_LEAST[key]} (at most {MAX_COUNT:,})"
    if key in _NONE_ONLY:
        noise = "; noise_type and noise_std set the action noise" if key == "action_noise" else ""
        return None if value is None else f"None (SB3's default{noise})"
    if key == "policy":
        return None if value == "MlpPolicy" else "'MlpPolicy' (the observation is a vector)"
    if key == "noise_type":
        return None if value in (None, "normal") else "None or 'normal'"
    if key == "target_kl":
        return None if value is None or (is_number and value > 0) else "None or a number > 0"
    if key == "clip_range_vf":
        return None if value is None else _allowed_schedule(value)
    if key == "target_entropy":
        return None if value == "auto" or is_number else "'auto' or a finite number"
    if key in ("rollout_buffer_kwargs", "replay_buffer_kwargs"):
        ok = value is None or (isinstance(value, dict) and all(isinstance(name, str) for name in value))
        return None if ok else "None or a dict of the buffer's keywords"
    if key in _UNIT_INTERVAL:
        return None if is_number and 0 <= value <= 1 else "a number in [0, 1]"
    if key in _POSITIVE:
        return None if is_number and value > 0 else f"a number in (0, {MAX_NUMBER:g}]"
    if key in _NON_NEGATIVE:
        return None if is_number and value >= 0 else f"a number in [0, {MAX_NUMBER:g}]"
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
        ok = ok and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) <= MAX_LOG_STD for x in value
        )
        return (
            None
            if ok
            else f"two numbers [start, end] in [-{MAX_LOG_STD:g}, {MAX_LOG_STD:g}] (the log standard deviation at "
            "the start and at the end) or None"
        )
    return None


def _is_number(value: Any) -> bool:
    """A real number PyTorch can hold (finite, magnitude at most :data:`MAX_NUMBER`)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_NUMBER


def _allowed_schedule(value: Any) -> str | None:
    allowed = f"a number > 0, lin_X or restarts_X_N with X > 0 and N >= 1 (numbers at most {MAX_NUMBER:g})"
    try:
        rate = _schedule(value)
    except (ValueError, OverflowError):
        return allowed
    start = rate(1.0) if callable(rate) else rate
    return None if _is_number(start) and start > 0 else allowed


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
        if kind is float and not (_is_number(item) and item > 0):
            return allowed + f" ({key}: a number in (0, {MAX_NUMBER:g}])"
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


def normalises_observations(hyperparams: dict[str, Any]) -> bool:
    """Whether a run with these hyperparameters normalised its observations (``VecNormalize`` with ``norm_obs``)."""
    normalize = hyperparams.get("normalize")
    if isinstance(normalize, dict):
        return bool(normalize.get("norm_obs", True))
    return bool(normalize)
