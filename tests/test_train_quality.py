"""The full-quality training run (slow: run with ``python -m pytest -m slow``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "seed", "target"),
    [
        ("ppo", 0, 99.5),  # docs/training.md: 99.6 at seed 0 (the exact value 99.53%)
        ("td3", 0, 98.0),  # docs/training.md: 98.9 (exact 98.93%)
        ("td3", 1, 98.0),  # docs/training.md: 98.5 (exact 98.41%)
        ("sac", 0, 98.0),  # docs/training.md: 98.6 (exact 98.49%)
        ("sac", 1, 98.0),  # docs/training.md: 98.8 (exact 98.80%)
    ],
)
def test_a_default_run_reaches_its_target_share_of_the_dp_value(tmp_path, algo, seed, target):
    command = [sys.executable, str(ROOT / "train.py"), "--log-dir", str(tmp_path), "--no-progress-bar"]
    command += ["--algo", algo, "--seed", str(seed)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert comparison["episodes"] >= 10_000
    rows = {row["policy"]: row for row in comparison["rows"]}
    agent, article = rows[f"{algo.upper()} (final)"], rows["article rule Δ=0.5, γ=0.1"]
    assert agent["pct_of_dp"] >= target
    assert agent["diff_vs_reference"] - 4 * agent["diff_se"] > 0.5 * (
        rows["DP optimum"]["mean_return"] - article["mean_return"]
    )
