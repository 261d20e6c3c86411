"""The out-of-sample backtest of ``MODEL.md`` §10.6: calibrate on the first part of a tape, replay on the rest.

``python -m agents.cli.backtest TAPE --format bitstamp --dt 1 --tick 1 --lot 0.01 --I-max 100 --lam 1e-4
--delta-max 20 [--split 0.5] [--out DIR]`` reads the tape, lays it on the step grid, calibrates the model on the
first ``⌊N·split⌋`` steps (:func:`agents.calibration.calibrate.calibrate`), builds the model with ``T`` the test
part's length and the chosen ``I_max``, ``λ``, ``α`` and ``δ_max``, chooses the policies on the calibration part only
(the DP optimum under ``spread`` and ``mtm``, the tuned heuristics, the article's rule at its defaults in ticks, GLFT
on the unit-size companion, constant offsets at the touch and deeper), replays each on the test part with the tick
grid under both queue rules (:mod:`agents.evaluation.replay`), and prints the table of ``MODEL.md`` §10.7: each
policy's exact expected return in the calibrated model beside what the replay gave. The folder ``--out`` receives
``backtest.md``, ``backtest.json`` (the calibration, the model and every figure) and ``backtest.png`` (the mid and
quotes, the inventory and the P&L of each policy over the replayed window; with matplotlib).

One test window is one path: it shows the machinery and the model's misspecification, and ranks nothing.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.calibration.calibrate import Calibration, calibrate
from agents.cli.arguments import positive_integer, positive_number
from agents.evaluation.replay import ReplayReport, UnitSizeCompanion, replay_figure, replay_policy
from agents.evaluation.tuning import expected_returns, tune_article_rule, tune_linear_skew, tuning_problem
from agents.exact.dp import size_problem, unsolvable_reason
from agents.policies import ArticleRule, ConstantSpread, DPPolicy, Policy
from agents.storage.files import atomic_write_text, check_writable, new_numbered_folder, write_figure, write_json
from mm_env.data.readers import FORMATS, read_tape
from mm_env.data.steps import ModelUnits, SteppedTape, to_steps
from mm_env.params import MarketParams
from mm_env.presets import make_params

CONSTANT_OFFSETS = (0.5, 1.5, 3.5)
"""The constant offsets replayed (ticks): the touch on a one-tick spread, one tick deeper and three deeper."""
QUEUES = ("first", "strict")


@dataclass(frozen=True)
class BacktestRow:
    """One policy's line of the table: its exact expected return in the model, and its replays under both queues."""

    policy: str
    expected_return: float | None
    """Exact, in the calibrated model (``None`` where the model has no exact evaluation)."""
    replays: dict[str, ReplayReport]
    """By queue rule (``"first"``, ``"strict"``)."""


def choose_policies(model: MarketParams, tuned: bool, other_lams: Sequence[float] = ()) -> list[Policy]:
    """The policies of ``MODEL.md`` §10.6, each chosen on the calibrated ``model`` alone.

    The DP optimum under ``spread`` and under ``mtm`` (and under ``spread`` at each of ``other_lams``), the tuned
    linear skew and article rule (``tuned``), the article's rule at its defaults in ticks (Δ = 0.5, γ = 0.1), GLFT on
    the unit-size companion where it applies, and the constant offsets of :data:`CONSTANT_OFFSETS`.
    """
    spread, mtm = model.replace(reward="spread"), model.replace(reward="mtm")
    chosen: list[Policy] = []
    for variant, label in ((spread, "spread"), (mtm, "mtm")):
        if unsolvable_reason(variant) is None:
            chosen.append(_named(DPPolicy(variant), f"DP optimum, {label}, λ = {variant.lam:g}"))
    for lam in other_lams:
        chosen.append(_named(DPPolicy(spread.replace(lam=lam)), f"DP optimum, spread, λ = {lam:g}"))
    if tuned:
        for tune in (tune_linear_skew, tune_article_rule):
            best = copy.copy(tune(model).policy)  # the tuning is cached with its policy: a copy takes the new name
            chosen.append(_named(best, f"{best.name} (tuned)"))
    chosen.append(ArticleRule(0.5, 0.1))
    companion = UnitSizeCompanion()
    try:
        companion.companion(spread)
        chosen.append(companion)
    except ValueError:
        pass  # GLFT does not apply (a reward that does not map): left out
    chosen += [ConstantSpread(offset) for offset in CONSTANT_OFFSETS]
    return chosen


