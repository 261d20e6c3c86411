"""Compare quoting policies on common random numbers, with exact values alongside the Monte Carlo figures.

Every policy runs the same episodes: the batched env draws the same traders and fill uniforms for a given seed
whatever the quotes, so differences between policies are paired and their standard errors small.

Command line: ``python -m agents.evaluate --preset default --episodes 10000`` prints the comparison table and writes
it as JSON and Markdown (plus the policy figure) into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from agents.cli import add_env_kwargs_argument, check_writable, new_numbered_folder, params_from_cli
from agents.closed_forms import applicable_baselines
from agents.dp import evaluate_tables, exact_solution, unsolvable_reason
from agents.policies import ArticleRule, ConstantSpread, DPPolicy, LinearSkew, Policy
from agents.tuning import TUNING_EPISODES, best_tuned_heuristic, tune_article_rule, tune_linear_skew
from mm_env.dynamics import MarketState
from mm_env.params import ARTICLE_SCENARIOS, MarketParams
from mm_env.render import HISTORY_KEYS
from mm_env.vector_env import MarketMakingVectorEnv

REFERENCE_NAME = ArticleRule(0.5, 0.1).name
MAX_EPISODES = 10_000_000
"""The most episodes per policy: they run as one batch, at about 500 bytes each (5 GB at the maximum)."""


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


def _market_state(env: MarketMakingVectorEnv) -> MarketState:
    state = env.state
    assert isinstance(state, MarketState)  # a one-MM env (the games' subclass holds their CompetitionState)
    return state


def run_episodes(policy: Policy, params: MarketParams, episodes: int, seed: int) -> Episodes:
    """Run ``episodes`` full episodes of ``policy`` in one batched env seeded with ``seed``.

    The policy quotes from the batch's model state; a learned agent computes its own observations from it.
    """
    env = MarketMakingVectorEnv(num_envs=episodes, params=params, normalize_actions=False)
    env.reset(seed=seed)
    zeros = np.zeros(episodes)
    returns, peak, drawdown, abs_inventory, spread = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), zeros
    fills, arrivals = np.zeros(episodes, dtype=np.int64), np.zeros(episodes, dtype=np.int64)
    for _ in range(params.T):
        bid, ask = policy.quote(_market_state(env), params)
        _, reward, terminated, _, info = env.step(np.stack(np.broadcast_arrays(bid, ask), axis=-1))
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


def episode_history(policy: Policy, params: MarketParams, seed: int) -> dict[str, np.ndarray]:
    """One episode of ``policy`` step by step: the arrays of ``mm_env.render.HISTORY_KEYS`` plus ``spread``.

    The episode is the single environment's for ``seed`` (a batch of one draws the same traders).
    """
    env = MarketMakingVectorEnv(num_envs=1, params=params, normalize_actions=False)
    _, info = env.reset(seed=seed)
    history: dict[str, list[float]] = {key: [] for key in (*HISTORY_KEYS, "spread")}
    for _ in range(params.T):
        mid = info["mid"][0]
        bid, ask = policy.quote(_market_state(env), params)
        _, reward, _, _, info = env.step(np.stack(np.broadcast_arrays(bid, ask), axis=-1))
        values = (mid, info["bid"][0], info["ask"][0], info["inventory"][0], reward[0], info["ask"][0] - info["bid"][0])
        for key, value in zip(history, values, strict=True):
            history[key].append(float(value))
    return {key: np.asarray(values) for key, values in history.items()}


@dataclass(frozen=True)
class PolicyReport:
    """One row of the comparison table."""

    policy: str
    exact_return: float | None
    mean_return: float
    return_se: float
    pct_of_benchmark: float | None
    """Mean return as % of the benchmark: the DP optimum where the model has one, else the best tuned heuristic."""
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
    benchmark_value: float | None,
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
        pct_of_benchmark=None if not benchmark_value else 100.0 * mean / benchmark_value,
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
    benchmark: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[PolicyReport]:
    """Evaluate every policy on the same ``episodes`` seeded episodes; pair each with the ``reference`` policy.

    ``% of benchmark`` is relative to the exact optimum where the model has one, else to the policy named
    ``benchmark`` (usually the best tuned heuristic) on the same episodes. Policies must have distinct names. The
    exact expected return is given for every policy that is a function of the exact grid's Markov state.
    ``progress``, if given, receives one line per policy as its episodes finish (e.g. ``print``).
    """
    names = [policy.name for policy in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be distinct: {names}")
    if benchmark is not None and benchmark not in names:
        raise ValueError(f"benchmark {benchmark!r} is not among the policies {names}")
    runs = {}
    for number, policy in enumerate(policies, start=1):
        started = time.perf_counter()
        runs[policy.name] = run_episodes(policy, params, episodes, seed)
        if progress is not None:
            mean, seconds = runs[policy.name].returns.mean(), time.perf_counter() - started
            progress(f"  [{number}/{len(policies)}] {policy.name}: mean return {mean:.2f} ({seconds:.1f} s)")
    solution = exact_solution(params)
    if solution is not None:
        benchmark_value: float | None = solution.expected_return
    else:
        benchmark_value = None if benchmark is None else float(runs[benchmark].returns.mean())
    reference_run = runs.get(reference) if reference is not None else None
    return [
        summarize(policy.name, runs[policy.name], exact_return(policy, params), benchmark_value, reference_run)
        for policy in policies
    ]


def exact_return(policy: Policy, params: MarketParams) -> float | None:
    """The policy's exact expected return, or ``None`` where the model or the policy has no finite Markov state."""
    try:
        return float(evaluate_tables(params, *policy.tables(params)).mean)
    except ValueError:
        return None


