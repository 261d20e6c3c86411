"""Grade any policy: one market maker's against the DP optimum, competing market makers' against the equilibrium.

:func:`grade` takes a policy in any form a user has one — an :class:`agents.policies.Policy`, a trained
Stable-Baselines3 model, or a plain function from a batch of observations to actions (a CleanRL agent) — and the
market (a model, an env configuration, or the env itself). It tabulates the policy over the exact grid ``(t, I)``
(``(t, I, L)`` with adaptive traders) and evaluates the tables exactly against the DP optimum: no sampling noise.
Where that is impossible it says why, and grades by Monte Carlo on common random numbers instead: against the DP's
exact value where the model has one (the policy observes more than the Markov state), else against the best tuned
heuristic on the same episodes (the model has no exact optimum).

>>> from agents.evaluation.grading import grade
>>> from agents.policies import ArticleRule
>>> print(grade(ArticleRule(0.5, 0.1), "default"))
article rule Δ=0.5, γ=0.1: exact E[return] 90.86 (sd 25.49), 81.75% of the DP optimum (111.14)

:func:`grade_game` does the same for competing market makers: a policy in the same forms, played by every market
maker (self-play) or by some of them against an opponent, judged exactly against the game's equilibrium and cartel
(each one's exact return, NashConv and the collusion index Δ) next to the baselines:

>>> from mm_env.competition import CompetitionConfig
>>> from agents.evaluation.grading import grade_game
>>> game = CompetitionConfig.from_kwargs(num_market_makers=2, T=20)
>>> quote_half = lambda obs: [[-0.5, -0.5]] * len(obs)  # a fixed quote from the [-1, 1]² action box
>>> print(grade_game(quote_half, game, name="fixed quote", episodes=1_000).summary)
fixed quote: exact E[return] 3.39 / 3.39 per market maker, 141.65% of the equilibrium's (2.39), NashConv 17.2, Δ 0.247
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.compare import exact_return
from agents.evaluation.game import GameReport, baseline_joint_policies, equilibrium_note, exact_reference, judge
from agents.evaluation.report import game_table
from agents.evaluation.rollout import run_episodes
from agents.evaluation.tuning import best_tuned_heuristic
from agents.exact.dp import evaluate_tables, exact_solution, unsolvable_reason
from agents.exact.game import game_unsolvable_reason
from agents.policies.base import Policy
from agents.policies.learned import FunctionPolicy, LearnedJointPolicy, SB3Policy
from agents.policies.tabular import DP_NAME
from mm_env.competition.config import CompetitionConfig
from mm_env.competition.learners import check_seats
from mm_env.config import EnvConfig
from mm_env.opponents import JointPolicy, make_opponent
from mm_env.params import CompetitionParams, MarketParams
from mm_env.presets import make_params

GRADE_EPISODES = 10_000
"""Monte Carlo episodes of a grade that cannot be exact."""
GRADE_SEED = 3_000_000
"""Their seed: episodes no training or comparison of this package selects on."""


@dataclass(frozen=True)
class Grade:
    """How good a policy is, exactly where it can be."""

    policy: str
    """The policy's name."""
    exact: bool
    """Whether ``expected_return`` and ``std`` are exact (else Monte Carlo estimates on common random numbers)."""
    expected_return: float
    """The expected episode return (exact, or the Monte Carlo mean)."""
    std: float
    """The standard deviation of the episode return (exact, or the sample's)."""
    standard_error: float | None
    """The Monte Carlo mean's standard error (``None`` when exact)."""
    benchmark: str
    """What the percentage compares with: ``DP optimum``, or the best tuned heuristic's name."""
    benchmark_return: float
    """The benchmark's expected return (the DP's exact value, or the heuristic's mean on the same episodes)."""
    pct_of_benchmark: float
    """``expected_return`` as a percentage of ``benchmark_return``."""
    reason: str | None = None
    """Why the grade is not exact (``None`` when it is)."""
    episodes: int | None = None
    """The Monte Carlo episodes (``None`` when exact)."""

    def __str__(self) -> str:
        if self.exact:
            value = f"exact E[return] {self.expected_return:.2f} (sd {self.std:.2f})"
        else:
            value = (
                f"mean return {self.expected_return:.2f} ± {self.standard_error:.2f} over {self.episodes:,} episodes"
            )
        benchmark = f"{self.pct_of_benchmark:.2f}% of the {self.benchmark} ({self.benchmark_return:.2f})"
        return f"{self.policy}: {value}, {benchmark}" + (f"; not exact: {self.reason}" if self.reason else "")


