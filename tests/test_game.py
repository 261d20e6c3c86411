"""The exact tools for two competing market makers (``agents.exact.game``, MODEL.md §8).

* exact evaluation against a brute-force enumeration of every path, written here from the step rules of §2, §7 and
  §8 (cash, mid and wealth tracked literally; no code shared with ``agents.exact.game``);
* best responses and the cartel against brute-force DPs that try every tick (pair) in every state;
* every stage game of the equilibrium against its brute-force payoff matrix (a pure equilibrium wherever one
  exists, else the pair with the smallest largest gain), the count of those without one and of those that play
  reaches against an enumeration of its paths, and the selection rule against its own brute-force statement;
* the reduction to one market maker when the other never trades, symmetry, the spread ordering, Monte Carlo with the
  environment's core, and (slow) the reference figures of §8 at the defaults.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from agents.evaluation.game import equilibrium_note
from agents.exact.dp import solve_dp
from agents.exact.game import (
    best_response,
    collusion_index,
    evaluate_joint,
    evaluation,
    game_unsolvable_reason,
    model,
    nash_conv,
    solve,
    solve_cartel,
    solve_equilibrium,
)
from agents.policies import ConstantSpread
from agents.policies.joint import GamePolicy
from mm_env.dynamics import initial_state, sample_draws, transition
from mm_env.params import CompetitionParams
from mm_env.presets import make_competition_params

# A small game on a coarse grid: ticks 0, 0.25, …, 2 (9 ticks), sizes that the limit cuts often.
TINY = dict(T=3, I_max=3, sizes=(1, 2), size_probs=(0.6, 0.4), delta_max=2.0, lam=0.02, kappa=0.1)
TINY_TICK = 0.25
TINY_GAMES = {
    "spread": make_competition_params("default", tick=TINY_TICK, **TINY),
    "mtm": make_competition_params("mtm", tick=TINY_TICK, **TINY),
    "mtm everything": make_competition_params(
        "mtm",
        tick=TINY_TICK,
        **{**TINY, "T": 2},
        pi=0.8,
        p_buy=0.6,
        informed=0.3,
        info_jump=0.4,
        jump_prob=0.2,
        jump_size=0.3,
        impact_exponent=0.5,
        alpha=0.05,
    ),
    "spread asymmetric flow": make_competition_params(
        "default", tick=TINY_TICK, **TINY, pi=0.7, p_buy=0.3, informed=0.4, alpha=0.1
    ),
}


def random_tables(params: CompetitionParams, seed: int, choices: tuple[int, ...] = (1, 2, 3)) -> tuple[np.ndarray, ...]:
    """Joint tables on the grid drawn from a few ticks (so that ties are common) and the highest tick."""
    rng = np.random.default_rng(seed)
    n = 2 * params.market.I_max + 1
    shape = (2, params.market.T, n, n)
    ticks = np.array([*choices, params.highest_tick])
    return tuple(rng.choice(ticks, size=shape) * params.tick for _ in range(2))


# --------------------------------------------------------------------------------------------------------------------
# brute force, written from the rules


def traders(params: CompetitionParams) -> list[tuple[float, int, int]]:
    """``(probability, side, news)``: no trader, uninformed buyers and sellers, informed ones (news = their side)."""
    flow = params.market.flow
    pi, rho, p_buy = flow.pi, flow.informed, flow.p_buy
    out = [(1.0 - pi, 0, 0)]
    out += [(pi * (1 - rho) * p_buy, 1, 0), (pi * (1 - rho) * (1 - p_buy), -1, 0)]
    out += [(pi * rho / 2, 1, 1), (pi * rho / 2, -1, -1)]
    return [entry for entry in out if entry[0] > 0]


def matched(
    params: CompetitionParams, inventory, quotes, side: int, size: int
) -> list[tuple[float, int | None, int, float]]:
    """What a trader on ``side`` wanting ``size`` meets: ``(probability, winner, executed, offset)`` per outcome."""
    market = params.market
    capacity = [market.I_max + side * inventory[j] for j in range(2)]
    eligible = [j for j in range(2) if capacity[j] > 0]
    if not eligible:
        return [(1.0, None, 0, 0.0)]
    best = min(quotes[j] for j in eligible)
    tied = [j for j in eligible if quotes[j] == best]
    offset = best * params.tick
    fill = market.fill.A * math.exp(-market.fill.k * offset)
    out = [(fill / len(tied), j, min(size, capacity[j]), offset) for j in tied]
    return [*out, (1.0 - fill, None, 0, 0.0)]


def path_moments(params: CompetitionParams, bid: np.ndarray, ask: np.ndarray, start=(0, 0)) -> tuple[np.ndarray, ...]:
    """Mean and second moment of each market maker's episode return, summing over every path of the tree."""
    market = params.market
    flow = market.flow
    T, I_max = market.T, market.I_max
    ticks = {1: np.rint(ask / params.tick).astype(int), -1: np.rint(bid / params.tick).astype(int)}
    jump_prob, jump_size = market.noise.jump_prob, market.noise.jump_size
    jumps = [(1.0 - jump_prob, 0.0), (jump_prob / 2, jump_size), (jump_prob / 2, -jump_size)]
    jumps = [entry for entry in jumps if entry[0] > 0]
    first, second = np.zeros(2), np.zeros(2)

    def step(t, inventory, cash, mid, total, prob):
        nonlocal first, second
        if t == T:
            first = first + prob * total
            second = second + prob * total**2
            return
        for p_trader, side, news in traders(params):
            outcomes = [(1.0, None, 0, 0.0)]
            if side != 0:
                quotes = [ticks[side][j, t, inventory[0] + I_max, inventory[1] + I_max] for j in range(2)]
                outcomes = [
                    (p_size * p, winner, executed, offset)
                    for p_size, size in zip(flow.probs, flow.sizes, strict=True)
                    for p, winner, executed, offset in matched(params, inventory, quotes, side, size)
                ]
            for p_outcome, winner, executed, offset in outcomes:
                for p_jump, jump in jumps:
                    new_inventory, new_cash, move = list(inventory), list(cash), 0.0
                    if winner is not None:
                        new_inventory[winner] -= side * executed
                        new_cash[winner] += side * executed * mid + executed * offset
                        if executed > 0:
                            move += side * market.kappa * executed**market.impact_exponent
                    move += flow.info_jump * news + jump
                    new_mid = mid + move
                    reward = np.empty(2)
                    for j in range(2):
                        penalty = market.lam * new_inventory[j] ** 2
                        if t == T - 1:
                            penalty += market.alpha * new_inventory[j] ** 2
                        if market.reward == "mtm":
                            earned = new_cash[j] + new_inventory[j] * new_mid - cash[j] - inventory[j] * mid
                        else:
                            earned = executed * offset if winner == j else 0.0
                        reward[j] = earned - penalty
                    step(t + 1, new_inventory, new_cash, new_mid, total + reward, prob * p_trader * p_outcome * p_jump)

    step(0, list(start), [0.0, 0.0], market.P0, np.zeros(2), 1.0)
    return first, second


