"""Judging joint policies of competing market makers: Monte Carlo on common random numbers, and exact tables.

A joint policy quotes every market maker's offsets from a batch of game states (see
:class:`mm_env.opponents.JointPolicy`). :func:`agents.evaluation.rollout.run_games` plays it on the same traders as
every other policy run with the same seed; :func:`joint_tables` tabulates it over the exact grid ``(t, I_1, I_2)``
of two market makers, where :mod:`agents.exact.game` evaluates it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from agents.evaluation.rollout import run_games
from agents.exact import game
from agents.exact.dp import unsolvable_reason
from agents.exact.game import GameSolution
from agents.policies.joint import GamePolicy
from mm_env.dynamics import MarketState, initial_state
from mm_env.opponents import JointPolicy, make_opponent
from mm_env.params import CompetitionParams


def joint_grid_states(params: CompetitionParams, t: int | None = None) -> MarketState:
    """Every state ``(t, I_1, I_2)`` of two market makers (or those of one step ``t``) as one batch, ``I_1`` major."""
    market = params.market
    inventories = np.arange(-market.I_max, market.I_max + 1, dtype=np.float64)
    steps = np.arange(market.T, dtype=np.float64) if t is None else np.array([float(t)])
    time, first, second = (axis.ravel() for axis in np.meshgrid(steps, inventories, inventories, indexing="ij"))
    zeros, zeros2 = np.zeros(time.size), np.zeros((time.size, 2))
    mid = np.full(time.size, market.P0)
    return MarketState(time, np.stack([first, second], axis=1), mid, zeros2, zeros, zeros2, zeros)


def joint_tables(policy: JointPolicy, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
    """The policy of two market makers over the exact grid: ``bid, ask`` of shape ``(2, T, N, N)`` on the tick grid.

    Only a Markov policy of ``(t, I_1, I_2)`` is fully described by its tables; evaluate them with
    :func:`agents.exact.game.evaluate_joint`. The grid is quoted one step at a time, to bound memory.
    """
    if params.num_market_makers != 2:
        raise ValueError(f"tables cover two market makers; this game has {params.num_market_makers}")
    n = 2 * params.market.I_max + 1
    bid, ask = np.empty((2, params.market.T, n, n)), np.empty((2, params.market.T, n, n))
    for t in range(params.market.T):
        step_bid, step_ask = policy.quote(joint_grid_states(params, t), params)
        bid[:, t] = params.on_grid(step_bid).T.reshape(2, n, n)
        ask[:, t] = params.on_grid(step_ask).T.reshape(2, n, n)
    return bid, ask


def spread_at_start(policy: JointPolicy, params: CompetitionParams) -> np.ndarray:
    """Each market maker's quoted spread ``δ_b + δ_a`` at ``t = 0`` with no inventory anywhere, shape ``(M,)``."""
    bid, ask = policy.quote(initial_state(params, 1), params)
    return (params.on_grid(bid) + params.on_grid(ask))[0]


@dataclass
class GameReport:
    """How a joint policy fares: each market maker's return and, for two market makers, the exact judgements."""

    name: str
    mean_return: list[float]
    """Each market maker's Monte Carlo mean return."""
    return_se: list[float]
    """Its standard error."""
    spread: list[float]
    """Each market maker's quoted spread at the start (no inventory)."""
    exact_return: list[float] | None = None
    """Each market maker's exact expected return (two market makers, where the game is solved exactly)."""
    nash_conv: float | None = None
    """``Σ_j [V_j(best response) − V_j(policy)]`` at the start: 0 for a Nash equilibrium."""
    collusion_index: float | None = None
    """``Δ = (Π − Π_eq)/(Π_cartel − Π_eq)`` of the mean per-MM exact return ``Π``."""
    pct_of_best_response: float | None = None
    """``mm_0``'s exact return as a percentage of its exact best response to the others' policy."""


class ExactReference(NamedTuple):
    """The exact solutions a joint policy is judged against (two market makers)."""

    equilibrium: GameSolution
    cartel: GameSolution


