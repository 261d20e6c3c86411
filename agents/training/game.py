"""Competing market makers (``mm_env/CompetingMarketMakers-v0``), as a market family.

Two set-ups, chosen by the env keywords: one learner (``mm_0``) against a fixed ``opponent`` (default
``"equilibrium"``; see :mod:`mm_env.opponents`), judged as a percentage of its exact best response; or
``self_play=True``, where the market makers share one policy, judged by each one's exact return, NashConv, the
collusion index and the quoted spread, against the exact equilibrium and cartel (:mod:`agents.exact.game`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.evaluation.game import ExactReference, baseline_joint_policies, equilibrium_note, exact_reference, judge
from agents.evaluation.report import game_table
from agents.policies.learned import LearnedJointPolicy
from agents.policies.opponents import unavailable_reason
from agents.storage import files, models
from agents.training.algorithm import load_model
from agents.training.callbacks import GameEvaluationCallback
from agents.training.family import (
    FinalReport,
    RunMetrics,
    check_trainable,
    episodes_problem,
    monitored,
    registered_kwargs,
)
from agents.training.hyperparameters import normalises_observations
from agents.training.tensorboard import Layout, game_layout
from mm_env.competition.config import CompetitionConfig
from mm_env.competition.sb3_vec_env import CompetitionVecEnv
from mm_env.opponents import make_opponent, opponent_names
from mm_env.params import CompetitionParams

BEST_RESPONSE_BENCHMARK = "exact best response"
"""What a sweep names the benchmark of a game run: ``mm_0``'s exact best response to the others' policy."""


@dataclass
class CompetingMarketMakers:
    """The game, and who the learner plays: a named opponent, or itself (self-play)."""

    entry_points: ClassVar[tuple[str, ...]] = ("mm_env.competition.single:CompetingMarketMakersEnv",)
    setup_keys: ClassVar[tuple[str, ...]] = ("opponent", "self_play", "normalize_actions")
    env_id: str
    config: CompetitionConfig
    opponent: str | None
    self_play: bool
    reference: ExactReference | None = field(default=None, repr=False)
    """The exact equilibrium and cartel, where the game has them (after :meth:`prepare_reference`)."""
    _prepared: bool = field(default=False, repr=False)

    @property
    def label(self) -> str:
        """``self-play`` or ``against <opponent>``."""
        return "self-play" if self.self_play else f"against {self.opponent}"

    @property
    def params(self) -> CompetitionParams:
        """The game."""
        return self.config.params

    @classmethod
    def from_env(cls, env_id: str, env_kwargs: dict[str, Any]) -> CompetingMarketMakers:
        """The set-up from the keywords: ``opponent=NAME`` or ``self_play=True``, plus the game's keywords."""
        kwargs = registered_kwargs(env_id, env_kwargs)
        self_play = kwargs.pop("self_play", False)
        if not isinstance(self_play, bool):
            raise ValueError(f"self_play={self_play!r} is invalid: must be True or False")
        opponent = kwargs.pop("opponent", None if self_play else "equilibrium")
        if self_play and opponent is not None:
            raise ValueError("self_play=True has no opponent: every market maker is the learner")
        if not self_play and opponent not in opponent_names():
            raise ValueError(f"opponent={opponent!r} is invalid: must be one of {list(opponent_names())}")
        config = CompetitionConfig.from_kwargs(**kwargs)
        if not self_play and config.num_market_makers < 2:
            raise ValueError(
                f"opponent={opponent!r} needs num_market_makers >= 2 (one market maker alone: use self_play)"
            )
        check_trainable(config.params.market)
        reason = None if opponent is None else unavailable_reason(opponent, config.params)
        if reason is not None:  # checked without solving: the opponent is solved when the env is built
            raise ValueError(reason)
        return cls(env_id, config, opponent, self_play)

    def check_n_envs(self, n_envs: int) -> None:
        """Self-play needs one view per market maker of every game: a multiple of ``M``."""
        m = self.config.num_market_makers
        if self.self_play and n_envs % m:
            raise ValueError(f"n_envs={n_envs} is invalid for self-play: must be a multiple of M={m} (one view per MM)")

    def size_problem(self, eval_episodes: int, final_episodes: int) -> str | None:
        """The evaluations' episodes, each with ``M`` market makers (the exact game is checked when it is solved)."""
        return episodes_problem(self.params.market.T, eval_episodes, final_episodes, self.config.num_market_makers)

    def recorded_params(self) -> dict[str, Any]:
        """The market's flat keywords, ``num_market_makers`` and ``tick``."""
        params = self.params
        return {**params.market.as_dict(), "num_market_makers": params.num_market_makers, "tick": params.tick}

    def make_env(self, n_envs: int, seed: int, normalize: dict[str, Any] | bool | None) -> VecEnv:
        """The batched SB3 env of the set-up, monitored, and normalised if the hyperparameters say so."""
        if self.opponent in ("equilibrium", "cartel"):
            print(f"solving the game exactly: the {self.opponent}, the opponent …", flush=True)
        venv = CompetitionVecEnv(
            n_envs,
            self.opponent,
            self_play=self.self_play,
            params=self.params,
            normalize_actions=self.config.normalize_actions,
        )
        return monitored(venv, seed, normalize)

    def prepare_reference(self) -> None:
        """Solve the game exactly where the tools cover it (seconds at the defaults)."""
        if not self._prepared:
            print("solving the game exactly: the equilibrium and the cartel to judge against …", flush=True)
            self.reference, self._prepared = exact_reference(self.params), True
            if self.reference is not None:
                print(equilibrium_note(self.reference.equilibrium), flush=True)

    def joint_policy(self, model: Any, normalizer: VecNormalize | None, name: str = "agent") -> LearnedJointPolicy:
        """The model as a joint policy: in every seat (self-play), or in ``mm_0``'s against the opponent."""
        m = self.config.num_market_makers
        seats = range(m) if self.self_play else (0,)
        others = None if self.opponent is None else make_opponent(self.opponent, self.params)
        return LearnedJointPolicy(model, self.config, seats, others, normalizer, name)

    def periodic_evaluation(
        self, model: BaseAlgorithm, run_dir: Path, eval_freq: int, episodes: int, seed: int
    ) -> GameEvaluationCallback:
        """Each market maker's returns and, with an exact solution, NashConv, Δ and % of the best response."""
        self.prepare_reference()
        return GameEvaluationCallback(
            self.params,
            self.joint_policy,
            eval_freq,
            episodes,
            seed,
            self.reference,
            lambda: models.find_vec_normalize(model.get_env()),
        )

    def layout(self) -> Layout:
        """NashConv, Δ, ``mm_0``'s % of its best response and spread, each one's return (exact where it can be)."""
        self.prepare_reference()
        return game_layout(self.config.num_market_makers, exact=self.reference is not None)

    def load_agents(self, run_dir: Path, saved: dict[str, Any], device: str) -> list[LearnedJointPolicy]:
        """The final model as a joint policy."""
        hyperparams = saved.get("hyperparams") or {}
        # The spaces the model was built on: any set-up of this game has them (self-play needs no opponent solved).
        config = self.config
        shell = CompetitionVecEnv(
            config.num_market_makers,
            None,
            self_play=True,
            params=self.params,
            normalize_actions=config.normalize_actions,
        )
        path = models.model_path(run_dir)
        model = load_model(saved["algo"], path, hyperparams, shell.observation_space, shell.action_space, device=device)
        normalizer = models.read_statistics(run_dir, shell, required=normalises_observations(hyperparams))
        return [self.joint_policy(model, normalizer, f"{saved['algo'].upper()} ({self.label})")]

    def final_comparison(
        self, agents: list[LearnedJointPolicy], episodes: int, seed: int, out_dir: Path
    ) -> FinalReport:
        """The learned joint policy next to the exact equilibrium, the cartel and the one-MM optimum played by all.

        ``episodes`` common-random-number episodes; prints the table and writes ``comparison.md`` and
        ``comparison.json``.
        """
        params = self.params
        self.prepare_reference()
        named = [(agent, agent.name) for agent in agents] + baseline_joint_policies(params, self.reference)
        print(
            f"final comparison: {len(named)} joint policies on {episodes:,} common-random-number episodes", flush=True
        )
        rows = []
        for number, (policy, name) in enumerate(named, start=1):
            rows.append(judge(policy, params, episodes, seed, self.reference, name))
            print(f"  [{number}/{len(named)}] {name}", flush=True)
        table = game_table(rows)
        payload = {"episodes": episodes, "seed": seed, "setup": self.label, "rows": [asdict(row) for row in rows]}
        if self.reference is not None:
            # How exact the equilibrium row is: stage games without a pure equilibrium, and whether play reaches any.
            equilibrium = self.reference.equilibrium
            payload["equilibrium_stage_games"] = {
                "no_pure_equilibrium": equilibrium.no_pure_equilibrium,
                "no_pure_on_path": equilibrium.no_pure_on_path,
            }
            table += f"\n\n{equilibrium_note(equilibrium)}"
        print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}")
        out_dir.mkdir(parents=True, exist_ok=True)
        files.write_json(out_dir / "comparison.json", payload)
        files.atomic_write_text(out_dir / "comparison.md", table + "\n")
        return FinalReport(table, ("eval/nash_conv", "eval/collusion_index", "eval/mean_return_mm_0"))

    @staticmethod
    def run_metrics(comparison: dict[str, Any], algo: str) -> RunMetrics:
        """The learned joint policy's ``mm_0`` as a percentage of its exact best response."""
        learned = next((row for row in comparison["rows"] if row["name"].startswith(f"{algo.upper()} (")), None)
        if learned is None or learned.get("pct_of_best_response") is None or not learned.get("exact_return"):
            raise ValueError(f"comparison.json has no {algo.upper()} row measured against its exact best response")
        pct = float(learned["pct_of_best_response"])
        # judge() gives a percentage only of a positive best response: the value is the return over the fraction.
        value = 100.0 * float(learned["exact_return"][0]) / pct if pct != 0.0 else math.nan
        return RunMetrics(
            pct=pct,
            best_pct=None,
            mean_return=float(learned["mean_return"][0]),
            benchmark=BEST_RESPONSE_BENCHMARK,
            benchmark_value=value,
            exact=True,
        )