def expected_step(params, t, inventory, quotes_by_side, following, side_filter=None) -> np.ndarray:
    """Each market maker's expected reward plus continuation ``following[j][I_1, I_2]`` over one step, per side.

    Returns ``(2 sides, 2 market makers)``, the contribution of the traders on each side (ask: buyers); the mid only
    enters through its mean move.
    """
    market = params.market
    flow = market.flow
    I_max = market.I_max
    out = np.zeros((2, 2))
    for p_trader, side, news in traders(params):
        if side == 0:
            continue
        s = 0 if side == 1 else 1
        quotes = quotes_by_side[s]
        for p_size, size in zip(flow.probs, flow.sizes, strict=True):
            for p, winner, executed, offset in matched(params, inventory, quotes, side, size):
                after = list(inventory)
                move = flow.info_jump * news if market.reward == "mtm" else 0.0
                if winner is not None:
                    after[winner] -= side * executed
                    if market.reward == "mtm" and executed > 0:
                        move += side * market.kappa * executed**market.impact_exponent
                for j in range(2):
                    reward = -market.lam * after[j] ** 2 + after[j] * move
                    if winner == j:
                        reward += executed * offset
                    out[s, j] += p_trader * p_size * p * (reward + following[j][after[0] + I_max, after[1] + I_max])
    return out


def idle_step(params, inventory, following) -> np.ndarray:
    """Each market maker's expected reward plus continuation when no trader comes, weighted by its probability."""
    market = params.market
    I_max = market.I_max
    idle = 1.0 - market.flow.pi
    return np.array(
        [
            idle * (-market.lam * inventory[j] ** 2 + following[j][inventory[0] + I_max, inventory[1] + I_max])
            for j in range(2)
        ]
    )


def all_states(params):
    I_max = params.market.I_max
    return [(a, b) for a in range(-I_max, I_max + 1) for b in range(-I_max, I_max + 1)]


def brute_best_response(params, bid, ask, player) -> np.ndarray:
    """The player's best-response value table ``(T + 1, N, N)``, trying every tick on each side in every state."""
    market = params.market
    T, I_max = market.T, market.I_max
    n = 2 * I_max + 1
    grid = np.arange(params.lowest_tick, params.highest_tick + 1)
    own = np.arange(-I_max, I_max + 1)[:, None] if player == 0 else np.arange(-I_max, I_max + 1)[None, :]
    value = np.zeros((T + 1, n, n))
    value[T] = -market.alpha * np.broadcast_to(own, (n, n)) ** 2
    ticks = (np.rint(ask / params.tick).astype(int), np.rint(bid / params.tick).astype(int))
    for t in range(T - 1, -1, -1):
        following = [value[t + 1], value[t + 1]]  # only the player's entry is read below
        for a, b in all_states(params):
            index = (t, a + I_max, b + I_max)
            total = idle_step(params, (a, b), following)[player]
            for s in range(2):
                other = ticks[s][1 - player][index]
                best = -np.inf
                for x in grid:
                    quotes = [[0, 0], [0, 0]]
                    quotes[s][player], quotes[s][1 - player] = x, other
                    best = max(best, expected_step(params, t, (a, b), quotes, following)[s, player])
                total += best
            value[index] = total
    return value


# --------------------------------------------------------------------------------------------------------------------
# what the tools cover


def test_unsolvable_reasons_and_none_returning_entry_points():
    assert game_unsolvable_reason(make_competition_params()) is None
    assert game_unsolvable_reason(make_competition_params("mtm", informed=0.2, info_jump=0.5, sigma=0.3)) is None
    # Under the spread reward the mid never enters the reward: transient impact and mean reversion change nothing.
    assert game_unsolvable_reason(make_competition_params("transient", reward="spread")) is None
    cases = {
        "three": make_competition_params(num_market_makers=3),
        "one": make_competition_params(num_market_makers=1),
        "momentum": make_competition_params("momentum"),
        "transient mtm": make_competition_params("transient"),
        "mean reversion mtm": make_competition_params("mtm", mean_reversion=0.1),
        "article": make_competition_params("default", mode="article", delta_max=5.0),
        "memory": make_competition_params(I_max=400, T=1000),
    }
    words = {
        "three": "two market makers",
        "one": "two market makers",
        "momentum": "last trade's side",
        "transient mtm": "transient",
        "mean reversion mtm": "mean reversion",
        "article": "article",
        "memory": "GiB",
    }
    for name, params in cases.items():
        reason = game_unsolvable_reason(params)
        assert reason is not None and words[name] in reason, (name, reason)
    params = cases["momentum"]
    n = 2 * params.market.I_max + 1
    tables = np.ones((2, params.market.T, n, n))
    assert solve_equilibrium(params) is None
    assert solve_cartel(params) is None
    assert evaluate_joint(params, tables, tables) is None
    assert best_response(params, tables, tables, 0) is None
    assert nash_conv(params, tables, tables) is None


def test_tables_of_the_wrong_shape_are_rejected():
    params = TINY_GAMES["spread"]
    with pytest.raises(ValueError, match="shape"):
        evaluate_joint(params, np.ones((2, 3, 7)), np.ones((2, 3, 7)))
    with pytest.raises(ValueError, match="player"):
        best_response(params, *random_tables(params, 0), player=2)


