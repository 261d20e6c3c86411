"""The one-step dynamics of MODEL.md §2: hand-computed steps, scalar/array agreement, identities and sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import StubRng, scalar_state, trader_draws

from mm_env.dynamics import Draws, MarketState, initial_state, sample_draws, transition
from mm_env.presets import make_params
from mm_env.xp import NUMPY, SCALAR, namespace_of

DEFAULT = make_params()  # A=0.9, k=2, lam=0.005, kappa=0.05, I_max=50, T=200
MTM = make_params(reward="mtm")


def approx(value):
    return pytest.approx(value, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# Hand-computed single steps (default parameters unless stated).


def test_initial_state():
    s = initial_state(make_params(P0=42.0))
    assert tuple(s) == (0, 0, 42.0, 0.0, 0.0, 0, 0.0)
    batch = initial_state(make_params(P0=42.0), n=3)
    for field, value in zip(batch, (0, 0, 42.0, 0.0, 0.0, 0, 0.0), strict=True):
        assert isinstance(field, np.ndarray) and field.shape == (3,)
        assert (field == value).all()


def test_fill_on_the_ask():
    # I=3, P=100, X=-250; quotes delta_b=1.0, delta_a=0.5. A trader buys 4 units; p = 0.9*exp(-2*0.5) = 0.3311 > 0.1.
    before = scalar_state(t=5, inventory=3, mid=100.0, cash=-250.0)
    after, out = transition(before, 1.0, 0.5, trader_draws(1, 4, 0.1, 0.0), DEFAULT)
    assert out.executed == 4
    assert out.offset == 0.5
    assert after.t == 6
    assert after.inventory == -1  # 3 - 4
    assert after.cash == approx(152.0)  # -250 + 4*(100 + 0.5)
    assert after.mid == approx(100.2)  # 100 + 0.05*4
    assert after.mid_change == approx(0.2)
    assert after.traded == 4
    assert out.spread_captured == approx(2.0)  # 4 * 0.5
    assert out.inventory_penalty == approx(0.005)  # 0.005 * (-1)^2
    assert out.reward == approx(1.995)  # 2.0 - 0.005
    assert not out.terminated
    # Mark-to-market: W = -250 + 3*100 = 50, W' = 152 - 1*100.2 = 51.8, reward = 1.8 - 0.005.
    _, out_mtm = transition(before, 1.0, 0.5, trader_draws(1, 4, 0.1, 0.0), MTM)
    assert out_mtm.reward == approx(1.795)


def test_fill_on_the_bid():
    # I=-2, P=101.5, X=300; quotes delta_b=0.25, delta_a=2. A trader sells 7; p = 0.9*exp(-0.5) = 0.5459 > 0.5.
    before = scalar_state(t=0, inventory=-2, mid=101.5, cash=300.0)
    after, out = transition(before, 0.25, 2.0, trader_draws(-1, 7, 0.5, 0.0), DEFAULT)
    assert out.executed == 7
    assert out.offset == 0.25
    assert after.inventory == 5  # -2 + 7
    assert after.cash == approx(-408.75)  # 300 + 7*(-101.5 + 0.25)
    assert after.mid == approx(101.15)  # 101.5 - 0.05*7
    assert after.traded == -7
    assert out.spread_captured == approx(1.75)  # 7 * 0.25
    assert out.inventory_penalty == approx(0.125)  # 0.005 * 25
    assert out.reward == approx(1.625)
    # W = 300 - 2*101.5 = 97, W' = -408.75 + 5*101.15 = 97: the impact cost eats the spread exactly.
    _, out_mtm = transition(before, 0.25, 2.0, trader_draws(-1, 7, 0.5, 0.0), MTM)
    assert out_mtm.reward == approx(-0.125)


def test_no_fill_when_the_uniform_is_above_the_probability():
    # Same as the ask fill, but fill=0.4 > 0.3311: nothing trades; the penalty is still charged on I=3.
    before = scalar_state(t=5, inventory=3, mid=100.0, cash=-250.0)
    after, out = transition(before, 1.0, 0.5, trader_draws(1, 4, 0.4, 0.0), DEFAULT)
    assert out.executed == 0
    assert after.inventory == 3
    assert after.cash == -250.0
    assert after.mid == 100.0
    assert after.mid_change == 0.0
    assert after.traded == 0
    assert out.spread_captured == 0.0
    assert out.reward == approx(-0.045)  # -0.005 * 9
    assert after.t == 6


def test_fill_threshold_is_strict_at_zero_offset():
    # At delta=0 the fill probability is A = 0.9 exactly: fill iff u < 0.9.
    before = scalar_state(inventory=0)
    _, filled = transition(before, 0.0, 0.0, trader_draws(1, 2, 0.8999999, 0.0), DEFAULT)
    _, unfilled = transition(before, 0.0, 0.0, trader_draws(1, 2, 0.9, 0.0), DEFAULT)
    assert filled.executed == 2
    assert unfilled.executed == 0


def test_a_quote_far_away_almost_never_fills():
    # delta_max = 5: p = 0.9*exp(-10) = 4.09e-5.
    before = scalar_state(inventory=0)
    _, out = transition(before, 5.0, 5.0, trader_draws(-1, 3, 4.2e-5, 0.0), DEFAULT)
    assert out.executed == 0
    _, out = transition(before, 5.0, 5.0, trader_draws(-1, 3, 4.0e-5, 0.0), DEFAULT)
    assert out.executed == 3


def test_no_arrival():
    p = make_params(pi=0.5)
    before = scalar_state(t=2, inventory=3, mid=99.0, cash=10.0)
    after, out = transition(before, 0.0, 0.0, trader_draws(0, 0, 0.0, 0.0, params=p), p)  # fill=0 would fill any quote
    assert out.executed == 0
    assert (after.inventory, after.cash, after.mid, after.traded) == (3, 10.0, 99.0, 0)
    assert out.reward == approx(-0.045)
    assert after.t == 3


def test_partial_fill_at_the_inventory_limit_on_the_bid():
    # I=48, I_max=50, the trader sells 9: the MM can buy only 2 units.
    before = scalar_state(inventory=48, mid=100.0, cash=1000.0)
    after, out = transition(before, 0.5, 0.5, trader_draws(-1, 9, 0.0, 0.0), DEFAULT)
    assert out.executed == 2
    assert after.inventory == 50
    assert after.cash == approx(801.0)  # 1000 + 2*(-100 + 0.5)
    assert after.mid == approx(99.9)  # 100 - 0.05*2
    assert out.spread_captured == approx(1.0)  # 2 * 0.5
    assert out.reward == approx(-11.5)  # 1.0 - 0.005*2500


def test_partial_fill_at_the_inventory_limit_on_the_ask():
    # I=-47, the trader buys 9: the MM can sell only 3 units.
    before = scalar_state(inventory=-47, mid=100.0, cash=0.0)
    after, out = transition(before, 0.5, 1.0, trader_draws(1, 9, 0.0, 0.0), DEFAULT)
    assert out.executed == 3
    assert after.inventory == -50
    assert after.cash == approx(303.0)  # 3*(100 + 1)
    assert after.mid == approx(100.15)
    assert out.reward == approx(3.0 - 12.5)


def test_fill_blocked_entirely_at_the_limit():
    before = scalar_state(inventory=50, mid=100.0, cash=-5000.0)
    after, out = transition(before, 0.0, 0.0, trader_draws(-1, 5, 0.0, 0.0), DEFAULT)
    assert out.executed == 0
    assert (after.inventory, after.cash, after.mid) == (50, -5000.0, 100.0)
    assert out.reward == approx(-12.5)
    # At the long limit a buying trader is served in full (capacity I + I_max = 100).
    after, out = transition(before, 0.0, 0.0, trader_draws(1, 9, 0.0, 0.0), DEFAULT)
    assert out.executed == 9
    assert after.inventory == 41


def test_linear_impact_kappa():
    p = make_params(kappa=0.2)
    before = scalar_state(inventory=0, mid=50.0)
    after, _ = transition(before, 0.0, 0.0, trader_draws(1, 3, 0.0, 0.0), p)
    assert after.mid == approx(50.6)  # 50 + 0.2*3
    after, _ = transition(before, 0.0, 0.0, trader_draws(-1, 3, 0.0, 0.0), p)
    assert after.mid == approx(49.4)
    after, _ = transition(before, 0.0, 0.0, trader_draws(1, 3, 0.0, 0.0), p.replace(kappa=0.0))
    assert after.mid == 50.0


def test_sigma_noise():
    p = make_params(sigma=0.3, reward="mtm")
    before = scalar_state(inventory=3, mid=100.0, cash=-250.0)
    # No fill (u=0.99): the mid moves by sigma*eps = 0.3*(-1.5) = -0.45.
    after, out = transition(before, 0.5, 0.5, trader_draws(1, 4, 0.99, -1.5), p)
    assert after.mid == approx(99.55)
    assert after.mid_change == approx(-0.45)
    assert out.reward == approx(-1.35 - 0.045)  # I'*sigma*eps = 3*(-0.45), minus 0.005*9
    # With a fill: impact and noise add, 100 + 0.05*4 + 0.3*2.0 = 100.8.
    after, _ = transition(before, 0.5, 0.5, trader_draws(1, 4, 0.0, 2.0), p)
    assert after.mid == approx(100.8)
    # sigma = 0 ignores the noise draw.
    after, _ = transition(before, 0.5, 0.5, trader_draws(1, 4, 0.99, -1.5), DEFAULT)
    assert after.mid == 100.0


def test_spread_reward_vs_mtm_reward_on_the_same_step():
    # I=10, P=100, X=-900, a trader buys 5 at delta_a=1: spread reward 5*1 - 0.005*25 = 4.875.
    # W = -900 + 1000 = 100; X' = -900 + 5*101 = -395, P' = 100.25, I' = 5, W' = -395 + 501.25 = 106.25.
    before = scalar_state(inventory=10, mid=100.0, cash=-900.0)
    draws = trader_draws(1, 5, 0.0, 0.0)
    _, spread = transition(before, 1.0, 1.0, draws, DEFAULT)
    _, mtm = transition(before, 1.0, 1.0, draws, MTM)
    assert spread.reward == approx(4.875)
    assert mtm.reward == approx(6.25 - 0.125)


@pytest.mark.parametrize("reward", ["spread", "mtm"])
def test_terminal_penalty_alpha_on_the_last_step_only(reward):
    p = make_params(T=10, alpha=0.1, reward=reward)
    draws = trader_draws(1, 4, 0.999, 0.0)  # no fill: I stays 4
    # Step 9 of 10 (t=8 -> 9): only lam*16 = 0.08.
    after, out = transition(scalar_state(t=8, inventory=4), 0.5, 0.5, draws, p)
    assert after.t == 9
    assert not out.terminated
    assert out.inventory_penalty == approx(0.08)
    assert out.reward == approx(-0.08)
    # Last step (t=9 -> 10): lam*16 + alpha*16 = 0.08 + 1.6.
    after, out = transition(scalar_state(t=9, inventory=4), 0.5, 0.5, draws, p)
    assert after.t == 10
    assert out.terminated
    assert out.inventory_penalty == approx(1.68)
    assert out.reward == approx(-1.68)


def test_terminated_flag_only_at_T():
    p = make_params(T=3)
    s = initial_state(p)
    flags = []
    for _ in range(3):
        s, out = transition(s, 1.0, 1.0, trader_draws(0, 0, 0.5, 0.0, params=make_params(T=3, pi=0.5)), p)
        flags.append(bool(out.terminated))
    assert flags == [False, False, True]


def test_offset_on_the_traders_side_is_exactly_the_quoted_offset():
    # MODEL.md §2: the fill earns Q'*delta_S with delta_S = delta_a for a buyer. With delta_b = 5 (not quoting the bid)
    # and delta_a = 0.3, a fill of 3 earns 3*0.3 exactly, and the cash is X + 3*(P + 0.3).
    before = scalar_state(inventory=0, mid=100.0, cash=0.0)
    after, out = transition(before, 5.0, 0.3, trader_draws(1, 3, 0.0, 0.0), DEFAULT)
    assert out.offset == 0.3
    assert out.spread_captured == 3 * 0.3
    assert after.cash == approx(300.9)


# ---------------------------------------------------------------------------------------------------------------------
# The scalar path and the array path agree exactly.

CASES = [
    # (state, bid_offset, ask_offset, draws)
    (scalar_state(5, 3, 100.0, -250.0), 1.0, 0.5, trader_draws(1, 4, 0.1, 0.3)),
    (scalar_state(0, -2, 101.5, 300.0), 0.25, 2.0, trader_draws(-1, 7, 0.5, -1.2)),
    (scalar_state(5, 3, 100.0, -250.0), 1.0, 0.5, trader_draws(1, 4, 0.4, 0.0)),
    (scalar_state(7, 48, 99.3, 12.0), 0.5, 0.7, trader_draws(-1, 9, 0.01, 0.5)),
    (scalar_state(7, 50, 99.3, 12.0), 0.0, 0.0, trader_draws(-1, 5, 0.0, 2.0)),
    (scalar_state(9, -47, 101.1, 8.5), 0.3, 0.9, trader_draws(1, 9, 0.02, -0.1)),
    (scalar_state(3, 6, 100.7, -3.0), 0.1, 0.1, Draws(0.95, 0.0, 0.0, 1.0)),
    (scalar_state(199, 11, 98.0, 1.0), 1.7, 0.2, trader_draws(1, 2, 0.3, 0.0)),
]


@pytest.mark.parametrize(
    "params",
    [
        DEFAULT,
        MTM,
        make_params(sigma=0.4, alpha=0.3, reward="mtm"),
        make_params(sigma=0.4, alpha=0.3),
        make_params(mode="article", I_max=50),
        make_params(pi=0.5, kappa=0.0, A=1.0, k=0.7),
    ],
)
def test_scalar_and_array_paths_agree(params):
    scalar_results = [transition(s, b, a, d, params) for s, b, a, d in CASES]
    states = MarketState(*(np.array([float(c[0][i]) for c in CASES]) for i in range(7)))
    bids = np.array([c[1] for c in CASES])
    asks = np.array([c[2] for c in CASES])
    draws = Draws(*(np.array([float(c[3][i]) for c in CASES]) for i in range(4)))
    batch_state, batch_out = transition(states, bids, asks, draws, params)
    for j, (state, out) in enumerate(scalar_results):
        for name, value in state._asdict().items():
            assert getattr(batch_state, name)[j] == value, (j, name)
        for name, value in out._asdict().items():
            if value is None:  # the winner: one market maker has none to name
                assert getattr(batch_out, name) is None
                continue
            assert np.asarray(getattr(batch_out, name))[j] == value, (j, name)


# ---------------------------------------------------------------------------------------------------------------------
# The mark-to-market identity of MODEL.md §4 on simulated paths.


@pytest.mark.parametrize("sigma", [0.0, 0.7])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_mtm_identity_on_simulated_paths(sigma, alpha):
    p = make_params(T=400, I_max=12, sigma=sigma, alpha=alpha, kappa=0.07, lam=0.003, reward="mtm")
    rng = np.random.default_rng(12345)
    quotes = np.random.default_rng(99)
    state = initial_state(p)
    rewards = penalties = trade_terms = noise_terms = 0.0
    for _ in range(p.T):
        bid, ask = quotes.uniform(0.0, 1.5, size=2).tolist()
        draws = sample_draws(rng, p)
        inventory = state.inventory
        state, out = transition(state, bid, ask, draws, p)
        # Independent re-derivation of the trader and the fill from the raw draws (MODEL.md §2, steps 1-3).
        side = 1 if draws.side < 0.5 else -1
        size = p.sizes[int(draws.size * len(p.sizes))]
        delta_s = ask if side == 1 else bid
        capacity = inventory + p.I_max if side == 1 else p.I_max - inventory
        filled = draws.fill < p.A * math.exp(-p.k * delta_s)
        executed = min(size, capacity) if filled else 0
        assert out.executed == executed
        assert state.inventory == inventory - side * executed
        rewards += out.reward
        penalties += p.lam * state.inventory**2
        trade_terms += executed * (delta_s - p.kappa * executed / 2)
        noise_terms += state.inventory * sigma * draws.noise
    penalties += p.alpha * state.inventory**2
    lhs = rewards + penalties
    rhs = trade_terms - p.kappa / 2 * (state.inventory**2 - 0) + noise_terms
    assert lhs == pytest.approx(rhs, rel=0, abs=1e-9)
    # The path must have exercised trades on both sides and the limit, or the identity is vacuous.
    assert trade_terms != 0.0


def test_mtm_identity_on_batched_paths():
    p = make_params(T=300, I_max=10, sigma=0.5, kappa=0.1, reward="mtm")
    n = 16
    rng = np.random.default_rng(7)
    quotes = np.random.default_rng(8)
    state = initial_state(p, n)
    lhs = np.zeros(n)
    trade_terms = np.zeros(n)
    noise_terms = np.zeros(n)
    for _ in range(p.T):
        bid, ask = quotes.uniform(0.0, 1.2, size=(2, n))
        draws = sample_draws(rng, p, n)
        state, out = transition(state, bid, ask, draws, p)
        delta_s = np.where(draws.side < 0.5, ask, bid)  # a trader buys (lifts the ask) when u < pi/2 = 0.5
        lhs += out.reward + p.lam * state.inventory**2
        trade_terms += out.executed * (delta_s - p.kappa * out.executed / 2)
        noise_terms += state.inventory * p.sigma * draws.noise
    rhs = trade_terms - p.kappa / 2 * state.inventory**2 + noise_terms
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-9)
    assert np.abs(state.inventory).max() <= p.I_max


# ---------------------------------------------------------------------------------------------------------------------
# Sampling: fill probabilities, arrivals, sides and sizes.


def _within_4_se(count, n, p):
    se = math.sqrt(p * (1 - p) / n)
    return abs(count / n - p) <= 4 * se


@pytest.mark.parametrize(("A", "k", "delta"), [(0.9, 2.0, 0.3), (0.9, 2.0, 1.2), (0.6, 1.0, 0.05)])
def test_fill_frequency_matches_A_exp_minus_k_delta(A, k, delta):
    p = make_params(A=A, k=k)
    n = 200_000
    rng = np.random.default_rng(2024)
    state = initial_state(p, n)
    draws = sample_draws(rng, p, n)
    offsets = np.full(n, delta)
    _, out = transition(state, offsets, offsets, draws, p)
    expected = A * math.exp(-k * delta)
    assert _within_4_se(np.count_nonzero(out.executed > 0), n, expected)


def test_fill_frequency_scalar_path():
    p = make_params()
    delta = 0.4
    expected = 0.9 * math.exp(-0.8)
    rng = np.random.default_rng(31)
    n = 20_000
    fills = 0
    for _ in range(n):
        _, out = transition(scalar_state(), delta, delta, sample_draws(rng, p), p)
        fills += out.executed > 0
    assert _within_4_se(fills, n, expected)


def _traders(p, draws, last_traded=0.0):
    """The traders the order flow makes of raw draws (sides, sizes, news)."""
    xp = namespace_of(draws.side)
    return p.flow.trader(draws.side, draws.size, draws.informed, last_traded, xp)


def test_arrival_and_side_frequencies():
    p = make_params(pi=0.3)
    n = 200_000
    side, size, _ = _traders(p, sample_draws(np.random.default_rng(5), p, n))
    arrived = side != 0
    assert _within_4_se(np.count_nonzero(arrived), n, 0.3)
    buys = np.count_nonzero(side[arrived] > 0)
    assert _within_4_se(buys, np.count_nonzero(arrived), 0.5)
    assert set(np.unique(side)) <= {-1.0, 0.0, 1.0}
    assert (size[~arrived] == 0).all()
    assert (size[arrived] >= 1).all()


def test_every_step_has_a_trader_when_pi_is_one():
    p = make_params()
    side, _, _ = _traders(p, sample_draws(np.random.default_rng(0), p, 100_000))
    assert np.isin(side, [-1.0, 1.0]).all()
    assert _within_4_se(np.count_nonzero(side > 0), 100_000, 0.5)


@pytest.mark.parametrize("n", [None, 3])
def test_no_trader_ever_arrives_when_pi_is_zero(n):
    # Whatever uniforms the generator returns (0.0 is a legal output of Generator.random), pi = 0 means no trader.
    p = make_params(pi=0.0)
    for u in (0.0, 1e-300, 0.25, 0.5, 0.999999):
        side, size, _ = _traders(p, sample_draws(StubRng([u]), p, n))
        assert np.all(np.asarray(side) == 0), u
        assert np.all(np.asarray(size) == 0), u


@pytest.mark.parametrize("n", [None, 3])
def test_a_trader_always_arrives_when_pi_is_one(n):
    p = make_params(pi=1.0)
    for u in (0.0, 0.4999999, 0.5, 0.999999):
        side, size, _ = _traders(p, sample_draws(StubRng([u]), p, n))
        assert np.all(np.abs(np.asarray(side)) == 1), u
        assert np.all(np.asarray(size) >= 1), u


@pytest.mark.parametrize(
    ("sizes", "size_probs"),
    [
        (tuple(range(1, 10)), None),
        ((3, 7), None),
        ((2, 5, 11), (0.2, 0.5, 0.3)),
        ((1, 2, 3, 4), (0.0, 0.1, 0.0, 0.9)),
    ],
)
def test_size_distribution(sizes, size_probs):
    p = make_params(sizes=sizes, size_probs=size_probs)
    probs = size_probs or [1 / len(sizes)] * len(sizes)
    n = 150_000
    _, size, _ = _traders(p, sample_draws(np.random.default_rng(77), p, n))
    assert set(np.unique(size)) <= set(sizes)
    for value, prob in zip(sizes, probs, strict=True):
        count = np.count_nonzero(size == value)
        if prob == 0.0:
            assert count == 0
        else:
            assert _within_4_se(count, n, prob), (value, count / n, prob)
    # The scalar path, with fewer samples.
    rng = np.random.default_rng(78)
    m = 20_000
    scalar_sizes = np.array([_traders(p, sample_draws(rng, p))[1] for _ in range(m)])
    for value, prob in zip(sizes, probs, strict=True):
        count = np.count_nonzero(scalar_sizes == value)
        if prob == 0.0:
            assert count == 0
        else:
            assert _within_4_se(count, m, prob), (value, count / m, prob)


@pytest.mark.parametrize(
    "params",
    [
        make_params(),
        make_params(pi=0.4),
        make_params(sizes=(2, 5, 11), size_probs=(0.2, 0.5, 0.3)),
        make_params(sizes=(3, 7, 20)),
        make_params(sigma=0.5, pi=0.7),
    ],
)
def test_scalar_draws_equal_batched_draws_of_one(params):
    scalar_rng = np.random.default_rng(4242)
    batch_rng = np.random.default_rng(4242)
    for _ in range(500):
        s = sample_draws(scalar_rng, params)
        b = sample_draws(batch_rng, params, 1)
        for name in Draws._fields:
            assert np.asarray(getattr(b, name)).reshape(-1)[0] == getattr(s, name), name
    # Both generators were advanced identically.
    assert scalar_rng.random() == batch_rng.random()


def test_scalar_draws_are_python_scalars():
    p = make_params(sigma=1.0)
    d = sample_draws(np.random.default_rng(0), p)
    for u in (d.side, d.size, d.fill):
        assert type(u) is float and 0.0 <= u < 1.0
    assert isinstance(d.noise, float)
    side, size, _ = _traders(p, d)
    assert side in (-1.0, 1.0) and type(size) is int and 1 <= size <= 9


# ---------------------------------------------------------------------------------------------------------------------
# Hand-computed steps of the extensions of MODEL.md §7.


def test_an_informed_trader_moves_the_mid_whether_or_not_it_trades():
    p = make_params(informed=0.4, info_jump=0.5, kappa=0.05, reward="mtm")
    before = scalar_state(inventory=2, mid=100.0, cash=-200.0)
    # u_informed = 0.1 < 0.4/2: informed, Z = +1, so it buys whatever u_side says (0.9 would be a seller).
    filled, out = transition(before, 0.5, 0.5, Draws(0.9, 0.5, 0.0, 0.0, 0.1), p)
    assert out.trader_side == 1 and out.executed == 5  # u_size 0.5 → size 5
    assert filled.mid == approx(100.0 + 0.05 * 5 + 0.5)
    # Declined (u_fill 0.99): no trade, yet the news moves the mid by J·Z, and mtm charges the inventory for it.
    declined, out = transition(before, 0.5, 0.5, Draws(0.9, 0.5, 0.99, 0.0, 0.1), p)
    assert out.executed == 0 and declined.mid == approx(100.5) and declined.traded == 0
    assert out.reward == approx(2 * 0.5 - 0.005 * 4)
    # u_informed = 0.3 in [0.2, 0.4): informed seller, Z = −1.
    _, out = transition(before, 0.5, 0.5, Draws(0.1, 0.5, 0.99, 0.0, 0.3), p)
    assert out.trader_side == -1
    # u_informed = 0.5 ≥ 0.4: uninformed; u_side = 0.1 < 0.5 buys, and no news.
    after, out = transition(before, 0.5, 0.5, Draws(0.1, 0.5, 0.99, 0.0, 0.5), p)
    assert out.trader_side == 1 and after.mid == 100.0


def test_momentum_shifts_the_uninformed_buy_probability_by_the_last_trade():
    p = make_params(momentum=0.6)  # buy with probability 0.5 + 0.3·L
    draws = Draws(0.7, 0.5, 0.99, 0.0)  # u_side = 0.7: a seller after no trade, a buyer after a buy (0.7 < 0.8)
    _, after_none = transition(scalar_state(traded=0), 1.0, 1.0, draws, p)
    _, after_buy = transition(scalar_state(traded=3), 1.0, 1.0, draws, p)
    _, after_sell = transition(scalar_state(traded=-2), 1.0, 1.0, Draws(0.3, 0.5, 0.99, 0.0), p)  # 0.3 ≥ 0.2
    assert (after_none.trader_side, after_buy.trader_side, after_sell.trader_side) == (-1, 1, -1)


def test_power_law_impact():
    p = make_params(kappa=0.15, impact_exponent=0.5)
    after, out = transition(scalar_state(mid=50.0), 0.0, 0.0, trader_draws(-1, 4, 0.0, params=p), p)
    assert out.executed == 4 and after.mid == approx(50.0 - 0.15 * 2.0)  # κ·√4 downwards


def test_jumps_and_mean_reversion_move_the_fundamental():
    p = make_params(kappa=0.0, jump_prob=0.2, jump_size=0.7, mean_reversion=0.25, P0=100.0)
    before = scalar_state(mid=104.0)
    up, _ = transition(before, 5.0, 5.0, Draws(0.3, 0.5, 0.99, 0.0, 1.0, 0.05), p)  # u_jump < 0.1: up
    down, _ = transition(before, 5.0, 5.0, Draws(0.3, 0.5, 0.99, 0.0, 1.0, 0.15), p)  # in [0.1, 0.2): down
    still, _ = transition(before, 5.0, 5.0, Draws(0.3, 0.5, 0.99, 0.0, 1.0, 0.5), p)  # no jump
    assert still.mid == approx(104.0 + 0.25 * (100.0 - 104.0))
    assert up.mid == approx(still.mid + 0.7) and down.mid == approx(still.mid - 0.7)


def test_the_draws_grow_only_for_extensions_that_are_on():
    rng = np.random.default_rng(0)
    reference = np.random.default_rng(0).random(5)
    d = sample_draws(rng, make_params(informed=0.1, jump_prob=0.1, jump_size=1.0))
    assert [d.side, d.size, d.fill, d.informed, d.jump] == reference.tolist()
    assert rng.random() == np.random.default_rng(0).random(6)[-1]  # five uniforms were taken, no normal
    plain = sample_draws(np.random.default_rng(0), make_params())
    assert (plain.informed, plain.jump, plain.noise) == (None, None, 0.0)  # nothing drawn for what is off


def test_signed_event_splits_its_probability_evenly_between_up_and_down_on_numbers_and_arrays():
    p = 0.3
    below_half, below_p = math.nextafter(0.15, 0.0), math.nextafter(0.3, 0.0)
    uniforms = [0.0, below_half, 0.15, below_p, 0.3, 0.99]
    expected = [1, 1, -1, -1, 0, 0]
    assert [SCALAR.signed_event(u, p) for u in uniforms] == expected
    assert all(type(SCALAR.signed_event(u, p)) is int for u in uniforms)  # one env's sides stay integers
    batch = NUMPY.signed_event(np.array(uniforms), p)
    assert batch.dtype == np.float64 and batch.tolist() == expected
    assert not np.signbit(batch[-2:]).any()  # no event is +0.0, as np.where gave
    assert NUMPY.signed_event(np.array([0.0, 0.5]), 0.0).tolist() == [0.0, 0.0]  # probability 0: never
    assert NUMPY.signed_event(np.array([0.0, 0.49, 0.5, 0.99]), 1.0).tolist() == [1.0, 1.0, -1.0, -1.0]  # always
