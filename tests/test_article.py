"""Article mode reproduces the article's ``simulate()`` (seeds/004_…, MODEL.md §5) step for step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from helpers import trader_draws

from mm_env.dynamics import initial_state, transition
from mm_env.env import MarketMakingEnv
from mm_env.info import step_info
from mm_env.presets import ARTICLE_SCENARIOS

SCENARIOS = sorted(ARTICLE_SCENARIOS)


def article_simulate(
    P_0: float,
    spread_base: float,
    gamma: float,
    num_steps: int,
    kappa: float,
    lambda_inv: float,
    draw: Callable[[], tuple[int, int]],
) -> dict[str, list]:
    """The article's ``simulate()`` loop, re-stated; ``draw()`` returns ``(order_size, side)`` for each step."""
    P = P_0
    inventory = 0
    out = {
        "prices": [P],
        "inventory_levels": [inventory],
        "profits": [],
        "bid_prices": [],
        "ask_prices": [],
        "spreads": [],
        "sides": [],
        "sizes": [],
    }
    for _ in range(num_steps):
        delta_inventory = gamma * inventory
        P_bid = P - spread_base - abs(min(delta_inventory, 0))
        P_ask = P + spread_base + max(delta_inventory, 0)
        spread = P_ask - P_bid
        out["bid_prices"].append(P_bid)
        out["ask_prices"].append(P_ask)
        out["spreads"].append(spread)
        order_size, side = draw()
        inventory += order_size * side
        P += kappa * side * order_size
        out["profits"].append(spread * order_size - lambda_inv * inventory**2)
        out["prices"].append(P)
        out["inventory_levels"].append(inventory)
        out["sides"].append(side)
        out["sizes"].append(order_size)
    return out


def numpy_draw(rng: np.random.Generator) -> Callable[[], tuple[int, int]]:
    """The article's random trades, from a numpy Generator."""

    def draw() -> tuple[int, int]:
        order_size = int(rng.integers(1, 10))
        side = int(rng.choice([-1, 1]))
        return order_size, side

    return draw


def run_article(name: str, seed: int) -> dict[str, list]:
    scenario = ARTICLE_SCENARIOS[name]
    p = scenario.params
    return article_simulate(
        p.P0, scenario.spread_base, scenario.gamma, p.T, p.kappa, p.lam, numpy_draw(np.random.default_rng(seed))
    )


def article_quotes(inventory: float, spread_base: float, gamma: float) -> tuple[float, float]:
    """The article rule in mm_env's convention (MODEL.md §1), I = MM inventory = -q_article."""
    return spread_base + max(gamma * inventory, 0.0), spread_base + max(-gamma * inventory, 0.0)


def replay_in_mm_env(name: str, sides: list[int], sizes: list[int]) -> dict[str, list]:
    """Feed the article's draws into mm_env's transition in article mode."""
    scenario = ARTICLE_SCENARIOS[name]
    p = scenario.params
    state = initial_state(p)
    out = {key: [] for key in ("mid", "inventory", "bid", "ask", "spread", "profit")}
    for side, size in zip(sides, sizes, strict=True):
        bid_offset, ask_offset = article_quotes(state.inventory, scenario.spread_base, scenario.gamma)
        # fill=0.999: in standard mode these quotes would never fill; in article mode every order fills.
        draws = trader_draws(side, size, 0.999, params=p)
        before = state
        state, outcome = transition(before, bid_offset, ask_offset, draws, p)
        info = step_info(before, state, bid_offset, ask_offset, outcome, p)
        assert outcome.executed == size
        out["mid"].append(state.mid)
        out["inventory"].append(state.inventory)
        out["bid"].append(info["bid"])
        out["ask"].append(info["ask"])
        out["spread"].append(info["ask"] - info["bid"])
        out["profit"].append(outcome.reward)
    assert state.t == p.T
    return out


