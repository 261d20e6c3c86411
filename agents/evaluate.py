"""Compare quoting policies on common random numbers, with exact values alongside the Monte Carlo figures.

Every policy runs the same episodes: the batched env draws the same traders and fill uniforms for a given seed
whatever the quotes, so differences between policies are paired and their standard errors small.

Command line: ``python -m agents.evaluate --preset default --episodes 10000`` prints the comparison table and writes
it as JSON and Markdown (plus the policy figure) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agents.cli import add_env_kwargs_argument, params_from_cli
from agents.dp import evaluate_tables, solve_dp
from agents.policies import ArticleRule, ConstantSpread, DPPolicy, LinearSkew, Policy
from agents.tuning import tune_article_rule, tune_linear_skew
from mm_env.params import ARTICLE_SCENARIOS, MarketParams
from mm_env.spaces import DEFAULT_FEATURES
from mm_env.vector_env import MarketMakingVectorEnv

REFERENCE_NAME = ArticleRule(0.5, 0.1).name


@dataclass(frozen=True)
class Episodes:
    """Per-episode results of one policy (arrays over episodes)."""

    returns: np.ndarray
    pnl: np.ndarray
    """Final mark-to-market P&L ``X_T + I_T·P_T``."""
    max_drawdown: np.ndarray
    """Largest fall of the mark-to-market P&L from its running peak within the episode."""
    mean_abs_inventory: np.ndarray
    final_abs_inventory: np.ndarray
    fills: np.ndarray
    arrivals: np.ndarray
    mean_spread: np.ndarray
    """Mean quoted spread ``δ_b + δ_a`` over the episode."""


def run_episodes(
    policy: Policy,
    params: MarketParams,
    episodes: int,
    seed: int,
    features: Sequence[str] = DEFAULT_FEATURES,
) -> Episodes:
    """Run ``episodes`` full episodes of ``policy`` in one batched env seeded with ``seed``."""
    env = MarketMakingVectorEnv(
        num_envs=episodes, params=params, observation_features=features, normalize_actions=False
    )
    obs, _ = env.reset(seed=seed)
    zeros = np.zeros(episodes)
    returns, peak, drawdown, abs_inventory, spread = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), zeros
    fills, arrivals = np.zeros(episodes, dtype=np.int64), np.zeros(episodes, dtype=np.int64)
    for _ in range(params.T):
        obs, reward, terminated, _, info = env.step(policy.act(obs, params))
        returns += reward
        pnl = info["mtm_pnl"]
        np.maximum(peak, pnl, out=peak)
        np.maximum(drawdown, peak - pnl, out=drawdown)
        abs_inventory += np.abs(info["inventory"])
        fills += info["fill_size"] > 0
        arrivals += info["trader_side"] != 0
        spread = spread + (info["ask"] - info["bid"])
    if not terminated.all():
        raise RuntimeError("episodes did not end after T steps")
    return Episodes(
        returns=returns,
        pnl=pnl,
        max_drawdown=drawdown,
        mean_abs_inventory=abs_inventory / params.T,
        final_abs_inventory=np.abs(info["inventory"]),
        fills=fills,
        arrivals=arrivals,
        mean_spread=spread / params.T,
    )


@dataclass(frozen=True)
class PolicyReport:
    """One row of the comparison table."""

    policy: str
    exact_return: float | None
    mean_return: float
    return_se: float
    pct_of_dp: float | None
    diff_vs_reference: float | None
    diff_se: float | None
    pnl_mean: float
    pnl_std: float
    sharpe: float
    var95: float
    cvar95: float
    max_drawdown: float
    mean_abs_inventory: float
    final_abs_inventory: float
    fill_rate: float
    mean_spread: float


def summarize(
    name: str,
    episodes: Episodes,
    exact: float | None,
    dp_value: float | None,
    reference: Episodes | None,
) -> PolicyReport:
    """Aggregate one policy's episodes into a table row."""
    n = len(episodes.returns)
    mean = float(episodes.returns.mean())
    pnl = episodes.pnl
    cutoff = np.quantile(pnl, 0.05)
    diff = None if reference is None else episodes.returns - reference.returns
    pnl_std = float(pnl.std(ddof=1))
    return PolicyReport(
        policy=name,
        exact_return=exact,
        mean_return=mean,
        return_se=float(episodes.returns.std(ddof=1) / math.sqrt(n)),
        pct_of_dp=None if not dp_value else 100.0 * mean / dp_value,
        diff_vs_reference=None if diff is None else float(diff.mean()),
        diff_se=None if diff is None else float(diff.std(ddof=1) / math.sqrt(n)),
        pnl_mean=float(pnl.mean()),
        pnl_std=pnl_std,
        sharpe=float(pnl.mean() / pnl_std) if pnl_std > 0 else math.nan,
        var95=float(-cutoff),
        cvar95=float(-pnl[pnl <= cutoff].mean()),
        max_drawdown=float(episodes.max_drawdown.mean()),
        mean_abs_inventory=float(episodes.mean_abs_inventory.mean()),
        final_abs_inventory=float(episodes.final_abs_inventory.mean()),
        fill_rate=float(episodes.fills.sum() / max(episodes.arrivals.sum(), 1)),
        mean_spread=float(episodes.mean_spread.mean()),
    )


