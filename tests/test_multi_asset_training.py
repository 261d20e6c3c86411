"""train.py on several assets: the same pipeline, judged exactly against the multi-asset DP (tiny budget)."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import TINY_TRAIN, run_command

from agents.cli.train import main as train_main
from agents.exact.multi_asset import solve_multi_asset
from agents.training.families import family_of
from agents.training.multi_asset import MultiAssetMarketMaker
from mm_env.multi_asset import make_multi_asset_params

MODEL = ["T=20", "I_max=5", "risk_matrix=0.8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("runs")
    env = ["--env", "mm_env/MultiAssetMarketMaking-v0", "--env-kwargs", *MODEL]
    result = run_command(train_main, *TINY_TRAIN, *env, "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    (run,) = sorted(log_dir.iterdir())
    return run


def test_the_id_finds_the_multi_asset_family():
    assert family_of("mm_env/MultiAssetMarketMaking-v0") is MultiAssetMarketMaker


def test_a_multi_asset_run_is_graded_exactly_against_the_dp(run_dir):
    assert run_dir.name == "ppo_MultiAssetMarketMaking-v0_1"
    comparison = json.loads((run_dir / "comparison.json").read_text())
    rows = {row["policy"]: row for row in comparison["rows"]}
    optimum = solve_multi_asset(make_multi_asset_params("two_assets", T=20, I_max=5, risk_matrix=0.8)).value
    dp = rows[comparison["benchmark"]]
    assert dp["exact_return"] == pytest.approx(optimum, rel=1e-12) and dp["pct_of_benchmark"] == pytest.approx(100.0)
    assert any(name.startswith("BEGV") for name in rows) and any("independent" in name for name in rows)
    assert all(row["exact_return"] <= optimum + 1e-9 for row in rows.values())  # nothing beats the optimum
    assert "PPO (final)" in rows and rows["PPO (final)"]["exact_sd"] >= 0.0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["params"]["risk_matrix"] == [[1.0, 0.8], [0.8, 1.0]] and config["params"]["T"] == 20
    assert json.loads((run_dir / "run_status.json").read_text())["status"] == "finished"
    assert (run_dir / "policies.png").read_bytes()[:4] == b"\x89PNG"  # the quotes: DP, BEGV and the agent


def test_a_multi_asset_run_is_evaluated_again_from_its_folder(run_dir):
    result = run_command(train_main, "--evaluate", str(run_dir), "--final-episodes", "100")
    assert result.returncode == 0, result.stderr
    assert "DP optimum" in result.stdout and "PPO (final)" in result.stdout
