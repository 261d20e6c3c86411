"""One market maker quoting several assets (``mm_env/MultiAssetMarketMaking-v0``), as a market family.

The reference is the exact DP optimum of the multi-asset model (:func:`agents.exact.multi_asset.solve_multi_asset`,
``MODEL.md`` §9.5). A policy is judged exactly (:func:`agents.exact.multi_asset.evaluate_multi_asset`: the mean and
standard deviation of its episode return, the learned agent's read over the whole grid) and by Monte Carlo on common
random numbers (the same seed for every policy). The final comparison sets the agents beside the baselines of §9.6:
the optimum, the independent one-asset optima (no cross-hedging), BEGV with ``A(τ)`` and ergodic where it applies,
the tuned linear skews and the article's rule per asset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.evaluation.multi_asset import baseline_policies, quotes_figure
from agents.exact.multi_asset import (
    MultiAssetSolution,
    evaluate_multi_asset,
    independent_value,
    multi_asset_size_problem,
    solve_multi_asset,
)
from agents.policies.multi_asset import BEGV, ConstantOffset, FromObservations, MultiAssetDP, MultiAssetPolicy
from agents.storage import files, models
from agents.storage.run_folder import RunFolderError
from agents.training.algorithm import load_model
from agents.training.callbacks import PeriodicEvaluation
from agents.training.family import FinalReport, RunMetrics, episodes_problem, monitored, registered_kwargs
from agents.training.hyperparameters import normalises_observations
from agents.training.interrupts import DeferredInterrupts
from agents.training.tensorboard import Layout, chart
from mm_env.multi_asset.batch import MultiAssetBatch
from mm_env.multi_asset.config import MultiAssetConfig
from mm_env.multi_asset.params import MultiAssetParams
from mm_env.multi_asset.sb3_vec_env import MultiAssetMarketMakingVecEnv

DP_NAME = "DP optimum"
"""The benchmark's name in a comparison (the exact optimum's row)."""
ENTRY_POINT = "mm_env.multi_asset.env:MultiAssetMarketMakingEnv"


def learned_policy(model: Any, name: str, normalizer: VecNormalize | None, normalized: bool) -> FromObservations:
    """A model's deterministic ``predict`` as a multi-asset policy, on observations normalised as in training."""

    def act(observations: np.ndarray) -> np.ndarray:
        if normalizer is not None and getattr(normalizer, "norm_obs", False):
            observations = np.asarray(normalizer.normalize_obs(observations))
        actions, _ = model.predict(observations, deterministic=True)
        return np.asarray(actions)

    return FromObservations(act, name, normalized)


def monte_carlo_returns(policy: MultiAssetPolicy, params: MultiAssetParams, episodes: int, seed: int) -> np.ndarray:
    """The episode returns of ``episodes`` episodes on the env's batch, seeded by ``seed`` (common random numbers)."""
    batch = MultiAssetBatch(MultiAssetConfig(params, normalize_actions=False), episodes)
    rng = np.random.default_rng(seed)
    returns = np.zeros(episodes)
    for t in range(params.T):
        offsets = policy.offsets(t, np.asarray(batch.state.inventory), params)
        outcome, _ = batch.step(np.reshape(offsets, (episodes, 2 * params.d)), rng)
        returns += outcome.reward
    return returns


@dataclass(frozen=True)
class ComparisonRow:
    """One policy's figures in a comparison (``comparison.json``'s rows)."""

    policy: str
    exact_return: float
    """The exact expected episode return from ``t = 0``, ``I = 0``."""
    exact_sd: float
    """The exact standard deviation of the episode return."""
    mean_return: float
    """The Monte Carlo mean over the comparison's episodes."""
    return_se: float
    """Its standard error."""
    pct_of_benchmark: float | None
    """The exact return as % of the DP optimum's."""


def compare_policies(
    policies: list[MultiAssetPolicy], params: MultiAssetParams, episodes: int, seed: int, optimum: float
) -> list[ComparisonRow]:
    """Each policy evaluated exactly and by Monte Carlo (the same episodes for every policy)."""
    rows = []
    for policy in policies:
        exact = evaluate_multi_asset(params, policy.grid_function(params))
        returns = monte_carlo_returns(policy, params, episodes, seed)
        rows.append(
            ComparisonRow(
                policy=policy.name,
                exact_return=exact.mean,
                exact_sd=exact.sd,
                mean_return=float(returns.mean()),
                return_se=float(returns.std(ddof=1) / math.sqrt(episodes)) if episodes > 1 else 0.0,
                pct_of_benchmark=100.0 * exact.mean / optimum if optimum != 0 else None,
            )
        )
    return rows