class Baselines(NamedTuple):
    """The standard comparison set, and the name of the benchmark policy where the model has no exact optimum."""

    policies: list[Policy]
    benchmark: str | None
    """The best tuned heuristic (by its tuning value) when there is no DP optimum, else ``None``."""


def baseline_policies(
    params: MarketParams, tuned: bool = True, strawmen: bool = True, scenario: str | None = None
) -> Baselines:
    """The standard comparison set for a model.

    The DP optimum (where it exists), the article's rule (as published and, with ``tuned``, tuned), linear skews,
    the continuous-time closed forms where they apply, and with ``strawmen`` a constant offset and the flipped rule
    (what not to do). In article mode the set is the article's rule with the ``(Δ, γ)`` of the named scenario
    (``scenario``, a key of ``ARTICLE_SCENARIOS`` or ``"article"``; by default Δ = 0.5, γ = 0.1): two scenarios
    can share their model and differ only in the rule, so the model alone cannot tell them apart.
    """
    if not params.fill.quotes_matter:
        named = ARTICLE_SCENARIOS.get("article_low_volatility" if scenario == "article" else scenario or "")
        spread_base, gamma = (named.spread_base, named.gamma) if named else (0.5, 0.1)
        # Quotes do not move fills here, so the flipped rule would only repeat the rule's row (same spread 2Δ+γ|I|).
        return Baselines([ArticleRule(spread_base, gamma)], None)
    solution = exact_solution(params)
    policies: list[Policy] = [DPPolicy(params, solution)] if solution is not None else []
    policies.append(ArticleRule(0.5, 0.1))
    benchmark = None
    if tuned:
        for tuned_policy in (tune_article_rule(params).policy, tune_linear_skew(params).policy):
            renamed = copy.copy(tuned_policy)  # the tuners cache their policies
            renamed.name = f"{tuned_policy.name} (tuned)"
            policies.append(renamed)
        if solution is None:
            benchmark = best_tuned_heuristic(params).policy.name
    policies += [LinearSkew(0.7, 0.06), *applicable_baselines(params)]
    if strawmen:
        policies += [ConstantSpread(0.5), ArticleRule(0.5, 0.1, flipped=True)]
    return Baselines(policies, benchmark)