def env_attribute(env: Any, name: str) -> Any | None:
    """An attribute of an env of this package, wrapped or not (``None`` if neither has it).

    Gymnasium's wrappers give the env as ``.unwrapped``; SB3's ``VecEnvWrapper`` and PettingZoo's forward attributes.
    """
    for candidate in (env, getattr(env, "unwrapped", None)):
        value = getattr(candidate, name, None)
        if value is not None:
            return value
    return None


def market_config(market: Any) -> EnvConfig:
    """The env configuration of a market.

    The market is a preset's name, a :class:`MarketParams`, an :class:`EnvConfig`, or an env of this package
    (single, vector or SB3, wrapped or not).
    """
    if isinstance(market, EnvConfig):
        return market
    if isinstance(market, MarketParams):
        return EnvConfig(market)
    if isinstance(market, str):
        return EnvConfig(make_params(market))
    config = env_attribute(market, "config")
    if isinstance(config, EnvConfig):
        return config
    raise ValueError(
        f"market={market!r} is not a preset name, a MarketParams, an EnvConfig or a one-market-maker env of mm_env"
    )


def observation_normalizer(market: Any) -> Any | None:
    """The observation normaliser among an SB3 env's wrappers (a ``VecNormalize`` that normalises them), if any."""
    layer = market
    while layer is not None:
        if getattr(layer, "norm_obs", False) and callable(getattr(layer, "normalize_obs", None)):
            return layer
        layer = getattr(layer, "venv", None)
    return None


def as_policy(policy: Any, config: EnvConfig, obs_normalizer: Any | None = None, name: str | None = None) -> Policy:
    """A policy of the env of ``config`` from what a user has.

    A :class:`Policy` as it is, a model with ``predict`` (Stable-Baselines3), or a function from a batch of
    observations ``(n, d)`` to actions ``(n, 2)``.

    Models and functions see the env's observations (its ``observation_features``, normalised by ``obs_normalizer``
    if given, a ``VecNormalize``) and give its actions (normalised or raw, as the env's action map).
    """
    if isinstance(policy, Policy):
        return policy
    features, normalized = config.features, config.normalize_actions
    if callable(getattr(policy, "predict", None)):
        return SB3Policy(policy, name or type(policy).__name__, obs_normalizer, normalized, features)
    if callable(policy):
        function: Callable[[np.ndarray], Any] = policy
        return FunctionPolicy(function, name, normalized, features)
    raise ValueError(
        f"policy={policy!r} is not an agents.policies.Policy, a model with predict(obs) or a function of observations"
    )


