"""Tapes made by the model itself (``MODEL.md`` §10.4), for the recovery test and the replay-engine check.

:func:`simulate_tape` runs the project's :func:`~mm_env.dynamics.transition` on the draws of
:func:`~mm_env.dynamics.sample_draws` (what ``gym.make("mm_env/MarketMaking-v0")`` runs) with a market maker that
quotes ``δ_b = δ_a = 0`` and an inventory limit that never binds, and writes what it prints as a
:class:`~mm_env.data.tape.Tape`. The simulator's own fill at ``δ = 0`` (probability ``A``) decides whether a trader
prints. A trader who prints at step ``n`` becomes one market order at ``t_0 + (n + ½)·dt`` with side ``S``, size
``Q·lot`` and one fill at price ``(P_n + S·D)·tick``, where ``D = ln(A/u)/k`` comes from the step's fill uniform
``u``: a quote at ``δ`` would have filled iff ``u < A·e^{−kδ}``, that is iff ``D > δ``, so the tape reveals each
trader's reservation depth (``Exp(k)`` given a print). The mid ``P_0`` is recorded at ``t_0 − dt/4`` and ``P_{n+1}``
at ``t_0 + (n + ¾)·dt``, after the step's print, as a one-tick book ``(P − ½, P + ½)·tick``. Every print is a fill of
the tape's market maker, so it moves the mid by the model's impact.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from mm_env.data.tape import Quotes, Tape, Trades
from mm_env.dynamics import Draws, initial_state, sample_draws, transition
from mm_env.model.fill import ExponentialFill
from mm_env.params import MarketParams
from mm_env.xp import SCALAR

__all__ = ["simulate_tape", "simulated_draws", "simulation_params"]


def simulation_params(params: MarketParams, steps: int) -> MarketParams:
    """The model the tape is simulated in: ``params`` over ``steps`` steps, with a limit that never binds.

    ``delta_min`` becomes 0 (the tape's market maker quotes at the mid); everything that decides the flow, the fills
    and the mid (and so the draws' layout) is ``params``'s.
    """
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: must be an integer >= 1")
    if not isinstance(params, MarketParams) or not isinstance(params.fill, ExponentialFill):
        raise ValueError(f"params={params!r} is invalid: must be a MarketParams with the fill law A·exp(−k·δ)")
    return params.replace(T=int(steps), I_max=int(steps) * params.max_size + 1, delta_min=0.0)


def simulated_draws(params: MarketParams, steps: int, seed: int) -> list[Draws]:
    """The draws of the tape of :func:`simulate_tape` with the same arguments, step by step.

    They come from ``numpy.random.default_rng(seed)`` through :func:`~mm_env.dynamics.sample_draws`, as in the
    environment reset with that seed; the layout depends only on the flow and the noise, so the draws serve any
    model with the same flow and noise (the replay-engine check runs the model's own market maker on them).
    """
    model = simulation_params(params, steps)
    rng = np.random.default_rng(seed)
    return [sample_draws(rng, model) for _ in range(model.T)]


def simulate_tape(
    params: MarketParams, steps: int, seed: int, *, dt: float = 1.0, tick: float = 1.0, lot: float = 1.0
) -> Tape:
    """A tape of ``steps`` steps of the model ``params`` (``MODEL.md`` §10.4), its grid starting at ``t_0 = dt``.

    The capture starts at ``dt/2`` (so that ``t_0 = dt``, the first multiple of ``dt`` after it) and ends at
    ``t_0 + steps·dt``. Prices are ``P·tick`` and sizes ``Q·lot``; the mid must stay above half a tick (choose
    ``P0`` well above the mid's range over the tape).
    """
    for name, value in (("dt", dt), ("tick", tick), ("lot", lot)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r} is invalid: must be a finite number > 0")
    model = simulation_params(params, steps)
    fill = model.fill
    assert isinstance(fill, ExponentialFill)  # simulation_params checks it
    t0 = float(dt)
    state = initial_state(model)
    trade_time, trade_price, trade_size, trade_side = [], [], [], []
    quote_time, mids = [t0 - 0.25 * dt], [float(state.mid)]
    for n, draws in enumerate(simulated_draws(params, steps, seed)):
        mid = float(state.mid)
        state, outcome = transition(state, 0.0, 0.0, draws, model, SCALAR)
        if outcome.executed > 0:
            side = int(outcome.trader_side)
            depth = math.log(fill.A / max(float(draws.fill), 1e-300)) / fill.k
            trade_time.append(t0 + (n + 0.5) * dt)
            trade_price.append((mid + side * depth) * tick)
            trade_size.append(float(outcome.executed) * lot)
            trade_side.append(side)
        quote_time.append(t0 + (n + 0.75) * dt)
        mids.append(float(state.mid))
    mid_prices = np.asarray(mids) * tick
    trades = Trades(
        np.asarray(trade_time, dtype=np.float64),
        np.asarray(trade_price, dtype=np.float64),
        np.asarray(trade_size, dtype=np.float64),
        np.asarray(trade_side, dtype=np.int8),
        np.arange(len(trade_time), dtype=np.int64),
    )
    quotes = Quotes(np.asarray(quote_time), mid_prices - 0.5 * tick, mid_prices + 0.5 * tick)
    source = f"simulated: {steps} steps of the model, seed {seed}"
    return Tape(trades, quotes, 0.5 * dt, t0 + steps * dt, source)
