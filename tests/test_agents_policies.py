"""The quoting policies of ``agents.policies``: offsets by hand, tables, observations and actions."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exact.dp import solve_dp, table_shape
from agents.policies import (
    ArticleRule,
    ConstantSpread,
    DPPolicy,
    LinearSkew,
    TabularPolicy,
    grid_states,
)
from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState
from mm_env.env import MarketMakingEnv
from mm_env.presets import make_params
from mm_env.spaces import decode_actions
from mm_env.vector_env import MarketMakingVectorEnv

DEFAULT = make_params("default")
ARTICLE = make_params("article")


def test_article_rule_offsets_by_hand():
    rule = ArticleRule(spread_base=0.5, gamma=0.1)
    # Long 10: widen the bid (buy less), keep the ask at the base.
    bid, ask = rule.offsets(np.array([0]), np.array([10.0]), DEFAULT)
    assert bid[0] == pytest.approx(1.5) and ask[0] == pytest.approx(0.5)
    # Short 10: mirrored.
    bid, ask = rule.offsets(np.array([0]), np.array([-10.0]), DEFAULT)
    assert bid[0] == pytest.approx(0.5) and ask[0] == pytest.approx(1.5)
    bid, ask = rule.offsets(np.array([0]), np.array([0.0]), DEFAULT)
    assert bid[0] == ask[0] == 0.5
    # The flipped reading swaps the sides.
    flipped = ArticleRule(0.5, 0.1, flipped=True)
    bid, ask = flipped.offsets(np.array([0]), np.array([10.0]), DEFAULT)
    assert bid[0] == pytest.approx(0.5) and ask[0] == pytest.approx(1.5)
    bid, ask = flipped.offsets(np.array([0]), np.array([-10.0]), DEFAULT)
    assert bid[0] == pytest.approx(1.5) and ask[0] == pytest.approx(0.5)


def test_article_rule_is_the_articles_formula_with_q_equal_to_minus_inventory():
    # MODEL.md §1: the article's bid = P − Δ − |min(γq, 0)|, ask = P + Δ + max(γq, 0) with q = −I.
    spread_base, gamma, mid = 0.7, 0.03, 100.0
    rule = ArticleRule(spread_base, gamma)
    inventory = np.arange(-40, 41, dtype=float)
    bid, ask = rule.offsets(np.zeros_like(inventory), inventory, DEFAULT)
    for inv, b, a in zip(inventory, bid, ask, strict=True):
        q = -inv
        assert mid - b == pytest.approx(mid - spread_base - abs(min(gamma * q, 0.0)))
        assert mid + a == pytest.approx(mid + spread_base + max(gamma * q, 0.0))
    # The flipped rule is the same formula with q = I.
    bid, ask = ArticleRule(spread_base, gamma, flipped=True).offsets(np.zeros_like(inventory), inventory, DEFAULT)
    for inv, b, a in zip(inventory, bid, ask, strict=True):
        assert b == pytest.approx(spread_base + abs(min(gamma * inv, 0.0)))
        assert a == pytest.approx(spread_base + max(gamma * inv, 0.0))


def test_article_rule_tables_are_time_independent_and_shaped():
    bid, ask = ArticleRule(0.5, 0.1).tables(DEFAULT)
    assert bid.shape == ask.shape == (DEFAULT.T, 2 * DEFAULT.I_max + 1)
    np.testing.assert_array_equal(bid, np.broadcast_to(bid[0], bid.shape))
    levels = np.arange(-DEFAULT.I_max, DEFAULT.I_max + 1)
    np.testing.assert_allclose(bid[17], 0.5 + 0.1 * np.maximum(levels, 0))
    np.testing.assert_allclose(ask[17], 0.5 + 0.1 * np.maximum(-levels, 0))
    # Tables are copies: changing them does not change the policy.
    bid[:] = 9.0
    assert ArticleRule(0.5, 0.1).tables(DEFAULT)[0][0, 0] == 0.5


def test_constant_spread():
    bid, ask = ConstantSpread(0.8).tables(DEFAULT)
    assert np.all(bid == 0.8) and np.all(ask == 0.8)
    assert bid.shape == (DEFAULT.T, 2 * DEFAULT.I_max + 1)


def test_linear_skew_offsets_and_clipping():
    skew = LinearSkew(center=0.7, slope=0.06)
    inventory = np.array([-50.0, -20.0, 0.0, 5.0, 20.0, 50.0])
    bid, ask = skew.offsets(np.zeros(6), inventory, DEFAULT)
    np.testing.assert_allclose(bid, [0.0, 0.0, 0.7, 1.0, 1.9, 3.7])
    np.testing.assert_allclose(ask, [3.7, 1.9, 0.7, 0.4, 0.0, 0.0])
    # Clipped to [delta_min, delta_max] on both ends.
    narrow = DEFAULT.replace(delta_min=0.2, delta_max=1.5)
    bid, ask = skew.offsets(np.zeros(6), inventory, narrow)
    np.testing.assert_allclose(bid, [0.2, 0.2, 0.7, 1.0, 1.5, 1.5])
    np.testing.assert_allclose(ask, [1.5, 1.5, 0.7, 0.4, 0.2, 0.2])
    table_bid, table_ask = skew.tables(narrow)
    assert table_bid.min() == 0.2 and table_bid.max() == 1.5
    assert table_ask.min() == 0.2 and table_ask.max() == 1.5


def test_tabular_policy_validation():
    with pytest.raises(ValueError, match="2-D"):
        TabularPolicy(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="equal shape"):
        TabularPolicy(np.zeros((3, 5)), np.zeros((3, 7)))
    with pytest.raises(ValueError, match="3-D"):
        TabularPolicy(np.zeros((2, 3, 5)), np.zeros((2, 3, 5)))
    wrong = TabularPolicy(np.zeros((10, 7)), np.zeros((10, 7)))  # T=10, I_max=3 — not the default model
    with pytest.raises(ValueError, match="do not fit"):
        wrong.tables(DEFAULT)
    with pytest.raises(ValueError, match="do not fit"):
        wrong.offsets(np.zeros(1), np.zeros(1), DEFAULT)
    with pytest.raises(ValueError, match="do not fit"):
        wrong.quote(grid_states(DEFAULT), DEFAULT)


def test_tabular_policy_lookup_and_terminal_row():
    params = DEFAULT.replace(T=4, I_max=2)
    bid = np.arange(20, dtype=float).reshape(4, 5)
    ask = 100 + bid
    policy = TabularPolicy(bid, ask, name="mine")
    assert repr(policy) == "mine"
    b, a = policy.offsets(np.array([0, 1, 3, 4]), np.array([-2, 0, 2, 1]), params)
    np.testing.assert_array_equal(b, [0, 7, 19, 18])  # t = T (terminal observation) reads the last row
    np.testing.assert_array_equal(a, [100, 107, 119, 118])
    got_bid, got_ask = policy.tables(params)
    np.testing.assert_array_equal(got_bid, bid)
    got_bid[0, 0] = -1
    assert policy.bid_table[0, 0] == 0  # a copy


def test_dp_policy_is_the_dp_solution():
    policy = DPPolicy(DEFAULT)
    solution = solve_dp(DEFAULT)
    bid, ask = policy.tables(DEFAULT)
    np.testing.assert_array_equal(bid, solution.bid)
    np.testing.assert_array_equal(ask, solution.ask)
    given = DPPolicy(DEFAULT, solution=solution)
    assert given.solution is solution


@pytest.mark.parametrize(
    "params", [DEFAULT, DEFAULT.replace(T=7, I_max=3), DEFAULT.replace(T=5, I_max=2, momentum=0.4)]
)
def test_grid_states_cover_the_exact_grid(params):
    states = grid_states(params)
    shape = table_shape(params)
    assert states.t.shape == (int(np.prod(shape)),)
    t, inventory, last = states.t.reshape(shape), states.inventory.reshape(shape), np.sign(states.traded).reshape(shape)
    np.testing.assert_array_equal(
        t[:, 0, ...], np.broadcast_to(np.arange(params.T).reshape(-1, *[1] * (len(shape) - 2)), t[:, 0].shape)
    )
    np.testing.assert_array_equal(
        inventory[0, ...].reshape(len(inventory[0]), -1)[:, 0], np.arange(-params.I_max, params.I_max + 1)
    )
    if len(shape) == 3:
        np.testing.assert_array_equal(last[0, 0], [-1, 0, 1])  # index L + 1
    else:
        assert (last == 0).all()


def test_a_tabular_policy_reads_the_last_trades_side_with_momentum():
    params = DEFAULT.replace(T=3, I_max=2, momentum=0.5)
    bid = np.arange(3 * 5 * 3, dtype=float).reshape(3, 5, 3)
    policy = TabularPolicy(bid, -bid)
    state = MarketState(
        *(np.array(v, dtype=float) for v in ([1, 2], [0, -2], [100, 100], [0, 0], [0, 0], [4, -1], [0, 0]))
    )
    b, a = policy.quote(state, params)
    np.testing.assert_array_equal(b, [bid[1, 2, 2], bid[2, 0, 0]])  # traded 4 → L = +1; traded −1 → L = −1
    np.testing.assert_array_equal(a, -b)
    np.testing.assert_array_equal(policy.tables(params)[0], bid)


@pytest.mark.parametrize(
    "policy",
    [DPPolicy(DEFAULT), ArticleRule(0.5, 0.1), ArticleRule(0.2, 0.3, flipped=True), LinearSkew(0.7, 0.06)],
    ids=lambda p: p.name,
)
def test_normalised_actions_decode_back_to_the_offsets(policy):
    states = grid_states(DEFAULT)
    t = states.t
    bid, ask = policy.offsets(states.t, states.inventory, DEFAULT)
    expected = np.clip(np.stack(np.broadcast_arrays(bid, ask), axis=-1), DEFAULT.delta_min, DEFAULT.delta_max)
    raw = policy.action(states, EnvConfig(DEFAULT, normalize_actions=False))
    assert raw.shape == (len(t), 2)
    np.testing.assert_allclose(np.clip(raw, DEFAULT.delta_min, DEFAULT.delta_max), expected, atol=1e-12)
    actions = policy.action(states, EnvConfig(DEFAULT))
    assert actions.shape == (len(t), 2) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 1.0)
    decoded_bid, decoded_ask = decode_actions(actions, DEFAULT, normalize=True, batch=len(t))
    # float32 actions on a half-range of 2.5: a few units of 2.5·2⁻²⁴.
    np.testing.assert_allclose(decoded_bid, expected[:, 0], atol=1e-6)
    np.testing.assert_allclose(decoded_ask, expected[:, 1], atol=1e-6)


@pytest.mark.parametrize("normalize", [True, False])
def test_action_drives_the_vector_env(normalize):
    # The policy reads the vector env's state; the env then quotes exactly the policy's offsets.
    params = DEFAULT.replace(T=30)
    env = MarketMakingVectorEnv(num_envs=64, params=params, normalize_actions=normalize)
    policy = LinearSkew(0.6, 0.08)
    obs, info = env.reset(seed=4)
    for _ in range(params.T):
        state = env.state
        mid = state.mid.copy()
        bid, ask = policy.offsets(state.t, state.inventory, params)
        obs, _, terminated, _, info = env.step(policy.action(state, env.config))
        atol = 1e-5 if normalize else 1e-9
        np.testing.assert_allclose(info["bid"], mid - np.clip(bid, 0, 5), atol=atol)
        np.testing.assert_allclose(info["ask"], mid + np.clip(ask, 0, 5), atol=atol)
    assert terminated.all()
    np.testing.assert_array_equal(obs[:, 0], (env.state.inventory / params.I_max).astype(np.float32))
    assert np.abs(env.state.inventory).max() > 0


def test_action_drives_the_single_env():
    env = MarketMakingEnv(T=5)
    env.reset(seed=1)
    policy = LinearSkew(0.6, 0.08)
    for _ in range(5):
        inventory, mid = env.state.inventory, env.state.mid
        action = policy.action(env.state, env.config)
        assert action.shape == (2,) and action.dtype == np.float32
        _, _, _, _, info = env.step(action)
        assert info["bid"] == pytest.approx(mid - np.clip(0.6 + 0.08 * inventory, 0, 5), abs=1e-5)
        assert info["ask"] == pytest.approx(mid + np.clip(0.6 - 0.08 * inventory, 0, 5), abs=1e-5)
