"""MarketParams: defaults (MODEL.md §3), presets (§3, §5), validation, immutability and round trips."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from mm_env.model import ArticleFill, ExponentialFill, MidNoise, Objective, OrderFlow, PriceImpact
from mm_env.params import FLAT_NAMES, MarketParams
from mm_env.presets import ARTICLE_SCENARIOS, PRESETS, make_params


def test_defaults_match_model_section_3():
    p = make_params()
    assert p.T == 200
    assert p.P0 == 100.0
    assert p.I_max == 50
    assert p.pi == 1.0
    assert p.sizes == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert p.size_probs is None
    assert p.flow.probs == pytest.approx([1 / 9] * 9, abs=1e-15)
    assert p.A == 0.9
    assert p.k == 2.0
    assert p.lam == 0.005
    assert p.alpha == 0.0
    assert p.kappa == 0.05
    assert p.sigma == 0.0
    assert p.delta_min == 0.0
    assert p.delta_max == 5.0
    assert p.reward == "spread"
    assert p.mode == "standard"
    assert p.max_size == 9


def test_default_preset_is_the_defaults():
    assert make_params() == make_params()
    assert make_params("default") == make_params()
    assert PRESETS["default"] == make_params()


def test_easy_preset_only_lowers_lambda():
    assert PRESETS["easy"] == make_params(lam=0.002)
    assert make_params("easy").lam == 0.002


def test_mtm_preset_only_changes_reward():
    assert PRESETS["mtm"] == make_params(reward="mtm")


# MODEL.md §5: scenario -> (kappa, gamma, Delta, lambda); P0 = 100 and 200 steps throughout.
ARTICLE_TABLE = {
    "article_low_volatility": (0.01, 0.1, 0.5, 0.01),
    "article_high_volatility": (0.1, 0.1, 0.5, 0.01),
    "article_low_risk_weight": (0.1, 0.01, 0.5, 0.01),
    "article_low_penalty": (0.1, 0.01, 0.5, 0.002),
}


def test_article_scenarios_are_exactly_the_four_of_section_5():
    assert set(ARTICLE_SCENARIOS) == set(ARTICLE_TABLE)


@pytest.mark.parametrize("name", sorted(ARTICLE_TABLE))
def test_article_scenario_parameters(name):
    kappa, gamma, spread_base, lam = ARTICLE_TABLE[name]
    scenario = ARTICLE_SCENARIOS[name]
    p = scenario.params
    assert p.mode == "article"
    assert p.reward == "spread"
    assert p.T == 200
    assert p.P0 == 100.0
    assert p.kappa == kappa
    assert p.lam == lam
    assert scenario.gamma == gamma
    assert scenario.spread_base == spread_base
    # The article: every step has a trader (pi = 1), sizes uniform on 1..9, no noise, no terminal penalty.
    assert p.pi == 1.0
    assert p.sizes == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert p.size_probs is None
    assert p.sigma == 0.0
    assert p.alpha == 0.0
    # The article has no inventory limit: 200 steps of at most 9 units can never reach I_max ...
    assert p.I_max >= 200 * 9
    # ... and its widest quote, Delta + gamma * 1800, must fit below delta_max so that clipping never alters it.
    assert p.delta_min == 0.0
    assert p.delta_max >= spread_base + gamma * 1800
    # The scenario is also available as a preset.
    assert PRESETS[name] == p
    assert make_params(name) == p


def test_article_preset_is_the_first_scenario():
    assert PRESETS["article"] == ARTICLE_SCENARIOS["article_low_volatility"].params
    assert PRESETS["article"].kappa == 0.01


def test_make_params_overrides_and_params_instance():
    p = make_params("easy", T=100, kappa=0.1)
    assert (p.T, p.lam, p.kappa) == (100, 0.002, 0.1)
    base = make_params(T=7)
    assert make_params(base) == base
    assert make_params(base, lam=0.5) == make_params(T=7, lam=0.5)
    assert make_params("article", T=10).mode == "article"


# ---------------------------------------------------------------------------------------------------------------------
# Validation: every invalid value raises ValueError naming the field, the value and the allowed range.
# Each case: constructor kwargs, the field that must be named, the text of the value, a regex for the allowed range.
NAN = float("nan")
INF = float("inf")
INT_RANGE = r"(integer|int)"
NONNEG = r"0(\.0)?"

INVALID_CASES = [
    # T: integer >= 1
    ({"T": 0}, "T", "0", r"1"),
    ({"T": -5}, "T", "-5", r"1"),
    ({"T": 1.5}, "T", "1.5", INT_RANGE),
    ({"T": True}, "T", "True", INT_RANGE),
    ({"T": "200"}, "T", "200", INT_RANGE),
    # I_max: integer >= 1
    ({"I_max": 0}, "I_max", "0", r"1"),
    ({"I_max": -3}, "I_max", "-3", r"1"),
    ({"I_max": 2.5}, "I_max", "2.5", INT_RANGE),
    ({"I_max": False}, "I_max", "False", INT_RANGE),
    # pi in [0, 1]
    ({"pi": -0.1}, "pi", "-0.1", r"0(\.0)?\D+1(\.0)?"),
    ({"pi": 1.01}, "pi", "1.01", r"0(\.0)?\D+1(\.0)?"),
    ({"pi": NAN}, "pi", "nan", r"0(\.0)?\D+1(\.0)?"),
    # A in (0, 1]
    ({"A": 0.0}, "A", "0.0", r"0(\.0)?\D+1(\.0)?"),
    ({"A": -0.2}, "A", "-0.2", r"0(\.0)?\D+1(\.0)?"),
    ({"A": 1.5}, "A", "1.5", r"0(\.0)?\D+1(\.0)?"),
    # k > 0
    ({"k": 0.0}, "k", "0.0", NONNEG),
    ({"k": -1.0}, "k", "-1.0", NONNEG),
    ({"k": INF}, "k", "inf", NONNEG),
    # non-negative reals
    ({"lam": -0.001}, "lam", "-0.001", NONNEG),
    ({"alpha": -1.0}, "alpha", "-1.0", NONNEG),
    ({"kappa": -0.01}, "kappa", "-0.01", NONNEG),
    ({"sigma": -0.5}, "sigma", "-0.5", NONNEG),
    ({"delta_min": -0.1}, "delta_min", "-0.1", NONNEG),
    # NaN and infinities
    ({"P0": NAN}, "P0", "nan", r"finite"),
    ({"P0": INF}, "P0", "inf", r"finite"),
    ({"P0": -INF}, "P0", "-inf", r"finite"),
    ({"lam": NAN}, "lam", "nan", NONNEG),
    ({"kappa": INF}, "kappa", "inf", NONNEG),
    ({"sigma": NAN}, "sigma", "nan", NONNEG),
    ({"alpha": INF}, "alpha", "inf", NONNEG),
    ({"delta_max": INF}, "delta_max", "inf", r"finite"),
    ({"delta_max": NAN}, "delta_max", "nan", r"finite"),
    ({"lam": True}, "lam", "True", NONNEG),
    ({"P0": "100"}, "P0", "100", r"number"),
    # delta_min < delta_max (the message names the field that breaks the order and the other bound)
    ({"delta_min": 5.0}, "delta_max", "5.0", r"5(\.0)?"),
    ({"delta_min": 3.0, "delta_max": 2.0}, "delta_max", "2.0", r"3(\.0)?"),
    ({"delta_max": 0.0}, "delta_max", "0.0", r"0(\.0)?"),
    # sizes: non-empty, distinct positive integers
    ({"sizes": ()}, "sizes", "()", r"positive integer"),
    ({"sizes": []}, "sizes", "[]", r"positive integer"),
    ({"sizes": (0, 1)}, "sizes", "(0, 1)", r"positive integer"),
    ({"sizes": (-2, 3)}, "sizes", "(-2, 3)", r"positive integer"),
    ({"sizes": (1.5, 2)}, "sizes", "(1.5, 2)", r"positive integer"),
    ({"sizes": (True, 2)}, "sizes", "(True, 2)", r"positive integer"),
    ({"sizes": (1, 1, 2)}, "sizes", "(1, 1, 2)", r"distinct"),
    ({"sizes": "123"}, "sizes", "123", r"positive integer"),
    ({"sizes": 5}, "sizes", "5", r"positive integer"),
    # size_probs: one non-negative number per size, summing to 1
    ({"sizes": (1, 2, 3), "size_probs": (0.5, 0.5)}, "size_probs", "(0.5, 0.5)", r"3"),
    ({"sizes": (1, 2), "size_probs": (0.2, 0.3, 0.5)}, "size_probs", "(0.2, 0.3, 0.5)", r"2"),
    ({"sizes": (1, 2, 3), "size_probs": (1.2, -0.2, 0.0)}, "size_probs", "(1.2, -0.2, 0.0)", r"non-negative"),
    ({"sizes": (1, 2, 3), "size_probs": (0.3, 0.3, 0.3)}, "size_probs", "(0.3, 0.3, 0.3)", r"sum"),
    ({"sizes": (1, 2), "size_probs": (0.6, 0.6)}, "size_probs", "(0.6, 0.6)", r"sum"),
    ({"sizes": (1, 2), "size_probs": (NAN, 1.0)}, "size_probs", "(nan, 1.0)", r"sum|non-negative"),
    ({"sizes": (1, 2), "size_probs": ()}, "size_probs", "()", r"2"),
    # MODEL.md §7: order flow, impact and noise
    ({"p_buy": -0.1}, "p_buy", "-0.1", r"0(\.0)?\D+1(\.0)?"),
    ({"p_buy": 1.5}, "p_buy", "1.5", r"0(\.0)?\D+1(\.0)?"),
    ({"momentum": 1.2}, "momentum", "1.2", r"-1(\.0)?\D+1(\.0)?"),
    ({"momentum": 0.5, "p_buy": 0.9}, "momentum", "0.5", r"p_buy ± momentum/2"),
    ({"momentum": -0.4, "p_buy": 0.1}, "momentum", "-0.4", r"p_buy ± momentum/2"),
    ({"informed": 1.1}, "informed", "1.1", r"0(\.0)?\D+1(\.0)?"),
    ({"informed": NAN}, "informed", "nan", r"0(\.0)?\D+1(\.0)?"),
    ({"info_jump": -0.5}, "info_jump", "-0.5", NONNEG),
    ({"impact_exponent": 0.0}, "impact_exponent", "0.0", r"\(0(\.0)?\D+1(\.0)?\]"),
    ({"impact_exponent": 1.5}, "impact_exponent", "1.5", r"\(0(\.0)?\D+1(\.0)?\]"),
    ({"transient_kappa": -0.1}, "transient_kappa", "-0.1", NONNEG),
    ({"transient_decay": 1.0}, "transient_decay", "1.0", r"\[0(\.0)?\D+1(\.0)?\)"),
    ({"transient_decay": -0.2}, "transient_decay", "-0.2", r"\[0(\.0)?\D+1(\.0)?\)"),
    ({"jump_prob": 2.0}, "jump_prob", "2.0", r"0(\.0)?\D+1(\.0)?"),
    ({"jump_size": INF}, "jump_size", "inf", NONNEG),
    ({"mean_reversion": 1.0}, "mean_reversion", "1.0", r"\[0(\.0)?\D+1(\.0)?\)"),
    ({"A": 10**400}, "A", "1000", r"finite"),
    # reward and mode
    ({"reward": "pnl"}, "reward", "pnl", r"spread.*mtm|mtm.*spread"),
    ({"reward": None}, "reward", "None", r"spread.*mtm|mtm.*spread"),
    ({"mode": "paper"}, "mode", "paper", r"standard.*article|article.*standard"),
]


def _case_id(case):
    kwargs = case[0]
    return ",".join(f"{k}={v!r}" for k, v in kwargs.items())


@pytest.mark.parametrize(("kwargs", "field", "value_text", "allowed"), INVALID_CASES, ids=map(_case_id, INVALID_CASES))
def test_invalid_values_raise_value_error_naming_field_value_and_range(kwargs, field, value_text, allowed):
    with pytest.raises(ValueError, match=rf"\b{re.escape(field)}\b") as excinfo:
        make_params(**kwargs)
    message = str(excinfo.value)
    assert value_text in message, message
    assert re.search(allowed, message), message


@pytest.mark.parametrize(("kwargs", "field", "value_text", "allowed"), INVALID_CASES, ids=map(_case_id, INVALID_CASES))
def test_replace_and_make_params_validate_too(kwargs, field, value_text, allowed):
    with pytest.raises(ValueError, match=rf"\b{re.escape(field)}\b"):
        make_params().replace(**kwargs)
    with pytest.raises(ValueError, match=rf"\b{re.escape(field)}\b"):
        make_params("default", **kwargs)


def test_unknown_preset_name():
    with pytest.raises(ValueError, match=r"preset.*'nonexistent'") as excinfo:
        make_params("nonexistent")
    # The message lists what is allowed.
    assert "default" in str(excinfo.value) and "easy" in str(excinfo.value)


def test_unknown_preset_type():
    with pytest.raises(ValueError, match=r"preset"):
        make_params(42)


def test_unknown_override_field():
    with pytest.raises(ValueError, match=r"'gamma'") as excinfo:
        make_params("default", gamma=0.1)
    assert "lam" in str(excinfo.value)  # the allowed names are listed
    with pytest.raises(ValueError, match=r"'foo'"):
        make_params().replace(foo=1)
    # Derived attributes are not parameters either.
    with pytest.raises(ValueError, match=r"'probs'"):
        make_params("default", probs=(1.0,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"T": 1},
        {"I_max": 1},
        {"pi": 0.0},
        {"pi": 1.0},
        {"A": 1.0},
        {"A": 1e-9},
        {"lam": 0.0, "kappa": 0.0, "sigma": 0.0, "alpha": 0.0},
        {"delta_min": 0.0, "delta_max": 1e-6},
        {"P0": -3.0},
        {"sizes": (7,)},
        {"sizes": (3, 1, 2), "size_probs": (0.0, 0.25, 0.75)},
        {"T": np.int64(5), "I_max": np.int32(4), "lam": np.float64(0.01), "A": np.float32(0.5)},
        {"sizes": [1, 2], "size_probs": [0.5, 0.5]},
    ],
)
def test_boundary_values_are_accepted(kwargs):
    p = make_params(**kwargs)
    for name, value in kwargs.items():
        got = getattr(p, name)
        if isinstance(value, list):
            assert list(got) == value
        else:
            assert got == value


def test_values_are_normalised_to_plain_python_types():
    p = make_params(T=np.int64(5), I_max=np.int32(4), lam=np.float32(0.25), sizes=[2, 1], size_probs=[0.5, 0.5])
    assert type(p.T) is int and type(p.I_max) is int
    assert type(p.lam) is float and p.lam == 0.25
    assert p.sizes == (2, 1) and isinstance(p.sizes, tuple)
    assert p.size_probs == (0.5, 0.5) and isinstance(p.size_probs, tuple)
    hash(p)  # a frozen dataclass of tuples is hashable


def test_frozen():
    p = make_params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.T = 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.lam = 0.1
    assert p.T == 200 and p.lam == 0.005


def test_replace_returns_a_changed_copy():
    p = make_params()
    q = p.replace(T=10, sizes=(1, 2), size_probs=(0.25, 0.75))
    assert (q.T, q.sizes, q.size_probs) == (10, (1, 2), (0.25, 0.75))
    assert q.flow.probs == (0.25, 0.75)
    assert p.T == 200 and p.sizes == tuple(range(1, 10))  # the original is unchanged
    assert q.replace(T=200, sizes=tuple(range(1, 10)), size_probs=None) == p


@pytest.mark.parametrize(
    "params",
    [
        make_params(),
        make_params(T=17, P0=50.5, I_max=7, pi=0.3, sizes=(2, 5, 11), size_probs=(0.2, 0.5, 0.3), A=0.7, k=1.3),
        make_params(lam=0.01, alpha=0.2, kappa=0.0, sigma=0.4, delta_min=0.1, delta_max=3.0, reward="mtm"),
        ARTICLE_SCENARIOS["article_low_penalty"].params,
    ],
)
def test_as_dict_round_trip(params):
    d = params.as_dict()
    expected_keys = {
        "p_buy",
        "momentum",
        "informed",
        "info_jump",
        "impact_exponent",
        "transient_kappa",
        "transient_decay",
        "jump_prob",
        "jump_size",
        "mean_reversion",
        "T",
        "P0",
        "I_max",
        "pi",
        "sizes",
        "size_probs",
        "A",
        "k",
        "lam",
        "alpha",
        "kappa",
        "sigma",
        "delta_min",
        "delta_max",
        "reward",
        "mode",
    }
    # The article's fill law has no A or k.
    assert set(d) == (expected_keys - {"A", "k"} if params.mode == "article" else expected_keys)
    # JSON-serialisable, and back again through JSON.
    again = make_params(**json.loads(json.dumps(d)))
    assert again == params
    assert make_params(**d) == params
    assert make_params("default", **d) == params
    assert again.flow.probs == params.flow.probs


def test_custom_size_probs_are_kept():
    p = make_params(sizes=(1, 4), size_probs=(0.25, 0.75))
    assert p.flow.probs == (0.25, 0.75)
    assert math.fsum(p.flow.probs) == 1.0


def test_every_flat_name_belongs_to_exactly_one_component():
    p = make_params()
    components = {"flow": p.flow, "fill": p.fill, "impact": p.impact, "noise": p.noise, "objective": p.objective}
    for name in FLAT_NAMES:
        if name in ("T", "P0", "I_max", "delta_min", "delta_max", "mode"):
            continue
        owners = [c for c, value in components.items() if name in {f.name for f in dataclasses.fields(value)}]
        assert len(owners) == 1, (name, owners)
        assert getattr(p, name) == getattr(components[owners[0]], name)


def test_flat_overrides_reach_their_components():
    p = make_params(informed=0.2, info_jump=0.5, impact_exponent=0.5, jump_prob=0.1, jump_size=0.3, lam=0.01)
    assert isinstance(p.flow, OrderFlow) and (p.flow.informed, p.flow.info_jump) == (0.2, 0.5)
    assert isinstance(p.impact, PriceImpact) and p.impact.impact_exponent == 0.5
    assert isinstance(p.noise, MidNoise) and (p.noise.jump_prob, p.noise.jump_size) == (0.1, 0.3)
    assert isinstance(p.objective, Objective) and p.objective.lam == 0.01
    assert isinstance(p.fill, ExponentialFill)
    # Built from components directly, the same model.
    direct = MarketParams(
        flow=OrderFlow(informed=0.2, info_jump=0.5),
        impact=PriceImpact(impact_exponent=0.5),
        noise=MidNoise(jump_prob=0.1, jump_size=0.3),
        objective=Objective(lam=0.01),
    )
    assert direct == p


def test_mode_selects_the_fill_law():
    article = make_params(mode="article")
    assert isinstance(article.fill, ArticleFill) and article.mode == "article"
    assert "A" not in article.as_dict() and "k" not in article.as_dict()
    assert make_params("article", mode="standard").fill == ExponentialFill()  # back to the defaults
    with pytest.raises(ValueError, match=r"'A' does not apply to mode='article'"):
        make_params("article", A=0.5)


def test_components_reject_wrong_types():
    with pytest.raises(ValueError, match=r"flow=.*OrderFlow"):
        MarketParams(flow=PriceImpact())
    with pytest.raises(ValueError, match=r"fill=.*ExponentialFill or ArticleFill"):
        MarketParams(fill=Objective())


def test_every_component_parameter_reads_flat_and_typed():
    # The typed flat reads are written out (so that a type checker knows them): none missing, none extra, each the
    # field of its component.
    from mm_env.params import FLAT_OWNERS, FlatRead, MarketParams

    declared = {name for name, value in vars(MarketParams).items() if isinstance(value, FlatRead)}
    assert declared == set(FLAT_OWNERS)
    params = make_params("informed", sigma=0.2, alpha=0.01)
    for name, component in FLAT_OWNERS.items():
        if hasattr(getattr(params, component), name):
            assert getattr(params, name) == getattr(getattr(params, component), name), name
