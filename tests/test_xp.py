"""The array namespace: its named choices agree with selects, at the edges too, and a value finds its namespace."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mm_env.dynamics import initial_state, sample_draws, transition
from mm_env.presets import PRESETS, make_competition_params
from mm_env.xp import NUMPY, SCALAR, ArrayNamespace, namespace_of, register_namespace

EDGES = [-math.inf, -1.0, -0.0, 0.0, 0.3, 1.0, math.inf, math.nan]


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_sign_of_is_plus_one_where_true_and_minus_one_elsewhere_even_at_infinities_and_nan(threshold):
    u = np.array(EDGES)
    expected = np.where(u < threshold, 1.0, -1.0)  # a NaN compares false: -1
    assert NUMPY.sign_of(u < threshold).tolist() == expected.tolist()
    assert [SCALAR.sign_of(x < threshold) for x in EDGES] == expected.astype(int).tolist()
    assert all(type(SCALAR.sign_of(x < threshold)) is int for x in EDGES)  # one env's sides stay integers


@pytest.mark.parametrize("threshold", [-math.inf, 0.0, 0.5, math.inf])
def test_pick_equals_where_for_finite_values_whatever_the_condition(threshold):
    condition = np.array(EDGES) < threshold
    a, b = np.linspace(-2.0, 3.0, len(EDGES)), np.linspace(5.0, 1.0, len(EDGES))
    np.testing.assert_array_equal(NUMPY.pick(condition, a, b), np.where(condition, a, b))
    assert [SCALAR.pick(c, x, y) for c, x, y in zip(condition.tolist(), a, b, strict=True)] == np.where(
        condition, a, b
    ).tolist()


def test_pick_needs_finite_values_and_gives_plus_zero_for_minus_zero():
    # What the module's docstring says: arithmetic selects are exact for finite values, and -0.0 comes back +0.0.
    picked = NUMPY.pick(np.array([True, False]), np.array([-0.0, 1.0]), np.array([2.0, -0.0]))
    assert picked.tolist() == [0.0, 0.0] and not np.signbit(picked).any()
    with np.errstate(invalid="ignore"):  # inf·0: not finite, as the docstring says
        assert math.isnan(NUMPY.pick(np.array([True]), np.array([1.0]), np.array([math.inf]))[0])


def test_signed_event_at_the_edges_of_its_uniform():
    u = np.array([0.0, 0.1, 0.2, 0.39, 0.4, 0.9, math.nan, -math.inf])
    expected = [1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0]
    assert NUMPY.signed_event(u, 0.4).tolist() == expected
    assert [SCALAR.signed_event(x, 0.4) for x in u.tolist()] == [int(x) for x in expected]


def test_a_value_finds_its_namespace():
    assert namespace_of(1) is SCALAR and namespace_of(2.5) is SCALAR and namespace_of(True) is SCALAR
    assert namespace_of(np.zeros(3)) is NUMPY and namespace_of(np.float32(1.0)) is NUMPY
    assert namespace_of(np.float64(1.0)) is SCALAR  # a subclass of float
    with pytest.raises(ValueError, match="neither a Python number nor an array"):
        namespace_of("1.0")


def test_another_array_library_plugs_in_by_its_array_api_name():
    class Namespace:
        __name__ = "fake_array_library"

    class FakeArray:
        def __array_namespace__(self, api_version=None):
            return Namespace()

    with pytest.raises(ValueError, match="no array namespace is registered for fake_array_library"):
        namespace_of(FakeArray())
    fake = dataclasses.replace(NUMPY, name="fake")
    register_namespace("fake_array_library", fake)
    assert namespace_of(FakeArray()) is fake


def test_arrays_only_functions_say_so_on_python_numbers():
    with pytest.raises(TypeError, match="no Python-number form"):
        SCALAR.rint(1.5)


def counting(namespace: ArrayNamespace) -> tuple[ArrayNamespace, dict[str, int]]:
    """The namespace with every function counted: which ones a step calls."""
    calls: dict[str, int] = {}

    def wrap(name, function):
        def counted(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return function(*args, **kwargs)

        return counted

    functions = {
        field.name: wrap(field.name, getattr(namespace, field.name))
        for field in dataclasses.fields(namespace)
        if callable(getattr(namespace, field.name))
    }
    return dataclasses.replace(namespace, **functions), calls


@pytest.mark.parametrize("preset", [name for name in PRESETS if not name.startswith("article_")])
def test_the_step_takes_its_array_functions_from_the_namespace_it_is_given(preset):
    # Another namespace gives the same step: the formulas reach arrays only through it (a JAX one plugs in here).
    params = PRESETS[preset]
    counted, calls = counting(NUMPY)
    state = initial_state(params, 64)
    draws = sample_draws(np.random.default_rng(0), params, 64)
    bid, ask = np.full(64, 0.7), np.full(64, 0.6)
    expected_state, expected_outcome = transition(state, bid, ask, draws, params, NUMPY)
    got_state, got_outcome = transition(state, bid, ask, draws, params, counted)
    for expected, got in zip((*expected_state, *expected_outcome), (*got_state, *got_outcome), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert calls["minimum"] == 1 and calls["sign_of"] == 1 and calls["pick"] >= 1  # the limit, the side, the quote


def test_the_game_step_takes_its_array_functions_from_the_namespace_too():
    params = make_competition_params(T=20, I_max=10)
    counted, calls = counting(NUMPY)
    state = initial_state(params, 16)
    draws = sample_draws(np.random.default_rng(1), params, 16)
    quotes = np.random.default_rng(2).uniform(0.3, 1.0, (16, 2)).round(2)
    expected = transition(state, quotes, quotes[:, ::-1].copy(), draws, params, NUMPY)
    got = transition(state, quotes, quotes[:, ::-1].copy(), draws, params, counted)
    for want, have in zip((*expected[0], *expected[1]), (*got[0], *got[1]), strict=True):
        np.testing.assert_array_equal(have, want)
    assert {"rint", "cumsum", "argmax"} <= set(calls)  # price priority, through the namespace
