"""Hypothesis properties: inventory bounds, exact accounting, reward decomposition, batch/scalar agreement."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from helpers import trader_of
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mm_env.dynamics import Draws, MarketState, initial_state, sample_draws, transition
from mm_env.env import MarketMakingEnv
from mm_env.presets import make_params
from mm_env.spaces import decode_actions

finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def market_params(draw, sigma_zero: bool = False, modes=("standard",)):
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=5, unique=True))
    if draw(st.booleans()):
        weights = draw(st.lists(st.integers(0, 5), min_size=len(sizes), max_size=len(sizes)))
        if sum(weights) == 0:
            weights[0] = 1
        size_probs = tuple(w / sum(weights) for w in weights)
    else:
        size_probs = None
    delta_min = draw(st.floats(0.0, 1.0, **finite))
    mode = draw(st.sampled_from(modes))
    fill = {"A": draw(st.floats(0.05, 1.0, **finite)), "k": draw(st.floats(0.1, 5.0, **finite))}
    return make_params(
        T=draw(st.integers(1, 12)),
        P0=draw(st.floats(1.0, 500.0, **finite)),
        I_max=draw(st.integers(1, 15)),
        pi=draw(st.floats(0.0, 1.0, **finite)),
        sizes=tuple(sizes),
        size_probs=size_probs,
        lam=draw(st.floats(0.0, 0.05, **finite)),
        alpha=draw(st.floats(0.0, 0.2, **finite)),
        kappa=draw(st.floats(0.0, 0.5, **finite)),
        sigma=0.0 if sigma_zero else draw(st.sampled_from([0.0, 0.3, 1.0])),
        delta_min=delta_min,
        delta_max=delta_min + draw(st.floats(0.1, 5.0, **finite)),
        reward=draw(st.sampled_from(["spread", "mtm"])),
        mode=mode,
        **(fill if mode == "standard" else {}),  # the article's fill law has no A or k
    )


actions_st = st.lists(
    st.tuples(st.floats(-1.5, 1.5, **finite), st.floats(-1.5, 1.5, **finite)), min_size=12, max_size=12
)


@settings(max_examples=60)
@given(params=market_params(modes=("standard", "article")), actions=actions_st, seed=st.integers(0, 2**32 - 1))
def test_inventory_stays_within_limits_and_integral(params, actions, seed):
    env = MarketMakingEnv(params)
    obs, info = env.reset(seed=seed)
    for t, action in enumerate(actions[: params.T], start=1):
        obs, reward, terminated, truncated, info = env.step(np.array(action, dtype=np.float32))
        inventory = info["inventory"]
        assert isinstance(inventory, int) and not isinstance(inventory, bool)
        assert -params.I_max <= inventory <= params.I_max
        assert obs in env.observation_space
        assert math.isfinite(reward)
        assert terminated is (t == params.T)
        assert truncated is False


@settings(max_examples=60)
@given(params=market_params(), actions=actions_st, seed=st.integers(0, 2**32 - 1))
def test_every_trade_is_accounted_for(params, actions, seed):
    """X' − X = traded·P + executed·δ_S and P' − P = κ·traded + σε at every step; rewards decompose exactly."""
    rng = np.random.default_rng(seed)
    state = initial_state(params)
    wealth0 = state.cash + state.inventory * state.mid
    reward_sum = penalty_sum = captured_sum = 0.0
    for t, (a_bid, a_ask) in enumerate(actions[: params.T], start=1):
        lo, hi = params.delta_min, params.delta_max
        bid = min(max(lo + (a_bid + 1) / 2 * (hi - lo), lo), hi)
        ask = min(max(lo + (a_ask + 1) / 2 * (hi - lo), lo), hi)
        draws = sample_draws(rng, params)
        before = state
        state, out = transition(before, bid, ask, draws, params)
        # Who traded, independently of the code under test (MODEL.md §2).
        side, size = trader_of(draws, params)
        delta_s = ask if side == 1 else bid
        capacity = before.inventory + params.I_max if side == 1 else params.I_max - before.inventory
        fills = side != 0 and draws.fill < params.A * math.exp(-params.k * delta_s)
        executed = min(size, capacity) if fills else 0
        traded = side * executed  # units the MM sold
        assert out.executed == executed
        assert state.traded == traded
        assert state.inventory == before.inventory - traded
        assert state.t == before.t + 1 == t
        scale = 1.0 + abs(before.cash) + abs(traded * before.mid)
        assert state.cash - before.cash == pytest.approx(traded * before.mid + executed * delta_s, abs=1e-12 * scale)
        assert state.mid - before.mid == pytest.approx(
            params.kappa * traded + params.sigma * draws.noise, abs=1e-12 * (1 + abs(before.mid))
        )
        penalty = params.lam * state.inventory**2 + (params.alpha * state.inventory**2 if t == params.T else 0.0)
        assert out.inventory_penalty == pytest.approx(penalty, rel=1e-12, abs=1e-15)
        reward_sum += out.reward
        penalty_sum += penalty
        captured_sum += executed * delta_s
    wealth = state.cash + state.inventory * state.mid
    scale = 1.0 + abs(state.cash) + abs(state.inventory * state.mid) + abs(reward_sum)
    if params.reward == "spread":
        # The sum of spread rewards plus penalties is the spread captured, Σ executed·δ_S.
        assert reward_sum + penalty_sum == pytest.approx(captured_sum, abs=1e-9 * scale)
    else:
        # Mark-to-market rewards telescope to the change of wealth X + I·P.
        assert reward_sum + penalty_sum == pytest.approx(wealth - wealth0, abs=1e-9 * scale)


@settings(max_examples=60)
@given(params=market_params(sigma_zero=True), actions=actions_st, seed=st.integers(0, 2**32 - 1))
def test_wealth_identity_with_linear_impact(params, actions, seed):
    """With σ = 0, W_T − W_0 = Σ Q'·(δ_S − κ·Q'/2) − (κ/2)·I_T² with W = X + I·P (MODEL.md §4)."""
    env = MarketMakingEnv(params)
    _, info = env.reset(seed=seed)
    total = 0.0
    for a_bid, a_ask in actions[: params.T]:
        mid = info["mid"]
        _, _, _, _, info = env.step(np.array([a_bid, a_ask]))
        if info["fill_size"]:
            delta_s = info["ask"] - mid if info["fill_side"] > 0 else mid - info["bid"]
            total += info["fill_size"] * (delta_s - params.kappa * info["fill_size"] / 2)
    expected = total - params.kappa / 2 * info["inventory"] ** 2
    scale = 1.0 + abs(info["cash"]) + abs(info["inventory"] * info["mid"])
    assert info["mtm_pnl"] == pytest.approx(expected, abs=1e-9 * scale)


@st.composite
def batch_inputs(draw):
    params = draw(market_params(modes=("standard", "article")))
    n = draw(st.integers(1, 6))
    rows = []
    for _ in range(n):
        uniform = st.floats(0.0, 1.0, exclude_max=True, **finite)
        rows.append(
            (
                MarketState(
                    draw(st.integers(0, params.T - 1)),
                    draw(st.integers(-params.I_max, params.I_max)),
                    draw(st.floats(1.0, 500.0, **finite)),
                    draw(st.floats(-1e4, 1e4, **finite)),
                    0.0,
                    0,
                ),
                draw(st.floats(params.delta_min, params.delta_max, **finite)),
                draw(st.floats(params.delta_min, params.delta_max, **finite)),
                Draws(draw(uniform), draw(uniform), draw(uniform), draw(st.floats(-4, 4))),
            )
        )
    return params, rows


@settings(max_examples=100)
@given(inputs=batch_inputs())
def test_batched_step_equals_scalar_steps(inputs):
    params, rows = inputs
    expected = [transition(state, bid, ask, draws, params) for state, bid, ask, draws in rows]
    states = MarketState(*(np.array([float(r[0][i]) for r in rows]) for i in range(7)))
    draws = Draws(*(np.array([float(r[3][i]) for r in rows]) for i in range(4)))
    bids = np.array([r[1] for r in rows])
    asks = np.array([r[2] for r in rows])
    batch_state, batch_out = transition(states, bids, asks, draws, params)
    for j, (state, out) in enumerate(expected):
        for name, value in state._asdict().items():
            assert np.asarray(getattr(batch_state, name))[j] == value, (j, name)
        for name, value in out._asdict().items():
            if value is None:  # the winner: one market maker has none to name
                assert getattr(batch_out, name) is None
                continue
            assert np.asarray(getattr(batch_out, name))[j] == value, (j, name)


@settings(max_examples=50)
@given(params=market_params(), seed=st.integers(0, 2**32 - 1))
def test_scalar_draws_equal_batched_draws_of_one(params, seed):
    scalar_rng = np.random.default_rng(seed)
    batch_rng = np.random.default_rng(seed)
    for _ in range(20):
        s = sample_draws(scalar_rng, params)
        b = sample_draws(batch_rng, params, 1)
        for name in Draws._fields:
            assert np.asarray(getattr(b, name)).reshape(-1)[0] == getattr(s, name), name
        assert all(0.0 <= u < 1.0 for u in (s.side, s.size, s.fill))


@settings(max_examples=100)
@given(
    params=market_params(),
    normalize=st.booleans(),
    actions=st.lists(st.tuples(st.floats(-10.0, 10.0, **finite), st.floats(-10.0, 10.0, **finite)), min_size=1),
)
def test_batched_action_decoding_equals_scalar_decoding(params, normalize, actions):
    # Inside and outside the box alike: the batch skips clipping when nothing is out of bounds, and must still agree.
    array = np.array(actions, dtype=np.float32)
    bids, asks = decode_actions(array, params, normalize, batch=len(array))
    for row, bid, ask in zip(array, bids, asks, strict=True):
        assert (bid, ask) == decode_actions(row, params, normalize)
        assert params.delta_min <= bid <= params.delta_max and params.delta_min <= ask <= params.delta_max


@settings(max_examples=100)
@given(
    params=market_params(),
    normalize=st.booleans(),
    actions=st.lists(st.tuples(st.floats(**finite), st.floats(**finite)), min_size=1),
)
@example(params=make_params(), normalize=True, actions=[(1.7976931348623157e308, -1.7976931348623157e308)])
@example(params=make_params(), normalize=True, actions=[(1e308, 0.5), (-3.0, -1e300)])
def test_float64_actions_of_any_finite_size_decode_alike_without_a_warning(params, normalize, actions):
    # Up to ±1.8e308, where the map overflows unless the batch brings the actions within ±2 first.
    array = np.array(actions, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bids, asks = decode_actions(array, params, normalize, batch=len(array))
    for row, bid, ask in zip(array, bids, asks, strict=True):
        assert (bid, ask) == decode_actions(row, params, normalize)


@settings(max_examples=50)
@given(
    n=st.integers(1, 6),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
    where=st.tuples(st.integers(0, 5), st.integers(0, 1)),
)
def test_batched_decoding_rejects_any_non_finite_value(n, bad, where):
    actions = np.zeros((n, 2), dtype=np.float32)
    row, column = where[0] % n, where[1]
    actions[row, column] = bad
    with pytest.raises(ValueError, match=rf"finite; environments \[{row}\]"):
        decode_actions(actions, make_params(), True, batch=n)