def grade(
    policy: Any,
    market: Any = "default",
    *,
    obs_normalizer: Any | None = None,
    name: str | None = None,
    episodes: int = GRADE_EPISODES,
    seed: int = GRADE_SEED,
) -> Grade:
    """Grade a policy of one market maker, exactly where the model and the policy allow it.

    Args:
        policy: an :class:`agents.policies.Policy`, a model with ``predict(obs, deterministic=True)`` (a
            Stable-Baselines3 model), or a function from a batch of observations ``(n, d)`` to actions ``(n, 2)``.
        market: a preset's name, a :class:`~mm_env.params.MarketParams`, an :class:`~mm_env.config.EnvConfig`, or
            the env the policy acts in (its observation features and action map are the policy's).
        obs_normalizer: the ``VecNormalize`` a model was trained behind (default: the one ``market`` wraps, if any).
        name: the policy's name in the grade.
        episodes: the common-random-number episodes of a grade that cannot be exact.
        seed: their seed.

    Returns:
        A :class:`Grade`. Exact when the model has a DP optimum and the policy is a function of the grid's Markov
        state; otherwise ``reason`` says why, and the figures are Monte Carlo estimates.
    """
    config = market_config(market)
    obs_normalizer = obs_normalizer if obs_normalizer is not None else observation_normalizer(market)
    params = config.params
    if not params.fill.quotes_matter:
        raise ValueError(f"the model has nothing to grade: {unsolvable_reason(params)}")
    agent = as_policy(policy, config, obs_normalizer, name)
    solution = exact_solution(params)
    if solution is not None:
        try:
            evaluation = evaluate_tables(params, *agent.tables(params))
        except ValueError as error:
            reason = str(error)
        else:
            mean = float(evaluation.mean)
            return Grade(
                agent.name,
                True,
                mean,
                float(evaluation.std),
                None,
                DP_NAME,
                solution.expected_return,
                _pct(mean, solution.expected_return),
            )
    else:
        reason = str(unsolvable_reason(params))
    returns = run_episodes(agent, params, episodes, seed).returns
    mean, std = float(returns.mean()), float(returns.std(ddof=1))
    if solution is not None:
        benchmark, benchmark_return = DP_NAME, solution.expected_return
    else:
        heuristic = best_tuned_heuristic(params).policy
        exact_heuristic = exact_return(heuristic, params)
        benchmark = heuristic.name
        benchmark_return = (
            exact_heuristic
            if exact_heuristic is not None
            else float(run_episodes(heuristic, params, episodes, seed).returns.mean())
        )
    return Grade(
        agent.name,
        False,
        mean,
        std,
        std / math.sqrt(episodes),
        benchmark,
        benchmark_return,
        _pct(mean, benchmark_return),
        reason,
        episodes,
    )


def _pct(value: float, benchmark: float) -> float:
    return 100.0 * value / benchmark if benchmark != 0 else math.nan


@dataclass(frozen=True)
class GameGrade:
    """How a policy of competing market makers fares, next to the game's exact solutions and the baselines."""

    rows: tuple[GameReport, ...]
    """The policy's report first, then the baselines' (:func:`agents.evaluation.game.baseline_joint_policies`)."""
    exact: bool
    """Whether the game is solved exactly (two market makers on a model the exact tools cover)."""
    equilibrium_value: float | None
    """The equilibrium's exact expected return per market maker (their mean), where the game is solved."""
    pct_of_equilibrium: float | None
    """The policy's exact return per market maker (their mean) as a percentage of ``equilibrium_value``."""
    note: str
    """How exact the equilibrium is (:func:`agents.evaluation.game.equilibrium_note`), or why there is none."""
    episodes: int
    """The common-random-number episodes of the Monte Carlo columns."""
    seed: int
    """Their seed."""

    @property
    def policy(self) -> GameReport:
        """The graded policy's report."""
        return self.rows[0]

    @property
    def summary(self) -> str:
        """One line: the policy's exact returns, its % of the equilibrium's, NashConv and Δ (or why not exact)."""
        row = self.policy
        if row.exact_return is None or row.nash_conv is None or row.collusion_index is None:
            means = " / ".join(f"{m:.2f} ± {e:.2f}" for m, e in zip(row.mean_return, row.return_se, strict=True))
            return f"{row.name}: mean return {means} per market maker over {self.episodes:,} episodes; {self.note}"
        returns = " / ".join(f"{value:.2f}" for value in row.exact_return)
        delta = f"{row.collusion_index + 0.0:.3f}".replace("-", "\u2212")
        return (
            f"{row.name}: exact E[return] {returns} per market maker, {self.pct_of_equilibrium:.2f}% of the "
            f"equilibrium's ({self.equilibrium_value:.2f}), NashConv {row.nash_conv:.3g}, \u0394 {delta}"
        )

    def __str__(self) -> str:
        return f"{game_table(self.rows)}\n\n{self.note}\n{self.summary}"


class _FunctionModel:
    """A function from a batch of observations to actions, in the form of a trained model (``predict``)."""

    def __init__(self, function: Callable[[np.ndarray], Any]) -> None:
        self.function = function

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.asarray(self.function(obs), dtype=np.float64), None


