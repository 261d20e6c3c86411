"""Our tuned hyperparameters in the form the RL Baselines3 Zoo reads.

``python -m rl_zoo3.train --algo ppo --env mm_env/MarketMaking-v0 --gym-packages mm_env -conf agents.zoo.ppo``
trains with them: the zoo's ``-conf`` takes a module path whose ``hyperparams`` attribute maps env ids (and
``default``) to entries. ``agents.zoo.ppo``, ``sac``, ``td3`` and ``a2c`` are such modules; each builds its dict from
``agents/training/hyperparams/<algo>.yml`` when it is imported, so there is no second copy to keep in step.

Only what the zoo cannot read is converted:

* ``restarts_X_N`` becomes ``lin_X``. The zoo knows only constant and linear schedules (a string schedule must be
  ``<name>_<value>`` and always means a linear decay), so a zoo run decays the learning rate once, linearly from the
  same peak, instead of our warm restarts; ``python train.py`` keeps the restarts.
* ``policy_kwargs`` naming ``activation_fn`` (``tanh``, ``relu`` …) becomes the Python expression the zoo evaluates,
  since it passes a dict to SB3 as it is.
* ``log_std_schedule: [start, end]`` becomes the zoo's ``callback`` entry for
  :class:`agents.training.callbacks.LogStdSchedule`, the callback that ``python train.py`` adds for it.

Everything else (``normalize`` dicts, ``noise_type: normal`` with ``noise_std``, ``policy_kwargs`` dicts, float
``n_timesteps``, ``ent_coef: auto_X``, ``env_kwargs``) the zoo reads as we do and is passed unchanged, with one
difference: the zoo's ``--env-kwargs`` replaces an entry's ``env_kwargs`` whole, where ``train.py`` overrides them
key by key (so with the zoo, repeat ``observation_features`` when you give other keywords to a TD3 or SAC run). An entry
whose meaning the zoo would silently change (it always normalises rewards with the algorithm's ``gamma``) raises
``ValueError``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import yaml
from stable_baselines3.common.vec_env import VecNormalize

from agents.training.hyperparameters import ACTIVATIONS, HYPERPARAMS_DIR

# The keys whose values rl_zoo3's ExperimentManager._preprocess_schedules turns into schedules.
ZOO_SCHEDULED_KEYS = ("learning_rate", "clip_range", "clip_range_vf", "delta_std")
ALGOS = ("ppo", "sac", "td3", "a2c")
"""The algorithms whose hyperparameters load in the RL Zoo (``-conf agents.zoo.<algo>``)."""


def zoo_hyperparams(algo: str) -> dict[str, dict[str, Any]]:
    """All entries of our ``<algo>.yml`` (keyed by env id and ``default``), converted for the RL Zoo.

    Args:
        algo: one of :data:`ALGOS`.

    Returns:
        A fresh dict (the zoo modifies the entry it uses in place).

    Raises:
        ValueError: for an unknown algorithm or an entry the zoo cannot express.
    """
    if algo not in ALGOS:
        raise ValueError(f"algo={algo!r} is not one of {ALGOS}")
    path = HYPERPARAMS_DIR / f"{algo}.yml"
    entries = yaml.safe_load(path.read_text()) or {}
    # deepcopy: YAML aliases (`mm_env/MarketMaking-v0: *market_making`) load as one shared dict.
    return {env_id: zoo_entry(copy.deepcopy(entry), f"{path}: {env_id}") for env_id, entry in entries.items()}


def zoo_entry(entry: dict[str, Any], where: str = "entry") -> dict[str, Any]:
    """One hyperparameter entry converted for the RL Zoo (see the module docstring); ``where`` names it in errors."""
    converted = dict(entry)
    for key in ZOO_SCHEDULED_KEYS:
        if isinstance(converted.get(key), str):
            converted[key] = zoo_schedule(converted[key], f"{where}: {key}")
    policy_kwargs = converted.get("policy_kwargs")
    if isinstance(policy_kwargs, dict) and isinstance(policy_kwargs.get("activation_fn"), str):
        converted["policy_kwargs"] = _policy_kwargs_expression(policy_kwargs, where)
    schedule = converted.pop("log_std_schedule", None)
    if schedule is not None:
        converted["callback"] = {"agents.training.callbacks.LogStdSchedule": {"start": schedule[0], "end": schedule[1]}}
    _check_normalize_gamma(converted, where)
    return converted


def zoo_schedule(value: str, where: str = "schedule") -> str:
    """``lin_X`` unchanged, ``restarts_X_N`` as ``lin_X`` (the zoo has no restarts); anything else raises."""
    name, _, rest = value.partition("_")
    peak, _, cycles = rest.partition("_")
    try:
        float(peak)
        if name == "lin" and not cycles:
            return value
        if name == "restarts" and int(cycles) > 0:
            # Keep X's text as written, so that the zoo's float() reads exactly our peak.
            return f"lin_{peak}"
    except ValueError:
        pass
    raise ValueError(f"{where}: {value!r} is not lin_X or restarts_X_N")


def _policy_kwargs_expression(policy_kwargs: dict[str, Any], where: str) -> str:
    # The zoo evaluates a string policy_kwargs in rl_zoo3.exp_manager, where torch.nn is imported as `nn`.
    name = policy_kwargs["activation_fn"]
    if name not in ACTIVATIONS:
        raise ValueError(f"{where}: activation_fn={name!r} is not one of {sorted(ACTIVATIONS)}")
    items = [
        f"{key}=nn.{ACTIVATIONS[name].__name__}" if key == "activation_fn" else f"{key}={value!r}"
        for key, value in policy_kwargs.items()
    ]
    return f"dict({', '.join(items)})"


def _check_normalize_gamma(entry: dict[str, Any], where: str) -> None:
    # The zoo overwrites VecNormalize's gamma with the algorithm's; ours takes normalize's own (or VecNormalize's
    # default), so the two runs would normalise rewards differently unless these agree.
    normalize = entry.get("normalize")
    if not normalize or "gamma" not in entry:
        return
    default = inspect.signature(VecNormalize).parameters["gamma"].default
    ours = normalize.get("gamma", default) if isinstance(normalize, dict) else default
    if ours != entry["gamma"]:
        raise ValueError(
            f"{where}: normalize gamma {ours} differs from gamma {entry['gamma']}; the zoo would use {entry['gamma']}"
            " (write it into normalize)"
        )
