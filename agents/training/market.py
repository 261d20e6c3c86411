"""One market maker (``mm_env/MarketMaking-v0`` and the ids registered on its entry point), as a market family.

The reference is the DP optimum where the model has one, else the best tuned heuristic; the final comparison is the
standard baseline set on common random numbers (:func:`agents.evaluation.compare.baseline_policies`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

import mm_env  # noqa: F401  (registers the ids)
from agents.evaluation.compare import PolicyReport, baseline_policies, compare
from agents.evaluation.figures import episode_figure, policy_figure
from agents.evaluation.report import COMPACT_COLUMNS, markdown_table, write_report
from agents.evaluation.rollout import episode_history
from agents.evaluation.tuning import best_tuned_heuristic, tuning_problem
from agents.exact.dp import exact_solution
from agents.policies.base import Policy
from agents.policies.learned import ObservationPolicy, SB3Policy
from agents.policies.tabular import DP_NAME
from agents.storage import files, models
from agents.storage.run_folder import RunFolderError
from agents.training.algorithm import load_model
from agents.training.callbacks import PolicyEvaluationCallback
from agents.training.family import (
    FinalReport,
    RunMetrics,
    check_trainable,
    episodes_problem,
    monitored,
    registered_kwargs,
)
from agents.training.hyperparameters import normalises_observations
from agents.training.tensorboard import Layout, market_maker_layout
from mm_env.config import EnvConfig
from mm_env.params import MarketParams
from mm_env.sb3_vec_env import MarketMakingVecEnv


def env_config(env_id: str, env_kwargs: dict[str, Any]) -> EnvConfig:
    """Resolve a registered one-MM env id plus keyword arguments into its :class:`EnvConfig`.

    Raises ``ValueError`` for an unknown id, an id of another family, or an invalid keyword.
    """
    kwargs = registered_kwargs(env_id, env_kwargs)
    entry_point = gym.spec(env_id).entry_point
    if entry_point not in OneMarketMaker.entry_points:
        raise ValueError(f"--env {env_id!r} is not a one-market-maker environment of mm_env ({entry_point})")
    return EnvConfig.from_kwargs(**kwargs)


def _print_now(line: str) -> None:
    print(line, flush=True)


@dataclass
class OneMarketMaker:
    """One market maker: its env configuration (the model, the observation, the action map)."""

    entry_points: ClassVar[tuple[str, ...]] = ("mm_env.env:MarketMakingEnv",)
    setup_keys: ClassVar[tuple[str, ...]] = ("observation_features", "normalize_actions")
    env_id: str
    config: EnvConfig
    label: str = ""
    benchmark: Policy | None = field(default=None, repr=False)
    """The best tuned heuristic where there is no DP optimum (after :meth:`prepare_reference`)."""

    @classmethod
    def from_env(cls, env_id: str, env_kwargs: dict[str, Any]) -> OneMarketMaker:
        """The market of a one-MM env id and keywords; refuses what cannot be trained (``ValueError``)."""
        config = env_config(env_id, env_kwargs)
        check_trainable(config.params)
        return cls(env_id, config)

    @property
    def params(self) -> MarketParams:
        """The model."""
        return self.config.params

    def check_n_envs(self, n_envs: int) -> None:
        """Any number of envs will do."""

    def size_problem(self, eval_episodes: int, final_episodes: int) -> str | None:
        """The evaluations' episodes, and the final comparison's tuning of the heuristics.

        The tuning is also the benchmark of a model without an exact optimum.
        """
        problem = episodes_problem(self.params.T, eval_episodes, final_episodes)
        if problem is not None or not self.params.fill.quotes_matter:
            return problem
        return tuning_problem(self.params)

    def recorded_params(self) -> dict[str, Any]:
        """Every model parameter by its flat keyword."""
        return self.params.as_dict()

    def make_env(self, n_envs: int, seed: int, normalize: dict[str, Any] | bool | None) -> VecEnv:
        """The batched SB3 env, monitored, and normalised if the hyperparameters say so."""
        config = self.config
        venv = MarketMakingVecEnv(
            n_envs, config.params, observation_features=config.features, normalize_actions=config.normalize_actions
        )
        return monitored(venv, seed, normalize)

    def prepare_reference(self) -> None:
        """Tune the heuristics where the model has no DP optimum (the periodic evaluations' benchmark)."""
        if exact_solution(self.params) is None and self.benchmark is None:
            print("no exact optimum: tuning the heuristics, the benchmark to judge against …", flush=True)
            self.benchmark = best_tuned_heuristic(self.params).policy

    def periodic_evaluation(
        self, model: BaseAlgorithm, run_dir: Path, eval_freq: int, episodes: int, seed: int
    ) -> PolicyEvaluationCallback:
        """Against the DP where the model has one, else against the best tuned heuristic; keeps the best model."""
        if exact_solution(self.params) is None and self.benchmark is None:
            self.prepare_reference()
        return PolicyEvaluationCallback(
            self.config,
            eval_freq,
            episodes,
            seed,
            run_dir,
            obs_normalizer_getter=lambda: models.find_vec_normalize(model.get_env()),
            benchmark=self.benchmark,
        )

    def layout(self) -> Layout:
        """The agent against the DP (or the best tuned heuristic) and the article rule."""
        return market_maker_layout("dp" if exact_solution(self.params) is not None else "best_heuristic")

    def load_agents(self, run_dir: Path, saved: dict[str, Any], device: str) -> list[ObservationPolicy]:
        """The final model and, if kept, the best periodic evaluation's, as policies.

        A JAX run's (``backend: jax``) are :class:`~agents.training.jax_backend.JaxPolicy`: one per seed, and the
        best evaluation's where the run trained one seed.
        """
        config, hyperparams = self.config, saved.get("hyperparams") or {}
        if saved.get("backend") == "jax":
            return _jax_agents(run_dir, config)
        label = saved["algo"].upper()
        agents: list[ObservationPolicy] = []
        for prefix, name in (("", f"{label} (final)"), ("best_", f"{label} (best evaluation)")):
            path = models.model_path(run_dir, prefix)
            if not path.exists():
                continue
            shell = MarketMakingVecEnv(
                1, config.params, observation_features=config.features, normalize_actions=config.normalize_actions
            )
            model = load_model(
                saved["algo"], path, hyperparams, shell.observation_space, shell.action_space, device=device
            )
            # Statistics that are there are read (and checked) even where they change nothing (rewards only).
            normalizer = models.read_statistics(run_dir, shell, prefix, required=normalises_observations(hyperparams))
            agents.append(SB3Policy(model, name, normalizer, config.normalize_actions, config.features))
        if not agents:
            raise RunFolderError(f"{run_dir} has no {models.model_path(run_dir).name} (nor a best model)")
        return agents

    def final_comparison(self, agents: list[ObservationPolicy], episodes: int, seed: int, out_dir: Path) -> FinalReport:
        """The agents against the baselines of :func:`~agents.evaluation.compare.baseline_policies`.

        The DP optimum where it exists, the article's rule (published and tuned), the linear skew (tuned and the
        reference), the closed forms where they apply, on ``episodes`` common-random-number episodes; prints the
        table and writes ``comparison.md``, ``comparison.json``, ``policies.png`` and ``episode.png``.
        """
        params = self.params
        print("final comparison: tuning the article rule and the linear skew …", flush=True)
        baselines, benchmark = baseline_policies(params, strawmen=False)
        policies = [*agents, *baselines]
        print(f"final comparison: {len(policies)} policies on {episodes:,} common-random-number episodes", flush=True)
        rows = compare(policies, params, episodes, seed, benchmark=benchmark, progress=_print_now)
        table = markdown_table(rows, benchmark)
        seeds = seeds_summary(agents, rows, benchmark)
        seeds_line = "" if seeds is None else f"\n\n{seeds['line']}"
        print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}{seeds_line}")
        meta: dict[str, Any] = {"episodes": episodes, "seed": seed, **({"seeds": seeds} if seeds else {})}
        with files.staged_files(out_dir) as staging:  # write_report writes plain files: staged, then renamed
            write_report(rows, params, staging, meta, benchmark)
            if seeds_line:
                with (staging / "comparison.md").open("a") as report:
                    report.write(seeds_line.lstrip("\n") + "\n")
        markov_agents = [agent for agent, row in zip(agents, rows, strict=False) if row.exact_return is not None]
        shown = [*baselines[:5], *markov_agents]
        files.write_figure(policy_figure(shown, params), out_dir / "policies.png")
        history = episode_history(agents[0], params, seed)
        figure = episode_figure(history, title=f"{agents[0].name}, one episode (seed {seed})")
        files.write_figure(figure, out_dir / "episode.png")
        print(f"wrote {out_dir / 'comparison.md'}, comparison.json, policies.png and episode.png")
        tag = "dp" if benchmark is None else "best_heuristic"
        note = "\n\nAll columns (P&L, risk, inventory, fills, spread): comparison.md in the run folder."
        return FinalReport(
            markdown_table(rows, benchmark, columns=COMPACT_COLUMNS) + seeds_line + note,
            (f"eval/exact_pct_of_{tag}", f"eval/pct_of_{tag}", "eval/mean_return"),
        )

    @staticmethod
    def run_metrics(comparison: dict[str, Any], algo: str) -> RunMetrics:
        """The agent's row of ``comparison.json`` against the DP optimum or the best tuned heuristic."""
        rows = {row["policy"]: row for row in comparison["rows"]}
        final, best = rows.get(f"{algo.upper()} (final)"), rows.get(f"{algo.upper()} (best evaluation)")
        benchmark = comparison.get("benchmark")
        if (
            final is None
            or not isinstance(benchmark, str)
            or benchmark not in rows
            or final["pct_of_benchmark"] is None
        ):
            raise ValueError(f"comparison.json has no {algo.upper()} row measured against a benchmark")
        reference = rows[benchmark]
        # The DP's row carries its exact value, which is what % of DP divides by; a heuristic is judged by its mean.
        value = reference["exact_return"] if benchmark == DP_NAME else reference["mean_return"]
        return RunMetrics(
            pct=float(final["pct_of_benchmark"]),
            best_pct=None if best is None or best["pct_of_benchmark"] is None else float(best["pct_of_benchmark"]),
            mean_return=float(final["mean_return"]),
            benchmark=benchmark,
            benchmark_value=float(value),
            exact=benchmark == DP_NAME,
        )