def game_config(game: Any) -> CompetitionConfig:
    """The configuration of a game: a :class:`CompetitionConfig`, a :class:`CompetitionParams`, or an env of it.

    The env is any front-end of the competing market makers (Gymnasium, vector, SB3, PettingZoo; wrapped or not).
    """
    if isinstance(game, CompetitionConfig):
        return game
    if isinstance(game, CompetitionParams):
        return CompetitionConfig(game)
    config = env_attribute(game, "config")
    if isinstance(config, CompetitionConfig):
        return config
    raise ValueError(
        f"game={game!r} is not a CompetitionConfig, a CompetitionParams or an env of the competing market makers"
    )


def grade_game(
    policy: Any,
    game: Any,
    *,
    seats: Sequence[int] | None = None,
    others: Any | None = None,
    obs_normalizer: Any | None = None,
    name: str | None = None,
    episodes: int = GRADE_EPISODES,
    seed: int = GRADE_SEED,
) -> GameGrade:
    """Grade a policy of competing market makers against the game's exact equilibrium and cartel.

    Args:
        policy: a joint policy (``quote(state, params)`` giving every market maker's offsets), a model with
            ``predict(obs, deterministic=True)`` (Stable-Baselines3, or an adapter of an RLlib module), or a function
            from a batch of one market maker's observations ``(n, d)`` to its actions ``(n, 2)``; the last two
            quote for the market makers in ``seats``, each from its own observation.
        game: a :class:`~mm_env.competition.config.CompetitionConfig`, a
            :class:`~mm_env.params.CompetitionParams`, or the env the policy acts in.
        seats: the market makers the policy quotes for. Default: ``mm_0`` where ``game`` is an env with an
            opponent (the seat it learns), else every market maker (self-play, one shared policy).
        others: the other market makers' joint policy, or a registered opponent's name
            (:func:`mm_env.opponents.opponent_names`). Default: the env's opponent, if any.
        obs_normalizer: the ``VecNormalize`` a model was trained behind (default: the one ``game`` wraps, if any).
        name: the policy's name in the table.
        episodes: the common-random-number episodes of the Monte Carlo columns.
        seed: their seed.

    Returns:
        A :class:`GameGrade`: its rows are the policy and the baselines; with two market makers on a model the exact
        tools cover, each one's exact return, NashConv (what each would gain by its exact best response) and Δ
        (0: the equilibrium, 1: the cartel). Otherwise the Monte Carlo columns, and ``note`` says why.
    """
    config = game_config(game)
    params = config.params
    m = params.num_market_makers
    if others is None and seats is None:
        others = env_attribute(game, "opponent")
    if seats is None:
        seats = (0,) if others is not None else tuple(range(m))
    chosen = check_seats(seats, m)
    if len(chosen) < m and others is None:
        rest = sorted(set(range(m)) - set(chosen))
        raise ValueError(f"seats={seats!r} leaves market makers {rest} without a policy: give others")
    other_policy = None if others is None or len(chosen) == m else make_opponent(others, params)
    if obs_normalizer is None:
        obs_normalizer = observation_normalizer(game)
    if callable(getattr(policy, "quote", None)):
        joint: JointPolicy = policy
        label = name or str(getattr(policy, "name", type(policy).__name__))
    elif callable(getattr(policy, "predict", None)) or callable(policy):
        model = policy if callable(getattr(policy, "predict", None)) else _FunctionModel(policy)
        label = name or str(getattr(policy, "__name__", type(policy).__name__))
        joint = LearnedJointPolicy(model, config, chosen, other_policy, obs_normalizer, label)
    else:
        raise ValueError(
            f"policy={policy!r} is not a joint policy (quote), a model with predict(obs) or a function of observations"
        )
    reason = game_unsolvable_reason(params)
    reference = exact_reference(params) if reason is None else None
    named = [(joint, label), *baseline_joint_policies(params, reference)]
    rows = tuple(judge(policy, params, episodes, seed, reference, label) for policy, label in named)
    if reference is None:
        return GameGrade(rows, False, None, None, f"not exact: {reason}", episodes, seed)
    value = float(np.mean(reference.equilibrium.start_value))
    ours = rows[0].exact_return
    assert ours is not None  # judged against an exact reference
    pct = _pct(float(np.mean(ours)), value)
    return GameGrade(rows, True, value, pct, equilibrium_note(reference.equilibrium), episodes, seed)