def compare(
    policies: Sequence[Policy],
    params: MarketParams,
    episodes: int = 10_000,
    seed: int = 0,
    reference: str | None = REFERENCE_NAME,
    features: Sequence[str] = DEFAULT_FEATURES,
) -> list[PolicyReport]:
    """Evaluate every policy on the same ``episodes`` seeded episodes; pair each with the ``reference`` policy.

    Policies must have distinct names. The exact expected return is given for every policy that is Markov in
    ``(t, I)`` (all but agents observing extra features).
    """
    names = [policy.name for policy in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be distinct: {names}")
    runs = {policy.name: run_episodes(policy, params, episodes, seed, features) for policy in policies}
    dp_value = None if params.article else solve_dp(params).expected_return
    reference_run = runs.get(reference) if reference is not None else None
    return [
        summarize(policy.name, runs[policy.name], exact_return(policy, params), dp_value, reference_run)
        for policy in policies
    ]


def exact_return(policy: Policy, params: MarketParams) -> float | None:
    """The policy's exact expected return, or ``None`` if it is not a function of ``(t, I)`` alone."""
    try:
        tables = policy.tables(params)
    except ValueError:
        return None
    return float(evaluate_tables(params, *tables).mean)


def baseline_policies(params: MarketParams, tuned: bool = True) -> list[Policy]:
    """The standard comparison set: DP optimum, the article's rule (as published and tuned), linear skews, ..."""
    if params.article:
        scenario = next((s for s in ARTICLE_SCENARIOS.values() if s.params == params), None)
        spread_base, gamma = (scenario.spread_base, scenario.gamma) if scenario else (0.5, 0.1)
        # Quotes do not move fills here, so the flipped rule would only repeat the rule's row (same spread 2Δ+γ|I|).
        return [ArticleRule(spread_base, gamma)]
    policies: list[Policy] = [DPPolicy(params), ArticleRule(0.5, 0.1)]
    if tuned:
        best_rule = tune_article_rule(params).policy
        best_rule.name = f"{best_rule.name} (tuned)"
        best_skew = tune_linear_skew(params).policy
        best_skew.name = f"{best_skew.name} (tuned)"
        policies += [best_rule, best_skew]
    policies += [LinearSkew(0.7, 0.06), ConstantSpread(0.5), ArticleRule(0.5, 0.1, flipped=True)]
    return policies


COLUMNS = (
    ("policy", "policy", "{}"),
    ("exact_return", "exact E[return]", "{:.2f}"),
    ("mean_return", "mean return", "{:.2f}"),
    ("return_se", "± s.e.", "{:.2f}"),
    ("pct_of_dp", "% of DP", "{:.1f}"),
    ("diff_vs_reference", "Δ vs article rule", "{:+.2f}"),
    ("diff_se", "± s.e.", "{:.2f}"),
    ("pnl_mean", "P&L mean", "{:.1f}"),
    ("pnl_std", "P&L sd", "{:.1f}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("var95", "VaR95", "{:.1f}"),
    ("cvar95", "CVaR95", "{:.1f}"),
    ("max_drawdown", "max DD", "{:.1f}"),
    ("mean_abs_inventory", "mean abs(I)", "{:.2f}"),
    ("final_abs_inventory", "final abs(I)", "{:.2f}"),
    ("fill_rate", "fill rate", "{:.3f}"),
    ("mean_spread", "spread", "{:.3f}"),
)


def markdown_table(rows: Sequence[PolicyReport]) -> str:
    """The comparison as a Markdown table."""
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" if key == "policy" else "---:" for key, _, _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        values = asdict(row)
        cells = ["–" if values[key] is None else fmt.format(values[key]) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(rows: Sequence[PolicyReport], params: MarketParams, out: Path, meta: dict) -> None:
    """Write ``comparison.json`` and ``comparison.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"params": params.as_dict(), **meta, "rows": [asdict(row) for row in rows]}
    (out / "comparison.json").write_text(json.dumps(payload, indent=2, allow_nan=True))
    (out / "comparison.md").write_text(markdown_table(rows) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.evaluate",
        description="Compare the DP optimum, the article's rule and other heuristics on common random numbers.",
    )
    parser.add_argument("--preset", default="default", help="model preset (default: %(default)s)")
    add_env_kwargs_argument(parser)
    parser.add_argument("--episodes", type=int, default=10_000, help="episodes per policy (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed shared by every policy (default: %(default)s)")
    parser.add_argument("--no-tuning", action="store_true", help="skip the tuned heuristics")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON, Markdown and figures")
    args = parser.parse_args(argv)
    params = params_from_cli(parser, args.preset, args.env_kwargs)
    if args.episodes < 2:
        parser.error(f"--episodes must be at least 2; got {args.episodes}")
    policies = baseline_policies(params, tuned=not args.no_tuning)
    rows = compare(policies, params, args.episodes, args.seed)
    table = markdown_table(rows)
    label = " ".join([f"preset={args.preset}", *args.env_kwargs])
    print(f"{args.episodes} episodes per policy, seed {args.seed}, {label}")
    print(table)
    out = args.out if args.out is not None else Path("runs") / f"evaluate_{'_'.join(label.split()).replace('=', '-')}"
    write_report(rows, params, out, {"episodes": args.episodes, "seed": args.seed})
    if not params.article:
        from agents.plots import policy_figure, save_figure

        save_figure(policy_figure(policies, params), out / "policies.png")
    print(f"wrote {out / 'comparison.md'}, comparison.json and policies.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