def equilibrium_note(solution: GameSolution) -> str:
    """One line on the equilibrium's stage games without a pure equilibrium, and whether its play reaches any.

    Without any, the solution is Markov perfect. Where its play reaches one, it is only an ε-equilibrium from the
    start, and its NashConv says how far; where it reaches none, NashConv certifies it from the start (0 at the
    defaults, ``MODEL.md`` §8).
    """
    count, reached = solution.no_pure_equilibrium, solution.no_pure_on_path
    if count == 0:
        return "the equilibrium: every stage game has a pure equilibrium (Markov perfect)"
    games = f"{count:,} stage game{'s' if count > 1 else ''} without a pure equilibrium"
    gain = f"largest stage-game deviation gain {solution.largest_stage_gain:.3g}"
    if reached == 0:
        return f"the equilibrium: {games} ({gain}), none on the equilibrium path (NashConv certifies the start)"
    return f"the equilibrium: {games} ({gain}), {reached:,} on the equilibrium path: an ε-equilibrium (see NashConv)"


def exact_reference(params: CompetitionParams) -> ExactReference | None:
    """The game's equilibrium and cartel optimum, or ``None`` where the game has no exact solution."""
    if game.game_unsolvable_reason(params) is not None:
        return None
    # Their certificates come with the judgement of each policy (judge), so the solves skip them.
    equilibrium, cartel = game.solve_equilibrium(params, certify=False), game.solve_cartel(params, certify=False)
    assert equilibrium is not None and cartel is not None  # the game is covered
    return ExactReference(equilibrium, cartel)


def judge(
    policy: JointPolicy,
    params: CompetitionParams,
    episodes: int,
    seed: int,
    reference: ExactReference | None,
    name: str | None = None,
) -> GameReport:
    """Monte Carlo returns on common random numbers and, with an exact reference, exact values, NashConv and Δ."""
    returns = run_games(policy, params, episodes, seed)
    report = GameReport(
        name or str(getattr(policy, "name", type(policy).__name__)),
        returns.mean(axis=0).tolist(),
        (returns.std(axis=0, ddof=1) / np.sqrt(episodes)).tolist(),
        spread_at_start(policy, params).tolist(),
    )
    if reference is None:
        return report
    bid, ask = joint_tables(policy, params)
    certificates = game.nash_conv(params, bid, ask)
    if certificates is None:
        reason = game.game_unsolvable_reason(params)
        raise ValueError(f"an exact reference was given, but this game has no exact solution: {reason}")
    report.exact_return = [float(v) for v in certificates.policy_value]
    report.nash_conv = certificates.nash_conv
    equilibrium, cartel = reference.equilibrium.mean_return, reference.cartel.mean_return
    report.collusion_index = float(game.collusion_index(float(np.mean(report.exact_return)), equilibrium, cartel))
    best = float(certificates.best_response_value[0])
    # A percentage of a non-positive best response would mislead (−50 of −40 is not 125%).
    report.pct_of_best_response = 100.0 * report.exact_return[0] / best if best > 0 else None
    return report


def baseline_joint_policies(
    params: CompetitionParams, reference: ExactReference | None
) -> list[tuple[JointPolicy, str]]:
    """The joint policies a learned one is compared with, and their names.

    The exact equilibrium and cartel (with an exact reference), every market maker quoting the one-MM optimum (where
    the market has one) and every market maker quoting the article's rule.
    """
    named: list[tuple[JointPolicy, str]] = []
    if reference is not None:
        named.append((GamePolicy.from_solution(reference.equilibrium), "equilibrium"))
        named.append((GamePolicy.from_solution(reference.cartel), "cartel"))
    if unsolvable_reason(params.market) is None:  # the monopoly's quotes need the one-MM DP
        named.append((make_opponent("monopoly", params), "each quotes the one-MM optimum"))
    named.append((make_opponent("article", params), "each quotes the article rule"))
    return named
