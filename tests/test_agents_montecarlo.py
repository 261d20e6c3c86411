"""Monte Carlo runs of the environment (``agents.evaluation.rollout.run_episodes``) against the exact evaluation.

``evaluate_tables`` enumerates outcomes of the model; ``run_episodes`` steps the batched environment. They share no
code beyond the parameters, so agreement checks both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.evaluation.rollout import run_episodes
from agents.exact.dp import evaluate_tables, solve_dp
from agents.policies import ArticleRule, ConstantSpread, DPPolicy, LinearSkew
from mm_env.env import MarketMakingEnv
from mm_env.presets import make_params

EPISODES = 8000

PARAMS = {
    "default": make_params("default"),
    "mtm sigma": make_params("mtm", sigma=1.0),
    "pi<1 custom sizes": make_params(
        "default", pi=0.6, sizes=(1, 3, 5, 10), size_probs=(0.4, 0.3, 0.2, 0.1), I_max=20, alpha=0.02
    ),
}

POLICIES = {
    "dp": lambda params: DPPolicy(params),
    "article": lambda params: ArticleRule(0.5, 0.1),
    "skew": lambda params: LinearSkew(0.7, 0.06),
}


@pytest.mark.parametrize("params_name", list(PARAMS))
@pytest.mark.parametrize("policy_name", list(POLICIES))
def test_monte_carlo_agrees_with_exact_mean_and_std(params_name, policy_name):
    params = PARAMS[params_name]
    policy = POLICIES[policy_name](params)
    exact = evaluate_tables(params, *policy.tables(params))
    run = run_episodes(policy, params, EPISODES, seed=11)
    assert run.returns.shape == (EPISODES,)
    standard_error = exact.std / math.sqrt(EPISODES)
    assert abs(run.returns.mean() - exact.mean) < 4 * standard_error, (run.returns.mean(), exact.mean)
    assert run.returns.std(ddof=1) == pytest.approx(exact.std, rel=0.05)


@pytest.mark.parametrize("params_name", list(PARAMS))
def test_monte_carlo_pnl_agrees_with_exact_wealth_change(params_name):
    # The final mark-to-market P&L X_T + I_T·P_T is the sum of the mtm rewards with λ = α = 0: its exact mean comes
    # from the same backward evaluation on those parameters.
    params = PARAMS[params_name]
    policy = DPPolicy(params)
    wealth = evaluate_tables(params.replace(reward="mtm", lam=0.0, alpha=0.0), *policy.tables(params))
    run = run_episodes(policy, params, EPISODES, seed=5)
    assert abs(run.pnl.mean() - wealth.mean) < 4 * wealth.std / math.sqrt(EPISODES)
    assert run.pnl.std(ddof=1) == pytest.approx(wealth.std, rel=0.05)


def test_monte_carlo_agrees_for_the_flipped_rule_and_it_is_far_worse():
    params = PARAMS["default"]
    flipped, consistent = ArticleRule(0.5, 0.1, flipped=True), ArticleRule(0.5, 0.1)
    exact_flipped = evaluate_tables(params, *flipped.tables(params))
    exact_consistent = evaluate_tables(params, *consistent.tables(params))
    assert exact_flipped.mean < exact_consistent.mean - 1000
    run_flipped = run_episodes(flipped, params, 4000, seed=2)
    run_consistent = run_episodes(consistent, params, 4000, seed=2)
    assert abs(run_flipped.returns.mean() - exact_flipped.mean) < 4 * exact_flipped.std / math.sqrt(4000)
    assert run_flipped.returns.mean() < run_consistent.returns.mean() - 1000
    # It drives the inventory to the limit and rarely trades (it widens the side that would shed risk).
    assert run_flipped.final_abs_inventory.mean() > 0.8 * params.I_max
    assert run_flipped.mean_abs_inventory.mean() > 3 * run_consistent.mean_abs_inventory.mean()


@pytest.mark.parametrize(
    "params",
    [
        make_params(mode="article", T=50, I_max=60),
        make_params(mode="article", T=50, I_max=60, reward="mtm"),
    ],
    ids=["article spread", "article mtm"],
)
def test_monte_carlo_agrees_with_exact_in_article_mode(params):
    # evaluate_tables claims to work in article mode too (every order fills).
    for policy in (ArticleRule(0.5, 0.1), ArticleRule(0.5, 0.1, flipped=True), ConstantSpread(1.0)):
        exact = evaluate_tables(params, *policy.tables(params))
        run = run_episodes(policy, params, 4000, seed=3)
        error = (run.returns.mean() - exact.mean) / (exact.std / math.sqrt(4000))
        assert abs(error) < 4, f"{policy.name}: MC {run.returns.mean():.2f}, exact {exact.mean:.2f} ({error:+.0f} s.e.)"


def test_common_random_numbers():
    params = PARAMS["default"]
    dp, article = DPPolicy(params), ArticleRule(0.5, 0.1)
    first = run_episodes(dp, params, 4000, seed=21)
    again = run_episodes(dp, params, 4000, seed=21)
    np.testing.assert_array_equal(first.returns, again.returns)
    np.testing.assert_array_equal(first.pnl, again.pnl)
    other_seed = run_episodes(dp, params, 4000, seed=22)
    assert not np.array_equal(first.returns, other_seed.returns)
    # The traders do not depend on the quotes: every policy meets the same arrivals.
    rule = run_episodes(article, params, 4000, seed=21)
    np.testing.assert_array_equal(first.arrivals, rule.arrivals)
    # Pairing: the DP − article-rule difference has a smaller standard error than unpaired runs would give. The two
    # policies' inventories part ways within an episode, so the returns correlate only moderately (about 0.58): the
    # gain is a third of the standard error (a factor of two in episodes). Between close policies (the DP and the
    # linear skew, correlation about 0.93) the paired standard error is a quarter of the unpaired one.
    n = len(first.returns)
    paired = (first.returns - rule.returns).std(ddof=1) / math.sqrt(n)
    unpaired = math.sqrt((first.returns.var(ddof=1) + rule.returns.var(ddof=1)) / n)
    assert paired < 0.75 * unpaired
    skew = run_episodes(LinearSkew(0.7, 0.06), params, 4000, seed=21)
    paired_skew = (first.returns - skew.returns).std(ddof=1) / math.sqrt(n)
    assert paired_skew < 0.35 * math.sqrt((first.returns.var(ddof=1) + skew.returns.var(ddof=1)) / n)
    # And the paired estimate is right: the exact difference is 111.14 − 90.86.
    exact_difference = solve_dp(params).expected_return - evaluate_tables(params, *article.tables(params)).mean
    assert exact_difference == pytest.approx(20.28, abs=0.01)
    assert abs((first.returns - rule.returns).mean() - exact_difference) < 4 * paired


def test_run_episodes_single_episode_matches_a_hand_loop_on_the_single_env():
    # A vector env of one reproduces the single env with the same seed; recompute the aggregates by hand.
    params = make_params("mtm", sigma=0.7, T=60)
    policy = LinearSkew(0.6, 0.1)
    run = run_episodes(policy, params, 1, seed=9)
    env = MarketMakingEnv(params, normalize_actions=False)
    obs, info = env.reset(seed=9)
    total, pnl_path, abs_inventory, fills, arrivals, spreads = 0.0, [0.0], [], 0, 0, []
    for _ in range(params.T):
        obs, reward, terminated, truncated, info = env.step(policy.action(env.state, env.config))
        total += reward
        pnl_path.append(info["mtm_pnl"])
        abs_inventory.append(abs(info["inventory"]))
        fills += info["fill_size"] > 0
        arrivals += info["trader_side"] != 0
        spreads.append(info["ask"] - info["bid"])
    assert terminated and not truncated
    pnl_path = np.array(pnl_path)
    drawdown = np.max(np.maximum.accumulate(pnl_path) - pnl_path)
    assert run.returns[0] == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert run.pnl[0] == pytest.approx(pnl_path[-1], rel=1e-9, abs=1e-9)
    assert run.max_drawdown[0] == pytest.approx(drawdown, rel=1e-9, abs=1e-9)
    assert drawdown > 0  # the mid noise makes the P&L fall at times
    assert run.mean_abs_inventory[0] == pytest.approx(np.mean(abs_inventory))
    assert run.final_abs_inventory[0] == abs_inventory[-1]
    assert run.fills[0] == fills and run.arrivals[0] == arrivals
    assert run.mean_spread[0] == pytest.approx(np.mean(spreads))
