"""Stable-Baselines3 callbacks: market-making scalars, the log-std schedule, and the periodic evaluations.

The periodic evaluations judge the deterministic policy every ``eval_freq`` steps and log it under ``eval/``: one
market maker's against the DP optimum or the best tuned heuristic (:class:`PolicyEvaluationCallback`), competing
market makers' against the exact game (:class:`GameEvaluationCallback`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback
from stable_baselines3.common.logger import Image
from stable_baselines3.common.vec_env import VecNormalize

from agents.evaluation.compare import exact_return
from agents.evaluation.figures import thumbnail_policy_figure
from agents.evaluation.game import ExactReference, GameReport, judge
from agents.evaluation.rollout import run_episodes
from agents.exact.dp import exact_solution, unsolvable_reason
from agents.policies.base import Policy
from agents.policies.heuristics import ArticleRule
from agents.policies.learned import LearnedJointPolicy, SB3Policy
from agents.policies.tabular import DPPolicy
from agents.storage import models
from agents.training.interrupts import DeferredInterrupts
from mm_env.config import EnvConfig
from mm_env.params import CompetitionParams

NOT_IN_TEXT_LOGS = ("stdout", "log", "json", "csv")


class MarketMetricsCallback(BaseCallback):
    """Logs, under ``market/``, what the agent does while it trains.

    Per environment-step means of ``|I|``, the quoted spread ``δ_b + δ_a``, the spread captured and the inventory
    penalty, and the fill rate (fills per arriving trader), all from the environments' ``info``. With several assets
    (arrays in ``info``) ``|I|`` is summed over the assets and the quoted spread averaged over them.
    """

    def _on_training_start(self) -> None:
        self._reset_sums()

    def _reset_sums(self) -> None:
        self.sums = dict.fromkeys(("abs_inventory", "spread", "captured", "penalty"), 0.0)
        self.fills = self.arrivals = self.steps = 0

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "inventory" not in info or "ask" not in info:
                continue
            inventory, bid, ask = info["inventory"], info["bid"], info["ask"]
            if isinstance(inventory, (int, float)):
                self.sums["abs_inventory"] += abs(inventory)
                self.sums["spread"] += ask - bid
            else:  # several assets: one value per asset
                self.sums["abs_inventory"] += float(np.abs(inventory).sum())
                self.sums["spread"] += float(np.mean(np.subtract(ask, bid)))
            self.sums["captured"] += info["spread_captured"]
            self.sums["penalty"] += info["inventory_penalty"]
            self.fills += info["fill_size"] > 0
            self.arrivals += info["trader_side"] != 0
            self.steps += 1
        return True

    def _on_rollout_end(self) -> None:
        if self.steps == 0:
            return
        self.logger.record_mean("market/mean_abs_inventory", self.sums["abs_inventory"] / self.steps)
        self.logger.record_mean("market/quoted_spread", self.sums["spread"] / self.steps)
        self.logger.record_mean("market/spread_captured", self.sums["captured"] / self.steps)
        self.logger.record_mean("market/inventory_penalty", self.sums["penalty"] / self.steps)
        if self.arrivals:
            self.logger.record_mean("market/fill_rate", self.fills / self.arrivals)
        self._reset_sums()


class ProgressBar(ProgressBarCallback):
    """SB3's progress bar, ending at the run's budget: the last rollout, which may overshoot it, fills the bar."""

    def _on_step(self) -> bool:
        self.pbar.update(min(self.training_env.num_envs, self.pbar.total - self.pbar.n))
        return True


class LogStdSchedule(BaseCallback):
    """Holds a Gaussian policy's log standard deviation on a schedule instead of learning it (PPO, A2C).

    The value moves linearly from ``start`` to ``end`` with SB3's progress and is set before each rollout, so that a
    rollout and the updates that learn from it see the same exploration noise. Why: the quotes a learned policy
    plays are its mean, but the mean that maximises the return of a noisy policy is wider than the best
    deterministic quote by about ``k·σ²`` (a noisy quote fills like a tighter one and earns like a wider one). A
    learned standard deviation shrinks too slowly for that gap to close within a short run. The end must not come too
    early or too low either: PPO's clipped ratio bounds each update's step of the mean to a fraction of ``σ``, so a
    mean that has not arrived when the noise is small stays where it is.
    """

    def __init__(self, start: float, end: float) -> None:
        super().__init__()
        self.start, self.end = float(start), float(end)

    def _on_training_start(self) -> None:
        log_std = getattr(self.model.policy, "log_std", None)
        if log_std is None or getattr(self.model, "use_sde", False):
            raise ValueError("log_std_schedule needs a Gaussian policy with a state-independent log_std (PPO or A2C)")
        log_std.requires_grad = False  # the schedule sets it; the optimiser leaves it alone
        self._log_std: Any = log_std

    def _on_rollout_start(self) -> None:
        done = min(max(1.0 - self.model._current_progress_remaining, 0.0), 1.0)
        self._log_std.data.fill_(self.start + (self.end - self.start) * done)

    def _on_step(self) -> bool:
        return True


class PeriodicEvaluation(BaseCallback):
    """Calls :meth:`evaluate` every ``eval_freq`` environment steps (set ``self.eval_freq`` in ``__init__``).

    ``history`` holds one entry per evaluation (written to the run's ``evaluations.json``).
    """

    eval_freq: int
    history: list[dict[str, Any]]

    def _on_training_start(self) -> None:
        # A continued run starts at its earlier step count: the next evaluation is the next multiple of eval_freq.
        self._next = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.eval_freq
            self.evaluate()
        return True

    def evaluate(self) -> object:
        """Evaluate the current model now."""
        raise NotImplementedError


class PolicyEvaluationCallback(PeriodicEvaluation):
    """Every ``eval_freq`` environment steps, evaluates the deterministic policy and logs it under ``eval/``.

    The benchmark is the DP optimum where the model has one (tags ``…dp…``), else the best tuned heuristic given as
    ``benchmark`` (tags ``…best_heuristic…``, on the same fixed episodes):

    * ``eval/mean_return`` ± ``eval/return_se`` and ``eval/pct_of_dp``: Monte Carlo over ``episodes`` episodes on
      fixed seeds (the same episodes at every evaluation);
    * ``eval/exact_return`` and ``eval/exact_pct_of_dp``: the exact expected return of the current policy (where the
      model and the agent's observation are Markov on the exact grid);
    * ``eval/dp_return`` and ``eval/article_rule_return``: the benchmark and the article's rule (Δ = 0.5, γ = 0.1)
      on the same scale, for comparison;
    * ``eval/policy``: the policy figure (the agent's offsets against inventory, with the benchmark's and the rule's).

    The best model so far (by the exact value, else by the Monte Carlo mean) is saved as ``best_model.zip``, with
    ``best_vecnormalize.json`` if the env normalises, atomically (a Ctrl-C during the save takes effect after it).
    """

    def __init__(
        self,
        config: EnvConfig,
        eval_freq: int,
        episodes: int,
        seed: int,
        run_dir: Path,
        obs_normalizer_getter: Callable[[], VecNormalize | None] = lambda: None,
        benchmark: Policy | None = None,
    ) -> None:
        super().__init__()
        self.config, self.params = config, config.params
        self.eval_freq, self.episodes, self.seed = eval_freq, episodes, seed
        self.run_dir, self.obs_normalizer_getter = run_dir, obs_normalizer_getter
        solution = exact_solution(self.params)
        self.benchmark: Policy
        if solution is not None:
            self.benchmark, self.benchmark_tag = DPPolicy(self.params, solution), "dp"
            self.benchmark_value = solution.expected_return
        elif benchmark is not None:
            self.benchmark, self.benchmark_tag = benchmark, "best_heuristic"
            self.benchmark_value = self._mean(benchmark)
        else:
            raise ValueError(f"the model has no exact optimum ({unsolvable_reason(self.params)}): give a benchmark")
        self.article = ArticleRule(0.5, 0.1)
        article_exact = exact_return(self.article, self.params)
        self.article_value = article_exact if article_exact is not None else self._mean(self.article)
        self.best_score = -math.inf
        self.history: list[dict[str, float | None]] = []
        self._next = eval_freq

    def _mean(self, policy: Policy) -> float:
        return float(run_episodes(policy, self.params, self.episodes, self.seed).returns.mean())

    def agent(self) -> SB3Policy:
        """The current model as a policy."""
        return SB3Policy(
            self.model, "agent", self.obs_normalizer_getter(), self.config.normalize_actions, self.config.features
        )

    def _pct(self, value: float | None) -> float | None:
        return None if value is None or self.benchmark_value == 0 else 100.0 * value / self.benchmark_value

    def _summary_line(self, result: dict[str, float | None]) -> str:
        """One line for the console: the step, the exact and Monte Carlo returns, % of the benchmark."""
        tag, name = self.benchmark_tag, "DP" if self.benchmark_tag == "dp" else "best heuristic"
        line = f"evaluation at step {result['timesteps']:,.0f}:"
        if result["exact_return"] is not None:
            line += f" exact {result['exact_return']:.2f} ({result[f'exact_pct_of_{tag}']:.1f}% of {name}),"
        line += f" Monte Carlo {result['mean_return']:.2f} ± {result['return_se']:.2f}"
        pct = result[f"pct_of_{tag}"]
        return line + (f" ({pct:.1f}% of {name})" if pct is not None else "")

    def evaluate(self) -> dict[str, float | None]:
        """Run one evaluation now (unless one just ran at this step), log it, print a line and return its figures."""
        if self.history and self.history[-1]["timesteps"] == self.num_timesteps:
            return self.history[-1]
        agent = self.agent()
        exact = exact_return(agent, self.params)
        returns = run_episodes(agent, self.params, self.episodes, self.seed).returns
        mean = float(returns.mean())
        tag = self.benchmark_tag
        result = {
            "timesteps": self.num_timesteps,
            "mean_return": mean,
            "return_se": float(returns.std(ddof=1) / math.sqrt(len(returns))),
            f"pct_of_{tag}": self._pct(mean),
            "exact_return": exact,
            f"exact_pct_of_{tag}": self._pct(exact),
            f"{tag}_return": self.benchmark_value,
            "article_rule_return": self.article_value,
            f"article_rule_pct_of_{tag}": self._pct(self.article_value),
        }
        for key, value in result.items():
            if key != "timesteps" and value is not None:
                self.logger.record(f"eval/{key}", value)
        shown = [self.benchmark, self.article, *([agent] if exact is not None else [])]
        print(self._summary_line(result), flush=True)
        image = thumbnail_policy_figure(shown, self.params)
        self.logger.record("eval/policy", Image(image, "HWC"), exclude=NOT_IN_TEXT_LOGS)
        self.history.append(result)
        score = exact if exact is not None else mean
        if score > self.best_score:
            self.best_score = score
            with DeferredInterrupts():  # the model and its statistics, both or neither
                models.save_model(self.model, self.run_dir, prefix="best_")
        self.logger.dump(self.num_timesteps)
        return result


class GameEvaluationCallback(PeriodicEvaluation):
    """Every ``eval_freq`` steps, judges the deterministic joint policy and logs it under ``eval/``.

    ``eval/mean_return_mm_j`` (Monte Carlo on fixed seeds) always; with an exact solution of the game also
    ``eval/exact_return_mm_j``, ``eval/nash_conv``, ``eval/collusion_index``, ``eval/pct_of_best_response`` (of
    ``mm_0``), ``eval/spread`` (``mm_0``'s quoted spread at the start) and, for comparison on the same charts,
    ``eval/equilibrium_return`` and ``eval/cartel_return`` (per MM), with how exact that equilibrium is:
    ``eval/equilibrium_no_pure_stage_games`` (its stage games without a pure equilibrium) and
    ``eval/equilibrium_no_pure_on_path`` (how many of those its play reaches; above 0, an ε-equilibrium).
    ``joint_policy(model, normalizer)`` is the model as a joint policy (in the seats it learns).
    """

    def __init__(
        self,
        params: CompetitionParams,
        joint_policy: Callable[[Any, VecNormalize | None], LearnedJointPolicy],
        eval_freq: int,
        episodes: int,
        seed: int,
        reference: ExactReference | None,
        obs_normalizer_getter: Callable[[], VecNormalize | None] = lambda: None,
    ) -> None:
        super().__init__()
        self.params, self.joint_policy = params, joint_policy
        self.eval_freq, self.episodes, self.seed = eval_freq, episodes, seed
        self.reference, self.obs_normalizer_getter = reference, obs_normalizer_getter
        self.history: list[dict[str, Any]] = []
        self._next = eval_freq

    def evaluate(self) -> GameReport:
        """Judge the current policy now, log it, print a line and return the report."""
        policy = self.joint_policy(self.model, self.obs_normalizer_getter())
        report = judge(policy, self.params, self.episodes, self.seed, self.reference)
        print(self._summary_line(report), flush=True)
        for j, mean in enumerate(report.mean_return):
            self.logger.record(f"eval/mean_return_mm_{j}", mean)
        if report.exact_return is not None and self.reference is not None:
            for j, value in enumerate(report.exact_return):
                self.logger.record(f"eval/exact_return_mm_{j}", value)
            self.logger.record("eval/nash_conv", report.nash_conv)
            self.logger.record("eval/collusion_index", report.collusion_index)
            if report.pct_of_best_response is not None:
                self.logger.record("eval/pct_of_best_response", report.pct_of_best_response)
            equilibrium = self.reference.equilibrium
            self.logger.record("eval/equilibrium_return", equilibrium.mean_return)
            self.logger.record("eval/equilibrium_no_pure_stage_games", equilibrium.no_pure_equilibrium)
            self.logger.record("eval/equilibrium_no_pure_on_path", equilibrium.no_pure_on_path)
            self.logger.record("eval/cartel_return", self.reference.cartel.mean_return)
        self.logger.record("eval/spread", report.spread[0])
        self.history.append({"timesteps": self.num_timesteps, **asdict(report)})
        self.logger.dump(self.num_timesteps)
        return report

    def _summary_line(self, report: GameReport) -> str:
        """One line for the console: the step, each market maker's returns and, exactly, NashConv, Δ and mm_0's %."""
        line = f"evaluation at step {self.num_timesteps:,}:"
        if report.exact_return is not None:
            exact = " / ".join(f"{value:.2f}" for value in report.exact_return)
            line += f" exact {exact}, NashConv {report.nash_conv:.3g}, Δ {report.collusion_index:.3f},"
            if report.pct_of_best_response is not None:
                line += f" mm_0 {report.pct_of_best_response:.1f}% of its best response,"
        pairs = zip(report.mean_return, report.return_se, strict=True)
        return line + " Monte Carlo " + " / ".join(f"{mean:.2f} ± {se:.2f}" for mean, se in pairs)
