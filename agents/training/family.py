"""A market family: what the one training pipeline needs to know of a kind of market, declared once.

The pipeline (:mod:`agents.training.experiment`: ``train.py``, ``--evaluate``, ``--continue-from``, sweeps, run
folders, TensorBoard) runs every family the same way, as the RL Zoo's experiment manager runs every env family. A
family says how to build the training env, what the exact reference is (the DP, the exact game) or else the best
tuned heuristic, how a policy is judged while training and at the end, what TensorBoard shows, and what a sweep reads
of a finished run. One market maker (:mod:`agents.training.market`) and competing market makers
(:mod:`agents.training.game`) are the two; :mod:`agents.training.families` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import gymnasium as gym
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from agents.exact.dp import table_memory_reason
from agents.storage.run_folder import CONFIG_FILE, RunFolderError
from agents.training.callbacks import PeriodicEvaluation
from agents.training.tensorboard import Layout
from mm_env.limits import simulation_problem
from mm_env.multi_asset.params import MultiAssetParams
from mm_env.params import CompetitionParams, MarketParams


@dataclass(frozen=True)
class FinalReport:
    """What a family's final comparison hands the pipeline, besides the files it wrote."""

    table: str
    """A short Markdown table for TensorBoard's text tab."""
    metrics: tuple[str, ...]
    """The ``eval/`` tags that TensorBoard's HParams tab shows for the run (the last periodic evaluation's)."""


@dataclass(frozen=True)
class RunMetrics:
    """What a sweep reads of a finished run's ``comparison.json``: its agent against the family's benchmark."""

    pct: float
    """The final model's return as % of the benchmark."""
    best_pct: float | None
    """The same for the best periodic evaluation's model (``None`` if the run kept none)."""
    mean_return: float
    benchmark: str
    """The benchmark's name (``DP optimum``, the best tuned heuristic, ``exact best response``)."""
    benchmark_value: float
    """The benchmark's value that the percentage divides by."""
    exact: bool
    """Whether the benchmark is exact (the DP, the exact best response), else the best tuned heuristic."""


class MarketFamily(Protocol):
    """One kind of market, as the training pipeline sees it (see the module's docstring).

    An instance is one market of the family, built from an env id and its keywords (:meth:`from_env`), every value
    checked.
    """

    entry_points: ClassVar[tuple[str, ...]]
    """The entry points of the env ids of this family (how :func:`agents.training.families.family_of` finds it)."""
    setup_keys: ClassVar[tuple[str, ...]]
    """The env keywords that are not model parameters (kept when a run's recorded parameters rebuild its market)."""

    @property
    def env_id(self) -> str:
        """The registered env id."""

    @property
    def label(self) -> str:
        """A few words for the console after the env id (``self-play``), or ``""``."""

    @property
    def params(self) -> MarketParams | CompetitionParams | MultiAssetParams:
        """The model."""

    @classmethod
    def from_env(cls, env_id: str, env_kwargs: dict[str, Any]) -> MarketFamily:
        """The market of this env id and these keywords; ``ValueError`` naming what is wrong."""

    def check_n_envs(self, n_envs: int) -> None:
        """Refuse a number of training envs the family cannot use (``ValueError``)."""

    def size_problem(self, eval_episodes: int, final_episodes: int) -> str | None:
        """Why the run's evaluations would not fit in memory or time (``mm_env.limits``), in one line, or ``None``."""

    def recorded_params(self) -> dict[str, Any]:
        """The model's parameters as ``config.yaml`` records them: keywords that rebuild it exactly."""

    def make_env(self, n_envs: int, seed: int, normalize: dict[str, Any] | bool | None) -> VecEnv:
        """The batched SB3 training env, monitored, and normalised if the hyperparameters say so."""

    def prepare_reference(self) -> None:
        """Compute the reference the run is judged against (it may take seconds: before the run folder exists)."""

    def periodic_evaluation(
        self, model: Any, run_dir: Path, eval_freq: int, episodes: int, seed: int
    ) -> PeriodicEvaluation:
        """The callback that judges the model every ``eval_freq`` steps and logs it under ``eval/``.

        ``model`` is an SB3 algorithm, or a JAX run's model (:class:`agents.training.jax_backend.JaxPPOModel`), which
        acts and saves like one.
        """

    def layout(self) -> Layout:
        """TensorBoard's custom-scalars charts of a run."""

    def load_agents(self, run_dir: Path, saved: dict[str, Any], device: str) -> list[Any]:
        """The run's saved agents as policies of this family (``RunFolderError`` if they cannot be loaded)."""

    def final_comparison(self, agents: list[Any], episodes: int, seed: int, out_dir: Path) -> FinalReport:
        """Compare the run's agents with the references on common random numbers; print and write the table."""

    @staticmethod
    def run_metrics(comparison: dict[str, Any], algo: str) -> RunMetrics:
        """A finished run's figures for a sweep, from its ``comparison.json`` (``ValueError`` if it has none)."""


