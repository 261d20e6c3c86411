"""The market dynamics of ``MODEL.md`` §2, §5, §7 and §8: the one implementation behind every front-end.

:func:`sample_draws` takes a step's raw random numbers from an explicit ``numpy.random.Generator``, and
:func:`transition` is a pure function of the state, the quotes, those draws and the model, in which the components
of :mod:`mm_env.model` turn the draws into events. The draws never depend on the state or the quotes, so every
policy run on the same seed meets the same traders (common random numbers), and tests can feed any draws they like.

The same code runs on Python numbers (one environment, where NumPy's per-call overhead would dominate) and on arrays
(a batch): it calls array functions only through the namespace ``xp`` (:mod:`mm_env.xp`) that the caller chooses.
It also runs with one market maker or ``M`` competing ones: the model's ``makers`` component
(:mod:`mm_env.model.makers`) says how the environment's values (time, mid, trader) meet the market makers' values
(inventory, cash, fills, rewards), which then have a last axis of length ``M``. A game with ``M = 1`` steps to the
last bit as the one-MM model on the same quotes.

Draw layout per step, the same for one environment and a batch (so a batch of one reproduces a single environment):
uniforms for the trader's arrival and side, its size and the fill; then one for informed traders if
``informed > 0``, one for mid jumps if ``jump_prob > 0`` and, with competing market makers, one to split ties; then a
standard normal if ``sigma > 0``. A component that is off draws nothing, so the default model's stream is that of §2.
The draws belong to the environment (one trader, one fill uniform, one mid), not to a market maker, so competing
market makers meet the same traders.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mm_env.params import CompetitionParams, MarketParams
from mm_env.xp import ArrayNamespace, Number, namespace_of

__all__ = [
    "Draws",
    "MarketState",
    "Number",
    "Outcome",
    "initial_state",
    "move_mid",
    "sample_draws",
    "transition",
    "wealth",
]


class MarketState(NamedTuple):
    """The state of one environment (Python numbers) or of a batch (arrays of length ``n``).

    With competing market makers the market makers' fields (``inventory``, ``cash``, ``traded``) have shape
    ``(n, M)``; the environment's fields (``t``, ``mid``, ``mid_change``, ``transient``) keep shape ``(n,)``.
    """

    t: Number
    """Steps taken in the episode."""
    inventory: Number
    """The market maker's inventory ``I`` (positive = long)."""
    mid: Number
    """The mid price ``P`` (the fundamental part ``F`` plus the transient part ``D``)."""
    cash: Number
    """The market maker's cash ``X``."""
    mid_change: Number
    """``P_t − P_{t−1}`` over the last step (0 at the start)."""
    traded: Number
    """Units the trader bought from the market maker in the last step (negative: sold to it); ``I`` fell by this.
    Its sign (summed over competing market makers, of whom at most one traded) is the side ``L`` of the last trade,
    which adaptive traders react to."""
    transient: Number = 0.0
    """The transient part ``D`` of the mid (0 unless the model has transient impact)."""


class Draws(NamedTuple):
    """The raw random numbers of one step: uniforms in ``[0, 1)`` and a standard normal."""

    side: Number
    """Brings a trader when below ``pi``, and decides an uninformed trader's side."""
    size: Number
    """Decides the trader's size (inverse CDF)."""
    fill: Number
    """The quote on the trader's side fills when this is below its fill probability."""
    noise: Number = 0.0
    """The standard normal of the mid noise (0 when ``sigma = 0``)."""
    informed: Number | None = None
    """Makes the trader informed when below ``informed`` (``None`` when the model has no informed traders)."""
    jump: Number | None = None
    """Brings a mid jump when below ``jump_prob`` (``None`` when the model has no jumps)."""
    tie: Number | None = None
    """Picks the winner among market makers that tie for the best quote (``None`` with one market maker)."""


class Outcome(NamedTuple):
    """What one step did, besides the new state (per market maker, or per environment, as the state's fields)."""

    reward: Number
    """Each market maker's reward."""
    executed: Number
    """Each market maker's executed size ``Q'`` (0 when it did not trade)."""
    offset: Number
    """Offset ``δ_S`` of the quote the trader met (with competing market makers the best among those who could
    trade), per environment."""
    spread_captured: Number
    """What the spread reward pays for the fill, ``Q'·δ_S`` (article mode: ``Q'·(δ_b + δ_a)``)."""
    inventory_penalty: Number
    """``λ·I'²``, plus ``α·I'²`` on the last step."""
    terminated: Number
    trader_side: Number
    """+1 a trader bought, −1 one sold, 0 none came."""
    trader_size: Number
    """The size the trader wanted (0 when none came)."""
    winner: Number | None = None
    """With competing market makers, the index of the one the trader went to, or −1 where none came or none could
    trade on its side; ``None`` with one market maker."""


def initial_state(params: MarketParams | CompetitionParams, n: int | None = None) -> MarketState:
    """The start of an episode: no inventory, no cash, the mid at ``P0`` (numbers, or arrays for ``n`` environments).

    With competing market makers the market makers' fields have shape ``(n, M)``.
    """
    market = params.market
    if n is None:
        return MarketState(0, 0, market.P0, 0.0, 0.0, 0, 0.0)
    zeros, each = np.zeros(n), np.zeros(params.makers.agent_shape(n))
    return MarketState(zeros, each, np.full(n, market.P0), each, zeros, each, zeros)


