"""The market dynamics of ``MODEL.md`` §2, §5 and §7: the one implementation behind every front-end.

:func:`sample_draws` takes a step's raw random numbers from an explicit ``numpy.random.Generator``, and
:func:`transition` is a pure function of the state, the quotes, those draws and the model, in which the components
of :mod:`mm_env.model` turn the draws into events. The draws never depend on the state or the quotes, so every
policy run on the same seed meets the same traders (common random numbers), and tests can feed any draws they like.

The same code runs on Python numbers (one environment, where NumPy's per-call overhead would dominate) and on NumPy
arrays (a batch): it is written against :mod:`mm_env.model.xp`, picked once per step.

Draw layout per step, the same for one environment and a batch (so a batch of one reproduces a single environment):
uniforms for the trader's arrival and side, its size and the fill; then one for informed traders if
``informed > 0``, one for mid jumps if ``jump_prob > 0`` and, with competing market makers, one to split ties; then a
standard normal if ``sigma > 0``. A component that is off draws nothing, so the default model's stream is that of §2.

The state here has one market maker per environment; :mod:`mm_env.competition.core` adds the agent axis of §8 and
shares this module's draws and :func:`move_mid`. The draws belong to the environment (one trader, one fill uniform,
one mid), not to a market maker, so competing market makers meet the same traders.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from mm_env.model.xp import Number, array, scalar
from mm_env.params import MarketParams

__all__ = ["Draws", "MarketState", "Number", "Outcome", "initial_state", "move_mid", "sample_draws", "transition"]


class MarketState(NamedTuple):
    """The state of one environment (Python numbers) or of a batch (arrays of equal length)."""

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
    Its sign is the side ``L`` of the last trade, which adaptive traders react to."""
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
    """What one step did, besides the new state."""

    reward: Number
    executed: Number
    """Executed size ``Q'`` (0 when nothing traded)."""
    offset: Number
    """Offset ``δ_S`` of the quote on the trader's side."""
    spread_captured: Number
    """What the spread reward pays for the fill, ``Q'·δ_S`` (article mode: ``Q'·(δ_b + δ_a)``)."""
    inventory_penalty: Number
    """``λ·I'²``, plus ``α·I'²`` on the last step."""
    terminated: Number
    trader_side: Number
    """+1 a trader bought, −1 one sold, 0 none came."""
    trader_size: Number
    """The size the trader wanted (0 when none came)."""


def initial_state(params: MarketParams, n: int | None = None) -> MarketState:
    """The start of an episode: no inventory, no cash, the mid at ``P0`` (numbers, or arrays of length ``n``)."""
    if n is None:
        return MarketState(0, 0, params.P0, 0.0, 0.0, 0, 0.0)
    return MarketState(
        np.zeros(n), np.zeros(n), np.full(n, params.P0), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    )


def sample_draws(rng: np.random.Generator, params: MarketParams, n: int | None = None, tie: bool = False) -> Draws:
    """Draw the random numbers of one step for one environment (``n=None``) or ``n`` of them.

    ``tie=True`` adds the uniform that splits ties between market makers quoting the same price (``MODEL.md`` §8),
    after the model's own uniforms.
    """
    informed, jumps = params.flow.draws_informed, params.noise.draws_jump
    rows = 3 + informed + jumps + tie
    uniforms = rng.random(rows).tolist() if n is None else rng.random((rows, n))
    normal: Number = 0.0
    if params.noise.draws_normal:
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
    state: MarketState, bid_offset: Number, ask_offset: Number, draws: Draws, params: MarketParams
) -> tuple[MarketState, Outcome]:
    """Apply one step of the model to the state, given the quotes and the draws.

    ``bid_offset`` and ``ask_offset`` are the offsets ``δ_b, δ_a`` from the mid, already within
    ``[delta_min, delta_max]``.
    """
    xp = array if isinstance(state.inventory, np.ndarray) else scalar  # namespace(), inlined: one env's hot path
    t, inventory, mid, cash, _, last_traded, transient = state
    side, size, news = params.flow.trader(draws.side, draws.size, draws.informed, last_traded, xp)
    # The offset of the quote on the trader's side, without a select (see mm_env.model.xp): the offsets are finite and
    # non-negative, so the products by 1 and 0 and their sum are exact (a −0.0 becomes +0.0).
    offset = (side > 0) * ask_offset + (side <= 0) * bid_offset
    # The limit |I| ≤ I_max cuts the executed size: a trader who buys can take at most I + I_max units.
    executed = xp.minimum(size, params.I_max + side * inventory)
    executed = executed * params.fill.filled(draws.fill, offset, xp)
    traded = side * executed
    earned = executed * offset  # the fill's distance from the mid times its size
    new_inventory = inventory - traded
    new_cash = cash + traded * mid + earned
    mid_change, new_transient = move_mid(mid, transient, traded, executed, news, draws, params, xp)
    new_t = t + 1
    terminated = new_t >= params.T
    new_state = MarketState(new_t, new_inventory, mid + mid_change, new_cash, mid_change, traded, new_transient)
    captured = params.fill.captured(earned, executed, bid_offset, ask_offset)
    reward, penalty = params.objective.step_reward(captured, state, new_state, terminated)
    return new_state, Outcome(reward, executed, offset, captured, penalty, terminated, side, size)


def move_mid(
    mid: Number,
    transient: Number,
    traded: Number,
    executed: Number,
    news: Number,
    draws: Draws,
    params: MarketParams,
    xp: SimpleNamespace,
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
