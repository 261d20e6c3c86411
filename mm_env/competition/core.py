"""The dynamics of ``M`` competing market makers (``MODEL.md`` §8): the one implementation behind their front-ends.

The one-MM core (:mod:`mm_env.dynamics`) gains an agent axis here: inventories, cash and fills have shape
``(n, M)``, while the mid, the time and the draws belong to the environment, shape ``(n,)``. The trader, the fill
law, the mid's move and the reward are the one-MM components, applied to the winner of the matching; with one market
maker and quotes on the grid, :func:`compete` reproduces :func:`mm_env.dynamics.transition` bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mm_env.competition.params import CompetitionParams
from mm_env.dynamics import Draws, move_mid, sample_draws
from mm_env.model.xp import array

__all__ = [
    "CompetitionOutcome",
    "CompetitionState",
    "compete",
    "initial_competition_state",
    "match",
    "sample_competition_draws",
]


class CompetitionState(NamedTuple):
    """The state of ``n`` environments with ``M`` market makers each."""

    t: np.ndarray
    """Steps taken in the episode, ``(n,)``."""
    inventory: np.ndarray
    """Each market maker's inventory ``I_j``, ``(n, M)``."""
    mid: np.ndarray
    """The shared mid ``P``, ``(n,)``."""
    cash: np.ndarray
    """Each market maker's cash ``X_j``, ``(n, M)``."""
    mid_change: np.ndarray
    """``P_t − P_{t−1}`` over the last step, ``(n,)``."""
    traded: np.ndarray
    """Units the trader bought from each market maker in the last step (negative: sold to it), ``(n, M)``; at most
    one is non-zero. The sign of their sum is the side ``L`` of the last trade."""
    transient: np.ndarray
    """The transient part ``D`` of the mid, ``(n,)``."""


class CompetitionOutcome(NamedTuple):
    """What one step did, besides the new state."""

    reward: np.ndarray
    """Each market maker's reward, ``(n, M)``."""
    executed: np.ndarray
    """Each market maker's executed size (only the winner's is non-zero), ``(n, M)``."""
    offset: np.ndarray
    """The best offset on the trader's side among those who could trade, ``(n,)``."""
    spread_captured: np.ndarray
    """What the spread reward pays each market maker for its fill, ``(n, M)``."""
    inventory_penalty: np.ndarray
    """``λ·I_j'²``, plus ``α·I_j'²`` on the last step, ``(n, M)``."""
    terminated: np.ndarray
    """Whether the episode ended, ``(n,)``."""
    trader_side: np.ndarray
    """+1 a trader bought, −1 one sold, 0 none came, ``(n,)``."""
    trader_size: np.ndarray
    """The size the trader wanted, ``(n,)``."""
    winner: np.ndarray
    """The index of the market maker the trader went to, or −1 when none came or none could trade on its side."""


def initial_competition_state(params: CompetitionParams, n: int) -> CompetitionState:
    """The start of an episode in ``n`` environments: no inventory, no cash, the mid at ``P0``."""
    m = params.num_market_makers
    zeros, agents = np.zeros(n), np.zeros((n, m))
    return CompetitionState(zeros, agents, np.full(n, params.market.P0), agents, zeros, agents, zeros)


def sample_competition_draws(rng: np.random.Generator, params: CompetitionParams, n: int) -> Draws:
    """The random numbers of one step in ``n`` environments: the market's, plus the tie-break with ``M ≥ 2``."""
    return sample_draws(rng, params.market, n, tie=params.num_market_makers > 1)


def match(
    quotes: np.ndarray, capacity: np.ndarray, u_tie: np.ndarray | None, params: CompetitionParams
) -> tuple[np.ndarray, np.ndarray]:
    """Price priority: the market maker each trader goes to, as a one-hot ``(n, M)`` mask, and the best offset.

    ``quotes`` are the offsets on the trader's side, ``capacity`` how much each market maker can trade there. The
    lowest offset (compared in whole ticks) among those with capacity wins; a tie goes to the ``⌊u·k⌋``-th of the
    ``k`` tied market makers. Where none can trade, the mask is all false and the offset is the best quote.
    """
    eligible = capacity > 0
    ticks = np.where(eligible, np.rint(quotes / params.tick), np.inf)
    best = ticks.min(axis=1, keepdims=True)
    tied = eligible & (ticks == best)
    # Cumulative counts number the tied market makers 1, 2, …; the draw picks one of them uniformly.
    if u_tie is None:
        chosen = np.ones(len(quotes))
    else:
        chosen = np.floor(u_tie * tied.sum(axis=1)) + 1
    winner = tied & (np.cumsum(tied, axis=1) == chosen[:, None])
    offset = np.where(eligible, quotes, np.inf).min(axis=1)
    offset = np.where(np.isfinite(offset), offset, quotes.min(axis=1))
    return winner, offset


def compete(
    state: CompetitionState, bid: np.ndarray, ask: np.ndarray, draws: Draws, params: CompetitionParams
) -> tuple[CompetitionState, CompetitionOutcome]:
    """Apply one step to ``n`` environments, given every market maker's offsets ``(n, M)`` on the tick grid."""
    market = params.market
    t, inventory, mid, cash, _, last_traded, transient = state
    side, size, news = market.flow.trader(draws.side, draws.size, draws.informed, last_traded.sum(axis=1), array)
    buying = side[:, None] > 0
    quotes = np.where(buying, ask, bid)
    # The limit |I| ≤ I_max: a market maker selling to a buyer can give at most I + I_max units.
    capacity = market.I_max + side[:, None] * inventory
    winner, offset = match(quotes, capacity, draws.tie, params)
    executed_total = np.minimum(size, (capacity * winner).sum(axis=1))
    executed_total = executed_total * market.fill.filled(draws.fill, offset, array)
    executed = winner * executed_total[:, None]
    traded = side[:, None] * executed
    earned = executed * offset[:, None]
    new_inventory = inventory - traded
    new_cash = cash + traded * mid[:, None] + earned
    mid_change, new_transient = move_mid(
        mid, transient, side * executed_total, executed_total, news, draws, market, array
    )
    new_t = t + 1
    terminated = new_t >= market.T
    after = CompetitionState(new_t, new_inventory, mid + mid_change, new_cash, mid_change, traded, new_transient)
    captured = market.fill.captured(earned, executed, bid, ask)
    # The reward reads each market maker's wealth X_j + I_j·P, with the shared mid broadcast over the agent axis.
    reward, penalty = market.objective.step_reward(
        captured, state._replace(mid=mid[:, None]), after._replace(mid=after.mid[:, None]), terminated[:, None]
    )
    who = np.where(winner.any(axis=1) & (side != 0), winner.argmax(axis=1), -1)
    return after, CompetitionOutcome(reward, executed, offset, captured, penalty, terminated, side, size, who)