def registered_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords an env id makes with: its registration's, under the given ones (``ValueError`` if unknown)."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(f"--env {env_id!r} is not a registered environment id ({error})") from None
    kwargs = {**spec.kwargs, **env_kwargs}
    kwargs.pop("render_mode", None)
    return kwargs


def check_trainable(market: MarketParams) -> None:
    """Refuse a market with nothing to learn, or whose exact tables would not fit in memory (``ValueError``)."""
    if not market.fill.quotes_matter:
        raise ValueError("article mode has nothing to learn: every order fills whatever the quotes")
    reason = table_memory_reason(market)
    if reason is not None:
        raise ValueError(f"--env-kwargs: {reason}; choose a smaller T or I_max")


def monitored(venv: VecEnv, seed: int, normalize: dict[str, Any] | bool | None) -> VecEnv:
    """A training env seeded, monitored (episode statistics), and normalised if the hyperparameters say so."""
    venv.seed(seed)
    monitored_env: VecEnv = VecMonitor(venv)
    if normalize:
        monitored_env = VecNormalize(monitored_env, **(normalize if isinstance(normalize, dict) else {}))
    return monitored_env


def saved_env_kwargs(
    family: type[MarketFamily], saved: dict[str, Any], run_dir: Path
) -> tuple[MarketFamily, dict[str, Any], list[str]]:
    """The market a run was trained on, the env keywords that rebuild it exactly, and the parameters that needed it.

    ``config.yaml`` records the run's ``env_kwargs`` and the full model parameters they gave (``params``). Should
    the two disagree (a default changed since, or the file was edited), **the recorded params win**: a run is
    evaluated and continued on exactly the market it was trained on. The keywords are then the run's set-up keywords
    (``setup_keys``) plus the recorded params in full, and the second value lists the parameters that differ. A run
    that records no ``params`` keeps its ``env_kwargs``. Raises :class:`RunFolderError` if either cannot build one.
    """
    env_id, env_kwargs = saved["env_id"], dict(saved.get("env_kwargs") or {})
    path = run_dir / CONFIG_FILE
    try:
        market = family.from_env(env_id, env_kwargs)
    except ValueError as error:
        raise RunFolderError(f"{path}: env_kwargs {env_kwargs} cannot build the env: {error}") from None
    recorded = saved.get("params")
    if not recorded:
        return market, env_kwargs, []
    kept = {key: value for key, value in env_kwargs.items() if key in family.setup_keys}
    try:
        recorded_market = family.from_env(env_id, {**kept, **recorded})
    except (TypeError, ValueError) as error:
        raise RunFolderError(f"{path}: the recorded params cannot build a model: {error}") from None
    current, rebuilt = market.recorded_params(), recorded_market.recorded_params()
    if rebuilt == current:
        return market, env_kwargs, []
    differences = [
        f"{name}: {current.get(name)!r} → {value!r}" for name, value in rebuilt.items() if current.get(name) != value
    ]
    return recorded_market, {**kept, **rebuilt}, differences


def recorded_params_note(differences: list[str]) -> str | None:
    """A one-line note for a run whose recorded params differ from what its ``env_kwargs`` give now."""
    if not differences:
        return None
    return (
        "note: config.yaml's env_kwargs now give another model than the run was trained on "
        f"({'; '.join(differences)}); using the recorded params"
    )


def episodes_problem(T: int, eval_episodes: int, final_episodes: int, makers: int = 1) -> str | None:
    """Why the periodic or the final Monte Carlo evaluation would be too large (one line naming the option), or None.

    :func:`mm_env.limits.simulation_problem` for both.
    """
    for name, episodes in (("--eval-episodes", eval_episodes), ("--final-episodes", final_episodes)):
        problem = simulation_problem(episodes, T, name, makers)
        if problem is not None:
            return problem
    return None
