"""Joint policies for competing market makers: the fixed opponents of ``CompetingMarketMakers-v0`` and its baselines.

A joint policy quotes every market maker's offsets from a batch of competition states
(:class:`mm_env.competition.core.CompetitionState`). :func:`opponent_policy` makes one from a name or an object.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from agents.policies import ArticleRule, DPPolicy, Policy
from mm_env.competition.core import CompetitionState
from mm_env.competition.learners import JointPolicy
from mm_env.competition.params import CompetitionParams
from mm_env.dynamics import MarketState

OPPONENTS = ("equilibrium", "cartel", "article", "monopoly")
"""The named opponents: the exact equilibrium and cartel of two market makers (:mod:`agents.game`), the article's
rule and the one-MM DP optimum (the monopolist's quotes), each of the last two applied to every market maker's own
inventory."""


class EachOnItsOwn:
    """Every market maker quotes a one-MM policy from its own inventory and cash (the shared ``t``, mid and ``L``)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name

    def quote(self, state: CompetitionState, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Each market maker's offsets from its own view of the state."""
        m = params.num_market_makers
        bid, ask = np.empty(state.inventory.shape), np.empty(state.inventory.shape)
        last_trade = state.traded.sum(axis=1)  # its sign is the side L that adaptive traders react to
        for j in range(m):
            own = MarketState(
                state.t,
                state.inventory[:, j],
                state.mid,
                state.cash[:, j],
                state.mid_change,
                last_trade,
                state.transient,
            )
            bid[:, j], ask[:, j] = self.policy.quote(own, params.market)
        return bid, ask

    def __repr__(self) -> str:
        return f"EachOnItsOwn({self.policy!r})"


@functools.lru_cache(maxsize=8)
def _solved(name: str, params: CompetitionParams) -> JointPolicy:
    from agents import game  # the solvers, imported only when a solved opponent is asked for

    solution = game.solve_equilibrium(params) if name == "equilibrium" else game.solve_cartel(params)
    if solution is None:
        reason = game.game_unsolvable_reason(params)
        raise ValueError(f"opponent={name!r} needs the exact solution of the game, which does not exist here: {reason}")
    return game.GamePolicy(solution.bid, solution.ask, name=name)


def opponent_policy(opponent: Any, params: CompetitionParams) -> JointPolicy:
    """A joint policy from a name in :data:`OPPONENTS`, a one-MM :class:`~agents.policies.Policy`, or a joint policy.

    Raises ``ValueError`` for an unknown name, an object that cannot quote, or a solved opponent where the game has no
    exact solution (the message says why).
    """
    if isinstance(opponent, str):
        if opponent in ("equilibrium", "cartel"):
            return _solved(opponent, params)
        if opponent == "article":
            return EachOnItsOwn(ArticleRule())
        if opponent == "monopoly":
            return EachOnItsOwn(DPPolicy(params.market))
        raise ValueError(f"opponent={opponent!r} is not a known opponent; allowed: {list(OPPONENTS)} or a policy")
    if isinstance(opponent, Policy):
        return EachOnItsOwn(opponent)
    if callable(getattr(opponent, "quote", None)):
        return opponent
    raise ValueError(
        f"opponent={opponent!r} is invalid: must be one of {list(OPPONENTS)}, an agents.policies.Policy, or an "
        "object with quote(state, params) over competition states"
    )