def comparison_table(rows: list[ComparisonRow]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| policy | exact E[return] | exact sd | % of DP | Monte Carlo mean | ± se |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        pct = "–" if row.pct_of_benchmark is None else f"{row.pct_of_benchmark:.2f}"
        lines.append(
            f"| {row.policy} | {row.exact_return:.4f} | {row.exact_sd:.2f} | {pct} | {row.mean_return:.2f} | "
            f"{row.return_se:.2f} |"
        )
    return "\n".join(lines)


class MultiAssetEvaluationCallback(PeriodicEvaluation):
    """Every ``eval_freq`` environment steps, evaluates the deterministic policy and logs it under ``eval/``.

    ``eval/exact_return`` and ``eval/exact_pct_of_dp`` (the exact expected return over the grid, and as % of the
    optimum), ``eval/mean_return`` ± ``eval/return_se`` and ``eval/pct_of_dp`` (Monte Carlo on fixed seeds), and on
    the same scale ``eval/dp_return`` and ``eval/independent_return`` (the independent one-asset optima: no
    cross-hedging). The best model by its exact return is saved as ``best_model.zip``.
    """

    def __init__(
        self,
        config: MultiAssetConfig,
        optimum: float,
        independent: float,
        eval_freq: int,
        episodes: int,
        seed: int,
        run_dir: Path,
        obs_normalizer_getter: Callable[[], VecNormalize | None] = lambda: None,
    ) -> None:
        super().__init__()
        self.config, self.params = config, config.params
        self.optimum, self.independent = optimum, independent
        self.eval_freq, self.episodes, self.seed = eval_freq, episodes, seed
        self.run_dir, self.obs_normalizer_getter = run_dir, obs_normalizer_getter
        self.best_score = -math.inf
        self.history: list[dict[str, Any]] = []
        self._next = eval_freq

    def _pct(self, value: float) -> float | None:
        return None if self.optimum == 0 else 100.0 * value / self.optimum

    def evaluate(self) -> dict[str, Any]:
        """Run one evaluation now (unless one just ran at this step), log it, print a line and return its figures."""
        if self.history and self.history[-1]["timesteps"] == self.num_timesteps:
            return self.history[-1]
        agent = learned_policy(self.model, "agent", self.obs_normalizer_getter(), self.config.normalize_actions)
        exact = evaluate_multi_asset(self.params, agent.grid_function(self.params)).mean
        returns = monte_carlo_returns(agent, self.params, self.episodes, self.seed)
        mean = float(returns.mean())
        se = float(returns.std(ddof=1) / math.sqrt(len(returns))) if len(returns) > 1 else 0.0
        result = {
            "timesteps": self.num_timesteps,
            "exact_return": exact,
            "exact_pct_of_dp": self._pct(exact),
            "mean_return": mean,
            "return_se": se,
            "pct_of_dp": self._pct(mean),
            "dp_return": self.optimum,
            "independent_return": self.independent,
        }
        for key, value in result.items():
            if key != "timesteps" and value is not None:
                self.logger.record(f"eval/{key}", value)
        pct = result["exact_pct_of_dp"]
        shown = "" if pct is None else f" ({pct:.1f}% of DP)"
        print(
            f"evaluation at step {self.num_timesteps:,}: exact {exact:.2f}{shown}, Monte Carlo {mean:.2f} ± {se:.2f}",
            flush=True,
        )
        self.history.append(result)
        if exact > self.best_score:
            self.best_score = exact
            with DeferredInterrupts():  # the model and its statistics, both or neither
                models.save_model(self.model, self.run_dir, prefix="best_")
        self.logger.dump(self.num_timesteps)
        return result


@dataclass
class MultiAssetMarketMaker:
    """One market maker quoting ``d`` assets: its env configuration (the model and the action map)."""

    entry_points: ClassVar[tuple[str, ...]] = (ENTRY_POINT,)
    setup_keys: ClassVar[tuple[str, ...]] = ("normalize_actions",)
    env_id: str
    config: MultiAssetConfig
    solution: MultiAssetSolution | None = field(default=None, repr=False)
    """The exact optimum (after :meth:`prepare_reference`)."""
    independent: float | None = field(default=None, repr=False)
    """The exact value of the independent one-asset optima (after :meth:`prepare_reference`)."""

    @property
    def label(self) -> str:
        """``d assets``."""
        return f"{self.params.d} assets"

    @property
    def params(self) -> MultiAssetParams:
        """The model."""
        return self.config.params

    @classmethod
    def from_env(cls, env_id: str, env_kwargs: dict[str, Any]) -> MultiAssetMarketMaker:
        """The market of a multi-asset env id and keywords; refuses one whose exact DP would not fit (ValueError)."""
        kwargs = registered_kwargs(env_id, env_kwargs)
        entry_point = gym.spec(env_id).entry_point
        if entry_point not in cls.entry_points:
            raise ValueError(f"--env {env_id!r} is not a multi-asset environment of mm_env ({entry_point})")
        config = MultiAssetConfig.from_kwargs(**kwargs)
        reason = multi_asset_size_problem(config.params)
        if reason is not None:
            raise ValueError(f"--env-kwargs: {reason}")
        return cls(env_id, config)

    def check_n_envs(self, n_envs: int) -> None:
        """Any number of envs will do."""

    def size_problem(self, eval_episodes: int, final_episodes: int) -> str | None:
        """The evaluations' episodes (the exact DP was checked when the market was built)."""
        return episodes_problem(self.params.T, eval_episodes, final_episodes)

    def recorded_params(self) -> dict[str, Any]:
        """Every model parameter by its keyword (:meth:`~mm_env.multi_asset.params.MultiAssetParams.as_dict`)."""
        return self.params.as_dict()

    def make_env(self, n_envs: int, seed: int, normalize: dict[str, Any] | bool | None) -> VecEnv:
        """The batched SB3 env, monitored, and normalised if the hyperparameters say so."""
        venv = MultiAssetMarketMakingVecEnv(n_envs, self.params, normalize_actions=self.config.normalize_actions)
        return monitored(venv, seed, normalize)

    def prepare_reference(self) -> None:
        """Solve the model exactly, and evaluate the independent one-asset optima (once)."""
        if self.solution is None:
            print(f"solving the {self.params.d}-asset model exactly …", flush=True)
            self.solution = solve_multi_asset(self.params)
            self.independent = independent_value(self.params)

    def _solution(self) -> MultiAssetSolution:
        self.prepare_reference()
        assert self.solution is not None  # set by prepare_reference
        return self.solution

    def periodic_evaluation(
        self, model: BaseAlgorithm, run_dir: Path, eval_freq: int, episodes: int, seed: int
    ) -> MultiAssetEvaluationCallback:
        """Against the exact optimum; keeps the best model by its exact return."""
        solution = self._solution()
        return MultiAssetEvaluationCallback(
            self.config,
            solution.value,
            self.independent if self.independent is not None else math.nan,
            eval_freq,
            episodes,
            seed,
            run_dir,
            obs_normalizer_getter=lambda: models.find_vec_normalize(model.get_env()),
        )

    def layout(self) -> Layout:
        """The agent's exact and Monte Carlo returns as % of the DP optimum, and its exact return."""
        return {
            "several assets vs the DP optimum (deterministic policy, each evaluation)": {
                "exact return, % of the DP optimum (100 = optimal)": chart("eval/exact_pct_of_dp"),
                "Monte Carlo return, % of the DP optimum": chart("eval/pct_of_dp"),
                "exact return (the optimum's: eval/dp_return)": chart("eval/exact_return"),
            }
        }

    def load_agents(self, run_dir: Path, saved: dict[str, Any], device: str) -> list[FromObservations]:
        """The final model and, if kept, the best periodic evaluation's, as policies."""
        hyperparams = saved.get("hyperparams") or {}
        label = saved["algo"].upper()
        agents = []
        for prefix, name in (("", f"{label} (final)"), ("best_", f"{label} (best evaluation)")):
            path = models.model_path(run_dir, prefix)
            if not path.exists():
                continue
            shell = MultiAssetMarketMakingVecEnv(1, self.params, normalize_actions=self.config.normalize_actions)
            model = load_model(
                saved["algo"], path, hyperparams, shell.observation_space, shell.action_space, device=device
            )
            normalizer = models.read_statistics(run_dir, shell, prefix, required=normalises_observations(hyperparams))
            agents.append(learned_policy(model, name, normalizer, self.config.normalize_actions))
        if not agents:
            raise RunFolderError(f"{run_dir} has no {models.model_path(run_dir).name} (nor a best model)")
        return agents

    def baselines(self) -> list[MultiAssetPolicy]:
        """The baselines of ``MODEL.md`` §9.8's table (:func:`agents.evaluation.multi_asset.baseline_policies`).

        The optimum, the independent one-asset optima, BEGV where it applies, the tuned linear skews and the
        article's rule per asset; not the constant offset, a strawman.
        """
        policies = baseline_policies(self.params, tuned=True)
        return [policy for policy in policies if not isinstance(policy, ConstantOffset)]

    def final_comparison(self, agents: list[Any], episodes: int, seed: int, out_dir: Path) -> FinalReport:
        """The agents against the baselines, exactly and on ``episodes`` common-random-number episodes.

        Prints the table and writes ``comparison.md`` and ``comparison.json`` (rows: ``policy``, ``exact_return``,
        ``exact_sd``, ``mean_return``, ``return_se``, ``pct_of_benchmark``; ``benchmark``: the DP optimum's name) and,
        with two assets, ``policies.png``: the quotes at ``t = 0`` over ``(I_1, I_2)`` of the DP optimum, BEGV (where
        it applies) and the first agent, a heatmap per side and asset.
        """
        params = self.params
        print("final comparison: tuning the linear skews …", flush=True)
        policies = [*agents, *self.baselines()]
        print(f"final comparison: {len(policies)} policies on {episodes:,} common-random-number episodes", flush=True)
        rows = compare_policies(policies, params, episodes, seed, self._solution().value)
        table = comparison_table(rows)
        print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}")
        payload = {
            "benchmark": DP_NAME,
            "episodes": episodes,
            "seed": seed,
            "params": params.as_dict(),
            "rows": [asdict(row) for row in rows],
        }
        with files.staged_files(out_dir) as staging:  # both files or neither, in a folder made if need be
            (staging / "comparison.json").write_text(json.dumps(payload, indent=2, allow_nan=True), encoding="utf-8")
            (staging / "comparison.md").write_text(f"{table}\n", encoding="utf-8")
        print(f"wrote {out_dir / 'comparison.md'} and comparison.json")
        if params.d == 2 and agents:
            references = [policy for policy in policies if isinstance(policy, MultiAssetDP | BEGV)][:2]  # DP, BEGV A(τ)
            files.write_figure(quotes_figure(params, [*references, agents[0]]), out_dir / "policies.png")
            print(f"wrote {out_dir / 'policies.png'}")
        return FinalReport(table, ("eval/exact_pct_of_dp", "eval/pct_of_dp", "eval/mean_return"))

    @staticmethod
    def run_metrics(comparison: dict[str, Any], algo: str) -> RunMetrics:
        """The agent's row of ``comparison.json`` against the DP optimum (``ValueError`` if it has none)."""
        rows = {row["policy"]: row for row in comparison.get("rows", [])}
        final, best = rows.get(f"{algo.upper()} (final)"), rows.get(f"{algo.upper()} (best evaluation)")
        reference = rows.get(DP_NAME)
        if final is None or reference is None or final.get("pct_of_benchmark") is None:
            raise ValueError(f"comparison.json has no {algo.upper()} row measured against the {DP_NAME}")
        return RunMetrics(
            pct=float(final["pct_of_benchmark"]),
            best_pct=None if best is None or best.get("pct_of_benchmark") is None else float(best["pct_of_benchmark"]),
            mean_return=float(final["mean_return"]),
            benchmark=DP_NAME,
            benchmark_value=float(reference["exact_return"]),
            exact=True,
        )


__all__ = [
    "DP_NAME",
    "ComparisonRow",
    "MultiAssetEvaluationCallback",
    "MultiAssetMarketMaker",
    "compare_policies",
    "comparison_table",
    "learned_policy",
    "monte_carlo_returns",
]