COLUMNS = (
    ("policy", "policy", "{}"),
    ("exact_return", "exact E[return]", "{:.2f}"),
    ("mean_return", "mean return", "{:.2f}"),
    ("return_se", "± s.e.", "{:.2f}"),
    ("pct_of_benchmark", "% of DP", "{:.1f}"),
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


COMPACT_COLUMNS = ("policy", "exact_return", "mean_return", "return_se", "pct_of_benchmark", "diff_vs_reference")
"""The columns of the short table (TensorBoard's text tab shows it without wrapping in a 1400-pixel window)."""


def markdown_table(
    rows: Sequence[PolicyReport], benchmark: str | None = None, columns: Sequence[str] | None = None
) -> str:
    """The comparison as a Markdown table; ``benchmark`` names the policy ``% of`` refers to where there is no DP.

    ``columns`` picks some of :data:`COLUMNS` by key (e.g. :data:`COMPACT_COLUMNS`); by default, all of them.
    """
    shown = COLUMNS if columns is None else tuple(column for column in COLUMNS if column[0] in columns)
    if benchmark is not None:
        title = "% of best heuristic"
    elif any(row.pct_of_benchmark is not None for row in rows):
        title = "% of DP"
    else:  # neither a DP nor a benchmark heuristic (article mode, or untuned heuristics without a DP)
        title = "% of benchmark"
    titles = {"pct_of_benchmark": title}
    header = "| " + " | ".join(titles.get(key, title) for key, title, _ in shown) + " |"
    rule = "|" + "|".join("---" if key == "policy" else "---:" for key, _, _ in shown) + "|"
    lines = [header, rule]
    for row in rows:
        values = asdict(row)
        cells = ["–" if values[key] is None else fmt.format(values[key]) for key, _, fmt in shown]
        lines.append("| " + " | ".join(cells) + " |")
    if benchmark is not None:
        lines.append(f"\nNo exact optimum exists for this model; the best heuristic is {benchmark}.")
    return "\n".join(lines)


def write_report(
    rows: Sequence[PolicyReport], params: MarketParams, out: Path, meta: dict, benchmark: str | None = None
) -> None:
    """Write ``comparison.json`` and ``comparison.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    if benchmark is None and exact_solution(params) is not None:
        benchmark_name: str | None = "DP optimum"
    else:
        benchmark_name = benchmark
    payload = {"params": params.as_dict(), **meta, "benchmark": benchmark_name}
    payload["rows"] = [asdict(row) for row in rows]
    (out / "comparison.json").write_text(json.dumps(payload, indent=2, allow_nan=True))
    (out / "comparison.md").write_text(markdown_table(rows, benchmark) + "\n")


def _folder_name(label: str) -> str:
    # A file name from the model's description: "preset=default lam=0.002" -> "evaluate_preset-default_lam-0.002".
    return "evaluate_" + re.sub(r"[^A-Za-z0-9._-]+", "_", label.replace("=", "-")).strip("_")


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
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the results (default: a new runs/evaluate_<model>_<n>)"
    )
    args = parser.parse_args(argv)
    preset, params = params_from_cli(parser, args.preset, args.env_kwargs)
    if not 2 <= args.episodes <= MAX_EPISODES:
        parser.error(f"--episodes {args.episodes} is invalid: must be in [2, {MAX_EPISODES:,}]")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed {args.seed} is invalid: must be in [0, 2**32 - 1]")
    label = " ".join([f"preset={args.preset}", *args.env_kwargs])
    try:  # before the computation, so that an unwritable folder is found at once
        out = args.out if args.out is not None else new_numbered_folder(Path("runs"), _folder_name(label))
        check_writable(out)
    except OSError as error:
        parser.error(f"--out: cannot write results: {error}")
    reason = unsolvable_reason(params)
    if reason is not None:
        print(f"no DP benchmark: {reason}")
        if params.fill.quotes_matter and not args.no_tuning:
            print(f"tuning the heuristics by Monte Carlo on {TUNING_EPISODES:,} episodes per candidate …", flush=True)
    policies, benchmark = baseline_policies(params, tuned=not args.no_tuning, scenario=preset)
    rows = compare(policies, params, args.episodes, args.seed, benchmark=benchmark)
    table = markdown_table(rows, benchmark)
    print(f"{args.episodes} episodes per policy, seed {args.seed}, {label}")
    print(table)
    write_report(rows, params, out, {"episodes": args.episodes, "seed": args.seed}, benchmark)
    written = "comparison.json"
    if params.fill.quotes_matter:
        from agents.plots import policy_figure, save_figure

        save_figure(policy_figure(policies, params), out / "policies.png")
        written += " and policies.png"
    print(f"wrote {out / 'comparison.md'}, {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