def _named(policy: Policy, name: str) -> Policy:
    policy.name = name
    return policy


def run_backtest(policies: Sequence[Policy], model: MarketParams, tape: SteppedTape, start: int) -> list[BacktestRow]:
    """Each policy's exact expected return in the calibrated ``model``, and its replays of ``tape`` from ``start``.

    The replays use the tick grid and both queue rules; ``model`` sets their ``T``, ``I_max``, ``λ``, ``α`` and
    bounds, the same for every policy (the DP optima built for ``mtm`` or another ``λ`` are judged in it too).
    """
    expected: list[float | None] = [None] * len(policies)
    if unsolvable_reason(model) is None and policies:  # exact, in batches of bounded memory
        expected = [float(mean) for mean in expected_returns(list(policies), model)]
    rows = []
    for policy, value in zip(policies, expected, strict=True):
        replays = {queue: replay_policy(policy, tape, model, start=start, queue=queue) for queue in QUEUES}
        rows.append(BacktestRow(policy.name, value, replays))
    return rows


TABLE_HEADER = (
    "| policy | model E[return] | captured | spread reward | mtm reward | P&L queue-first | P&L strict | fills "
    "(first/strict) | max abs(I) |"
)


def markdown_table(rows: Sequence[BacktestRow]) -> str:
    """The table of ``MODEL.md`` §10.7 (money in tick·lot, P&L in quote currency), with the fills and inventory."""
    lines = [TABLE_HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        first, strict = row.replays["first"], row.replays["strict"]
        expected = "–" if row.expected_return is None else f"{row.expected_return:.1f}"
        lines.append(
            f"| {row.policy} | {expected} | {first.captured:.1f} | {first.spread_reward:.1f} | {first.mtm_reward:.1f} "
            f"| {first.pnl:+.2f} | {strict.pnl:+.2f} | {first.fills}/{strict.fills} "
            f"| {first.max_abs_inventory} |"
        )
    return "\n".join(lines)


def _fraction(text: str) -> float:
    value = positive_number(text)
    if not value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in (0, 1)")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.cli.backtest",
        description="Calibrate the model on the first part of a recorded market and replay policies on the rest "
        "(MODEL.md §10.6).",
    )
    parser.add_argument("tape", type=Path, help="the recorded market (for bitstamp: orders.csv[.gz] or its folder)")
    parser.add_argument("--format", choices=FORMATS, required=True, help="the tape's format")
    parser.add_argument("--dt", type=positive_number, required=True, help="seconds per step")
    parser.add_argument("--tick", type=positive_number, required=True, help="quote currency per tick (model price)")
    parser.add_argument("--lot", type=positive_number, required=True, help="base units per lot (model size)")
    parser.add_argument("--I-max", dest="I_max", type=positive_integer, required=True, help="inventory limit, lots")
    parser.add_argument("--lam", type=_non_negative, required=True, help="running inventory penalty λ")
    parser.add_argument("--delta-max", dest="delta_max", type=positive_number, required=True, help="largest offset")
    parser.add_argument("--alpha", type=_non_negative, default=0.0, help="terminal penalty α (default: 0)")
    parser.add_argument(
        "--split", type=_fraction, default=0.5, help="share of the steps that calibrate (default: %(default)s)"
    )
    parser.add_argument(
        "--delta-fit-max", dest="delta_fit_max", type=positive_number, default=None,
        help="deepest point of the fill fit, ticks (default: --delta-max)",
    )  # fmt: skip
    parser.add_argument(
        "--other-lam", dest="other_lams", type=_non_negative, nargs="+", default=[], metavar="LAM",
        help="also replay the spread DP optimum at these λ",
    )  # fmt: skip
    parser.add_argument("--no-tuning", action="store_true", help="skip the tuned heuristics (they take a while)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (default: runs/backtest_<n>)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module's docstring)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        units = ModelUnits(args.dt, args.tick, args.lot)
        # A model with the user's choices, validated before the tape is read (which takes a while).
        make_params(I_max=args.I_max, lam=args.lam, alpha=args.alpha, delta_max=args.delta_max)
    except ValueError as error:
        parser.error(str(error))
    try:
        out = args.out if args.out is not None else new_numbered_folder(Path("runs"), "backtest")
        check_writable(out)
    except OSError as error:
        parser.error(f"--out: cannot write results: {error}")
    try:
        stepped = to_steps(read_tape(args.tape, args.format), units)
    except (ValueError, OSError) as error:
        parser.error(f"{args.tape}: {error}")
    calibration_steps = math.floor(stepped.N * args.split)
    test_steps = stepped.N - calibration_steps
    if calibration_steps < 2 or test_steps < 1:
        parser.error(f"--split {args.split}: the tape's {stepped.N} steps leave no calibration or no test part")
    try:
        calibration = calibrate(
            stepped.window(0, calibration_steps),
            args.delta_fit_max,
            T=test_steps,
            I_max=args.I_max,
            lam=args.lam,
            alpha=args.alpha,
            delta_max=args.delta_max,
        )
        model = make_params(**calibration.model_kwargs())
    except ValueError as error:
        parser.error(f"calibration: {error}")
    problem = size_problem(model) or (None if args.no_tuning else tuning_problem(model))
    if problem is not None:
        parser.error(f"{problem} (or pass --no-tuning)")
    print(
        f"{stepped.N} steps of {args.dt:g} s from {args.tape}: steps 0 … {calibration_steps - 1} calibrate, steps "
        f"{calibration_steps} … {stepped.N - 1} ({test_steps} steps) are replayed"
    )
    print("\n".join(calibration.report()))
    if not args.no_tuning:
        print("\ntuning the heuristics by exact evaluation (--no-tuning skips it) …", flush=True)
    policies = choose_policies(model, tuned=not args.no_tuning, other_lams=args.other_lams)
    rows = run_backtest(policies, model, stepped, calibration_steps)
    table = markdown_table(rows)
    print()
    print(
        f"replay of steps {calibration_steps} … {stepped.N - 1}, tick grid; money in tick·lot "
        f"({args.tick * args.lot:g} quote currency), P&L in quote currency"
    )
    print(table)
    command = " ".join(["python -m agents.cli.backtest", *(sys.argv[1:] if argv is None else argv)])
    _write(out, command, args, calibration, model, rows, calibration_steps, table)
    return 0


def _write(
    out: Path,
    command: str,
    args: argparse.Namespace,
    calibration: Calibration,
    model: MarketParams,
    rows: Sequence[BacktestRow],
    start: int,
    table: str,
) -> None:
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    payload = {
        "settings": settings,
        "calibration_steps": start,
        "test_steps": model.T,
        "calibration": calibration.as_dict(),
        "model": model.as_dict(),
        "rows": [
            {
                "policy": row.policy,
                "expected_return": row.expected_return,
                "replays": {queue: report.summary() for queue, report in row.replays.items()},
            }
            for row in rows
        ],
    }
    write_json(out / "backtest.json", payload)
    atomic_write_text(out / "backtest.md", f"`{command}`\n\n{table}\n")
    written = "backtest.md, backtest.json"
    if importlib.util.find_spec("matplotlib") is not None:
        reports = [row.replays[queue] for queue in QUEUES for row in rows]
        title = f"replay of steps {start} … {start + model.T - 1} (quotes and inventory: queue-first)"
        write_figure(replay_figure(reports, title), out / "backtest.png")
        written += " and backtest.png"
    else:
        print('note: no module named matplotlib: no backtest.png (pip install "mm_env[render]")')
    print(f"wrote {written} to {out}")


if __name__ == "__main__":
    sys.exit(main())
