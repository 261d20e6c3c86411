"""The exact solvers on JAX (``agents.exact.jax_dp``, ``agents.exact.game.jax_solve``) against the NumPy ones.

* the batched one-MM DP against :func:`agents.exact.dp.solve_dp` at several presets in one batch, with momentum, and
  at random cells of a ``λ × κ`` grid, and against MODEL.md's figures (§4, §6);
* batched exact evaluation against :func:`agents.exact.dp.evaluate_tables` for the DP's own policy, for the article's
  rule (MODEL.md §6's 90.86) and for a linear skew, and in article mode;
* the two-MM equilibrium on JAX against :func:`agents.exact.game.solve_equilibrium`: the same tables, values, counts of
  stage games without a pure equilibrium and certificates, on small games (the defaults, with MODEL.md §8's figures,
  are slow);
* what the batched tools refuse, each in one line.

The JAX functions compute in float64 under ``jax.enable_x64`` themselves; the fixture below also turns it on around
each test, so that the arrays the tests build are float64 too, and checks that the process's setting is restored.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from agents.exact.dp import evaluate_tables, inventory_grid, solve_dp  # noqa: E402
from agents.exact.game import jax_solve, solve_equilibrium  # noqa: E402
from agents.exact.jax_dp import (  # noqa: E402
    batch_memory_reason,
    evaluate_tables_batch,
    solve_dp_batch,
    solve_dp_grid,
)
from mm_env.params import CompetitionParams  # noqa: E402
from mm_env.presets import PRESETS, make_competition_params, make_params  # noqa: E402

# Presets on the default grid (T = 200, I_max = 50, sizes 1..9, no momentum): one batch, one compilation.
SAME_GRID = ("default", "easy", "mtm", "informed", "sqrt_impact")
TOLERANCE = 1e-10


@pytest.fixture(autouse=True)
def x64():
    """float64 JAX arrays inside each test; the process's own setting before and after."""
    before = jax.config.jax_enable_x64
    with jax.enable_x64(True):
        yield
    assert jax.config.jax_enable_x64 == before


def article_rule(params, spread=0.5, gamma=0.1):
    """MODEL.md §1: δ_b = Δ + max(γ·I, 0), δ_a = Δ + max(−γ·I, 0), the same at every t."""
    levels = inventory_grid(params)
    bid = spread + np.maximum(gamma * levels, 0.0)
    ask = spread + np.maximum(-gamma * levels, 0.0)
    return np.broadcast_to(bid, (params.T, len(levels))), np.broadcast_to(ask, (params.T, len(levels)))


def linear_skew(params, base=0.7, slope=0.06):
    """MODEL.md §6: δ_b = 0.70 + 0.06·I, δ_a = 0.70 − 0.06·I (clipped at 0 by the evaluation)."""
    levels = inventory_grid(params)
    return np.broadcast_to(base + slope * levels, (params.T, len(levels))), np.broadcast_to(
        base - slope * levels, (params.T, len(levels))
    )