def sample_draws(rng: np.random.Generator, params: MarketParams | CompetitionParams, n: int | None = None) -> Draws:
    """Draw the random numbers of one step for one environment (``n=None``) or ``n`` of them.

    With competing market makers (``M ≥ 2``) a uniform that splits ties between market makers quoting the same price
    (``MODEL.md`` §8) follows the model's own uniforms.
    """
    market = params.market
    informed, jumps, tie = market.flow.draws_informed, market.noise.draws_jump, params.makers.num_market_makers > 1
    rows = 3 + informed + jumps + tie
    uniforms = rng.random(rows).tolist() if n is None else rng.random((rows, n))
    normal: Number = 0.0
    if market.noise.draws_normal:
        normal = rng.standard_normal() if n is None else rng.standard_normal(n)
    return Draws(
        uniforms[0],
        uniforms[1],
        uniforms[2],
        normal,
        uniforms[3] if informed else None,
        uniforms[3 + informed] if jumps else None,
        uniforms[-1] if tie else None,
    )


def transition(
    state: MarketState,
    bid_offset: Number,
    ask_offset: Number,
    draws: Draws,
    params: MarketParams | CompetitionParams,
    xp: ArrayNamespace | None = None,
) -> tuple[MarketState, Outcome]:
    """Apply one step of the model to the state, given the quotes and the draws.

    ``bid_offset`` and ``ask_offset`` are the offsets ``δ_b, δ_a`` from the mid, already within
    ``[delta_min, delta_max]`` (and on the tick grid for competing market makers, shape ``(n, M)``). ``xp`` is the
    array namespace of the state's values (default: :func:`mm_env.xp.namespace_of` the inventory).
    """
    if xp is None:
        xp = namespace_of(state.inventory)
    market, makers = params.market, params.makers
    t, inventory, mid, cash, _, last_traded, transient = state
    side, size, news = market.flow.trader(draws.side, draws.size, draws.informed, makers.total(last_traded), xp)
    # The limit |I| ≤ I_max: a market maker selling to a buyer can give at most I + I_max units.
    capacity = market.I_max + makers.each(side) * inventory
    winner, offset, available = makers.match(side, bid_offset, ask_offset, capacity, draws.tie, xp)
    executed = xp.minimum(size, available) * market.fill.filled(draws.fill, offset, xp)
    each_executed = makers.assign(executed, winner)
    traded = makers.each(side) * each_executed
    earned = each_executed * makers.each(offset)  # the fill's distance from the mid times its size
    new_inventory = inventory - traded
    new_cash = cash + traded * makers.each(mid) + earned
    # The trade's signed size S·Q' (one market maker traded, or none): the sum of the market makers' trades.
    mid_change, new_transient = move_mid(mid, transient, makers.total(traded), executed, news, draws, market, xp)
    new_t = t + 1
    terminated = new_t >= market.T
    new_mid = mid + mid_change
    new_state = MarketState(new_t, new_inventory, new_mid, new_cash, mid_change, traded, new_transient)
    captured = market.fill.captured(earned, each_executed, bid_offset, ask_offset)
    objective = market.objective
    if objective.reads_mid:  # the change of each market maker's wealth X + I·P
        gained = (new_cash + new_inventory * makers.each(new_mid)) - (cash + inventory * makers.each(mid))
    else:
        gained = captured
    reward, penalty = objective.step_reward(gained, new_inventory, makers.each(terminated))
    winner_index = makers.winner_index(winner, side, xp)
    return new_state, Outcome(reward, each_executed, offset, captured, penalty, terminated, side, size, winner_index)


def wealth(state: MarketState, params: MarketParams | CompetitionParams) -> Number:
    """Each market maker's mark-to-market wealth ``X + I·P`` (its P&L since the start)."""
    return state.cash + state.inventory * params.makers.each(state.mid)


def move_mid(
    mid: Number,
    transient: Number,
    traded: Number,
    executed: Number,
    news: Number,
    draws: Draws,
    params: MarketParams,
    xp: ArrayNamespace,
) -> tuple[Number, Number]:
    """The mid's move over a step and the new transient part ``D'``, given the step's trade (``traded = S·Q'``).

    The fundamental part of the mid moves by permanent impact, the informed trader's news and exogenous noise; the
    transient part decays and grows with the trade. Every market maker shares this mid (one trade per step).
    """
    flow, impact = params.flow, params.impact
    mid_change = impact.permanent_move(traded, executed, xp)
    if flow.draws_informed:
        mid_change = mid_change + flow.info_jump * news
    if params.noise.moves:
        mid_change = mid_change + params.noise.move(mid - transient, draws.noise, draws.jump, params.P0, xp)
    if not impact.transient:
        return mid_change, transient
    new_transient = impact.transient_level(transient, traded)
    return mid_change + (new_transient - transient), new_transient
