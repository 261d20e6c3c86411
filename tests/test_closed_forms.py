"""The closed-form baselines (``agents.policies.closed_forms``, MODEL.md §7.4) against the exact DP and each other.

* the DP's value converges to Cartea–Jaimungal's ``h(0, 0)`` at first order in ``dt`` (the figures of §7.4), and so
  do its quotes and its whole value table, also under the ``mtm`` and asymmetric-flow mappings;
* on the ``cartea_jaimungal`` preset: CJ's exact return is the DP's to 1e−8, AS and GLFT are valid and below it;
* GLFT's asymptotic quotes are CJ's far from the horizon; AS's quotes are the DP's at the last step;
* the matrix exponential is accurate entry by entry (against mpmath) and nothing overflows at long horizons;
* every input a closed form does not fit raises a ``ValueError`` that says why.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from agents.exact.dp import evaluate_tables, solve_dp
from agents.policies.closed_forms import (
    BASELINES,
    AvellanedaStoikov,
    CarteaJaimungal,
    GueantLehalleFernandezTapia,
    applicable_baselines,
    cartea_jaimungal_generator,
    cartea_jaimungal_log_omega,
    cartea_jaimungal_value,
    cartea_jaimungal_value_table,
    continuous_time_mapping,
    metzler_expm,
)
from mm_env.presets import make_params

PRESET = make_params("cartea_jaimungal")

# Cartea–Jaimungal's problem: Λ = 1 per side, k = 2, φ = 0.002, α = 0.01, horizon 5, I_max = 5.
INTENSITY, PHI, HORIZON = 1.0, 0.002, 5.0


def discretised(dt: float, **overrides: object):
    """The discrete model of step ``dt``: ``π = 2Λ·dt``, ``λ = φ·dt``, ``T = horizon/dt`` (MODEL.md §7.4)."""
    return make_params("cartea_jaimungal", T=round(HORIZON / dt), pi=2.0 * INTENSITY * dt, lam=PHI * dt, **overrides)


def exact_return(policy, params) -> float:
    bid, ask = policy.tables(params)
    return evaluate_tables(params, bid, ask).mean


@pytest.fixture(scope="module")
def preset_dp():
    return solve_dp(PRESET)


# ---------------------------------------------------------------------------------------------------------------
# The DP converges to the CJ closed form at first order in dt.


@pytest.fixture(scope="module")
def convergence():
    """For dt = 0.1, 0.01, 0.001: the DP, CJ's value and CJ's quote tables."""
    runs = {}
    for dt in (0.1, 0.01, 0.001):
        params = discretised(dt)
        runs[dt] = (params, solve_dp(params), cartea_jaimungal_value(params), CarteaJaimungal().tables(params))
    return runs


def test_preset_is_the_dt_001_discretisation():
    assert discretised(0.01) == PRESET


def test_dp_value_converges_to_cj_at_first_order(convergence):
    errors = {dt: solution.expected_return - value for dt, (_, solution, value, _) in convergence.items()}
    # MODEL.md §7.4: −2.4e−4, −2.4e−5, −2.4e−6 (measured −2.438e−4, −2.429e−5, −2.428e−6).
    for dt, error in errors.items():
        assert error == pytest.approx(-2.4e-3 * dt, rel=0.1)
    assert errors[0.1] / errors[0.01] == pytest.approx(10.0, rel=0.1)
    assert errors[0.01] / errors[0.001] == pytest.approx(10.0, rel=0.1)
    assert convergence[0.01][2] == pytest.approx(1.78777, abs=1e-5)


def test_dp_quotes_and_values_converge_to_cj_at_first_order(convergence):
    start, everywhere, values = {}, {}, {}
    for dt, (params, solution, _, (bid, ask)) in convergence.items():
        start[dt] = max(np.abs(bid[0] - solution.bid[0]).max(), np.abs(ask[0] - solution.ask[0]).max())
        everywhere[dt] = max(np.abs(bid - solution.bid).max(), np.abs(ask - solution.ask).max())
        values[dt] = np.abs(cartea_jaimungal_value_table(params) - solution.value).max()
    # Measured at dt = 0.01: 1.8e−5 at t = 0, 1.4e−3 anywhere (the last steps), 1.3e−4 for the values.
    for dt in convergence:
        assert start[dt] < 0.01 * dt
        assert everywhere[dt] < 0.2 * dt
        assert values[dt] < 0.02 * dt
    for gaps in (start, everywhere, values):
        assert gaps[0.01] / gaps[0.001] == pytest.approx(10.0, rel=0.2)


@pytest.mark.parametrize(
    "overrides",
    [
        {"reward": "mtm", "kappa": 0.1, "sigma": 0.05},  # the κ/2 shift, α + κ/2, Λ·e^{−kκ/2}
        {"reward": "mtm", "kappa": 0.1, "alpha": 0.0, "jump_prob": 0.01, "jump_size": 1.0},
        {"p_buy": 0.7},  # asymmetric intensities
        {"informed": 0.3, "info_jump": 0.5},  # the spread reward is blind to adverse selection
    ],
    ids=["mtm", "mtm-jumps", "asymmetric", "informed-spread"],
)
def test_mappings_converge_at_first_order(overrides):
    errors = []
    for dt in (0.01, 0.001):
        params = discretised(dt, **overrides)
        errors.append(solve_dp(params).expected_return - cartea_jaimungal_value(params))
    assert abs(errors[1]) < 1e-5
    assert errors[0] / errors[1] == pytest.approx(10.0, rel=0.1)


# ---------------------------------------------------------------------------------------------------------------
# The policies on the cartea_jaimungal preset.


def test_cj_policy_is_optimal_to_first_order(preset_dp):
    optimum = preset_dp.expected_return
    value = exact_return(CarteaJaimungal(), PRESET)
    # Measured: 1.78774576 against 1.78774578, a gap of 1.2e−8 (100.0000 %).
    assert value <= optimum
    assert value / optimum > 0.99999
    assert optimum - value < 1e-7


@pytest.mark.parametrize(
    ("policy", "floor"),
    [(AvellanedaStoikov(), 0.999), (AvellanedaStoikov(gamma=0.1), 0.999), (GueantLehalleFernandezTapia(), 0.995)],
    ids=lambda item: getattr(item, "name", str(item)),
)
def test_other_baselines_are_valid_and_below_the_dp(preset_dp, policy, floor):
    bid, ask = policy.tables(PRESET)
    assert np.all(np.isfinite(bid)) and np.all(np.isfinite(ask))
    assert bid.min() >= PRESET.delta_min and bid.max() <= PRESET.delta_max
    assert ask.min() >= PRESET.delta_min and ask.max() <= PRESET.delta_max
    value = evaluate_tables(PRESET, bid, ask).mean
    # Measured: AS 99.987 %, AS γ = 0.1 99.956 %, GLFT 99.820 % of the DP's 1.787746.
    assert value < preset_dp.expected_return
    assert value / preset_dp.expected_return > floor


@pytest.mark.parametrize("policy", [cls() for cls in BASELINES], ids=lambda policy: policy.name)
def test_no_quote_at_the_limits(policy):
    bid, ask = policy.tables(PRESET)
    assert np.all(bid[:, -1] == PRESET.delta_max)
    assert np.all(ask[:, 0] == PRESET.delta_max)
    assert np.all(bid[:, :-1] < PRESET.delta_max) and np.all(ask[:, 1:] < PRESET.delta_max)
    # A long market maker quotes a wider bid and a tighter ask: both monotone in I.
    assert np.all(np.diff(bid[:, :-1], axis=1) >= 0.0)
    assert np.all(np.diff(ask[:, 1:], axis=1) <= 0.0)


def test_offsets_broadcast_and_match_tables():
    for policy in (cls() for cls in BASELINES):
        bid_table, ask_table = policy.tables(PRESET)
        t, inventory = np.array([0, 17, 499, 500]), np.array([-5, 0, 3, 5])
        bid, ask = policy.offsets(t, inventory, PRESET)
        capped = np.minimum(t, PRESET.T - 1)  # a terminal state still gets a quote
        assert np.array_equal(bid, bid_table[capped, inventory + 5])
        assert np.array_equal(ask, ask_table[capped, inventory + 5])
        bid, ask = policy.offsets(np.arange(3)[:, None], np.arange(-5, 6)[None, :], PRESET)
        assert bid.shape == ask.shape == (3, 11)


def test_symmetry():
    """Symmetric flow: the bid at I is the ask at −I, for every closed form."""
    for policy in (cls() for cls in BASELINES):
        bid, ask = policy.tables(PRESET)
        np.testing.assert_allclose(bid, ask[:, ::-1], atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# GLFT: CJ's quotes far from the horizon.


@pytest.mark.parametrize(
    ("overrides", "tolerance"), [({}, 0.005), ({"p_buy": 0.6}, 0.01)], ids=["symmetric", "asymmetric"]
)
def test_glft_approaches_cj_far_from_the_horizon(overrides, tolerance):
    # A wide grid (I_max = 20) so that the limits do not bend the centre, and 200 time units (CJ's quotes settle
    # within about 50: the ergodic time scale is 1/sqrt(φ·k·Λ/e) ≈ 26).
    params = make_params("cartea_jaimungal", I_max=20, T=20_000, **overrides)
    cj_bid, cj_ask = CarteaJaimungal().tables(params)
    centre = np.arange(-3, 4)
    glft_bid, glft_ask = GueantLehalleFernandezTapia().offsets(0, centre, params)
    far = max(np.abs(cj_bid[0, centre + 20] - glft_bid).max(), np.abs(cj_ask[0, centre + 20] - glft_ask).max())
    near = max(np.abs(cj_bid[-1, centre + 20] - glft_bid).max(), np.abs(cj_ask[-1, centre + 20] - glft_ask).max())
    # Measured: 2.6e−3 (symmetric) and 5.9e−3 (p_buy = 0.6) far from the horizon, quotes 0.5 ± 0.16; 0.15 and
    # 0.20 at the last step. The error is GLFT's: its Hamiltonian is expanded to second order around p = 0.
    assert far < tolerance
    assert near > 20 * far
    np.testing.assert_allclose(cj_bid[0], cj_bid[5_000], atol=1e-5)  # CJ itself has settled


def test_glft_is_the_small_gamma_limit_of_the_original_formula():
    mapping = continuous_time_mapping(PRESET)
    levels = np.arange(-4, 5)
    bid, ask = GueantLehalleFernandezTapia().offsets(0, levels, PRESET)
    gamma = 1e-9
    sigma2 = 2.0 * mapping.phi / gamma  # γσ² = 2φ
    k, intensity = mapping.k, mapping.rate_ask
    slope = math.sqrt(sigma2 * gamma / (2.0 * k * intensity) * (1.0 + gamma / k) ** (1.0 + k / gamma))
    base = math.log1p(gamma / k) / gamma
    np.testing.assert_allclose(bid, base + (2 * levels + 1) / 2 * slope, atol=1e-7)
    np.testing.assert_allclose(ask, base - (2 * levels - 1) / 2 * slope, atol=1e-7)


# ---------------------------------------------------------------------------------------------------------------
# AS: exact at the last step, its formula, and where it fails.


@pytest.mark.parametrize(
    "params",
    [PRESET, make_params("default"), make_params("mtm", alpha=0.03), make_params("easy", I_max=6, alpha=0.1)],
    ids=["cartea_jaimungal", "default", "mtm", "limit-binds"],
)
def test_as_is_the_dp_at_the_last_step(params):
    """The frozen-inventory value is exact with one step left, for any size law and under mtm."""
    last = params.replace(T=1)
    solution = solve_dp(last)
    bid, ask = AvellanedaStoikov().tables(last)
    np.testing.assert_allclose(bid, solution.bid, atol=1e-12)
    np.testing.assert_allclose(ask, solution.ask, atol=1e-12)
    as_bid, as_ask = AvellanedaStoikov().tables(params)
    np.testing.assert_allclose(as_bid[-1], solution.bid[0], atol=1e-12)
    np.testing.assert_allclose(as_ask[-1], solution.ask[0], atol=1e-12)


def test_as_formula_for_unit_sizes():
    gamma = 0.3
    t, inventory = np.arange(PRESET.T)[:, None], np.arange(-4, 5)[None, :]
    carry = PRESET.objective.lam * (PRESET.T - t) + PRESET.objective.alpha  # (γσ²/2)·(T − t) + α, γσ² = 2φ
    for policy, term in ((AvellanedaStoikov(), 1.0 / 2.0), (AvellanedaStoikov(gamma), math.log1p(gamma / 2.0) / gamma)):
        bid, ask = policy.offsets(t, inventory, PRESET)
        np.testing.assert_allclose(bid, term + carry * (2 * inventory + 1), atol=1e-12)
        np.testing.assert_allclose(ask, term + carry * (1 - 2 * inventory), atol=1e-12)


def test_as_over_skews_on_long_horizons():
    """λ·T = 1 on the default preset: AS skews 2 per unit at t = 0 and keeps a fifth of the DP (measured 20.0 %)."""
    params = make_params("default")
    optimum = solve_dp(params).expected_return
    value = exact_return(AvellanedaStoikov(), params)
    assert 0.1 * optimum < value < 0.3 * optimum


# ---------------------------------------------------------------------------------------------------------------
# Numerics.


@pytest.mark.parametrize(
    "overrides",
    [{}, {"I_max": 8, "pi": 0.02, "lam": 1e-4, "p_buy": 0.7}, {"I_max": 8, "pi": 0.9, "A": 0.9, "lam": 0.005}],
    ids=["preset", "small-norm", "large-norm"],
)
def test_metzler_expm_is_accurate_entry_by_entry(overrides):
    mpmath = pytest.importorskip("mpmath")
    generator = cartea_jaimungal_generator(continuous_time_mapping(make_params("cartea_jaimungal", **overrides)))
    with mpmath.workdps(120):
        exact = mpmath.expm(mpmath.matrix(generator.tolist()))
        log_exact = np.array([[float(mpmath.log(exact[i, j])) for j in range(exact.cols)] for i in range(exact.rows)])
    assert log_exact.min() < -40.0  # far entries are tiny: relative accuracy is the point
    np.testing.assert_allclose(np.log(metzler_expm(generator)), log_exact, rtol=0.0, atol=1e-12)


def test_scipy_expm_agrees_in_norm_and_nothing_overflows():
    mapping = continuous_time_mapping(PRESET)
    generator = cartea_jaimungal_generator(mapping)
    np.testing.assert_allclose(metzler_expm(generator), scipy.linalg.expm(generator), rtol=0.0, atol=1e-15)
    levels = np.arange(-5, 6)
    z = np.exp(-mapping.k * mapping.alpha * levels**2)
    direct = np.log(scipy.linalg.expm(generator * PRESET.T) @ z)  # fine at T = 500
    np.testing.assert_allclose(cartea_jaimungal_log_omega(mapping)[-1], direct, rtol=0.0, atol=1e-12)
    # At 200 000 steps exp(𝐀·T) overflows (it grows like e^{2Λτ/e} = e^{1472}); the log-space propagation does not.
    long = make_params("cartea_jaimungal", T=200_000)
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.all(np.isfinite(scipy.linalg.expm(generator * long.T) @ z))
    value = cartea_jaimungal_value(long)
    assert np.isfinite(value) and value > 0.0
    bid, ask = CarteaJaimungal().tables(long)
    assert np.all(np.isfinite(bid)) and np.all(np.isfinite(ask))


def test_large_penalties_stay_finite():
    """Unit sizes on the default preset: ω spans e^{−100} and more, the DP is far from the continuous limit."""
    params = make_params("default", sizes=(1,), lam=0.05)
    solution = solve_dp(params)
    bid, ask = CarteaJaimungal().tables(params)
    assert np.all(np.isfinite(bid)) and np.all(np.isfinite(ask))
    # The continuous-time MM may quote δ < 0 to shed inventory fast; the discrete one may not (δ ≥ δ_min): CJ's
    # value is then above the DP's, but its policy stays close to optimal (measured 99.90 %).
    assert cartea_jaimungal_value(params) > solution.expected_return
    assert evaluate_tables(params, bid, ask).mean > 0.998 * solution.expected_return


# ---------------------------------------------------------------------------------------------------------------
# Where the closed forms do not apply.


@pytest.mark.parametrize(
    ("params", "applicable", "message"),
    [
        (make_params("default"), {AvellanedaStoikov}, "unit trades"),
        (make_params("momentum"), {AvellanedaStoikov}, "unit trades"),
        (make_params("cartea_jaimungal", momentum=0.5), {AvellanedaStoikov}, "momentum"),
        (make_params("article"), set(), "no fill law"),
        (make_params("informed"), set(), "informed"),
        (make_params("sqrt_impact"), set(), "nonlinear impact"),
        (make_params("transient"), set(), "transient"),
        (make_params("cartea_jaimungal", reward="mtm", mean_reversion=0.1), set(), "mean reversion"),
        (make_params("cartea_jaimungal", reward="mtm", kappa=0.1), set(BASELINES), None),
        (make_params("cartea_jaimungal", informed=0.2, info_jump=1.0), set(BASELINES), None),
    ],
    ids=[
        "sizes",
        "momentum-sizes",
        "momentum",
        "article",
        "informed-mtm",
        "sqrt-impact",
        "transient",
        "mean-reversion",
        "mtm-linear",
        "informed-spread",
    ],
)
def test_applicability(params, applicable, message):
    assert {type(policy) for policy in applicable_baselines(params)} == applicable
    for cls in BASELINES:
        assert cls.applies(params) == (cls in applicable)
        if cls in applicable:
            bid, ask = cls().tables(params)
            assert np.all(np.isfinite(bid)) and np.all(np.isfinite(ask))
        else:
            with pytest.raises(ValueError, match=message):
                cls().offsets(np.zeros(1), np.zeros(1), params)
            with pytest.raises(ValueError, match=message):
                cls().tables(params)
    if CarteaJaimungal not in applicable:
        with pytest.raises(ValueError, match=message):
            cartea_jaimungal_value(params)


def test_as_applies_with_momentum():
    params = make_params("momentum")
    bid, ask = AvellanedaStoikov().tables(params)
    assert bid.shape == (params.T, 2 * params.I_max + 1, 3)
    assert evaluate_tables(params, bid, ask).mean < solve_dp(params).expected_return


def test_bad_arguments():
    with pytest.raises(ValueError, match="inventories"):
        CarteaJaimungal().offsets(np.zeros(1), np.array([6]), PRESET)
    with pytest.raises(ValueError, match="inventory"):
        cartea_jaimungal_value(PRESET, inventory=-6)
    with pytest.raises(ValueError, match="gamma"):
        AvellanedaStoikov(gamma=-1.0)
    with pytest.raises(ValueError, match="off-diagonal"):
        metzler_expm(np.array([[0.0, -1.0], [1.0, 0.0]]))