def close(value):
    return pytest.approx(value, rel=1e-12, abs=1e-10)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_transition_reproduces_article_step_for_step(name, seed):
    article = run_article(name, seed)
    mm = replay_in_mm_env(name, article["sides"], article["sizes"])
    p = ARTICLE_SCENARIOS[name].params
    assert len(mm["mid"]) == p.T == len(article["profits"])
    for t in range(p.T):
        # Mid and inventory are exact: the same additions in the same order.
        assert mm["mid"][t] == article["prices"][t + 1], t
        assert mm["inventory"][t] == -article["inventory_levels"][t + 1], t
        # Quotes, spread and profit agree to rounding (the article sums its terms in a different order).
        assert mm["bid"][t] == close(article["bid_prices"][t]), t
        assert mm["ask"][t] == close(article["ask_prices"][t]), t
        assert mm["spread"][t] == close(article["spreads"][t]), t
        assert mm["profit"][t] == close(article["profits"][t]), t


@pytest.mark.parametrize("name", SCENARIOS)
def test_env_with_article_rule_reproduces_article(name):
    """End to end: the env in article mode, driven by the article rule, equals the article loop on its draws."""
    scenario = ARTICLE_SCENARIOS[name]
    env = MarketMakingEnv(preset=name, normalize_actions=False)
    _, info = env.reset(seed=11)
    draws, infos, rewards = [], [], []
    terminated = False
    while not terminated:
        action = np.array(article_quotes(info["inventory"], scenario.spread_base, scenario.gamma))
        _, reward, terminated, truncated, info = env.step(action)
        assert not truncated
        assert info["fill_size"] == info["trader_size"]  # every order fills
        draws.append((info["trader_size"], info["trader_side"]))
        infos.append(info)
        rewards.append(reward)
    replay = iter(draws)
    p = scenario.params
    article = article_simulate(p.P0, scenario.spread_base, scenario.gamma, p.T, p.kappa, p.lam, lambda: next(replay))
    assert len(rewards) == 200
    for t, info in enumerate(infos):
        assert info["mid"] == article["prices"][t + 1]
        assert info["inventory"] == -article["inventory_levels"][t + 1]
        assert info["bid"] == close(article["bid_prices"][t])
        assert info["ask"] == close(article["ask_prices"][t])
        assert rewards[t] == close(article["profits"][t])
        assert info["spread_captured"] == close(article["spreads"][t] * article["sizes"][t])


def test_article_draws_are_the_articles_distribution():
    article = run_article("article_low_volatility", 3)
    assert set(article["sizes"]) <= set(range(1, 10))
    assert set(article["sides"]) == {-1, 1}


def test_kappa_changes_the_mid_but_not_inventory_or_profit():
    low = run_article("article_low_volatility", 5)  # kappa = 0.01
    high = run_article("article_high_volatility", 5)  # kappa = 0.1, same gamma and lambda
    assert low["sides"] == high["sides"] and low["sizes"] == high["sizes"]
    mm_low = replay_in_mm_env("article_low_volatility", low["sides"], low["sizes"])
    mm_high = replay_in_mm_env("article_high_volatility", high["sides"], high["sizes"])
    assert mm_low["inventory"] == mm_high["inventory"]
    assert mm_low["profit"] == mm_high["profit"]
    assert mm_low["mid"] != mm_high["mid"]
    # The mid moves ten times as far from P0 with ten times the impact (exactly: both are kappa times net flow).
    deviations_low = np.array(mm_low["mid"]) - 100.0
    deviations_high = np.array(mm_high["mid"]) - 100.0
    np.testing.assert_allclose(deviations_high, 10 * deviations_low, rtol=1e-9, atol=1e-9)
    assert np.abs(deviations_high).max() > 1.0


def test_article_findings_on_common_draws():
    base = run_article("article_high_volatility", 9)
    sides, sizes = base["sides"], base["sizes"]
    high_gamma = np.array(replay_in_mm_env("article_high_volatility", sides, sizes)["profit"])
    low_gamma = np.array(replay_in_mm_env("article_low_risk_weight", sides, sizes)["profit"])
    low_penalty = np.array(replay_in_mm_env("article_low_penalty", sides, sizes)["profit"])
    # Same inventory path; gamma = 0.01 charges a narrower spread 2*Delta + gamma*|I|, so it earns no more in any step.
    assert (low_gamma <= high_gamma + 1e-12).all()
    assert low_gamma.sum() < high_gamma.sum()
    # Same spread; lambda = 0.002 penalises the same inventory less.
    assert (low_penalty >= low_gamma - 1e-12).all()
    assert low_penalty.sum() > low_gamma.sum()
