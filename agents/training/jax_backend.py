"""The JAX backend of the training pipeline: ``train.py --backend jax`` trains :mod:`agents.training.jax_ppo`.

The pipeline (:mod:`agents.training.experiment`) runs a JAX run as it runs a Stable-Baselines3 one: the same run
folder, ``run_status.json``, TensorBoard scalars and layout, periodic exact evaluations, final comparison, and the
same handling of Ctrl-C and SIGTERM. What differs lives here:

* :class:`JaxPPOModel` is the run's model: it trains in chunks of updates (one jitted call each), logs what SB3
  logs under the same tags after each chunk, drives the run's periodic evaluation (an SB3 callback) between chunks,
  acts like an SB3 model (``predict``) for the evaluations, and saves itself as named arrays
  (:func:`agents.storage.models.save_model`). With ``--seeds N`` it trains ``N`` seeds at once (``vmap``); the
  scalars and the periodic evaluation are the first seed's, and each evaluation also grades every seed exactly
  (``eval_seeds/...``).
* :class:`JaxPolicy` is a saved or current set of parameters as a policy of the project (the mean action), which
  the exact grading tabulates over the ``(t, I)`` grid (:func:`agents.evaluation.grading.grade`).

Importing this module imports JAX; the pipeline imports it only for ``--backend jax``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

from agents.evaluation.compare import exact_return
from agents.policies.learned import ObservationPolicy
from agents.storage import models
from agents.storage.run_folder import RunFolderError
from agents.training.callbacks import PeriodicEvaluation, PolicyEvaluationCallback
from agents.training.interrupts import DeferredInterrupts
from agents.training.jax_ppo import (
    PARAMS_FORMAT,
    TRAIN_METRICS,
    Params,
    PPOConfig,
    Trainer,
    deterministic_actions,
    expected_shapes,
    named_leaves,
    params_from_named,
)
from mm_env.config import EnvConfig
from mm_env.spaces import DEFAULT_FEATURES

try:  # the train extra's progress bar, as SB3 shows it
    from tqdm import TqdmExperimentalWarning  # type: ignore[import-untyped]
    from tqdm.rich import tqdm  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - tqdm and rich come with the train extra
    tqdm = None

LABEL = "PPO-JAX"
"""The name of a JAX run's agents in the comparison table."""
MAX_CHUNK_UPDATES = 16
"""The most updates in one jitted call: between calls, a run evaluates, logs and answers Ctrl-C and SIGTERM."""


def jax_hyperparams(overrides: dict[str, Any], n_envs: int | None = None) -> dict[str, Any]:
    """The JAX PPO hyperparameters: the defaults of :class:`PPOConfig` under ``overrides``, checked and resolved.

    ``n_envs`` (``--n-envs``) wins over the entry's; ``seed_groups`` is decided here (one group per CPU core unless
    given), so that the run records the groups it trains. ``ValueError`` naming the field, the value and the range.
    """
    values = dict(overrides)
    if n_envs is not None:
        values["n_envs"] = n_envs
    return PPOConfig.from_dict(values).resolved().as_dict()


def jax_versions() -> dict[str, str]:
    """The versions of JAX and optax, recorded with a JAX run."""
    return {"jax": jax.__version__, "optax": optax.__version__}


def make_jax_env(config: EnvConfig) -> Any:
    """The JAX environment of a one-market-maker configuration (:class:`mm_env.jax.env.MarketMakingEnv`)."""
    from mm_env.jax import MarketMakingEnv

    return MarketMakingEnv(
        config.params, observation_features=config.features, normalize_actions=config.normalize_actions
    )


@functools.lru_cache(maxsize=4)
def trainer_for(config: EnvConfig, ppo: PPOConfig, total_timesteps: int) -> Trainer:
    """The trainer of these settings, shared by the runs of one process that have them all.

    Its jitted functions then compile once: a test suite or a notebook that trains the same settings twice pays the
    compilation once.
    """
    env = make_jax_env(config)
    return Trainer(env, env.default_params, ppo, total_timesteps)


