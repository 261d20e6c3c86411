"""The examples in ``examples/`` run as a user runs them (a process of its own, from the repository root), tiny.

Each prints its judgement in a line this file parses: an exact grade against the DP optimum for one market maker,
exact returns, NashConv and the collusion index against the exact equilibrium for the competing market makers.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?|nan|-?inf)"


def run_example(name: str, *args: str, timeout: int = 300) -> str:
    """Run ``examples/<name>`` with ``args`` from the repository root; its stdout. It must leave no file behind."""
    before = set(os.listdir(REPO)), set(os.listdir(REPO / "examples"))
    command = [sys.executable, f"examples/{name}", *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    after = set(os.listdir(REPO)), set(os.listdir(REPO / "examples"))
    assert after[0] <= before[0] and after[1] <= before[1], "the example left files in the checkout"
    return result.stdout


def fields(line: str) -> dict[str, str]:
    """``key=value`` pairs of a summary line."""
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def summary(stdout: str, prefix: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, stdout
    return fields(lines[0])


def test_cleanrl_ppo_example_is_graded_exactly_against_the_dp():
    stdout = run_example("cleanrl_ppo.py", "--total-timesteps", "1600", "--num-envs", "4")
    grade = summary(stdout, "grade:")
    assert grade["exact"] == "True"
    ret, std, pct = float(grade["return"]), float(grade["std"]), float(grade["pct_of_dp"])
    assert all(math.isfinite(value) for value in (ret, std, pct))
    assert std >= 0 and -10_000 < pct <= 100 + 1e-9  # no policy beats the optimum
    assert pct == pytest.approx(100 * ret / 111.14, rel=1e-3, abs=1e-3)  # the default preset's DP value (MODEL.md §6)
    assert re.search(rf"CleanRL PPO: exact E\[return\] {NUMBER} \(sd {NUMBER}\), {NUMBER}% of the DP optimum", stdout)
    assert "steps" in stdout and "% of the DP optimum" in stdout  # the progress lines


def test_sb3_ten_lines_example_is_graded_exactly_against_the_dp():
    stdout = run_example("sb3_ten_lines.py", "--timesteps", "256")
    match = re.search(
        rf"^PPO: exact E\[return\] {NUMBER} \(sd {NUMBER}\), {NUMBER}% of the DP optimum \(111\.14\)$", stdout, re.M
    )
    assert match, stdout
    ret, std, pct = (float(value) for value in match.groups())
    assert all(math.isfinite(value) for value in (ret, std, pct))
    assert std >= 0 and -10_000 < pct <= 100 + 1e-9


def table_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the printed Markdown table, by policy name, each a mapping from column header to cell."""
    lines = [line.strip("|").split(" | ") for line in stdout.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0]]
    return {cells[0].strip(): dict(zip(header, (cell.strip() for cell in cells), strict=True)) for cells in lines[1:]}


def check_judgement(stdout: str, name: str) -> None:
    """The learned joint policy's grade: finite exact values, equal for the two seats of a shared policy."""
    match = re.search(
        rf"^{re.escape(name)}: exact E\[return\] {NUMBER} / {NUMBER} per market maker, {NUMBER}% of the "
        rf"equilibrium's \({NUMBER}\), NashConv {NUMBER}, \u0394 (\u2212?[0-9.]+)$",
        stdout,
        re.M,
    )
    assert match, stdout
    first, second, pct, value, nash_conv = (float(group) for group in match.groups()[:5])
    delta = float(match.group(6).replace("\u2212", "-"))
    assert all(math.isfinite(number) for number in (first, second, pct, value, nash_conv, delta))
    assert first == pytest.approx(second, abs=0.01)  # one policy in two seats of a symmetric game
    mean = (first + second) / 2
    rounding = 100 * 0.005 * (1 / abs(value) + abs(mean) / value**2) + 0.005  # the printed figures have 2 decimals
    assert pct == pytest.approx(100 * mean / value, abs=rounding)
    assert nash_conv >= 0  # no one loses by its exact best response
    # The table lists the learned policy next to the exact equilibrium (NashConv 0 at rounding level), the cartel and
    # the baselines.
    rows = table_rows(stdout)
    assert {name, "equilibrium", "cartel", "each quotes the article rule"} <= set(rows), stdout
    assert abs(float(rows["equilibrium"]["NashConv"])) < 1e-9
    assert float(rows[name]["NashConv"]) == pytest.approx(nash_conv, rel=1e-2, abs=1e-2)
    assert float(rows["cartel"]["Δ"]) == 1.0
    assert "the equilibrium: " in stdout  # how exact the equilibrium is


def test_pettingzoo_selfplay_example_is_judged_against_the_exact_equilibrium():
    stdout = run_example(
        "pettingzoo_selfplay.py", "--iterations", "2", "--games", "2", "--T", "20", "--episodes", "200"
    )
    assert "Passed Parallel API test" in stdout
    check_judgement(stdout, "self-play PPO (shared)")


@pytest.mark.rllib
def test_rllib_competing_example_is_judged_against_the_exact_equilibrium():
    pytest.importorskip("ray.rllib")
    stdout = run_example("rllib_competing.py", "--iterations", "1", "--T", "20", "--batch", "200", "--episodes", "200")
    assert "iteration 1:" in stdout
    check_judgement(stdout, "RLlib PPO (shared)")


def test_jax_rollout_of_the_dp_optimum_agrees_with_its_exact_value():
    pytest.importorskip("jax")
    stdout = run_example("jax_rollout.py", "--envs", "1024", "--seed", "3")
    result = summary(stdout, "jax:")
    assert float(result["exact"]) == pytest.approx(111.1446, abs=1e-4)  # MODEL.md §6: the DP's value
    assert 0.0 < float(result["se"]) < 1.0
    assert abs(float(result["z"])) < 4.0  # Monte Carlo on the JAX env within 4 standard errors of the exact value
