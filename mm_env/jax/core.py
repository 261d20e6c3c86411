"""The start of an episode and a step's draws on JAX, for the one transition of :mod:`mm_env.dynamics`.

The draws have the NumPy layout (:func:`mm_env.dynamics.sample_draws`): uniforms for the trader's arrival and side,
its size and the fill; then one for informed traders if the model has them, one for jumps if it has them and one to
split ties between competing market makers; then a standard normal if ``sigma > 0``. Only the generator differs
(``jax.random`` instead of NumPy's), so on identical draws the two backends take identical steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mm_env.dynamics import Draws, MarketState
from mm_env.params import CompetitionParams, MarketParams


def initial_state(params: MarketParams | CompetitionParams, shape: tuple[int, ...] = ()) -> MarketState:
    """No inventory, no cash, the mid at ``P0``: one environment (``shape=()``) or a batch of that shape.

    With competing market makers the market makers' fields have one more axis, of length ``M``. ``t`` is an
    integer (int32); the other fields are floats of JAX's default precision.
    """
    market = params.market
    # The dynamics' functions are typed for Python numbers and NumPy arrays; JAX's arrays pass through them untyped.
    zeros: Any = jnp.zeros(shape)
    each: Any = jnp.zeros((*shape, params.num_market_makers)) if isinstance(params, CompetitionParams) else zeros
    return MarketState(
        t=zeros.astype(jnp.int32),
        inventory=each,
        mid=zeros + market.P0,
        cash=each,
        mid_change=zeros,
        traded=each,
        transient=zeros,
    )


def sample_draws(key: jax.Array, params: MarketParams | CompetitionParams, shape: tuple[int, ...] = ()) -> Draws:
    """The random numbers of one step, for one environment (``shape=()``) or a batch of that shape."""
    market = params.market
    informed, jumps = market.flow.draws_informed, market.noise.draws_jump
    tie = params.makers.num_market_makers > 1
    rows = (3 + informed + jumps + tie, *shape)
    normal: Any = jnp.zeros(shape)
    if market.noise.draws_normal:  # a second stream only when the model takes a normal
        key, normal_key = jax.random.split(key)
        normal = jax.random.normal(normal_key, shape)
    uniforms: Any = jax.random.uniform(key, rows)
    return Draws(
        side=uniforms[0],
        size=uniforms[1],
        fill=uniforms[2],
        noise=normal,
        informed=uniforms[3] if informed else None,
        jump=uniforms[3 + informed] if jumps else None,
        tie=uniforms[-1] if tie else None,
    )
