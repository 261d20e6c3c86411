"""The article's four scenarios (MODEL.md §5) through ``agents.reproduce.article``: its findings on identical draws."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.reproduce.article import run_scenario
from mm_env.presets import ARTICLE_SCENARIOS

REPO = Path(__file__).resolve().parents[1]
SEEDS = range(8)


@pytest.fixture(scope="module")
def runs():
    return {seed: {name: run_scenario(name, seed) for name in ARTICLE_SCENARIOS} for seed in SEEDS}


def test_the_four_scenarios_are_those_of_section_5():
    expected = {
        "article_low_volatility": (0.01, 0.1, 0.5, 0.01),
        "article_high_volatility": (0.1, 0.1, 0.5, 0.01),
        "article_low_risk_weight": (0.1, 0.01, 0.5, 0.01),
        "article_low_penalty": (0.1, 0.01, 0.5, 0.002),
    }
    assert set(ARTICLE_SCENARIOS) == set(expected)
    for name, (kappa, gamma, spread_base, lam) in expected.items():
        scenario = ARTICLE_SCENARIOS[name]
        assert (scenario.params.kappa, scenario.gamma, scenario.spread_base, scenario.params.lam) == (
            kappa,
            gamma,
            spread_base,
            lam,
        )
        assert scenario.params.P0 == 100 and scenario.params.T == 200 and scenario.params.mode == "article"


@pytest.mark.parametrize("seed", SEEDS)
def test_each_run_follows_the_articles_formulas(runs, seed):
    for name, run in runs[seed].items():
        scenario, params = run.scenario, run.scenario.params
        history = run.history
        assert all(len(values) == params.T for values in history.values())
        inventory = history["inventory"]  # after each step
        before = np.concatenate([[0.0], inventory[:-1]])
        traded = np.abs(inventory - before)
        assert set(np.unique(traded)) <= set(range(1, 10))  # every order fills (sizes 1..9)
        # The article's quotes with q = −I (MODEL.md §1): bid = P − Δ − |min(γq, 0)|, ask = P + Δ + max(γq, 0).
        q = -before
        mid = history["mid"]  # before each step
        np.testing.assert_allclose(
            history["bid"], mid - scenario.spread_base - np.abs(np.minimum(scenario.gamma * q, 0))
        )
        np.testing.assert_allclose(history["ask"], mid + scenario.spread_base + np.maximum(scenario.gamma * q, 0))
        # P += κ·S·Q with the article's S·Q = Δq = −ΔI.
        np.testing.assert_allclose(np.diff(mid), -params.kappa * (inventory - before)[:-1], atol=1e-9)
        # Reward (ask − bid)·Q − λ·q², q after the trade.
        spread = 2 * scenario.spread_base + scenario.gamma * np.abs(before)
        np.testing.assert_allclose(
            history["reward"], spread * traded - params.lam * inventory**2, rtol=1e-12, atol=1e-9
        )
        assert run.cumulative_utility == pytest.approx(history["reward"].sum())
        assert run.summary()["final inventory I"] == inventory[-1], name


@pytest.mark.parametrize("seed", SEEDS)
def test_kappa_changes_only_the_mid(runs, seed):
    low, high = runs[seed]["article_low_volatility"], runs[seed]["article_high_volatility"]
    np.testing.assert_array_equal(low.history["inventory"], high.history["inventory"])
    np.testing.assert_array_equal(low.history["reward"], high.history["reward"])
    np.testing.assert_allclose(low.history["spread"], high.history["spread"], atol=1e-9)
    assert low.cumulative_utility == high.cumulative_utility
    # The mid moves ten times as much with κ = 0.1 as with κ = 0.01.
    ratio = np.diff(high.history["mid"]).std() / np.diff(low.history["mid"]).std()
    assert ratio == pytest.approx(10.0, rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_same_traders_in_every_scenario(runs, seed):
    inventories = [run.history["inventory"] for run in runs[seed].values()]
    for other in inventories[1:]:
        np.testing.assert_array_equal(inventories[0], other)


@pytest.mark.parametrize("seed", SEEDS)
def test_low_gamma_loses_heavily_and_lower_lambda_brings_the_profit_back(runs, seed):
    base = runs[seed]["article_high_volatility"].cumulative_utility
    low_gamma = runs[seed]["article_low_risk_weight"].cumulative_utility
    low_penalty = runs[seed]["article_low_penalty"].cumulative_utility
    # On the same traders, the utilities differ by exactly the spread and penalty terms that changed:
    # base − low γ = (0.1 − 0.01)·Σ |I_before|·Q, and low λ − low γ = (0.01 − 0.002)·Σ I².
    history = runs[seed]["article_high_volatility"].history
    inventory = history["inventory"]
    before = np.concatenate([[0.0], inventory[:-1]])
    assert base - low_gamma == pytest.approx(0.09 * np.sum(np.abs(before) * np.abs(inventory - before)), rel=1e-9)
    assert low_penalty - low_gamma == pytest.approx(0.008 * np.sum(inventory**2), rel=1e-9)
    # The findings: a narrow skew loses heavily; a lower penalty brings much of the profit back.
    assert low_gamma < base - 1000
    assert low_penalty - low_gamma > 0.3 * (base - low_gamma)


def test_low_gamma_loses_on_average(runs):
    base = np.mean([runs[seed]["article_high_volatility"].cumulative_utility for seed in SEEDS])
    low_gamma = np.mean([runs[seed]["article_low_risk_weight"].cumulative_utility for seed in SEEDS])
    low_penalty = np.mean([runs[seed]["article_low_penalty"].cumulative_utility for seed in SEEDS])
    assert base > 0 > low_gamma
    assert low_penalty > 0
    # Seed 0 (the CLI's default) shows all three signs.
    assert runs[0]["article_high_volatility"].cumulative_utility > 0
    assert runs[0]["article_low_risk_weight"].cumulative_utility < 0
    assert runs[0]["article_low_penalty"].cumulative_utility > 0


def test_different_seeds_give_different_traders(runs):
    a = runs[0]["article_low_volatility"].history["inventory"]
    b = runs[1]["article_low_volatility"].history["inventory"]
    assert not np.array_equal(a, b)
    again = run_scenario("article_low_volatility", 0).history["inventory"]
    np.testing.assert_array_equal(a, again)


def test_cli_article_writes_four_pngs(tmp_path):
    out = tmp_path / "article"
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli.article", "--seed", "3", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pngs = sorted(out.glob("*.png"))
    assert [p.stem for p in pngs] == sorted(ARTICLE_SCENARIOS)
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cumulative utility" in result.stdout
    for scenario in ARTICLE_SCENARIOS.values():
        assert scenario.title in result.stdout