@contextlib.contextmanager
def _progress(shown: bool, total: int, done: int) -> Iterator[Any]:
    """SB3's progress bar (tqdm's rich bar) over ``total`` steps from ``done``, closed at the end.

    ``None`` where it is not ``shown``, or without tqdm and rich.
    """
    if not shown or tqdm is None:
        yield None
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmExperimentalWarning)
        bar = tqdm(total=total, initial=done)
    try:
        yield bar
    finally:
        bar.close()


class JaxPolicy(ObservationPolicy):
    """The deterministic policy of PPO's parameters: the Gaussian's mean action (clipped to the ``[-1, 1]`` box).

    A function of its observation, so with Markov features (the default ``(I / I_max, (T − t) / T)``) a pair of
    tables over the exact grid, which :func:`agents.evaluation.grading.grade` and the comparisons evaluate exactly.
    ``seed`` is the training seed of a run of several seeds (``None`` for one).
    """

    def __init__(
        self,
        params: Params,
        name: str = LABEL,
        activation: str = "tanh",
        normalized_actions: bool = True,
        features: Sequence[str] = DEFAULT_FEATURES,
        seed: int | None = None,
    ) -> None:
        super().__init__(name, normalized_actions, features)
        self.params, self.activation, self.seed = params, activation, seed

    def actions(self, obs: np.ndarray) -> np.ndarray:
        """The mean actions of a batch of observations (in ``[-1, 1]`` where the actions are normalised)."""
        return deterministic_actions(self.params, obs, self.activation, self.normalized_actions)


def _seed_params(params: Params, index: int) -> Params:
    return jax.tree.map(lambda leaf: leaf[index], params)