# --------------------------------------------------------------------------------------------------------------------
# exact evaluation


@pytest.mark.parametrize("name", list(TINY_GAMES))
def test_evaluation_matches_path_enumeration(name):
    params = TINY_GAMES[name]
    bid, ask = random_tables(params, seed=len(name))
    exact = evaluate_joint(params, bid, ask)
    I_max = params.market.I_max
    assert exact.value.shape == (2, params.market.T + 1, 2 * I_max + 1, 2 * I_max + 1)
    first, second = path_moments(params, bid, ask)
    np.testing.assert_allclose(exact.mean, first, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(exact.std, np.sqrt(second - first**2), rtol=1e-9, atol=1e-9)
    # Other starting states, near the limits where fills are cut.
    for start in [(2, -1), (-3, -3), (3, 1)]:
        first, _ = path_moments(params, bid, ask, start)
        np.testing.assert_allclose(exact.value[:, 0, start[0] + I_max, start[1] + I_max], first, rtol=1e-11, atol=1e-11)


def test_evaluation_rounds_offsets_to_the_grid_like_the_environment():
    params = TINY_GAMES["spread"]
    bid, ask = random_tables(params, seed=5)
    noisy = evaluate_joint(params, bid + 0.1 * params.tick, ask - 0.2 * params.tick)
    np.testing.assert_array_equal(noisy.value, evaluate_joint(params, bid, ask).value)


# --------------------------------------------------------------------------------------------------------------------
# best responses


@pytest.mark.parametrize("name", ["spread", "mtm", "mtm everything"])
@pytest.mark.parametrize("player", [0, 1])
def test_best_response_matches_brute_force_over_every_tick(name, player):
    params = TINY_GAMES[name]
    bid, ask = random_tables(params, seed=11 + player)
    response = best_response(params, bid, ask, player)
    brute = brute_best_response(params, bid, ask, player)
    np.testing.assert_allclose(response.value, brute, rtol=1e-12, atol=1e-12)
    # Its tables achieve that value, leave the other's tables alone and beat the policy everywhere.
    achieved = evaluate_joint(params, response.bid, response.ask)
    np.testing.assert_allclose(achieved.value[player], response.value, rtol=1e-12, atol=1e-12)
    other = 1 - player
    np.testing.assert_array_equal(response.bid[other], params.on_grid(bid[other]))
    np.testing.assert_array_equal(response.ask[other], params.on_grid(ask[other]))
    assert np.all(response.value >= evaluate_joint(params, bid, ask).value[player] - 1e-12)
    I_max = params.market.I_max
    assert response.start_value == response.value[0, I_max, I_max]


def random_stage_games(seed: int, count: int = 4000):
    """Random stage games on the tiny grid (ticks 0…8): sizes, win and lose changes of both signs, capacities."""
    rng = np.random.default_rng(seed)
    tree = model.Tree(TINY_GAMES["mtm"])
    mean = rng.choice([0.5, 1.0, 1.6, 2.0], size=(2, count))
    win = rng.normal(0.0, 1.5, size=(2, count))
    lose = rng.normal(0.0, 1.0, size=(2, count)) * rng.choice([0.0, 1.0, 3.0], size=(2, count))
    can = rng.random((2, count)) < 0.9
    return tree, model.Stage(tree, np.where(can, mean, 0.0), win, lose, can)


def payoff_matrices(stage) -> tuple[np.ndarray, np.ndarray]:
    """Both players' payoffs ``(2, F, K, K)`` over every pair of ticks, and the ticks."""
    tree = stage.tree
    ticks = np.arange(tree.lo, tree.hi + 1.0)
    count, k = stage.mean.shape[1], len(ticks)
    x0 = np.broadcast_to(ticks[None, :, None], (count, k, k))
    x1 = np.broadcast_to(ticks[None, None, :], (count, k, k))
    expand = model.Stage(tree, *(a[:, :, None, None] for a in (stage.mean, stage.win, stage.lose, stage.can)))
    return np.stack([expand.payoff(j, x0, x1) for j in range(2)]), ticks


def test_stage_best_response_is_the_best_tick_of_all():
    tree, stage = random_stage_games(1)
    payoff, ticks = payoff_matrices(stage)
    rows = np.arange(stage.mean.shape[1])
    for j in range(2):
        for other in range(len(ticks)):
            tick, value = stage.response(j, np.full(len(rows), ticks[other]))
            brute = payoff[0][:, :, other].max(axis=1) if j == 0 else payoff[1][:, other, :].max(axis=1)
            np.testing.assert_allclose(value, brute, rtol=1e-13, atol=1e-13)
            index = (tick - tree.lo).astype(int)
            achieved = payoff[0][rows, index, other] if j == 0 else payoff[1][rows, other, index]
            np.testing.assert_allclose(achieved, brute, rtol=1e-13, atol=1e-13)


def test_stage_equilibrium_on_random_stage_games():
    # Random stage games include games without a pure equilibrium: there the chosen pair must have the smallest
    # largest deviation gain of all pairs.
    tree, stage = random_stage_games(2)
    payoff, _ = payoff_matrices(stage)
    gains = np.maximum(
        payoff[0].max(axis=1, keepdims=True) - payoff[0], payoff[1].max(axis=2, keepdims=True) - payoff[1]
    )
    x0, x1, gain = solve._equilibrium_stage(stage)
    rows = np.arange(len(x0))
    chosen = gains[rows, (x0 - tree.lo).astype(int), (x1 - tree.lo).astype(int)]
    smallest = gains.reshape(len(rows), -1).min(axis=1)
    pure = smallest <= 1e-12
    assert pure.mean() > 0.5 and (~pure).sum() > 10
    assert np.all(chosen[pure] <= 1e-12)
    np.testing.assert_allclose(chosen[~pure], smallest[~pure], rtol=1e-12)
    np.testing.assert_allclose(np.where(pure, 0.0, gain), np.where(pure, 0.0, chosen), rtol=1e-12)


def one_mm_grid_dp(params: CompetitionParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one-MM optimum with quotes restricted to the tick grid (spread reward): values and best ticks per side."""
    market = params.market
    T, I_max = market.T, market.I_max
    levels = np.arange(-I_max, I_max + 1)
    probs, sizes = np.array(market.flow.probs), np.array(market.flow.sizes)
    offsets = np.arange(params.lowest_tick, params.highest_tick + 1) * params.tick
    fill = market.fill.A * np.exp(-market.fill.k * offsets)
    value = np.zeros((T + 1, len(levels)))
    value[T] = -market.alpha * levels**2
    best = np.zeros((T, 2, len(levels)), dtype=int)
    w = market.flow.side_law(0)[:2]
    for t in range(T - 1, -1, -1):
        stay = -market.lam * levels**2 + value[t + 1]
        total = stay.copy()
        for s, side in enumerate((1, -1)):
            executed = np.minimum(sizes[None, :], (I_max + side * levels)[:, None])
            after = levels[:, None] - side * executed
            mean = executed @ probs
            change = (-market.lam * after**2 + value[t + 1][after + I_max]) @ probs - stay
            gains = fill[None, :] * (mean[:, None] * offsets[None, :] + change[:, None])
            best[t, s] = np.argmax(gains, axis=1)
            total += w[s] * np.where(mean > 0, gains.max(axis=1), 0.0)
        value[t] = total
    return value, best, levels


def test_best_response_to_a_competitor_who_never_trades_is_the_one_mm_optimum_on_the_grid():
    # The other quotes delta_max everywhere; the one-MM grid optimum never quotes as high, so the other never trades
    # and (spread reward) its inventory never matters: the best response is the one-MM problem on the tick grid.
    params = make_competition_params("default", T=30, I_max=10, tick=0.01)
    market = params.market
    n = 2 * market.I_max + 1
    silent = np.full((2, market.T, n, n), market.delta_max)
    response = best_response(params, silent, silent, 0)
    value, best, levels = one_mm_grid_dp(params)
    tradable = np.stack([levels > -market.I_max, levels < market.I_max])  # ask: can sell, bid: can buy
    assert np.where(tradable, best, 0).max() < params.highest_tick - params.lowest_tick
    np.testing.assert_allclose(response.value, np.broadcast_to(value[:, :, None], response.value.shape), atol=1e-9)
    # Its quotes are the grid optimum wherever it can trade, within a tick of the continuous optimum of agents.exact.dp.
    grid_offsets = (best + params.lowest_tick) * params.tick
    can_sell = (levels > -market.I_max)[None, :, None]
    can_buy = (levels < market.I_max)[None, :, None]
    ask_grid = np.broadcast_to(grid_offsets[:, 0, :, None], response.ask[0].shape)
    bid_grid = np.broadcast_to(grid_offsets[:, 1, :, None], response.bid[0].shape)
    assert np.all(np.where(can_sell, np.isclose(response.ask[0], ask_grid), True))
    assert np.all(np.where(can_buy, np.isclose(response.bid[0], bid_grid), True))
    continuous = solve_dp(market)
    assert np.all(np.abs(grid_offsets[:, 0] - continuous.ask)[:, 1:] <= params.tick + 1e-12)
    assert np.all(np.abs(grid_offsets[:, 1] - continuous.bid)[:, :-1] <= params.tick + 1e-12)
    assert np.all(value <= continuous.value + 1e-12)
    assert continuous.value[0, market.I_max] - value[0, market.I_max] < 1e-3


# --------------------------------------------------------------------------------------------------------------------
# the equilibrium


def stage_matrices(params, values, t, inventory, side):
    """Both market makers' payoff matrices ``(2, K, K)`` over every pair of ticks on one side of one state."""
    grid = np.arange(params.lowest_tick, params.highest_tick + 1)
    following = [values[0][t + 1], values[1][t + 1]]
    payoff = np.zeros((2, len(grid), len(grid)))
    for a, x0 in enumerate(grid):
        for b, x1 in enumerate(grid):
            quotes = [[0, 0], [0, 0]]
            quotes[side] = [x0, x1]
            payoff[:, a, b] = expected_step(params, t, inventory, quotes, following)[side]
    return payoff


def deviation_gains(payoff: np.ndarray) -> np.ndarray:
    """The larger of the two players' best deviation gains at every pair, ``(K, K)``."""
    gain0 = payoff[0].max(axis=0, keepdims=True) - payoff[0]
    gain1 = payoff[1].max(axis=1, keepdims=True) - payoff[1]
    return np.maximum(gain0, gain1)


# Two small mtm games with stage games that have no pure equilibrium: play reaches some of them in the first (the
# solution is then an ε-equilibrium, NashConv > 0) and none in the second.
NO_PURE_GAMES = {
    "mtm, reached": make_competition_params("mtm", tick=TINY_TICK, **{**TINY, "I_max": 2, "kappa": 0.3, "lam": 0.0}),
    "mtm, not reached": make_competition_params("mtm", tick=TINY_TICK, **{**TINY, "kappa": 0.6}),
}


def reached_states(params: CompetitionParams, bid: np.ndarray, ask: np.ndarray) -> set[tuple[int, int, int]]:
    """Every ``(t, I_1, I_2)`` that play under the tables reaches with positive probability from ``(0, 0, 0)``.

    Step by step over the outcomes of :func:`traders` and :func:`matched` (no code shared with the solver).
    """
    market = params.market
    I_max = market.I_max
    ticks = {1: np.rint(ask / params.tick).astype(int), -1: np.rint(bid / params.tick).astype(int)}
    layer, reached = {(0, 0)}, set()
    for t in range(market.T):
        reached |= {(t, a, b) for a, b in layer}
        following = set()
        for a, b in layer:
            for _, side, _ in traders(params):
                if side == 0:
                    following.add((a, b))
                    continue
                quotes = [ticks[side][j, t, a + I_max, b + I_max] for j in range(2)]
                for p_size, size in zip(market.flow.probs, market.flow.sizes, strict=True):
                    for p, winner, executed, _ in matched(params, (a, b), quotes, side, size):
                        if p_size * p > 0.0:
                            after = [a, b]
                            if winner is not None:
                                after[winner] -= side * executed
                            following.add((after[0], after[1]))
        layer = following
    return reached


@pytest.mark.parametrize("name", ["spread", "mtm", "mtm everything", *NO_PURE_GAMES])
def test_every_stage_game_is_a_pure_equilibrium_of_its_brute_force_matrix(name):
    params = {**TINY_GAMES, **NO_PURE_GAMES}[name]
    solution = solve_equilibrium(params)
    market = params.market
    I_max = market.I_max
    no_pure = set()
    for t in range(market.T):
        for a, b in all_states(params):
            index = (slice(None), t, a + I_max, b + I_max)
            for side, table in ((0, solution.ask), (1, solution.bid)):
                gains = deviation_gains(stage_matrices(params, solution.value, t, (a, b), side))
                chosen = np.rint(table[index] / params.tick).astype(int) - params.lowest_tick
                if gains.min() <= 1e-12:
                    assert gains[chosen[0], chosen[1]] <= 1e-12, (t, a, b, side)
                else:
                    no_pure.add((t, a, b, side))
                    assert gains[chosen[0], chosen[1]] == pytest.approx(gains.min(), abs=1e-12)
    assert solution.no_pure_equilibrium == len(no_pure) == (0 if name in TINY_GAMES else 4 * params.market.T)
    # Those that play reaches, by enumerating its paths.
    reached = reached_states(params, solution.bid, solution.ask)
    on_path = {game for game in no_pure if game[:3] in reached}
    assert solution.no_pure_on_path == len(on_path) == (4 if name == "mtm, reached" else 0)
    # The solver's values are those of its tables, and it is an equilibrium from the start where play reaches no
    # stage game without a pure one; where it does, only an ε-equilibrium.
    exact = evaluate_joint(params, solution.bid, solution.ask)
    np.testing.assert_allclose(exact.value, solution.value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(exact.std, solution.std, rtol=1e-12)
    certificate = solution.nash_conv
    if on_path:
        assert certificate.nash_conv > 1e-5
    else:
        assert abs(certificate.nash_conv) < 1e-12
    if not no_pure:
        assert certificate.largest_gain < 1e-12


@pytest.mark.parametrize(
    "params",
    [
        TINY_GAMES["mtm everything"],
        # Every trader arrives, and a quote at offset 0 fills surely: there a state cannot stay where it is.
        make_competition_params("default", tick=TINY_TICK, **{**TINY, "T": 4, "I_max": 2}, pi=1.0, A=1.0),
    ],
)
def test_reached_states_match_path_enumeration(params):
    tree = model.Tree(params)
    n = tree.n_levels
    zeros = np.zeros((2, params.market.T, n, n))
    for bid, ask in [random_tables(params, seed, choices=(0, 1, 2)) for seed in range(3)] + [(zeros, zeros)]:
        reached = evaluation.reachable(tree, evaluation.check_tables(tree, bid, ask))
        brute = np.zeros_like(reached)
        for t, a, b in reached_states(params, bid, ask):
            brute[t, (a + tree.I_max) * n + b + tree.I_max] = True
        np.testing.assert_array_equal(reached, brute)
        assert 0 < brute.sum() < brute.size  # some states are never reached
    # Quoting offset 0 everywhere with A = 1 and a trader every step, play never stays at the start.
    assert reached[1, tree.I_max * n + tree.I_max] == (params.market.flow.pi < 1.0)
    # Under the equilibrium the market makers stay well inside the grid.
    solution = solve_equilibrium(NO_PURE_GAMES["mtm, not reached"], certify=False)
    assert len(reached_states(solution.params, solution.bid, solution.ask)) < solution.params.market.T * n * n


def test_equilibrium_note_reports_the_count_and_whether_play_reaches_one():
    notes = {
        name: equilibrium_note(solve_equilibrium(params, certify=False))
        for name, params in [("spread", TINY_GAMES["spread"]), *NO_PURE_GAMES.items()]
    }
    assert "every stage game has a pure equilibrium" in notes["spread"]
    assert "12 stage games without a pure equilibrium" in notes["mtm, not reached"]
    assert "none on the equilibrium path" in notes["mtm, not reached"]
    assert "4 on the equilibrium path: an ε-equilibrium" in notes["mtm, reached"]


# --------------------------------------------------------------------------------------------------------------------
# the selection rule (MODEL.md §8)


def stage_game(m, win, lose) -> model.Stage:
    """One stage game on the tiny grid (ticks 0 … 8 of 0.25, ``p(δ) = 0.9·e^{−1.5δ}``), both able to trade."""
    tree = model.Tree(TINY_GAMES["mtm"])
    column = [np.asarray(value, dtype=float).reshape(2, 1) for value in (m, win, lose)]
    return model.Stage(tree, *column, np.ones((2, 1), dtype=bool))


def rule_selection(game: model.Stage) -> tuple[float, float] | None:
    """The pair of ticks that MODEL.md §8 selects in one stage game where both can trade (``None``: no pure one).

    Written from the rule over the full payoff matrices: the candidate (a tie one tick above a common reservation
    tick; else the lower reservation executing at min(its optimum, the loser's grid reservation found by trying every
    tick, the highest tick less one), the loser one tick above), kept where it is an equilibrium; else, among every
    pure equilibrium, the lower reservation's execution, then a tie, then the other's, each at its lowest winning
    tick (with equal reservations either one's execution, market maker 1 first), the loser at its lowest tick.
    """
    tree = game.tree
    ticks = np.arange(tree.lo, tree.hi + 1.0)
    x0, x1 = np.meshgrid(ticks, ticks, indexing="ij")
    payoff = [game.payoff(j, x0, x1) for j in range(2)]
    gains = np.maximum(payoff[0].max(axis=0) - payoff[0], (payoff[1].max(axis=1)[:, None] - payoff[1]))
    pure = gains <= model.TOLERANCE

    def is_pure(a: float, b: float) -> bool:
        return bool(pure[int(a - tree.lo), int(b - tree.lo)])

    reservation = ((game.lose - game.win) / game.safe_mean)[:, 0]
    tick_of = np.floor(reservation / tree.tick)
    if tick_of[0] == tick_of[1]:
        tie = float(np.clip(tick_of.max() + 1.0, tree.lo, tree.hi))
        if is_pure(tie, tie):
            return tie, tie
    else:
        w = int(np.argmin(reservation))
        loser = 1 - w
        optimum = ticks[np.argmax(game.winning(w, ticks))]
        losing = game.losing(loser, ticks)
        undercut = np.concatenate([[-np.inf], np.maximum.accumulate(game.winning(loser, ticks))[:-1]])
        content = (losing >= game.tying(loser, ticks)) & (losing >= undercut)
        grid = ticks[content].max() if content.any() else tree.lo - 1.0
        x = max(min(optimum, grid, tree.hi - 1.0), tree.lo)
        pair = (x, x + 1.0) if w == 0 else (x + 1.0, x)
        if is_pure(*pair):
            return pair
    if not pure.any():
        return None
    lower = 0 if reservation[0] < reservation[1] else 1 if reservation[1] < reservation[0] else None
    rank = {0: (0, 1, 2), 1: (2, 1, 0), None: (0, 1, 0)}[lower]

    def key(pair: tuple[int, int]) -> tuple[int, int, int, int]:
        a, b = pair
        kind = 0 if a < b else 1 if a == b else 2  # market maker 1 executes, a tie, market maker 2 executes
        return rank[kind], min(a, b), kind, max(a, b)

    a, b = min(((int(a), int(b)) for a, b in np.argwhere(pure)), key=key)
    return ticks[a], ticks[b]


def check_selection(stage: model.Stage) -> int:
    """``_equilibrium_stage`` against :func:`rule_selection` on every game where both trade; how many were pure."""
    x0, x1, gain = solve._equilibrium_stage(stage)
    both = np.flatnonzero(stage.can[0] & stage.can[1])
    pure = 0
    for f in both:
        game = stage.take(np.arange(stage.mean.shape[1]) == f)
        expected = rule_selection(game)
        if expected is None:  # the pair with the smallest largest gain
            payoff, _ = payoff_matrices(game)
            smallest = np.maximum(
                payoff[0].max(axis=1, keepdims=True) - payoff[0], payoff[1].max(axis=2, keepdims=True) - payoff[1]
            ).min()
            chosen = game.largest_gain(x0[f : f + 1], x1[f : f + 1])[0]
            assert chosen == pytest.approx(smallest, rel=1e-12) and gain[f] == pytest.approx(smallest, rel=1e-12)
        else:
            pure += 1
            assert (x0[f], x1[f]) == expected, (f, expected, (x0[f], x1[f]))
    return pure


def wide_stage_games(seed: int, count: int) -> model.Stage:
    """Random stage games on the tiny grid where both can trade, with wider changes; the first third symmetric."""
    rng = np.random.default_rng(seed)
    tree = model.Tree(TINY_GAMES["mtm"])
    mean = rng.choice([0.5, 1.0, 1.6, 2.0], size=(2, count))
    win = rng.normal(0.0, 3.0, size=(2, count))
    lose = rng.normal(0.0, 2.0, size=(2, count)) * rng.choice([0.0, 1.0, 3.0], size=(2, count))
    for table in (mean, win, lose):
        table[1, : count // 3] = table[0, : count // 3]
    return model.Stage(tree, mean, win, lose, np.ones((2, count), dtype=bool))


def test_grid_reservation_is_the_highest_tick_the_loser_accepts():
    stage = wide_stage_games(4, count=3000)
    ticks = np.arange(stage.tree.lo, stage.tree.hi + 1.0)[:, None]
    for j in range(2):
        # Every tick at once: losing at least as good as tying and as the best undercut (none at the lowest tick).
        losing = stage.losing(j, ticks)
        winning = stage.winning(j, ticks)
        undercut = np.concatenate([np.full((1, winning.shape[1]), -np.inf), np.maximum.accumulate(winning)[:-1]])
        content = (losing >= stage.tying(j, ticks)) & (losing >= undercut)
        highest = np.where(content.any(axis=0), ticks.max() - np.argmax(content[::-1], axis=0), stage.tree.lo - 1.0)
        np.testing.assert_array_equal(solve._grid_reservation(stage, j), highest)
    # A game where the closed-form estimate of market maker 1's is off by more than the neighbouring ticks correct.
    game = stage_game([2.0, 2.0], [3.71, -0.25], [10.85, -1.48])
    assert solve._grid_reservation(game, 0)[0] == 2.0
    assert tuple(float(x[0]) for x in solve._equilibrium_stage(game)[:2]) == (3.0, 2.0)


def test_selection_rule_on_random_stage_games():
    assert check_selection(wide_stage_games(3, count=2000)) > 1500


@pytest.mark.parametrize("reward", ["spread", "mtm"])
def test_selection_rule_on_the_stage_games_of_a_solve(reward):
    params = make_competition_params("default", reward=reward, T=8, I_max=6, tick=0.05, delta_max=2.0)
    solution = solve_equilibrium(params, certify=False)
    tree = model.Tree(params)
    n2 = tree.n_levels**2
    for t in (0, 3, 7):
        stage = tree.stage(solution.value[:, t + 1].reshape(2, n2))
        check_selection(stage.take(np.ones(stage.can.shape[1:], dtype=bool)))  # both sides, flattened


def test_exhaustive_search_keeps_the_lower_reservation_winner_then_the_lowest_offset():
    # Reservations 1.085 and 2.4. The pure equilibria: market maker 1 executes at tick 4 or 5 (market maker 2 above),
    # or market maker 2 executes at tick 4 (market maker 1 at 7 or 8).
    game = stage_game([2.0, 1.0], [-1.38, -0.51], [0.79, 1.89])
    x0, x1 = np.meshgrid(np.arange(9.0), np.arange(9.0), indexing="ij")
    payoff = np.stack([game.payoff(j, x0, x1) for j in range(2)])[:, None]
    gains = np.maximum(payoff[0].max(axis=1) - payoff[0][0], payoff[1].max(axis=2)[..., None] - payoff[1][0])
    assert [tuple(pair) for pair in np.argwhere(gains[0] <= 1e-12)] == [(4, 5), (5, 6), (5, 7), (5, 8), (7, 4), (8, 4)]
    # The search: the lower reservation executes at its lowest tick, the loser one tick above.
    assert tuple(float(x[0]) for x in solve._exhaustive(game, np.array([0]))[:2]) == (4.0, 5.0)
    # Were market maker 2's reservation the lower, it would execute, market maker 1 at its lowest tick that keeps it.
    assert tuple(float(x[0]) for x in solve._exhaustive(game, np.array([1]))[:2]) == (7.0, 4.0)
    # The same game with the market makers swapped.
    swapped = stage_game([1.0, 2.0], [-0.51, -1.38], [1.89, 0.79])
    assert tuple(float(x[0]) for x in solve._exhaustive(swapped, np.array([1]))[:2]) == (5.0, 4.0)
    # The candidate verifies, so it stands: min(its optimum, the loser's grid reservation) is tick 5.
    assert tuple(float(x[0]) for x in solve._equilibrium_stage(game)[:2]) == (5.0, 6.0)


def test_reservations_are_compared_exactly():
    # A symmetric stage game: both reservations 0.85 (tick 3). The tie at tick 4 is no equilibrium; either market
    # maker executing at tick 3 is one. The search decides: with equal reservations market maker 1 executes.
    m, win, lose = [1.6, 1.6], [-0.48, -0.48], [0.88, 0.88]
    assert tuple(float(x[0]) for x in solve._equilibrium_stage(stage_game(m, win, lose))[:2]) == (3.0, 4.0)
    # Reservations a few 1e-16 apart: the exactly lower one executes, whichever it is.
    for nudge, expected in ((1e-15, (4.0, 3.0)), (-1e-15, (3.0, 4.0))):
        game = stage_game(m, win, [0.88 + nudge, 0.88])
        reservation = ((game.lose - game.win) / game.safe_mean)[:, 0]
        assert 0 < abs(reservation[0] - reservation[1]) < 1e-15
        assert tuple(float(x[0]) for x in solve._equilibrium_stage(game)[:2]) == expected
        swapped = stage_game(m, win, [0.88, 0.88 + nudge])
        assert tuple(float(x[0]) for x in solve._equilibrium_stage(swapped)[:2]) == expected[::-1]


@pytest.mark.parametrize("reward", ["spread", "mtm"])
def test_tables_are_bitwise_symmetric_under_inventory_reflection(reward):
    # I → −I with bid ↔ ask maps the game onto itself (symmetric flow), and the solver computes it so bit for bit: a
    # reservation that the symmetry makes equal to another, or zero, is exactly so, and the exact comparison of
    # reservations selects the reflected equilibrium.
    params = make_competition_params("default", reward=reward, T=30, I_max=10, tick=0.02)
    solution = solve_equilibrium(params, certify=False)
    np.testing.assert_array_equal(solution.value, solution.value[:, :, ::-1, ::-1])
    np.testing.assert_array_equal(solution.bid, solution.ask[:, :, ::-1, ::-1])


def test_symmetric_game_gives_symmetric_tables():
    params = make_competition_params("default", T=40, I_max=12, tick=0.01)
    for solution in (solve_equilibrium(params, certify=False), solve_cartel(params, certify=False)):
        for table in (solution.bid, solution.ask, solution.value):
            np.testing.assert_array_equal(table[0], table[1].swapaxes(-1, -2))


def inside_spread(solution) -> float:
    i = solution.params.market.I_max
    return float(solution.bid[:, 0, i, i].min() + solution.ask[:, 0, i, i].min())


def test_competition_narrows_the_spread_and_the_cartel_earns_more():
    params = make_competition_params("default", T=60, I_max=15, tick=0.01)
    equilibrium = solve_equilibrium(params)
    cartel = solve_cartel(params)
    monopoly = solve_dp(params.market)
    i = params.market.I_max
    assert inside_spread(equilibrium) < inside_spread(cartel) < monopoly.bid[0, i] + monopoly.ask[0, i]
    assert cartel.mean_return > equilibrium.mean_return
    assert equilibrium.nash_conv.largest_gain < 1e-12
    # The cartel maximises the sum: no joint policy tried here does better, and each MM alone could gain.
    one = GamePolicy.from_one_mm(params, monopoly)
    for bid, ask in [one.tables(), GamePolicy.from_solution(equilibrium).tables()]:
        assert evaluate_joint(params, bid, ask).mean.sum() <= cartel.start_value.sum() + 1e-9
    assert cartel.nash_conv.nash_conv > 0.1


def test_cartel_matches_brute_force_over_every_pair():
    for name in ("spread", "mtm everything"):
        params = TINY_GAMES[name]
        cartel = solve_cartel(params)
        market = params.market
        I_max, n = market.I_max, 2 * market.I_max + 1
        total = np.zeros((market.T + 1, n, n))
        levels = np.arange(-I_max, I_max + 1)
        total[market.T] = -market.alpha * (levels[:, None] ** 2 + levels[None, :] ** 2)
        # With MM 1's continuation the sum's and MM 2's zero, the two payoffs add up to the pair's.
        values = [total, np.zeros_like(total)]
        for t in range(market.T - 1, -1, -1):
            for a, b in all_states(params):
                joint = idle_step(params, (a, b), [total[t + 1], values[1][t + 1]]).sum()
                for side in range(2):
                    joint += stage_matrices(params, values, t, (a, b), side).sum(axis=0).max()
                total[t, a + I_max, b + I_max] = joint
        np.testing.assert_allclose(cartel.value.sum(axis=0), total, rtol=1e-11, atol=1e-11)
        exact = evaluate_joint(params, cartel.bid, cartel.ask)
        np.testing.assert_allclose(exact.value, cartel.value, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# policies, the collusion index, Monte Carlo


def test_game_policy_quotes_the_batched_state():
    params = TINY_GAMES["spread"]
    bid, ask = random_tables(params, seed=3)
    policy = GamePolicy(bid, ask)
    state = initial_state(params, 4)._replace(
        t=np.array([0.0, 1.0, 2.0, 3.0]), inventory=np.array([[0.0, 0.0], [-3.0, 2.0], [1.0, -1.0], [3.0, 3.0]])
    )
    quoted_bid, quoted_ask = policy.quote(state, params)
    assert quoted_bid.shape == quoted_ask.shape == (4, 2)
    for row, (t, (a, b)) in enumerate(zip([0, 1, 2, 2], state.inventory.astype(int), strict=True)):
        for j in range(2):
            assert quoted_bid[row, j] == bid[j, t, a + 3, b + 3]
            assert quoted_ask[row, j] == ask[j, t, a + 3, b + 3]


def test_one_mm_policy_for_both_reads_each_own_inventory():
    params = make_competition_params("default", T=5, I_max=4, tick=0.01)
    monopoly = solve_dp(params.market)
    policy = GamePolicy.from_one_mm(params, monopoly)
    assert policy.bid_table.shape == (2, 5, 9, 9)
    assert np.array_equal(policy.bid_table[0, 2, 7, 1], monopoly.bid[2, 7])
    assert np.array_equal(policy.ask_table[1, 3, 0, 6], monopoly.ask[3, 6])
    same = GamePolicy.from_one_mm(params, (monopoly.bid, monopoly.ask))
    np.testing.assert_array_equal(same.bid_table, policy.bid_table)
    constant = GamePolicy.from_one_mm(params, ConstantSpread(1.0))
    assert np.all(constant.bid_table == 1.0)
    skew = GamePolicy.from_one_mm(params, lambda t, inventory: (0.5 + 0.1 * inventory, 0.5 - 0.1 * inventory))
    assert skew.bid_table[0, 1, 6, 2] == pytest.approx(0.7) and skew.ask_table[1, 4, 6, 2] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="one-MM tables"):
        GamePolicy.from_one_mm(params, (np.ones(3), np.ones(3)))


def test_collusion_index():
    assert collusion_index(10.0, 10.0, 20.0) == 0.0
    assert collusion_index(20.0, 10.0, 20.0) == 1.0
    assert collusion_index([14.0, 16.0], 10.0, 20.0) == pytest.approx(0.5)
    assert collusion_index(0.0, 10.0, 20.0) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        collusion_index(1.0, 2.0, 2.0)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(reward="spread"),
        dict(reward="mtm", sigma=0.3, informed=0.2, info_jump=0.3, jump_prob=0.1, jump_size=0.2, pi=0.9, p_buy=0.55),
    ],
)
def test_monte_carlo_with_the_environment_core_agrees_with_the_exact_values(overrides):
    params = make_competition_params("default", T=30, I_max=10, tick=0.05, **overrides)
    solution = solve_equilibrium(params, certify=False)
    policy = GamePolicy.from_solution(solution)
    n = 4000
    rng = np.random.default_rng(2024)
    state = initial_state(params, n)
    total = np.zeros((n, 2))
    for _ in range(params.market.T):
        bid, ask = policy.quote(state, params)
        state, outcome = transition(state, bid, ask, sample_draws(rng, params, n), params)
        total += outcome.reward
    assert outcome.terminated.all()
    error = solution.std / math.sqrt(n)
    assert np.all(np.abs(total.mean(axis=0) - solution.start_value) < 4 * error), (total.mean(axis=0), solution)
    np.testing.assert_allclose(total.std(axis=0), solution.std, rtol=0.1)


# --------------------------------------------------------------------------------------------------------------------
# the reference figures of MODEL.md §8 at the defaults


@pytest.mark.slow
@pytest.mark.parametrize(
    "reward, equilibrium_values, equilibrium_quote, cartel_value, cartel_spread, one_mm_index, largest_gain, no_pure, "
    "constant_index",
    [
        ("spread", (26.67, 26.67, 0.005), 0.19, 59.91, 1.34, 0.97, 1e-12, 0, (-4.7, 0.05)),
        ("mtm", (19.1365, 19.1364, 5e-5), 0.44, 40.07, 1.72, 0.96, 3.4e-3, 12, (-8.08, 0.005)),
    ],
)
def test_reference_figures_at_the_defaults(
    reward,
    equilibrium_values,
    equilibrium_quote,
    cartel_value,
    cartel_spread,
    one_mm_index,
    largest_gain,
    no_pure,
    constant_index,
):
    params = make_competition_params("default", reward=reward)
    begin = time.perf_counter()
    equilibrium = solve_equilibrium(params)
    cartel = solve_cartel(params)
    assert time.perf_counter() - begin < 60.0
    i = params.market.I_max
    # Equilibria are not unique: under mtm the two values depend on the selection rule of MODEL.md §8, which fixes
    # them in stage games off the path too.
    *values, tolerance = equilibrium_values
    assert equilibrium.start_value == pytest.approx(values, abs=tolerance)
    np.testing.assert_allclose(equilibrium.bid[:, 0, i, i], equilibrium_quote, atol=1e-12)
    np.testing.assert_allclose(equilibrium.ask[:, 0, i, i], equilibrium_quote, atol=1e-12)
    # Under mtm some stage games have no pure equilibrium, none on the equilibrium path: NashConv 0.
    assert (equilibrium.no_pure_equilibrium, equilibrium.no_pure_on_path) == (no_pure, 0)
    assert abs(equilibrium.nash_conv.nash_conv) < 1e-12
    assert equilibrium.nash_conv.largest_gain == pytest.approx(largest_gain, abs=1e-12 if reward == "spread" else 1e-4)
    assert cartel.start_value == pytest.approx([cartel_value] * 2, abs=0.005)
    assert inside_spread(cartel) == pytest.approx(cartel_spread, abs=1e-9)
    assert inside_spread(equilibrium) < inside_spread(cartel) < 2 * 0.9
    one = GamePolicy.from_one_mm(params, solve_dp(params.market))
    index = collusion_index(evaluate_joint(params, *one.tables()).mean, equilibrium.mean_return, cartel.mean_return)
    assert index == pytest.approx(one_mm_index, abs=0.005)
    constant = evaluate_joint(params, *(np.ones(one.bid_table.shape),) * 2).mean  # both quote 1.0 everywhere
    index = collusion_index(constant, equilibrium.mean_return, cartel.mean_return)
    expected, tolerance = constant_index
    assert index == pytest.approx(expected, abs=tolerance)