def _jax_agents(run_dir: Path, config: EnvConfig) -> list[ObservationPolicy]:
    """A JAX run's final model (one policy per seed) and, for one seed, the best evaluation's, if kept."""
    from agents.training.jax_backend import LABEL, load_jax_policies  # imports JAX: for JAX runs only

    if not models.arrays_paths(run_dir)[0].exists() and not models.arrays_paths(run_dir, "best_")[0].exists():
        raise RunFolderError(f"{run_dir} has no {models.arrays_paths(run_dir)[0].name} (nor a best model)")
    agents: list[ObservationPolicy] = []
    if models.arrays_paths(run_dir)[0].exists():
        agents.extend(load_jax_policies(run_dir, config, "", f"{LABEL} (final)"))
    if len(agents) <= 1 and models.arrays_paths(run_dir, "best_")[0].exists():
        agents.extend(load_jax_policies(run_dir, config, "best_", f"{LABEL} (best evaluation)"))
    return agents


def seeds_summary(
    agents: Sequence[ObservationPolicy], rows: Sequence[PolicyReport], benchmark: str | None
) -> dict[str, Any] | None:
    """The mean ± standard error over the seeds of a run of several (agents with a ``seed``), or ``None``.

    Of the exact return as % of the DP optimum where every seed has one, else of the Monte Carlo % of the benchmark.
    Holds ``line`` (for the table), ``mean``, ``se``, ``n``, ``exact`` and ``by_seed``.
    """
    seeded = [
        (agent, row) for agent, row in zip(agents, rows, strict=False) if getattr(agent, "seed", None) is not None
    ]
    if len(seeded) < 2:
        return None
    dp = next((row.exact_return for row in rows if row.policy == DP_NAME), None)
    exact = dp is not None and dp != 0 and all(row.exact_return is not None for _, row in seeded)
    values: list[float] = []
    for _, row in seeded:
        if exact:
            assert row.exact_return is not None and dp is not None
            values.append(100.0 * row.exact_return / dp)
        elif row.pct_of_benchmark is not None:
            values.append(row.pct_of_benchmark)
    if len(values) < 2:
        return None
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))
    what = "exact return, % of the DP optimum" if exact else f"Monte Carlo return, % of the {benchmark or 'benchmark'}"
    label = seeded[0][1].policy.split(" seed ")[0]
    line = f"{label}, {len(values)} seeds: {mean:.2f} ± {se:.2f} ({what}; mean ± s.e. over the seeds)"
    by_seed = {str(getattr(agent, "seed", None)): value for (agent, _), value in zip(seeded, values, strict=False)}
    return {"line": line, "mean": mean, "se": se, "n": len(values), "exact": exact, "by_seed": by_seed}