def assert_same_solution(batch, index, expected):
    cell = batch.cell(index)
    assert cell.params == expected.params
    np.testing.assert_allclose(cell.value, expected.value, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(cell.bid, expected.bid, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(cell.ask, expected.ask, rtol=0, atol=TOLERANCE)


# --------------------------------------------------------------------------------------------------------------------
# the one-MM DP


@pytest.fixture(scope="module")
def same_grid_batch():
    with jax.enable_x64(True):
        return solve_dp_batch([PRESETS[name] for name in SAME_GRID])


def test_batched_dp_equals_numpy_at_presets(same_grid_batch):
    assert same_grid_batch.shape == (len(SAME_GRID),)
    for index, name in enumerate(SAME_GRID):
        assert_same_solution(same_grid_batch, index, solve_dp(PRESETS[name]))
    # MODEL.md §6 and §4: the default optimum 111.14 quoting about 0.704 at I = 0, t = 0; mtm 74.24.
    returns = dict(zip(SAME_GRID, same_grid_batch.expected_return, strict=True))
    assert returns["default"] == pytest.approx(111.14, abs=0.005)
    assert returns["mtm"] == pytest.approx(74.24, abs=0.005)
    assert same_grid_batch.bid[0, 0, 50] == pytest.approx(0.704, abs=0.0005)


def test_batched_dp_with_momentum_equals_numpy():
    params = PRESETS["momentum"]
    batch = solve_dp_batch([params, params.replace(momentum=-0.4, p_buy=0.4)])
    assert batch.value.shape == (2, params.T + 1, 2 * params.I_max + 1, 3)
    for index, cell in enumerate(batch.params):
        expected = solve_dp(cell)
        assert_same_solution(batch, index, expected)
        assert batch.expected_return[index] == pytest.approx(expected.expected_return, abs=TOLERANCE)


def test_grid_cells_equal_numpy_at_random_cells():
    lams, kappas = np.linspace(0.001, 0.02, 8), np.linspace(0.0, 0.2, 5)
    base = make_params("mtm", T=60, I_max=20)  # under mtm κ changes the optimum (MODEL.md §4)
    grid = solve_dp_grid(base, lam=lams, kappa=kappas)
    assert grid.shape == (8, 5) and grid.value.shape == (8, 5, 61, 41)
    rng = np.random.default_rng(3)
    for i, j in zip(rng.integers(0, 8, 4), rng.integers(0, 5, 4), strict=True):
        expected = solve_dp(base.replace(lam=float(lams[i]), kappa=float(kappas[j])))
        assert_same_solution(grid, (int(i), int(j)), expected)
        assert grid.expected_return[i, j] == pytest.approx(expected.expected_return, abs=TOLERANCE)
    # A larger penalty can only lower the optimum (each policy's return falls with λ).
    assert np.all(np.diff(grid.expected_return, axis=0) < 0.0)


# --------------------------------------------------------------------------------------------------------------------
# exact evaluation


def test_evaluation_of_the_dp_policy_and_heuristics_equals_numpy(same_grid_batch):
    models = [PRESETS[name] for name in SAME_GRID]
    own = evaluate_tables_batch(models, same_grid_batch.bid, same_grid_batch.ask)
    rule = evaluate_tables_batch(models, *article_rule(models[0]))  # one table for every model
    skew = evaluate_tables_batch(models, *linear_skew(models[0]))
    for index, params in enumerate(models):
        for result, tables in (
            (own, (same_grid_batch.bid[index], same_grid_batch.ask[index])),
            (rule, article_rule(params)),
            (skew, linear_skew(params)),
        ):
            expected = evaluate_tables(params, *tables)
            assert result.mean[index] == pytest.approx(expected.mean, abs=TOLERANCE)
            assert result.std[index] == pytest.approx(expected.std, abs=TOLERANCE)
            np.testing.assert_allclose(result.value[index], expected.value, rtol=0, atol=TOLERANCE)
    # The DP's own policy is worth its value; MODEL.md §6: the article rule 90.86 (sd 25.49), the skew about 110.9.
    np.testing.assert_allclose(own.mean, same_grid_batch.expected_return, rtol=0, atol=TOLERANCE)
    assert rule.mean[0] == pytest.approx(90.86, abs=0.005)
    assert rule.std[0] == pytest.approx(25.49, abs=0.005)
    assert skew.mean[0] == pytest.approx(110.9, abs=0.05)


def test_evaluation_with_momentum_and_in_article_mode_equals_numpy():
    momentum = PRESETS["momentum"].replace(T=40, I_max=15)
    article = make_params("article", T=20, I_max=30, delta_max=20.0)
    for params, (bid, ask) in ((momentum, linear_skew(momentum)), (article, article_rule(article))):
        if params.flow.momentum:
            bid, ask = (np.repeat(table[..., None], 3, axis=-1) for table in (bid, ask))
        result = evaluate_tables_batch([params], bid, ask)
        expected = evaluate_tables(params, bid, ask)
        assert result.mean[0] == pytest.approx(expected.mean, abs=TOLERANCE)
        assert result.std[0] == pytest.approx(expected.std, abs=TOLERANCE)
        np.testing.assert_allclose(result.value[0], expected.value, rtol=0, atol=TOLERANCE)


# --------------------------------------------------------------------------------------------------------------------
# refusals


def test_refusals_are_one_line_value_errors():
    default = PRESETS["default"]
    cases = [
        (lambda: solve_dp_batch([]), "at least one"),
        (lambda: solve_dp_batch([default, "default"]), "params_list[1]="),
        (lambda: solve_dp_batch([default, default.replace(I_max=40)]), "another grid"),
        (lambda: solve_dp_batch([default, PRESETS["momentum"]]), "another grid"),
        (lambda: solve_dp_batch([make_params("article", I_max=50, delta_max=5.0)]), "mode='article'"),
        (lambda: solve_dp_batch([PRESETS["transient"]]), "transient impact"),
        (lambda: evaluate_tables_batch([PRESETS["transient"]], *article_rule(default)), "transient impact"),
        (lambda: evaluate_tables_batch([default], np.zeros((3, 3)), np.zeros((3, 3))), "offset tables"),
        (lambda: solve_dp_grid(default), "at least one parameter"),
        (lambda: solve_dp_grid(default, lam=[]), "lam=[]"),
        (lambda: solve_dp_grid(default, lamb=[0.1]), "'lamb' is not a model parameter"),
        (lambda: solve_dp_grid(default, lam=[-1.0]), "lam=-1.0 is invalid"),
        (lambda: solve_dp_batch([default] * 4000), "solve fewer models per call"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError) as error:
            call()
        assert words in str(error.value)
        assert "\n" not in str(error.value)
    # The memory check, alone: 4,000 default models would take 4,000 × 12 × 8 bytes × 201 × 101 = 7.3 GiB.
    assert "7.3 GiB" in batch_memory_reason([default] * 4000)
    assert batch_memory_reason([default] * 1000) is None


# --------------------------------------------------------------------------------------------------------------------
# the two-MM equilibrium

# Small games on a coarse grid (ticks 0, 0.25, …, 2), as in test_game.py; the same shapes, so one compilation. Under
# mtm with κ = 0.6 some stage games have no pure equilibrium (exhaustive search, the smallest largest gain).
SMALL = dict(T=4, I_max=3, sizes=(1, 2), size_probs=(0.6, 0.4), delta_max=2.0, lam=0.02, kappa=0.1)
SMALL_GAMES = {
    "spread": make_competition_params("default", tick=0.25, **SMALL),
    "mtm": make_competition_params("mtm", tick=0.25, **SMALL),
    "mtm, no pure equilibrium": make_competition_params("mtm", tick=0.25, **{**SMALL, "kappa": 0.6}),
    "informed, asymmetric flow": make_competition_params("mtm", tick=0.25, **SMALL, p_buy=0.4, informed=0.3),
}


def assert_same_game_solution(new, old):
    assert new.kind == old.kind == "equilibrium"
    np.testing.assert_array_equal(new.bid, old.bid)
    np.testing.assert_array_equal(new.ask, old.ask)
    np.testing.assert_array_equal(new.value, old.value)  # bit for bit (see agents.exact.game.jax_solve)
    np.testing.assert_allclose(new.std, old.std, rtol=0, atol=TOLERANCE)
    assert (new.no_pure_equilibrium, new.no_pure_on_path) == (old.no_pure_equilibrium, old.no_pure_on_path)
    assert new.largest_stage_gain == pytest.approx(old.largest_stage_gain, abs=TOLERANCE)
    assert new.nash_conv.nash_conv == pytest.approx(old.nash_conv.nash_conv, abs=TOLERANCE)
    assert new.nash_conv.largest_gain == pytest.approx(old.nash_conv.largest_gain, abs=TOLERANCE)
    np.testing.assert_allclose(new.nash_conv.best_response_value, old.nash_conv.best_response_value, atol=TOLERANCE)


def test_equilibrium_on_jax_equals_numpy_on_small_games():
    searched = 0
    for name, params in SMALL_GAMES.items():
        new, old = jax_solve.solve_equilibrium(params), solve_equilibrium(params)
        assert_same_game_solution(new, old)
        searched += new.no_pure_equilibrium
        # Where every stage game has a symmetric pure equilibrium, a symmetric game has symmetric values, bit for bit.
        if name in ("spread", "mtm"):
            assert new.no_pure_equilibrium == 0
            np.testing.assert_array_equal(new.value[0], new.value[1].transpose(0, 2, 1))
    assert searched > 0  # some stage games had no pure equilibrium: the exhaustive search decided them
    assert jax_solve.solve_equilibrium(make_competition_params("momentum", T=3, I_max=3)) is None


@pytest.mark.slow
def test_equilibrium_on_jax_at_the_defaults_gives_model_figures():
    for reward, per_mm in (("spread", (26.67, 26.67)), ("mtm", (19.1365, 19.1364))):
        params = CompetitionParams(market=make_params(reward=reward))
        new = jax_solve.solve_equilibrium(params)
        assert_same_game_solution(new, solve_equilibrium(params))
        np.testing.assert_allclose(new.start_value, per_mm, atol=0.005 if reward == "spread" else 5e-5)
        assert abs(new.nash_conv.nash_conv) < 1e-12
