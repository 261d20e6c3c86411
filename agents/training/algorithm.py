"""The SB3 algorithm of a run: built from its hyperparameters on the training env, trained, or loaded safely."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.storage import models
from agents.storage.run_folder import RunFolderError, one_line
from agents.training.callbacks import MarketMetricsCallback, ProgressBar
from agents.training.config import PreparedRun, size_problem
from agents.training.hyperparameters import ALGORITHMS, algorithm_kwargs


def model_on(
    venv: VecEnv,
    algo: str,
    hyperparams: dict[str, Any],
    seed: int,
    device: str = "auto",
    verbose: int = 0,
    continue_from: Path | None = None,
) -> BaseAlgorithm:
    """The algorithm on a training env: new, or loaded (with its normalisation statistics) from a saved run.

    A continued run that normalises needs its statistics: without them it would restart them from nothing, so their
    absence raises :class:`RunFolderError`, as does any problem with the saved model.
    """
    algo_class = ALGORITHMS[algo]
    if continue_from is not None:
        if isinstance(venv, VecNormalize):
            statistics = models.read_statistics(continue_from, venv.venv, required=True, training=True)
            assert statistics is not None  # required
            venv = statistics
        path = models.model_path(continue_from)
        model = load_model(algo, path, hyperparams, venv.observation_space, venv.action_space, env=venv, device=device)
        model.set_random_seed(seed)
        return model
    kwargs = algorithm_kwargs(algo, hyperparams, n_actions=2)
    policy = hyperparams.get("policy", "MlpPolicy")
    return algo_class(policy, venv, seed=seed, device=device, verbose=verbose, **kwargs)


def check_run(prepared: PreparedRun) -> None:
    """What a prepared run's market must also allow, checked before anything is written (``ValueError``, one line).

    Its evaluations' sizes (:func:`~agents.training.config.size_problem`) and that its model builds on the
    market's spaces (:func:`check_model_builds`).
    """
    problem = size_problem(prepared)
    if problem is not None:
        raise ValueError(problem)
    venv = prepared.family.make_env(prepared.n_envs, prepared.config.seed, prepared.hyperparams.get("normalize"))
    try:
        check_model_builds(prepared.config.algo, prepared.hyperparams, venv)
    finally:
        venv.close()


# What SB3 alone can judge (policy_kwargs, the buffers' keywords) is judged by building the algorithm on the run's
# spaces before anything starts. Its replay buffer is built this small for the check: its size changes nothing else.
_CHECK_BUFFER_SIZE = 1_000


def check_model_builds(algo: str, hyperparams: dict[str, Any], venv: VecEnv) -> None:
    """Build the algorithm of these (checked) hyperparameters on ``venv``'s spaces, once, on the CPU.

    Raises ``ValueError`` naming the hyperparameter that SB3 or PyTorch refuses (``policy_kwargs``,
    ``rollout_buffer_kwargs``, …), found by building with each of them alone.
    """
    kwargs = algorithm_kwargs(algo, hyperparams, n_actions=int(np.prod(venv.action_space.shape or (1,))))
    if "buffer_size" in inspect.signature(ALGORITHMS[algo].__init__).parameters:
        kwargs["buffer_size"] = min(int(hyperparams.get("buffer_size", _CHECK_BUFFER_SIZE)), _CHECK_BUFFER_SIZE)
    problem = _build_problem(algo, hyperparams.get("policy", "MlpPolicy"), kwargs, venv)
    if problem is None:
        return
    settings = {key: value for key, value in kwargs.items() if key != "buffer_size"}
    for key in settings:
        alone = {key: kwargs[key], **({"buffer_size": kwargs["buffer_size"]} if "buffer_size" in kwargs else {})}
        if _build_problem(algo, hyperparams.get("policy", "MlpPolicy"), alone, venv) is not None:
            raise ValueError(f"hyperparameter {key}={hyperparams.get(key, kwargs[key])!r} is invalid: {problem}")
    raise ValueError(f"the {algo} hyperparameters cannot build a model together: {problem}")


def _build_problem(algo: str, policy: str, kwargs: dict[str, Any], venv: VecEnv) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ALGORITHMS[algo](policy, venv, device="cpu", **kwargs)
    except Exception as error:  # whatever SB3 or PyTorch raises for a value it refuses
        return one_line(error, limit=200)
    return None


def saved_model_objects(
    algo: str, hyperparams: dict[str, Any], observation_space: spaces.Space, action_space: spaces.Space
) -> dict[str, Any]:
    """The objects a saved model of this run pickles, rebuilt from its hyperparameters as :func:`model_on` builds them.

    See :func:`agents.storage.models.expected_objects`; bad hyperparameters raise :class:`RunFolderError`.
    """
    try:
        kwargs = algorithm_kwargs(algo, hyperparams, n_actions=int(np.prod(action_space.shape or (1,))))
    except ValueError as error:
        raise RunFolderError(f"the run's hyperparameters cannot build its model: {error}") from None
    policy = hyperparams.get("policy", "MlpPolicy")
    return models.expected_objects(ALGORITHMS[algo], policy, kwargs, observation_space, action_space)


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
    foreign file (see :func:`agents.storage.models.load_model`).
    """
    expected = saved_model_objects(algo, hyperparams, observation_space, action_space)
    return models.load_model(path, ALGORITHMS[algo], expected, **kwargs)


def learn(
    model: BaseAlgorithm, timesteps: int, progress_bar: bool, callbacks: Sequence[BaseCallback], resume: bool
) -> bool:
    """Train for ``timesteps``; returns whether Ctrl-C or SIGTERM stopped it (what was learned stays in ``model``)."""
    progress = [ProgressBar()] if progress_bar else []
    try:
        model.learn(
            timesteps,
            callback=CallbackList([MarketMetricsCallback(), *callbacks, *progress]),
            reset_num_timesteps=not resume,
        )
    except KeyboardInterrupt:
        print("\ninterrupted: saving what has been learned")
        return True
    return False
