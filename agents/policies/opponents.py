"""The named opponents of a game, registered by entry point in :mod:`mm_env.registration`.

Each is a factory ``(params) -> JointPolicy`` that :func:`mm_env.opponents.make_opponent` calls by name: the exact
equilibrium and cartel of two market makers (:mod:`agents.exact.game`), and the article's rule and the one-MM DP
optimum (the monopolist's quotes), each applied by every market maker to its own inventory.
"""

from __future__ import annotations

import functools

from agents.exact import game
from agents.exact.dp import unsolvable_reason
from agents.policies.base import EachOnItsOwn
from agents.policies.heuristics import ArticleRule
from agents.policies.joint import GamePolicy
from agents.policies.tabular import DPPolicy
from mm_env.params import CompetitionParams


def unavailable_reason(name: str, params: CompetitionParams) -> str | None:
    """Why the named opponent cannot play this game (one line), or ``None``: checked without solving anything.

    The equilibrium and the cartel need the exact solution of the game, the monopolist's quotes the one-MM DP.
    """
    if name in ("equilibrium", "cartel"):
        reason = game.game_unsolvable_reason(params)
        if reason is not None:
            return f"opponent={name!r} needs the exact solution of the game, which does not exist here: {reason}"
    if name == "monopoly":
        reason = unsolvable_reason(params.market)
        if reason is not None:
            return f"opponent={name!r} quotes the one-MM optimum, which does not exist here: {reason}"
    return None


@functools.lru_cache(maxsize=8)
def _solved(name: str, params: CompetitionParams) -> GamePolicy:
    reason = unavailable_reason(name, params)
    if reason is not None:
        raise ValueError(reason)
    solution = game.solve_equilibrium(params) if name == "equilibrium" else game.solve_cartel(params)
    assert solution is not None  # the game is covered
    return GamePolicy.from_solution(solution)


def equilibrium(params: CompetitionParams) -> GamePolicy:
    """The exact Markov equilibrium of two market makers (``ValueError`` where the game has none)."""
    return _solved("equilibrium", params)


def cartel(params: CompetitionParams) -> GamePolicy:
    """The exact joint optimum of two market makers (``ValueError`` where the game has none)."""
    return _solved("cartel", params)


def article(params: CompetitionParams) -> EachOnItsOwn:
    """Every market maker quotes the article's rule (Δ = 0.5, γ = 0.1) from its own inventory."""
    return EachOnItsOwn(ArticleRule())


def monopoly(params: CompetitionParams) -> EachOnItsOwn:
    """Every market maker quotes the one-MM DP optimum (the monopolist's quotes) from its own inventory."""
    reason = unavailable_reason("monopoly", params)
    if reason is not None:
        raise ValueError(reason)
    return EachOnItsOwn(DPPolicy(params.market))
