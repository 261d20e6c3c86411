"""The multi-asset model's parameters (MODEL.md §9.1, §9.3, §9.4, §9.7): presets, resolution, validation, records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mm_env.multi_asset.params import (
    MULTI_ASSET_NAMES,
    MULTI_ASSET_PRESETS,
    MultiAssetParams,
    make_multi_asset_params,
    noise_factor,
)
from mm_env.params import FLAT_NAMES
from mm_env.presets import make_params

# ---------------------------------------------------------------------------------------------------------------------
# Presets and resolution


def test_two_assets_preset_is_section_9_7():
    p = make_multi_asset_params()
    assert p == MULTI_ASSET_PRESETS["two_assets"]
    assert (p.d, p.T, p.lam, p.alpha, p.reward, p.delta_min, p.delta_max) == (2, 200, 0.005, 0.0, "spread", 0.0, 5.0)
    assert p.pi == (0.5, 0.5)
    assert p.I_max == (20, 20)
    assert p.sizes == ((1, 2, 3, 4, 5),) * 2
    assert p.size_probs == ((0.2,) * 5,) * 2
    assert (p.A, p.k, p.kappa, p.beta, p.sigma, p.P0) == (
        (0.9,) * 2,
        (2.0,) * 2,
        (0.05,) * 2,
        (1.0,) * 2,
        (0.0,) * 2,
        (100.0,) * 2,
    )
    assert p.risk_matrix == ((1.0, 0.8), (0.8, 1.0))
    assert p.correlation == ((1.0, 0.0), (0.0, 1.0))
    assert not p.mean_variance


def test_mean_variance_preset_sets_c_to_sigma_over_mean_variance():
    p = make_multi_asset_params("mean_variance")
    assert p.reward == "mtm" and p.mean_variance
    assert p.sigma == (0.1, 0.2)
    np.testing.assert_allclose(p.R, [[1.0, 0.8], [0.8, 1.0]])
    # Σ = diag(σ) R diag(σ) = [[0.01, 0.016], [0.016, 0.04]], σ̄² = 0.025: C = [[0.4, 0.64], [0.64, 1.6]] (§9.7).
    np.testing.assert_allclose(p.Sigma, [[0.01, 0.016], [0.016, 0.04]], rtol=1e-14)
    np.testing.assert_allclose(p.C, [[0.4, 0.64], [0.64, 1.6]], rtol=1e-14)


def test_mean_variance_with_equal_volatilities_is_r_and_with_one_asset_is_one():
    p = make_multi_asset_params("two_assets", sigma=0.3, correlation=-0.4, mean_variance=True)
    np.testing.assert_allclose(p.C, [[1.0, -0.4], [-0.4, 1.0]], rtol=1e-14)
    one = make_multi_asset_params("two_assets", d=1, pi=1.0, sigma=0.7, mean_variance=True)
    assert one.risk_matrix == ((1.0,),)


def test_defaults_are_the_one_asset_defaults_with_one_asset():
    p = MultiAssetParams()
    assert p.d == 1 and p.C.tolist() == [[1.0]]
    assert p.asset(0) == make_params()


def test_a_number_applies_to_every_asset_and_a_sequence_per_asset():
    p = make_multi_asset_params(d=3, pi=(0.2, 0.3, 0.4), I_max=7, kappa=[0.0, 0.1, 0.2], risk_matrix=0.5)
    assert p.pi == (0.2, 0.3, 0.4)
    assert p.I_max == (7, 7, 7) and all(isinstance(x, int) for x in p.I_max)
    assert p.kappa == (0.0, 0.1, 0.2)
    assert p.risk_matrix == ((1.0, 0.5, 0.5), (0.5, 1.0, 0.5), (0.5, 0.5, 1.0))
    assert p.sizes == ((1, 2, 3, 4, 5),) * 3  # changing d keeps what is the same for every asset


def test_size_laws_per_asset_and_resolved_probabilities():
    p = make_multi_asset_params(sizes=[[1, 2], [3, 5, 8]], size_probs=[None, [0.5, 0.25, 0.25]])
    assert p.sizes == ((1, 2), (3, 5, 8))
    assert p.size_probs == ((0.5, 0.5), (0.5, 0.25, 0.25))
    one_law = make_multi_asset_params(sizes=(2, 4), size_probs=(0.75, 0.25))
    assert one_law.sizes == ((2, 4), (2, 4)) and one_law.size_probs == ((0.75, 0.25), (0.75, 0.25))


def test_matrices_are_read_only_float64_arrays():
    p = make_multi_asset_params("mean_variance")
    for matrix in (p.C, p.R, p.Sigma):
        assert matrix.dtype == np.float64 and matrix.shape == (2, 2)
        with pytest.raises(ValueError):
            matrix[0, 0] = 3.0


def test_asset_is_the_one_asset_model_of_that_asset_alone():
    p = make_multi_asset_params(
        "mean_variance", sizes=[[1, 2], [3, 4, 5]], size_probs=[[0.3, 0.7], None], beta=(1.0, 0.5), alpha=0.01
    )
    second = p.asset(1)
    expected = make_params(
        T=200,
        P0=100.0,
        I_max=20,
        pi=0.5,
        sizes=(3, 4, 5),
        A=0.9,
        k=2.0,
        kappa=0.05,
        impact_exponent=0.5,
        sigma=0.2,
        reward="mtm",
        lam=0.005 * 1.6,
        alpha=0.01 * 1.6,
    )
    assert second == expected
    assert second.lam == pytest.approx(0.008, rel=1e-14)  # λ·C_22 (§9.8: 0.002 and 0.008)
    assert p.asset(0).lam == pytest.approx(0.002, rel=1e-14)
    assert p.asset(0).size_probs == (0.3, 0.7)
    for bad in (2, -1, 1.0, True):
        with pytest.raises(ValueError, match="i="):
            p.asset(bad)


def test_as_dict_is_json_and_rebuilds_equal_params():
    for p in (
        make_multi_asset_params(),
        make_multi_asset_params("mean_variance"),
        make_multi_asset_params(d=3, pi=1 / 3, sizes=[[1], [2, 3], [4, 5, 6]], risk_matrix=np.eye(3) * 2, sigma=0.1),
    ):
        record = json.loads(json.dumps(p.as_dict()))
        assert set(record) == set(MULTI_ASSET_NAMES)
        assert make_multi_asset_params(**record) == p
        assert hash(make_multi_asset_params(**record)) == hash(p)
    assert make_multi_asset_params("mean_variance").as_dict()["risk_matrix"] is None


def test_replace():
    p = make_multi_asset_params()
    assert p.replace(lam=0.01).lam == 0.01 and p.lam == 0.005
    assert p.replace(sizes=(1, 2)).size_probs == ((0.5, 0.5),) * 2  # new sizes: uniform
    mv = p.replace(mean_variance=True, sigma=(0.1, 0.2), correlation=0.8)  # C follows Σ
    assert mv == make_multi_asset_params("mean_variance", reward="spread")
    assert make_multi_asset_params("mean_variance").replace(mean_variance=False).C.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="sigma="):
        make_multi_asset_params("mean_variance").replace(d=3, pi=0.2)  # σ differs per asset: give it anew


def test_noise_factor_is_cholesky_with_zero_columns_at_zero_pivots():
    r = np.array([[1.0, 0.8], [0.8, 1.0]])
    np.testing.assert_allclose(noise_factor(r), [[1.0, 0.0], [0.8, 0.6]], atol=1e-15)
    singular = np.ones((3, 3))
    factor = noise_factor(singular)
    np.testing.assert_array_equal(factor, [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    mixed = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    factor = noise_factor(mixed)
    np.testing.assert_allclose(factor @ factor.T, mixed, atol=1e-15)
    assert np.all(factor[:, 1] == 0.0)
    p = make_multi_asset_params(correlation=1.0)
    assert p.noise_factor == ((1.0, 0.0), (1.0, 0.0))


# ---------------------------------------------------------------------------------------------------------------------
# Validation: every rule of §9.1, each error naming the parameter


INVALID = [
    ({"d": 0}, "d="),
    ({"d": 1.5}, "d="),
    ({"d": True}, "d="),
    ({"d": 65, "pi": 0.01}, "d="),
    ({"T": 0}, "T="),
    ({"lam": -0.1}, "lam="),
    ({"alpha": math.nan}, "alpha="),
    ({"reward": "pnl"}, "reward="),
    ({"delta_min": -1.0}, "delta_min="),
    ({"delta_max": 0.0}, "delta_max="),
    ({"mean_variance": "yes"}, "mean_variance="),
    # per asset: every one-asset rule of §2–§3, asset by asset
    ({"pi": -0.1}, "pi="),
    ({"pi": (0.5, 1.5)}, r"pi=1\.5 .*asset 1"),
    ({"pi": 0.6}, "pi=.*at most 1 in sum"),
    ({"pi": (0.7, 0.3 + 1e-9)}, "pi=.*at most 1 in sum"),
    ({"I_max": 0}, "I_max="),
    ({"I_max": (20, 2.5)}, r"I_max=2\.5 .*asset 1"),
    ({"sizes": []}, "sizes="),
    ({"sizes": (1, 1)}, "sizes="),
    ({"sizes": [[1, 2], [0]]}, "sizes=.*asset 1"),
    ({"sizes": "12"}, "sizes="),
    ({"size_probs": (0.5, 0.6, 0.0, 0.0, 0.0)}, "size_probs="),
    ({"size_probs": [None, [1.0]]}, "size_probs=.*asset 1"),
    ({"A": 0.0}, "A="),
    ({"A": (0.9, 1.1)}, "A=.*asset 1"),
    ({"k": 0.0}, "k="),
    ({"kappa": -0.01}, "kappa="),
    ({"beta": 0.0}, "beta="),
    ({"beta": (1.0, 1.5)}, "beta=.*asset 1"),
    ({"sigma": -0.1}, "sigma="),
    ({"sigma": "0.1"}, "sigma="),
    ({"P0": math.inf}, "P0="),
    # a wrong length
    ({"pi": (0.2, 0.3, 0.4)}, "pi=.*d=2"),
    ({"sigma": [0.1]}, "sigma=.*d=2"),
    ({"sizes": [[1], [2], [3]]}, "sizes=.*d=2"),
    ({"risk_matrix": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}, "risk_matrix=.*2×2"),
    ({"correlation": [[1.0], [0.0]]}, "correlation=.*2×2"),
    # C symmetric PSD
    ({"risk_matrix": [[1.0, 0.5], [0.4, 1.0]]}, "risk_matrix=.*symmetric"),
    ({"risk_matrix": [[1.0, 2.0], [2.0, 1.0]]}, "risk_matrix=.*positive semidefinite"),
    ({"risk_matrix": 1.5}, r"risk_matrix=1\.5 .*positive semidefinite.*\[-1, 1\]"),
    ({"risk_matrix": [[-1.0, 0.0], [0.0, 0.0]]}, "risk_matrix=.*positive semidefinite"),
    ({"risk_matrix": [[1.0, math.nan], [math.nan, 1.0]]}, "risk_matrix=.*finite"),
    ({"risk_matrix": "identity"}, "risk_matrix="),
    # R symmetric PSD with a unit diagonal
    ({"correlation": -1.5}, "correlation=.*positive semidefinite"),
    ({"correlation": [[2.0, 0.0], [0.0, 2.0]]}, "correlation=.*1 on the diagonal"),
    ({"correlation": [[1.0, 0.3], [0.2, 1.0]]}, "correlation=.*symmetric"),
    # mean_variance needs noise and excludes an explicit C
    ({"mean_variance": True}, "mean_variance=True .*sigma"),
    ({"mean_variance": True, "sigma": 0.1, "risk_matrix": 0.5}, "risk_matrix=.*mean_variance"),
]


@pytest.mark.parametrize(("overrides", "message"), INVALID, ids=[str(case[0]) for case in INVALID])
def test_each_invalid_value_is_refused_naming_the_parameter(overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        make_multi_asset_params("two_assets", **overrides)
    assert "\n" not in str(error.value)


def test_psd_number_range_depends_on_d():
    # c is PSD iff −1/(d−1) ≤ c ≤ 1: −0.5 is the bound at d = 3, −0.9 is fine at d = 2.
    assert make_multi_asset_params(risk_matrix=-0.9).C[0, 1] == -0.9
    make_multi_asset_params(d=3, pi=0.3, risk_matrix=-0.5)
    with pytest.raises(ValueError, match=r"risk_matrix=-0\.6 .*\[-0\.5, 1\]"):
        make_multi_asset_params(d=3, pi=0.3, risk_matrix=-0.6)


def test_arrival_probabilities_may_sum_to_one_up_to_rounding():
    p = make_multi_asset_params(d=3, pi=(0.1, 0.2, 0.7))  # 0.1 + 0.2 + 0.7 = 1.0000000000000002 in floats
    assert p.arrival_bounds[-1] == pytest.approx(1.0, abs=1e-15)
    assert p.arrival_bounds == (0.0, 0.1, 0.1 + 0.2, 0.1 + 0.2 + 0.7)


OUT_OF_SCOPE = [name for name in FLAT_NAMES if name not in MULTI_ASSET_NAMES]


@pytest.mark.parametrize("name", OUT_OF_SCOPE)
def test_one_asset_keywords_out_of_scope_are_refused_saying_why(name):
    with pytest.raises(ValueError, match=f"'{name}' is not a multi-asset parameter") as error:
        make_multi_asset_params(**{name: 0.1})
    text = str(error.value)
    assert "\n" not in text
    assert "§9.4" in text or "beta" in text  # out of scope, or renamed (impact_exponent is beta)


def test_out_of_scope_list_covers_the_extensions():
    for name in ("p_buy", "momentum", "informed", "info_jump", "transient_kappa", "transient_decay", "jump_prob"):
        assert name in OUT_OF_SCOPE
    for name in ("jump_size", "mean_reversion", "mode", "impact_exponent"):
        assert name in OUT_OF_SCOPE


def test_unknown_keywords_and_presets_are_refused():
    with pytest.raises(ValueError, match="'gamma' is not a multi-asset parameter; allowed"):
        make_multi_asset_params(gamma=0.1)
    with pytest.raises(ValueError, match="preset='default' is not a known multi-asset preset"):
        make_multi_asset_params("default")
    with pytest.raises(ValueError, match="'momentum' is not a multi-asset parameter"):
        make_multi_asset_params().replace(momentum=0.5)
