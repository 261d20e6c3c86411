"""The multi-asset DP, exact evaluation, BEGV and the baselines (MODEL.md §9.5, §9.6, §9.8, §9.9 items 2–8).

Checked against independent expectations: the reference figures of §9.8, the one-asset DP of §4 (``d = 1``,
separability, inert assets), a brute-force search of the one-step value written here from the step rules of §9.2,
an RK4 integration of the Riccati equation, GLFT's closed form, and Monte Carlo on the vector env.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from agents.evaluation.multi_asset import (
    CORRELATIONS,
    compare_multi_asset,
    correlation_sweep,
    evaluate_policy,
    skew_candidates,
    tune_multi_asset_skew,
)
from agents.exact.dp import evaluate_tables, solve_dp
from agents.exact.multi_asset import (
    cross_hedging_value,
    evaluate_many,
    evaluate_multi_asset,
    grid_inventory,
    independent_table,
    independent_value,
    multi_asset_size_problem,
    solve_multi_asset,
)
from agents.policies.closed_forms import GueantLehalleFernandezTapia
from agents.policies.multi_asset import (
    BEGV,
    ArticleRulePerAsset,
    ConstantOffset,
    FromObservations,
    IndependentOptima,
    LinearSkewMultiAsset,
    MultiAssetDP,
    begv_ergodic,
    begv_liquidity,
    begv_reason,
    begv_riccati,
    begv_tanh,
    begv_terminal,
    decode_observation,
    encode_action,
    skew_shape,
)
from mm_env.multi_asset import MultiAssetMarketMakingVectorEnv, MultiAssetParams, make_multi_asset_params

TWO = make_multi_asset_params("two_assets")
MV = make_multi_asset_params("mean_variance")
ONE = MultiAssetParams()  # d = 1 with the one-asset defaults of §3
ONE_MTM = MultiAssetParams(reward="mtm")


@pytest.fixture(scope="module")
def two_dp():
    return solve_multi_asset(TWO)


@pytest.fixture(scope="module")
def mv_dp():
    return solve_multi_asset(MV)


# --------------------------------------------------------------------------------------------------------------------
# §9.8: the DP at both presets, its own exact evaluation (§9.9 item 5) and its quotes


def test_two_assets_dp_value_sd_and_self_evaluation(two_dp):
    assert two_dp.value == pytest.approx(69.0904, abs=5e-5)
    assert two_dp.bid.shape == two_dp.ask.shape == (200, 41, 41, 2)
    assert two_dp.bid.dtype == np.float64
    evaluation = evaluate_multi_asset(TWO, two_dp.table())
    assert evaluation.mean == pytest.approx(two_dp.value, abs=1e-10)
    assert evaluation.sd == pytest.approx(10.39, abs=5e-3)


def test_mean_variance_dp_value_sd_and_self_evaluation(mv_dp):
    np.testing.assert_allclose(MV.C, [[0.4, 0.64], [0.64, 1.6]], atol=1e-12)
    assert mv_dp.value == pytest.approx(55.7265, abs=5e-5)
    evaluation = evaluate_multi_asset(MV, mv_dp.table())
    assert evaluation.mean == pytest.approx(mv_dp.value, abs=1e-10)
    assert evaluation.sd == pytest.approx(12.33, abs=5e-3)
    # At I = 0 asset 1 quotes 0.7075 and asset 2 0.8926, on both sides.
    np.testing.assert_allclose(mv_dp.offsets(0, (0, 0)), [[0.7075, 0.7075], [0.8926, 0.8926]], atol=5e-5)


@pytest.mark.parametrize(
    ("inventory", "expected"),
    [
        ((0, 0), [[0.6905, 0.6905], [0.6905, 0.6905]]),
        ((5, 0), [[1.1837, 0.1745], [0.9331, 0.4315]]),
        ((0, 5), [[0.9331, 0.4315], [1.1837, 0.1745]]),
        ((5, 5), [[1.4617, 0.0], [1.4617, 0.0]]),
        ((5, -5), [[0.9336, 0.4311], [0.4311, 0.9336]]),
    ],
)
def test_two_assets_dp_quotes_at_t0(two_dp, inventory, expected):
    np.testing.assert_allclose(two_dp.offsets(0, inventory), expected, atol=5e-5)


def test_two_assets_values0_and_policy_lookups_agree(two_dp):
    assert two_dp.values0.shape == (41, 41)
    assert two_dp.values0[20, 20] == two_dp.value
    policy = MultiAssetDP(TWO, two_dp)
    inventory = np.array([[3, -7], [-20, 20], [0, 0]])
    np.testing.assert_array_equal(policy.offsets(17, inventory, TWO), two_dp.offsets(17, inventory))
    with pytest.raises(ValueError, match="I_max"):
        two_dp.offsets(0, (21, 0))
    with pytest.raises(ValueError, match="t=200"):
        two_dp.offsets(200, (0, 0))


# --------------------------------------------------------------------------------------------------------------------
# §9.8's table: every baseline evaluated exactly


def test_two_assets_baselines(two_dp):
    expected = {  # mean, sd (MODEL.md §9.8)
        "independent": (65.5201, 10.76),
        "BEGV": (68.9285, 10.45),
        "BEGV ergodic": (68.6862, 10.47),
        "article": (41.9198, 26.80),
        "constant": (-123.7917, 163.2),
    }
    policies = {
        "independent": IndependentOptima(TWO),
        "BEGV": BEGV(TWO),
        "BEGV ergodic": BEGV(TWO, ergodic=True),
        "article": ArticleRulePerAsset(0.5, 0.1),
        "constant": ConstantOffset(0.5),
    }
    for name, policy in policies.items():
        evaluation = evaluate_policy(TWO, policy)
        mean, sd = expected[name]
        assert evaluation.mean == pytest.approx(mean, abs=5e-5), name
        assert evaluation.sd == pytest.approx(sd, abs=0.05 if name == "constant" else 5e-3), name


def test_mean_variance_baselines():
    expected = {"independent": (53.2768, 12.78), "BEGV": (55.5036, 12.76), "BEGV ergodic": (55.4614, 12.75)}
    expected["article"] = (26.6973, 31.00)
    policies = {
        "independent": IndependentOptima(MV),
        "BEGV": BEGV(MV),
        "BEGV ergodic": BEGV(MV, ergodic=True),
        "article": ArticleRulePerAsset(0.5, 0.1),
    }
    for name, policy in policies.items():
        evaluation = evaluate_policy(MV, policy)
        assert evaluation.mean == pytest.approx(expected[name][0], abs=5e-5), name
        assert evaluation.sd == pytest.approx(expected[name][1], abs=5e-3), name


def test_cross_hedging_values_and_independent_optima():
    # The independent optima are 32.7601 per asset at two_assets, 31.2932 + 21.9836 at mean_variance (λ·C_ii =
    # 0.002 and 0.008), and the value of cross-hedging is 3.5703 and 2.4497.
    assert solve_dp(TWO.asset(0)).expected_return == pytest.approx(32.7601, abs=5e-5)
    assert [solve_dp(MV.asset(i)).expected_return for i in range(2)] == pytest.approx([31.2932, 21.9836], abs=5e-5)
    assert [MV.asset(i).lam for i in range(2)] == pytest.approx([0.002, 0.008], abs=1e-15)
    assert independent_value(TWO) == pytest.approx(65.5201, abs=5e-5)
    assert cross_hedging_value(TWO) == pytest.approx(3.5703, abs=5e-5)
    assert cross_hedging_value(MV) == pytest.approx(2.4497, abs=5e-5)


def test_tuned_skews_at_the_reference_parameters():
    # §9.8's tuned skews, evaluated at the parameters it reports (the tuner's own output is checked below).
    cases = [
        (TWO, "risk", 0.70, 0.105, 66.16, 11.33),
        (TWO, "sqrt", 0.68, 0.11, 68.77, 10.44),
        (TWO, "own", 0.71, 0.1125, 65.20, 10.82),
        (MV, "risk", 0.81, 0.108, 51.05, 14.13),
        (MV, "sqrt", 0.79, 0.12, 54.82, 12.68),
        (MV, "sqrt", (0.71, 0.87), 0.125, 55.64, 12.36),
    ]
    functions = []
    for params, family, center, slope, _, _ in cases:
        functions.append(
            skew_candidates(params, family, np.broadcast_to(np.asarray(center, dtype=float), (1, 2)), np.array([slope]))
        )
    for (params, family, center, _, mean, sd), function in zip(cases, functions, strict=True):
        means, sds = evaluate_many(params, function)
        assert means[0] == pytest.approx(mean, abs=0.01), (family, center)
        assert sds[0] == pytest.approx(sd, abs=0.05), (family, center)  # the sd moves faster near the optimum


# --------------------------------------------------------------------------------------------------------------------
# §9.9 items 2–4: inert assets, separability and the coupling in the variance


@pytest.mark.parametrize("risk", [0.0, 0.8, -0.5])
def test_inert_asset_leaves_the_one_asset_value(risk):
    # Asset 1 has the one-asset defaults; asset 2 never trades (π_2 = 0), so I_2 stays 0 and C_12 never matters.
    params = MultiAssetParams(d=2, pi=(1.0, 0.0), I_max=(50, 3), risk_matrix=risk)
    solution = solve_multi_asset(params)
    assert solution.value == pytest.approx(111.1446, abs=5e-5)
    assert solution.value == pytest.approx(solve_dp(ONE.asset(0)).expected_return, abs=1e-10)
    # BEGV drops the inert asset from its Riccati system and quotes δ_max on it.
    begv = BEGV(params)
    assert np.all(begv.matrices[:, 1, :] == 0.0) and np.all(begv.matrices[:, :, 1] == 0.0)
    assert np.all(begv.offsets(0, grid_inventory(params), params)[..., 1, :] == params.delta_max)
    assert evaluate_policy(params, begv).mean == pytest.approx(110.7743, abs=5e-5)


def test_diagonal_risk_separates_into_one_asset_optima():
    params = TWO.replace(risk_matrix=0.0)
    solution = solve_multi_asset(params)
    one = solve_dp(params.asset(0))
    assert one.expected_return == pytest.approx(32.7601, abs=5e-5)
    assert solution.value == pytest.approx(65.520124, abs=5e-7)
    assert solution.value == pytest.approx(2.0 * one.expected_return, abs=1e-10)
    # The policies coincide: asset i's quotes are its one-asset optimum at I_i, whatever the other inventory.
    np.testing.assert_allclose(solution.table(), independent_table(params), atol=3e-14)
    # §9.9 item 4: one trader at most per step couples the assets in the variance (10.3056, not 11.0738).
    sd = evaluate_multi_asset(params, solution.table()).sd
    one_sd = evaluate_tables(params.asset(0), one.bid, one.ask).std
    assert sd == pytest.approx(10.3056, abs=5e-5)
    assert math.sqrt(2.0) * one_sd == pytest.approx(11.0738, abs=5e-5)


def test_separability_under_mtm_with_noise_and_terminal_penalty():
    params = make_multi_asset_params("two_assets", reward="mtm", alpha=0.01, sigma=(0.1, 0.2), risk_matrix=0.0)
    solution = solve_multi_asset(params)
    ones = [solve_dp(params.asset(i)) for i in range(2)]
    assert [one.expected_return for one in ones] == pytest.approx([25.7247, 25.7247], abs=5e-5)
    assert solution.value == pytest.approx(51.449445, abs=5e-7)
    assert solution.value == pytest.approx(sum(one.expected_return for one in ones), abs=1e-10)
    sd = evaluate_multi_asset(params, solution.table()).sd
    independent_sd = math.hypot(*(evaluate_tables(params.asset(i), ones[i].bid, ones[i].ask).std for i in range(2)))
    assert sd == pytest.approx(12.6206, abs=5e-5)
    assert independent_sd == pytest.approx(13.0399, abs=5e-5)


def test_three_assets_block_diagonal_risk_adds_across_blocks():
    block = [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]]
    params = make_multi_asset_params("two_assets", d=3, pi=1 / 3, I_max=10, risk_matrix=block)
    solution = solve_multi_asset(params)
    assert solution.bid.dtype == np.float32 and solution.bid.shape == (200, 21, 21, 21, 3)
    assert solution.value == pytest.approx(61.481750, abs=5e-7)
    pair = solve_multi_asset(make_multi_asset_params("two_assets", pi=1 / 3, I_max=10, risk_matrix=0.8))
    alone = solve_dp(params.asset(2))
    assert solution.value == pytest.approx(pair.value + alone.expected_return, abs=1e-9)


@pytest.mark.slow
def test_three_assets_equal_correlation():
    params = make_multi_asset_params("two_assets", d=3, pi=1 / 3, I_max=10, risk_matrix=0.5)
    assert solve_multi_asset(params).value == pytest.approx(60.9888, abs=5e-5)
    assert evaluate_policy(params, IndependentOptima(params)).mean == pytest.approx(58.7150, abs=5e-5)
    assert evaluate_policy(params, BEGV(params)).mean == pytest.approx(60.6181, abs=5e-5)


# --------------------------------------------------------------------------------------------------------------------
# §9.9 item 1's exact part: d = 1 is §4


@pytest.mark.parametrize(("params", "value", "article"), [(ONE, 111.1446, 90.8598), (ONE_MTM, 74.2443, 52.4923)])
def test_one_asset_reduction(params, value, article):
    solution = solve_multi_asset(params)
    one = solve_dp(params.asset(0))
    assert solution.value == pytest.approx(value, abs=5e-5)
    assert solution.value == pytest.approx(one.expected_return, abs=1e-10)
    np.testing.assert_allclose(solution.bid[..., 0], one.bid, rtol=0, atol=1e-12)
    np.testing.assert_allclose(solution.ask[..., 0], one.ask, rtol=0, atol=1e-12)
    np.testing.assert_allclose(solution.values0, one.value[0], rtol=0, atol=1e-10)
    evaluation = evaluate_policy(params, ArticleRulePerAsset(0.5, 0.1))
    assert evaluation.mean == pytest.approx(article, abs=5e-5)
    one_article = evaluate_tables(params.asset(0), *ArticleRulePerAsset().table(params)[..., 0, :].transpose(2, 0, 1))
    assert evaluation.sd == pytest.approx(one_article.std, abs=1e-9)


@pytest.mark.parametrize(("params", "finite", "ergodic"), [(ONE, 110.7743, 110.6063), (ONE_MTM, 73.9031, 73.9105)])
def test_begv_at_one_asset(params, finite, ergodic):
    assert evaluate_policy(params, BEGV(params)).mean == pytest.approx(finite, abs=5e-5)
    assert evaluate_policy(params, BEGV(params, ergodic=True)).mean == pytest.approx(ergodic, abs=5e-5)


def test_begv_ergodic_quotes_are_glft_at_one_asset_with_unit_sizes():
    params = ONE.replace(sizes=(1,), I_max=10)
    one = params.asset(0)
    glft = GueantLehalleFernandezTapia()
    levels = np.arange(-10, 11, dtype=np.float64)
    bid, ask = glft.offsets(np.zeros_like(levels), levels, one)
    ours = BEGV(params, ergodic=True).offsets(0, levels[:, None], params)
    np.testing.assert_allclose(ours[:, 0, 0], bid, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours[:, 0, 1], ask, rtol=0, atol=1e-15)
    theta, _ = glft.coefficients(_mapping(one))
    assert begv_ergodic(params)[0, 0] == pytest.approx(theta, rel=1e-15)


def _mapping(one):
    from agents.policies.closed_forms import continuous_time_mapping

    return continuous_time_mapping(one)


# --------------------------------------------------------------------------------------------------------------------
# §9.9 item 5: a brute-force offset search of the one-step value, outcome by outcome


def _one_step_value(params, following, inventory, offsets):
    """The value of one step from ``inventory`` quoting ``offsets[i][side]`` (bid 0, ask 1), by enumerating every
    outcome of §9.2 with plain loops, given the next step's values ``following`` over the grid. Each offset may be
    an array (a grid of candidates): the result is then an array of values."""
    C, lam, mtm = np.asarray(params.C), params.lam, params.reward == "mtm"
    limits = params.I_max

    def carried(inv):  # −λ·I'ᵀCI' plus the next step's value
        vector = np.asarray(inv, dtype=np.float64)
        return (
            -lam * vector @ C @ vector + following[tuple(int(x) + limit for x, limit in zip(inv, limits, strict=True))]
        )

    stay = carried(inventory)
    total = (1.0 - sum(params.pi)) * stay
    for i in range(params.d):
        for side, sign in ((0, -1), (1, +1)):  # bid: the trader sells (S = −1); ask: it buys (S = +1)
            delta = offsets[i][side]
            fill = params.A[i] * np.exp(-params.k[i] * delta)
            branch = 0.0
            for size, prob in zip(params.sizes[i], params.size_probs[i], strict=True):
                capacity = limits[i] - inventory[i] if sign < 0 else inventory[i] + limits[i]
                executed = min(size, capacity)
                after = list(inventory)
                after[i] -= sign * executed
                reward = executed * delta + carried(after)
                if mtm:
                    reward = reward + sign * after[i] * params.kappa[i] * executed ** params.beta[i]
                branch = branch + prob * reward
            total = total + 0.5 * params.pi[i] * (fill * branch + (1.0 - fill) * stay)
    return total


@pytest.mark.parametrize("preset", ["two_assets", "mean_variance"])
def test_brute_force_offset_search_finds_nothing_better_than_the_closed_form(preset):
    params = make_multi_asset_params(preset, T=20)
    solution = solve_multi_asset(params)
    following = solve_multi_asset(params.replace(T=19)).values0  # V_1 of T = 20 is V_0 of T = 19
    rng = np.random.default_rng(5)
    states = [(0, 0), (5, -5), (20, 20), (-20, 3)] + [tuple(rng.integers(-20, 21, 2)) for _ in range(6)]
    grid = np.linspace(params.delta_min, params.delta_max, 50_001)  # step 1e-4
    for inventory in states:
        best = solution.offsets(0, inventory)  # (asset, side) with side 0 bid, 1 ask
        value = _one_step_value(params, following, inventory, best)
        assert value == pytest.approx(solution.values0[tuple(x + 20 for x in inventory)], abs=1e-10)
        for i in range(2):
            for side in range(2):
                trial = [list(row) for row in best]
                trial[i][side] = grid
                values = _one_step_value(params, following, inventory, trial)
                assert values.max() <= value + 1e-12, (inventory, i, side)
                if values.max() - values.min() > 1e-9:  # a side that can trade: the argmax is the closed form's
                    assert abs(grid[np.argmax(values)] - best[i][side]) <= 1e-4, (inventory, i, side)


# --------------------------------------------------------------------------------------------------------------------
# §9.9 item 6: symmetry and signs


def test_value_is_even_in_the_correlation_and_the_wrong_sign_hedge_loses(two_dp):
    mirror = TWO.replace(risk_matrix=-0.8)
    mirrored = solve_multi_asset(mirror)
    assert mirrored.value == pytest.approx(two_dp.value, abs=1e-10)
    # The optimum for −ρ is the reflection of asset 2 of the optimum for ρ (§9.3).
    np.testing.assert_allclose(mirrored.bid[:, :, ::-1, 0], two_dp.bid[..., 0], atol=1e-12)
    np.testing.assert_allclose(mirrored.bid[:, :, ::-1, 1], two_dp.ask[..., 1], atol=1e-12)
    wrong = evaluate_multi_asset(TWO, mirrored.table()).mean
    assert wrong == pytest.approx(48.8413, abs=5e-5)
    assert evaluate_multi_asset(TWO, BEGV(mirror).grid_function(TWO)).mean == pytest.approx(46.8325, abs=5e-5)
    # The independent benchmark does not see C's off-diagonal.
    assert evaluate_policy(mirror, IndependentOptima(mirror)).mean == pytest.approx(65.5201, abs=5e-5)


@pytest.mark.slow
def test_correlation_table():
    expected = {  # MODEL.md §9.8, ρ_C = 0, 0.2, 0.4, 0.6, 0.8, 0.95
        "dp": [65.5201, 65.6913, 66.2315, 67.2519, 69.0904, 71.9591],
        "begv": [65.2711, 65.4460, 66.0012, 67.0483, 68.9285, 71.8442],
        "wrong_sign_dp": [65.5201, 64.9994, 63.2253, 59.2332, 48.8413, 11.7195],
        "wrong_sign_begv": [65.2711, 64.6741, 62.6506, 58.1772, 46.8325, 7.3513],
    }
    rows = correlation_sweep(TWO, CORRELATIONS)
    for field, values in expected.items():
        assert [getattr(row, field) for row in rows] == pytest.approx(values, abs=5e-5), field
    # The benchmark, evaluated in the joint model at each ρ, is Σ_i V^{(i)} whatever ρ.
    assert [row.independent for row in rows] == pytest.approx([independent_value(TWO)] * 6, abs=1e-10)
    for rho in CORRELATIONS[1:]:
        assert solve_multi_asset(TWO.replace(risk_matrix=-rho)).value == pytest.approx(
            solve_multi_asset(TWO.replace(risk_matrix=rho)).value, abs=1e-10
        )
    dp = [row.dp for row in rows]
    wrong = [row.wrong_sign_dp for row in rows]
    assert all(b > a for a, b in itertools.pairwise(dp))
    assert all(b < a for a, b in itertools.pairwise(wrong[1:]))


def test_correlation_sweep_runs_and_orders_at_two_points():
    rows = correlation_sweep(TWO.replace(T=40), (0.4, 0.95))
    assert rows[1].dp > rows[0].dp > rows[0].independent
    assert rows[1].wrong_sign_dp < rows[0].wrong_sign_dp < rows[0].independent
    assert rows[0].independent == pytest.approx(rows[1].independent, abs=1e-10)
    assert rows[0].independent == pytest.approx(independent_value(TWO.replace(T=40)), abs=1e-10)


# --------------------------------------------------------------------------------------------------------------------
# §9.9 item 8: BEGV's Riccati solution


def _rk4(params, substeps):
    """``A(τ)`` at whole steps from RK4 on ``dA/dτ = λC − 2·A·D₊·A``, ``substeps`` per step."""
    liquidity = np.diag(begv_liquidity(params))
    risk = np.asarray(params.C)

    def slope(a):
        return params.lam * risk - 2.0 * a @ liquidity @ a

    a = begv_terminal(params)
    out = [a]
    h = 1.0 / substeps
    for _ in range(params.T):
        for _ in range(substeps):
            k1 = slope(a)
            k2 = slope(a + 0.5 * h * k1)
            k3 = slope(a + 0.5 * h * k2)
            k4 = slope(a + h * k3)
            a = a + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
        out.append(a)
    return np.array(out)


def test_one_step_map_equals_tanh_formula_when_terminal_is_zero():
    for rho in (0.8, -0.5, 1.0):  # 1.0: a singular C, so a singular Â
        params = TWO.replace(risk_matrix=rho)
        np.testing.assert_allclose(begv_riccati(params), begv_tanh(params), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="A_T = 0"):
        begv_tanh(MV)


@pytest.mark.parametrize(
    "params",
    [MV, TWO.replace(alpha=0.05), make_multi_asset_params("two_assets", reward="mtm", kappa=(0.05, 0.2), T=60)],
)
def test_one_step_map_equals_rk4_otherwise(params):
    assert np.any(begv_terminal(params) != 0.0)
    np.testing.assert_allclose(begv_riccati(params), _rk4(params, 20), rtol=0, atol=1e-11)


def test_riccati_first_step_and_ergodic_limit():
    small = TWO.replace(lam=1e-6)
    a1 = begv_riccati(small)[1]
    np.testing.assert_allclose(a1, small.lam * small.C, rtol=1e-5)  # A(1) = λC to first order
    # A∞ is the fixed point of the Riccati equation and the limit of A(τ).
    a_inf = begv_ergodic(TWO)
    np.testing.assert_allclose(a_inf, [[0.0449, 0.0224], [0.0224, 0.0449]], atol=5e-5)
    assert begv_liquidity(TWO) == pytest.approx([0.9933, 0.9933], abs=5e-5)
    residual = TWO.lam * TWO.C - 2.0 * a_inf @ np.diag(begv_liquidity(TWO)) @ a_inf
    np.testing.assert_allclose(residual, 0.0, atol=1e-16)
    np.testing.assert_allclose(begv_riccati(TWO.replace(T=2000))[-1], a_inf, atol=1e-12)
    np.testing.assert_allclose(begv_riccati(MV.replace(T=2000))[-1], begv_ergodic(MV), atol=1e-12)


def test_begv_refuses_nonlinear_impact_under_mtm():
    params = MV.replace(beta=(1.0, 0.5))
    assert "nonlinear impact in asset 1" in str(begv_reason(params))
    with pytest.raises(ValueError, match="BEGV does not apply"):
        BEGV(params)
    assert begv_reason(MV.replace(beta=0.5, kappa=0.0)) is None  # no impact: nothing to linearise
    assert begv_reason(TWO.replace(beta=0.5)) is None  # the spread reward never reads the mid


# --------------------------------------------------------------------------------------------------------------------
# Tuning, policies on observations, size limits, the table and the figures


def test_tuner_finds_the_best_of_a_fine_grid():
    params = make_multi_asset_params("two_assets", T=20, I_max=5, lam=0.02)
    tuned = tune_multi_asset_skew(params, "sqrt")
    centers, slopes = np.meshgrid(np.linspace(0.4, 1.0, 25), np.linspace(0.0, 0.4, 25), indexing="ij")
    function = skew_candidates(params, "sqrt", np.repeat(centers.reshape(-1, 1), 2, axis=1), slopes.ravel())
    means = evaluate_many(params, function, second_moment=False)[0]
    assert tuned.expected_return >= means.max() - 1e-6
    assert evaluate_policy(params, tuned.policy).mean == pytest.approx(tuned.expected_return, abs=1e-10)
    per_asset = tune_multi_asset_skew(params, "sqrt", per_asset_center=True, start=tuned)
    assert per_asset.expected_return >= tuned.expected_return - 1e-12


@pytest.mark.slow
def test_tuned_skews_about_the_reference():
    for params, family, center, slope, mean in [
        (TWO, "risk", 0.70, 0.105, 66.16),
        (TWO, "sqrt", 0.68, 0.11, 68.77),
        (TWO, "own", 0.71, 0.1125, 65.20),
        (MV, "risk", 0.81, 0.108, 51.05),
        (MV, "sqrt", 0.79, 0.12, 54.82),
    ]:
        tuned = tune_multi_asset_skew(params, family)
        assert tuned.expected_return == pytest.approx(mean, abs=0.01), family
        assert tuned.policy.center[0] == pytest.approx(center, abs=0.02) and tuned.policy.slope == pytest.approx(
            slope, abs=0.005
        )
    per_asset = tune_multi_asset_skew(MV, "sqrt", per_asset_center=True)
    assert per_asset.expected_return == pytest.approx(55.64, abs=0.01)
    assert per_asset.policy.center == pytest.approx([0.71, 0.87], abs=0.02)


def test_skew_shapes_and_one_asset_reduction():
    np.testing.assert_allclose(skew_shape(TWO, "sqrt") @ skew_shape(TWO, "sqrt"), TWO.C, atol=1e-14)
    np.testing.assert_allclose(skew_shape(TWO, "own"), np.eye(2))
    inventory = grid_inventory(ONE)
    for family in ("risk", "sqrt", "own"):  # with d = 1 every family is c ± s·I
        quotes = LinearSkewMultiAsset(ONE, family, 0.7, 0.06).offsets(0, inventory, ONE)
        np.testing.assert_allclose(quotes[..., 0, 0], np.clip(0.7 + 0.06 * inventory[..., 0], 0.0, 5.0))
    with pytest.raises(ValueError, match="family"):
        skew_shape(TWO, "cholesky")


def test_actions_on_observations_match_offsets_and_learned_agents_evaluate_exactly():
    policy = BEGV(TWO)
    rng = np.random.default_rng(0)
    inventory = rng.integers(-20, 21, size=(50, 2)).astype(np.float64)
    t = rng.integers(0, 200, size=50)
    observation = np.concatenate([inventory / 20.0, ((200 - t) / 200.0)[:, None]], axis=1).astype(np.float32)
    decoded_t, decoded = decode_observation(observation, TWO)
    np.testing.assert_array_equal(decoded_t, t)
    np.testing.assert_array_equal(decoded, inventory)
    raw = policy.action(observation, TWO)
    offsets = np.stack([policy.offsets(step, inv, TWO) for step, inv in zip(t, inventory, strict=True)])
    np.testing.assert_allclose(raw, offsets.reshape(50, 4))
    assert raw[0].tolist() == [offsets[0, 0, 0], offsets[0, 0, 1], offsets[0, 1, 0], offsets[0, 1, 1]]
    normalized = encode_action(offsets, TWO, normalize=True)
    np.testing.assert_allclose(normalized, 2.0 * offsets.reshape(50, 4) / 5.0 - 1.0)
    # A learned agent (here: BEGV read through observations, normalised actions) evaluates like the policy itself.
    learned = FromObservations(lambda obs: policy.action(obs, TWO, normalize=True), "learned", normalized=True)
    assert evaluate_policy(TWO, learned).mean == pytest.approx(evaluate_policy(TWO, policy).mean, abs=1e-9)


def test_size_problem_names_the_grid():
    assert multi_asset_size_problem(TWO) is None
    big = make_multi_asset_params("two_assets", d=4, pi=0.25, I_max=20, risk_matrix=0.0)
    reason = multi_asset_size_problem(big)
    assert reason is not None and "41×41×41×41 = 2,825,761 states per step" in reason and "\n" not in reason
    with pytest.raises(ValueError, match="41×41×41×41"):
        solve_multi_asset(big)
    with pytest.raises(ValueError, match="must be"):
        evaluate_multi_asset(TWO, np.zeros((200, 41, 41, 2)))


def test_comparison_table_command_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from agents.cli.multi_asset import main
    from agents.evaluation.multi_asset import CorrelationRow, correlation_figure

    params = TWO.replace(T=20)
    rows = compare_multi_asset(params, [MultiAssetDP(params), ConstantOffset(0.7)])
    assert rows[0].pct_of_dp == pytest.approx(100.0)
    assert rows[1].mean < rows[0].mean
    sweep = [CorrelationRow(0.0, 2.0, 2.0, 1.9, 2.0, 1.9), CorrelationRow(0.8, 3.0, 2.0, 2.9, 1.0, 0.9)]
    assert len(correlation_figure(sweep).axes[0].lines) == 5
    assert main(["--no-tuning", "--no-sweep", "--env-kwargs", "T=20", "--out", str(tmp_path)]) == 0
    assert {path.name for path in tmp_path.iterdir()} == {"comparison.md", "quotes.png"}
    assert "| DP optimum |" in (tmp_path / "comparison.md").read_text()
    with pytest.raises(SystemExit):
        main(["--env-kwargs", "d=4", "pi=0.25", "I_max=20", "risk_matrix=0"])  # the size check refuses it


# --------------------------------------------------------------------------------------------------------------------
# §9.9 item 7: Monte Carlo on the vector env agrees with the exact evaluation


def _monte_carlo(params, policy, episodes, seed):
    env = MultiAssetMarketMakingVectorEnv(episodes, params=params, normalize_actions=False)
    observation, _ = env.reset(seed=seed)
    returns = np.zeros(episodes)
    for _ in range(params.T):
        observation, reward, terminated, _, _ = env.step(policy.action(observation, params))
        returns += reward
    assert terminated.all()
    return returns


def _check_monte_carlo(params, policy, episodes, seed):
    exact = evaluate_policy(params, policy)
    returns = _monte_carlo(params, policy, episodes, seed)
    error = returns.std(ddof=1) / math.sqrt(episodes)
    assert abs(returns.mean() - exact.mean) < 3.0 * error, (policy.name, returns.mean(), exact.mean, error)
    assert returns.std(ddof=1) == pytest.approx(exact.sd, rel=0.05), policy.name


@pytest.mark.parametrize(("preset", "kind"), [("two_assets", "dp"), ("mean_variance", "dp"), ("mean_variance", "skew")])
def test_monte_carlo_agrees_with_exact_evaluation(preset, kind):
    params = make_multi_asset_params(preset)
    policy = MultiAssetDP(params) if kind == "dp" else LinearSkewMultiAsset(params, "sqrt", 0.79, 0.12)
    _check_monte_carlo(params, policy, 4_000, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["two_assets", "mean_variance"])
def test_monte_carlo_every_baseline(preset):
    params = make_multi_asset_params(preset)
    policies = [
        MultiAssetDP(params),
        IndependentOptima(params),
        BEGV(params),
        BEGV(params, ergodic=True),
        LinearSkewMultiAsset(params, "sqrt", 0.68, 0.11),
        ArticleRulePerAsset(0.5, 0.1),
    ]
    for seed, policy in enumerate(policies):
        _check_monte_carlo(params, policy, 20_000, seed=100 + seed)
