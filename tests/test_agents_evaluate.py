"""The comparison harness ``agents.evaluation``: the table rows, the Markdown, the report files and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from helpers import run_command

from agents.cli.evaluate import main as evaluate_main
from agents.evaluation.compare import REFERENCE_NAME, PolicyReport, baseline_policies, compare
from agents.evaluation.report import markdown_table, write_report
from agents.evaluation.rollout import run_episodes
from agents.exact.dp import evaluate_tables, solve_dp, unsolvable_reason
from agents.policies import ArticleRule, ConstantSpread, DPPolicy, LinearSkew
from mm_env.presets import ARTICLE_SCENARIOS, make_params

REPO = Path(__file__).resolve().parents[1]
DEFAULT = make_params("default")
ROW_FIELDS = set(PolicyReport.__dataclass_fields__)


@pytest.fixture(scope="module")
def default_rows():
    policies = [DPPolicy(DEFAULT), ArticleRule(0.5, 0.1), LinearSkew(0.7, 0.06), ConstantSpread(0.5)]
    return policies, compare(policies, DEFAULT, episodes=2000, seed=3)


def test_compare_rows(default_rows):
    policies, rows = default_rows
    assert [row.policy for row in rows] == [policy.name for policy in policies]
    dp_value = solve_dp(DEFAULT).expected_return
    by_name = {row.policy: row for row in rows}
    reference = by_name[REFERENCE_NAME]
    assert reference.diff_vs_reference == 0.0 and reference.diff_se == 0.0
    for policy, row in zip(policies, rows, strict=True):
        exact = evaluate_tables(DEFAULT, *policy.tables(DEFAULT))
        assert row.exact_return == pytest.approx(exact.mean, rel=1e-12)
        assert abs(row.mean_return - exact.mean) < 4 * exact.std / math.sqrt(2000)
        assert row.return_se == pytest.approx(exact.std / math.sqrt(2000), rel=0.1)
        assert row.pct_of_benchmark == pytest.approx(100.0 * row.mean_return / dp_value)
        assert 0.0 <= row.fill_rate <= 1.0
        assert row.cvar95 >= row.var95
        assert row.max_drawdown >= 0.0
        assert 0.0 <= row.mean_abs_inventory <= DEFAULT.I_max
        assert 0.0 <= row.final_abs_inventory <= DEFAULT.I_max
        assert row.pnl_std > 0 and row.sharpe == pytest.approx(row.pnl_mean / row.pnl_std)
        assert row.diff_vs_reference == pytest.approx(row.mean_return - reference.mean_return, abs=1e-9)
    assert by_name["DP optimum"].pct_of_benchmark == pytest.approx(100.0, abs=3.0)
    assert by_name["constant offset 0.5"].mean_spread == pytest.approx(1.0, abs=1e-9)
    # The fill rate of a constant quote δ is A·e^{−kδ} per arrival, up to the few arrivals blocked at the limit.
    assert by_name["constant offset 0.5"].fill_rate == pytest.approx(0.9 * math.exp(-1.0), abs=0.01)
    # The paired difference DP − article rule has a standard error close to that of the paired samples.
    assert by_name["DP optimum"].diff_se < math.hypot(by_name["DP optimum"].return_se, reference.return_se)


def test_compare_var_and_cvar_by_hand():
    run = run_episodes(ArticleRule(0.5, 0.1), DEFAULT, 1000, seed=8)
    (row,) = compare([ArticleRule(0.5, 0.1)], DEFAULT, episodes=1000, seed=8)
    cutoff = np.quantile(run.pnl, 0.05)
    assert row.var95 == pytest.approx(-cutoff)
    assert row.cvar95 == pytest.approx(-run.pnl[run.pnl <= cutoff].mean())
    assert row.pnl_mean == pytest.approx(run.pnl.mean())
    assert row.fill_rate == pytest.approx(run.fills.sum() / run.arrivals.sum())


def test_compare_without_reference_and_in_article_mode():
    rows = compare([LinearSkew(0.7, 0.06)], DEFAULT, episodes=200, seed=0, reference=None)
    assert rows[0].diff_vs_reference is None and rows[0].diff_se is None
    params = ARTICLE_SCENARIOS["article_low_volatility"].params
    policies, benchmark = baseline_policies(params)
    assert benchmark is None
    # The scenario's own rule only: quotes do not move fills, so a flipped rule would repeat its row.
    assert [type(p) for p in policies] == [ArticleRule]
    assert (policies[0].spread_base, policies[0].gamma) == (0.5, 0.1)
    rows = compare([*policies, ArticleRule(0.5, 0.1, flipped=True)], params, episodes=300, seed=0)
    assert rows[0].mean_return == rows[1].mean_return
    for row in rows:
        assert row.pct_of_benchmark is None  # no DP in article mode
        assert row.fill_rate == 1.0  # every order fills


def test_compare_rejects_duplicate_names():
    with pytest.raises(ValueError, match="distinct"):
        compare([ArticleRule(0.5, 0.1), ArticleRule(0.5, 0.1)], DEFAULT, episodes=10)


def test_baseline_policies():
    untuned, benchmark = baseline_policies(DEFAULT, tuned=False)
    assert benchmark is None  # the DP is the benchmark
    names = [p.name for p in untuned]
    assert names[0] == "DP optimum" and REFERENCE_NAME in names
    assert any(isinstance(p, ArticleRule) and p.flipped for p in untuned)
    assert len(set(names)) == len(names)
    tuned, _ = baseline_policies(DEFAULT.replace(T=50), tuned=True)
    assert len(tuned) == len(untuned) + 2
    assert sum("(tuned)" in p.name for p in tuned) == 2
    # Asking twice gives the same names (the tuners cache their policies, which must not be renamed in place).
    again, _ = baseline_policies(DEFAULT.replace(T=50), tuned=True)
    assert [p.name for p in again] == [p.name for p in tuned]
    without_strawmen, _ = baseline_policies(DEFAULT, tuned=False, strawmen=False)
    assert not any(isinstance(p, ConstantSpread) or getattr(p, "flipped", False) for p in without_strawmen)
    # The continuous-time closed forms join where they apply (unit sizes: Cartea–Jaimungal's problem).
    closed, _ = baseline_policies(make_params("cartea_jaimungal", T=50), tuned=False)
    assert {"Avellaneda–Stoikov", "Cartea–Jaimungal", "Guéant–Lehalle–Fernandez-Tapia"} <= {p.name for p in closed}


def test_a_model_without_an_exact_optimum_is_compared_with_the_best_tuned_heuristic():
    params = make_params("transient", T=20)
    assert unsolvable_reason(params) is not None
    policies, benchmark = baseline_policies(params)
    assert not any(isinstance(p, DPPolicy) for p in policies)
    assert benchmark is not None and benchmark.endswith("(tuned)")
    rows = compare(policies, params, episodes=400, seed=1, benchmark=benchmark)
    by_name = {row.policy: row for row in rows}
    assert by_name[benchmark].pct_of_benchmark == pytest.approx(100.0)
    assert all(row.exact_return is None for row in rows)  # no finite Markov state under mtm with transient impact
    # The tuned heuristic beats the published rule on the episodes it was not tuned on.
    assert by_name[benchmark].mean_return > by_name[REFERENCE_NAME].mean_return
    table = markdown_table(rows, benchmark)
    assert "% of best heuristic" in table and benchmark in table.splitlines()[-1]


def test_markdown_table(default_rows):
    policies, rows = default_rows
    table = markdown_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].startswith("| policy |") and "exact E[return]" in lines[0]
    assert set(lines[1]) <= set("|-: ")
    columns = lines[0].count("|")
    for line, policy in zip(lines[2:], policies, strict=True):
        assert line.startswith(f"| {policy.name} |")
        assert line.count("|") == columns
    assert "| – |" in markdown_table(compare([LinearSkew()], DEFAULT, episodes=50, reference=None))


def test_write_report(tmp_path, default_rows):
    _, rows = default_rows
    out = tmp_path / "nested" / "report"
    write_report(rows, DEFAULT, out, {"episodes": 2000, "seed": 3})
    payload = json.loads((out / "comparison.json").read_text())
    assert payload["params"] == DEFAULT.as_dict()
    assert payload["episodes"] == 2000 and payload["seed"] == 3
    assert [row["policy"] for row in payload["rows"]] == [row.policy for row in rows]
    assert payload["rows"] == [asdict(row) for row in rows]  # floats survive JSON exactly
    assert (out / "comparison.md").read_text().strip() == markdown_table(rows)


def run_cli(*args):
    """``python -m agents.cli.evaluate`` in this process (see ``helpers.run_command``)."""
    return run_command(evaluate_main, *args)


def test_cli_evaluate(tmp_path):
    # End to end, as a user runs it: a process of its own.
    out = tmp_path / "evaluate"
    command = [sys.executable, "-m", "agents.cli.evaluate", "--episodes", "500", "--no-tuning", "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| policy |" in result.stdout and "DP optimum" in result.stdout and REFERENCE_NAME in result.stdout
    assert "Traceback" not in result.stderr
    payload = json.loads((out / "comparison.json").read_text())
    assert {"params", "episodes", "seed", "rows"} <= set(payload)
    assert payload["episodes"] == 500 and payload["seed"] == 0
    assert payload["params"] == DEFAULT.as_dict()
    names = [row["policy"] for row in payload["rows"]]
    assert names == [p.name for p in baseline_policies(DEFAULT, tuned=False).policies]
    assert payload["benchmark"] == "DP optimum"
    for row in payload["rows"]:
        assert set(row) == ROW_FIELDS
    dp_row = payload["rows"][0]
    assert dp_row["exact_return"] == pytest.approx(111.14, abs=0.005)
    markdown = (out / "comparison.md").read_text()
    assert markdown.splitlines()[0].startswith("| policy |")
    assert len(markdown.strip().splitlines()) == 2 + len(names)
    assert (out / "policies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_evaluate_article_preset(tmp_path):
    out = tmp_path / "article"
    result = run_cli("--preset", "article", "--episodes", "200", "--out", str(out))
    assert result.returncode == 0, result.stderr
    payload = json.loads((out / "comparison.json").read_text())
    assert payload["params"]["mode"] == "article"
    assert len(payload["rows"]) == 1
    assert all(row["pct_of_benchmark"] is None for row in payload["rows"])
    assert payload["benchmark"] is None  # neither a DP nor a tuned heuristic: quotes do not move fills
    assert (out / "comparison.md").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env-kwargs", "lam=-1"], "lam=-1 is invalid"),
        (["--env-kwargs", "nonsense"], "key=value"),
        (["--preset", "no_such_preset"], "not a known preset"),
        (["--env-kwargs", "foo=1"], "'foo' is not a model parameter"),
        (["--env-kwargs", "sizes=[1,2]", "size_probs=[0.5]"], "size_probs"),
        (["--episodes", "1"], "--episodes"),
        (["--episodes", str(10**13)], "--episodes 10000000000000 is invalid: must be in [2, 10,000,000]"),
        (["--seed", "-1"], "--seed -1 is invalid"),
    ],
    ids=[
        "negative lam",
        "not key=value",
        "unknown preset",
        "unknown parameter",
        "size_probs",
        "episodes",
        "huge",
        "seed",
    ],
)
def test_cli_evaluate_bad_arguments(tmp_path, args, message):
    result = run_cli(*args, "--no-tuning", "--out", str(tmp_path / "never"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "error:" in result.stderr and "usage:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("name", sorted(ARTICLE_SCENARIOS))
def test_an_article_scenario_is_evaluated_with_its_own_rule(name):
    # article_low_risk_weight and article_high_volatility share their model and differ only in γ.
    scenario = ARTICLE_SCENARIOS[name]
    (rule,), _ = baseline_policies(scenario.params, scenario=name)
    assert (rule.spread_base, rule.gamma) == (scenario.spread_base, scenario.gamma)


def test_cli_evaluate_refuses_an_unwritable_out_before_computing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("--episodes", "2", "--out", str(blocker / "results"))
    assert result.returncode == 2
    assert "--out: cannot write results" in result.stderr and "Traceback" not in result.stderr
    assert "| policy |" not in result.stdout  # nothing was computed


def test_cli_evaluate_without_out_never_overwrites_an_earlier_evaluation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--episodes", "20", "--no-tuning", "--env-kwargs", "T=5", "lam=0.002"]
    for _ in range(2):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["evaluate_preset-default_T-5_lam-0.002_1", "evaluate_preset-default_T-5_lam-0.002_2"]
    assert all((tmp_path / "runs" / name / "comparison.json").exists() for name in folders)
