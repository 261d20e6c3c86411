"""Judging joint policies of competing market makers: Monte Carlo on common random numbers, and exact tables.

A joint policy quotes every market maker's offsets from a batch of competition states (see
:class:`mm_env.competition.learners.JointPolicy`). :func:`run_games` plays it on the same traders as every other
policy run with the same seed; :func:`joint_tables` tabulates it over the exact grid ``(t, I_1, I_2)`` of two market
makers, where :mod:`agents.game` evaluates it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from mm_env.competition.batch import CompetitionConfig
from mm_env.competition.core import (
    CompetitionState,
    compete,
    initial_competition_state,
    sample_competition_draws,
)
from mm_env.competition.learners import JointPolicy
from mm_env.competition.params import CompetitionParams
from mm_env.spaces import decode_actions


class LearnedJointPolicy:
    """A trained SB3 model quoting for the market makers in ``seats``; ``others`` (a joint policy) for the rest.

    The model sees each seat's own observation (:meth:`CompetitionConfig.observe`), normalised by the training
    ``VecNormalize`` if one is given, and acts deterministically.
    """

    def __init__(
        self,
        model: Any,
        config: CompetitionConfig,
        seats: Sequence[int],
        others: JointPolicy | None = None,
        obs_normalizer: Any | None = None,
        name: str = "learned",
    ) -> None:
        self.model, self.config, self.seats = model, config, tuple(seats)
        self.others, self.obs_normalizer, self.name = others, obs_normalizer, name

    def quote(self, state: CompetitionState, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Every market maker's offsets: the model's for its seats, the other policy's for the rest."""
        n, m = state.inventory.shape
        if self.others is not None:
            bid, ask = (np.array(side, dtype=np.float64) for side in self.others.quote(state, params))
        else:
            bid, ask = np.empty((n, m)), np.empty((n, m))
        obs = self.config.observe(state)[:, list(self.seats)].reshape(n * len(self.seats), -1)
        if self.obs_normalizer is not None and getattr(self.obs_normalizer, "norm_obs", False):
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=True)
        own_bid, own_ask = decode_actions(
            np.asarray(actions), params.market, self.config.normalize_actions, batch=len(obs)
        )
        bid[:, list(self.seats)] = own_bid.reshape(n, len(self.seats))
        ask[:, list(self.seats)] = own_ask.reshape(n, len(self.seats))
        return params.on_grid(bid), params.on_grid(ask)


def run_games(policy: JointPolicy, params: CompetitionParams, episodes: int, seed: int) -> np.ndarray:
    """Each market maker's return in ``episodes`` episodes played together, shape ``(episodes, M)``.

    The draws come from ``numpy.random.default_rng(seed)`` whatever the quotes, so two policies run with the same seed
    meet the same traders (common random numbers).
    """
    rng = np.random.default_rng(seed)
    state = initial_competition_state(params, episodes)
    returns = np.zeros((episodes, params.num_market_makers))
    for _ in range(params.market.T):
        bid, ask = policy.quote(state, params)
        state, outcome = compete(
            state, params.on_grid(bid), params.on_grid(ask), sample_competition_draws(rng, params, episodes), params
        )
        returns += outcome.reward
    return returns


def grid_states(params: CompetitionParams, t: int | None = None) -> CompetitionState:
    """Every state ``(t, I_1, I_2)`` of two market makers (or those of one step ``t``) as one batch, ``I_1`` major."""
    market = params.market
    inventories = np.arange(-market.I_max, market.I_max + 1, dtype=np.float64)
    steps = np.arange(market.T, dtype=np.float64) if t is None else np.array([float(t)])
    time, first, second = (axis.ravel() for axis in np.meshgrid(steps, inventories, inventories, indexing="ij"))
    zeros, zeros2 = np.zeros(time.size), np.zeros((time.size, 2))
    mid = np.full(time.size, market.P0)
    return CompetitionState(time, np.stack([first, second], axis=1), mid, zeros2, zeros, zeros2, zeros)


def joint_tables(policy: JointPolicy, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
    """The policy of two market makers over the exact grid: ``bid, ask`` of shape ``(2, T, N, N)`` on the tick grid.

    Only a Markov policy of ``(t, I_1, I_2)`` is fully described by its tables; evaluate them with
    :func:`agents.game.evaluate_joint`. The grid is quoted one step at a time, to bound memory.
    """
    if params.num_market_makers != 2:
        raise ValueError(f"tables cover two market makers; this game has {params.num_market_makers}")
    n = 2 * params.market.I_max + 1
    bid, ask = np.empty((2, params.market.T, n, n)), np.empty((2, params.market.T, n, n))
    for t in range(params.market.T):
        step_bid, step_ask = policy.quote(grid_states(params, t), params)
        bid[:, t] = params.on_grid(step_bid).T.reshape(2, n, n)
        ask[:, t] = params.on_grid(step_ask).T.reshape(2, n, n)
    return bid, ask


def spread_at_start(policy: JointPolicy, params: CompetitionParams) -> np.ndarray:
    """Each market maker's quoted spread ``δ_b + δ_a`` at ``t = 0`` with no inventory anywhere, shape ``(M,)``."""
    bid, ask = policy.quote(initial_competition_state(params, 1), params)
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

    equilibrium: Any
    cartel: Any


def exact_reference(params: CompetitionParams) -> ExactReference | None:
    """The game's equilibrium and cartel optimum, or ``None`` where the game has no exact solution."""
    from agents import game

    if game.game_unsolvable_reason(params) is not None:
        return None
    # Their certificates come with the judgement of each policy (judge), so the solves skip them.
    return ExactReference(game.solve_equilibrium(params, certify=False), game.solve_cartel(params, certify=False))


def judge(
    policy: JointPolicy,
    params: CompetitionParams,
    episodes: int,
    seed: int,
    reference: ExactReference | None,
    name: str | None = None,
) -> GameReport:
    """Monte Carlo returns on common random numbers and, with an exact reference, exact values, NashConv and Δ."""
    from agents import game

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


def _pair(values: Sequence[float] | None, digits: int = 2) -> str:
    if values is None:
        return "–"
    return " / ".join(f"{v:.{digits}f}" for v in values)


def game_table(rows: Sequence[GameReport]) -> str:
    """The reports as a Markdown table (values per market maker, separated by ``/``)."""
    lines = [
        "| policy | exact return per MM | MC return per MM (± s.e.) | spread at start | NashConv | Δ "
        "| % of best response |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mc = " / ".join(f"{m:.2f} ± {s:.2f}" for m, s in zip(row.mean_return, row.return_se, strict=True))
        cells = [
            row.name,
            _pair(row.exact_return),
            mc,
            _pair(row.spread),
            "–" if row.nash_conv is None else f"{row.nash_conv:.3g}",
            "–" if row.collusion_index is None else f"{row.collusion_index + 0.0:.3f}".replace("-0.000", "0.000"),
            "–" if row.pct_of_best_response is None else f"{row.pct_of_best_response:.1f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