class JaxPPOModel:
    """A JAX PPO run as the pipeline sees a model: it trains, logs, acts, saves (see the module's docstring).

    Args:
        config: the environment's configuration.
        ppo: the hyperparameters.
        seeds: the training seeds (one or more, trained at once).
        total_timesteps: the budget per seed.
    """

    def __init__(self, config: EnvConfig, ppo: PPOConfig, seeds: Sequence[int], total_timesteps: int) -> None:
        self.config, self.ppo, self.seeds = config, ppo, list(seeds)
        self.trainer = trainer_for(config, ppo, total_timesteps)
        self.state = self.trainer.init(self.seeds)
        self.updates = 0
        self.num_timesteps = 0
        self._logger: Any = None

    # -- what the pipeline uses of an SB3 model -------------------------------------------------------------------

    @property
    def logger(self) -> Any:
        """The run's SB3 logger (TensorBoard and CSV), set by :meth:`set_logger`."""
        if self._logger is None:
            raise RuntimeError("set_logger() has not been called")
        return self._logger

    def set_logger(self, logger: Any) -> None:
        """Log to ``logger`` (an SB3 ``Logger``)."""
        self._logger = logger

    def get_env(self) -> None:
        """No SB3 env (so no ``VecNormalize`` statistics to save: the reward scaling lives in the training state)."""
        return None

    def params(self, index: int = 0) -> Params:
        """The current parameters of the ``index``-th seed."""
        return _seed_params(self.state.params, index)

    def policy(self, index: int = 0, name: str | None = None) -> JaxPolicy:
        """The current deterministic policy of the ``index``-th seed."""
        seed = self.seeds[index] if len(self.seeds) > 1 else None
        return JaxPolicy(
            self.params(index),
            name or LABEL,
            self.ppo.activation,
            self.config.normalize_actions,
            self.config.features,
            seed,
        )

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        """SB3's ``predict`` for the first seed: its mean actions (the periodic evaluation's agent)."""
        actions = deterministic_actions(
            self.params(0), np.asarray(obs), self.ppo.activation, self.config.normalize_actions
        )
        return actions, None

    def saved_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The parameters by name (a leading seed axis with several seeds) and what rebuilds the networks."""
        params = self.state.params if len(self.seeds) > 1 else self.params(0)
        header = {
            "format": PARAMS_FORMAT,
            "obs_size": self.trainer.obs_size,
            "n_actions": self.trainer.n_actions,
            "seeds": self.seeds,
            "timesteps": self.num_timesteps,
            "hyperparams": self.ppo.as_dict(),
        }
        return named_leaves(params), header

    # -- training --------------------------------------------------------------------------------------------------

    def train_for(
        self, evaluation: PeriodicEvaluation, timesteps: int | None = None, progress_bar: bool = False
    ) -> bool:
        """Train for the budget the model was built with, evaluating every ``evaluation.eval_freq`` steps.

        Returns whether Ctrl-C or SIGTERM stopped it; what was learned up to the last complete chunk stays in the
        model (a signal during a chunk takes effect when the chunk ends). ``timesteps`` is only checked against the
        budget the schedules were built for. ``progress_bar``: the steps of each seed in SB3's progress bar (tqdm's
        rich bar), moved after each chunk.
        """
        total = self.trainer.total_updates
        if timesteps is not None and math.ceil(timesteps / self.ppo.rollout_size) != total:
            raise ValueError(f"the model was built for {total} updates, not for {timesteps:,} steps")
        evaluation.init_callback(self)  # type: ignore[arg-type]  # an SB3 callback driven by this model
        evaluation.on_training_start({}, {})
        with _progress(progress_bar, total * self.ppo.rollout_size, self.num_timesteps) as bar:
            return self._chunks(evaluation, total, bar)

    def _chunks(self, evaluation: PeriodicEvaluation, total: int, bar: Any) -> bool:
        start = time.monotonic()
        try:
            while self.updates < total:
                n_updates = self._next_chunk(evaluation.eval_freq, total)
                with DeferredInterrupts(note=None):  # the state, the counts and the step: all or none
                    state, sums = self.trainer.train(self.state, n_updates)
                    self.state, self.updates = state, self.updates + n_updates
                    self.num_timesteps = self.updates * self.ppo.rollout_size
                if bar is not None:
                    bar.update(n_updates * self.ppo.rollout_size)
                self._record(sums, n_updates, start)
                before = len(evaluation.history)
                evaluation.on_step()
                if len(self.seeds) > 1 and len(evaluation.history) > before:
                    self._grade_seeds(evaluation)
                self.logger.dump(self.num_timesteps)
            evaluation.on_training_end()
        except KeyboardInterrupt:
            print("\ninterrupted: saving what has been learned")
            return True
        return False

    def _next_chunk(self, eval_freq: int, total: int) -> int:
        """Updates up to the next evaluation, at most :data:`MAX_CHUNK_UPDATES` and what the budget leaves."""
        next_evaluation = (self.num_timesteps // eval_freq + 1) * eval_freq
        to_evaluation = math.ceil((next_evaluation - self.num_timesteps) / self.ppo.rollout_size)
        return max(1, min(to_evaluation, MAX_CHUNK_UPDATES, total - self.updates))

    def _record(self, sums: dict[str, np.ndarray], n_updates: int, start: float) -> None:
        """The chunk's scalars under SB3's tags (the first seed's): ``rollout/``, ``train/``, ``market/``, ``time/``."""
        summary = Trainer.summary(sums, n_updates)
        logger = self.logger
        if math.isfinite(summary["ep_rew_mean"]):
            logger.record("rollout/ep_rew_mean", summary["ep_rew_mean"])
        for name in TRAIN_METRICS:
            logger.record(f"train/{name}", summary[name])
        logger.record("train/n_updates", self.updates * self.ppo.n_epochs)
        for name in ("mean_abs_inventory", "quoted_spread", "spread_captured", "inventory_penalty", "fill_rate"):
            if name in summary and math.isfinite(summary[name]):
                logger.record(f"market/{name}", summary[name])
        elapsed = max(time.monotonic() - start, 1e-9)
        logger.record("time/fps", int(self.num_timesteps * len(self.seeds) / elapsed))
        logger.record("time/time_elapsed", int(elapsed))
        logger.record("time/total_timesteps", self.num_timesteps)

    def _grade_seeds(self, evaluation: PeriodicEvaluation) -> None:
        """Every seed's exact return as % of the benchmark, logged (``eval_seeds/``) and kept in the evaluation."""
        if not isinstance(evaluation, PolicyEvaluationCallback):
            return
        tag, benchmark = evaluation.benchmark_tag, evaluation.benchmark_value
        grades: dict[str, float] = {}
        for index, seed in enumerate(self.seeds):
            value = exact_return(self.policy(index), self.config.params)
            if value is None or benchmark == 0:
                return  # not exact for this model or observation: the first seed's Monte Carlo is logged
            grades[str(seed)] = 100.0 * value / benchmark
            self.logger.record(f"eval_seeds/exact_pct_of_{tag}_seed_{seed}", grades[str(seed)])
        self.logger.record(f"eval_seeds/exact_pct_of_{tag}_mean", float(np.mean(list(grades.values()))))
        evaluation.history[-1][f"exact_pct_of_{tag}_by_seed"] = grades  # type: ignore[assignment]


def build_jax_model(
    config: EnvConfig, hyperparams: dict[str, Any], seed: int, seeds: int, timesteps: int
) -> JaxPPOModel:
    """A new :class:`JaxPPOModel`: seeds ``seed, seed + 1, …, seed + seeds − 1``, ``timesteps`` each."""
    ppo = PPOConfig.from_dict(hyperparams)
    return JaxPPOModel(config, ppo, range(seed, seed + seeds), timesteps)


MAX_SEEDS = 4096
"""The most seeds a saved JAX model may hold."""
_ARRAY_SLACK = 1024**2
"""Bytes allowed in ``model.npz`` beyond its arrays' (each array's header, the zip's directory)."""


def load_jax_policies(run_dir: Path, config: EnvConfig, prefix: str = "", name: str = LABEL) -> list[JaxPolicy]:
    """A JAX run's saved model (``{prefix}model.npz`` and ``{prefix}model.json``) as policies, one per seed.

    Nothing is unpickled: the header is plain JSON, read bounded; the arrays are read with ``allow_pickle=False``
    within the bytes that the header's networks need, and their names and shapes must be those networks'.
    :class:`RunFolderError` (one line) if the files are missing, damaged or do not fit.
    """
    arrays_path, header_path = models.arrays_paths(run_dir, prefix)
    header = models.read_arrays_header(run_dir, prefix)
    try:
        if header.get("format") != PARAMS_FORMAT:
            raise ValueError(f"not {PARAMS_FORMAT!r}")
        seeds = header.get("seeds")
        if not (
            isinstance(seeds, list)
            and 1 <= len(seeds) <= MAX_SEEDS
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        ):
            raise ValueError(f"seeds is not a list of 1 to {MAX_SEEDS} integers")
        hyperparams = header.get("hyperparams")
        if not isinstance(hyperparams, dict):
            raise ValueError("no hyperparams")
        ppo = PPOConfig.from_dict(hyperparams)
        obs_size, n_actions = len(config.features), 2
        if (header.get("obs_size"), header.get("n_actions")) != (obs_size, n_actions):
            raise ValueError(
                f"networks for {header.get('obs_size')!r} observations and {header.get('n_actions')!r} actions, "
                f"the run's environment has {obs_size} and {n_actions}"
            )
        shapes = expected_shapes(ppo, obs_size, n_actions)
    except ValueError as error:
        raise RunFolderError(f"{header_path} is damaged: {error}") from None
    budget = len(seeds) * 4 * sum(math.prod(shape) for shape in shapes.values()) + _ARRAY_SLACK
    named = models.read_arrays(run_dir, budget, prefix)
    try:
        params = params_from_named(named, ppo, obs_size, n_actions)
        count = 1 if named["log_std"].ndim == 1 else named["log_std"].shape[0]
        if count != len(seeds):
            raise ValueError(f"arrays of {count} seed(s), the header lists {len(seeds)}")
    except ValueError as error:
        raise RunFolderError(f"{arrays_path} does not fit {header_path.name}: {error}") from None
    if len(seeds) == 1:
        one = params if params["log_std"].ndim == 1 else _seed_params(params, 0)
        return [JaxPolicy(one, name, ppo.activation, config.normalize_actions, config.features)]
    return [
        JaxPolicy(
            _seed_params(params, index),
            name.replace(LABEL, f"{LABEL} seed {seed}", 1),
            ppo.activation,
            config.normalize_actions,
            config.features,
            seed,
        )
        for index, seed in enumerate(seeds)
    ]
