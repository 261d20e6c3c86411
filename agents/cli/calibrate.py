"""Calibrate the model on a recorded market and print every estimate ± SE with the diagnostics (``MODEL.md`` §10.3).

``python -m agents.cli.calibrate TAPE --format bitstamp --dt 1 --tick 1 --lot 0.01 --out model.json`` reads the tape
(:mod:`mm_env.data.readers`), lays it on the step grid (:func:`mm_env.data.steps.to_steps`), calibrates
(:func:`agents.calibration.calibrate.calibrate`), prints the report, and writes the model's keywords as JSON to
``--out`` (for ``gym.make("mm_env/MarketMaking-v0", **json.load(file))``) and the fill curve's goodness-of-fit figure
to ``--figure``. ``T``, ``I_max``, ``lam``, ``alpha``, ``delta_max`` and ``reward`` are the user's choices, not the
data's. A malformed file or a tape that cannot give a model is one line (exit status 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.cli.arguments import positive_integer, positive_number
from mm_env.data.readers import FORMATS, read_tape
from mm_env.data.steps import ModelUnits, default_lot, to_steps


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.cli.calibrate",
        description="Calibrate the market-making model on a recorded market (MODEL.md §10).",
    )
    parser.add_argument(
        "tape",
        type=Path,
        help="the capture: bitstamp, its orders.csv(.gz) or their folder; lobster, the message file; csv, the file",
    )
    parser.add_argument("--format", choices=FORMATS, required=True, help="the tape's format")
    parser.add_argument("--dt", type=positive_number, default=1.0, help="seconds per step (default: %(default)s)")
    parser.add_argument("--tick", type=positive_number, required=True, help="quote currency per tick")
    parser.add_argument(
        "--lot", type=positive_number, default=None, help="base units per lot (default: the median order, 1-2-5 grid)"
    )
    parser.add_argument("--t0", type=float, default=None, help="the grid's origin, s (default: after the start)")
    parser.add_argument(
        "--fraction", type=_fraction, default=1.0, help="calibrate on this first share of the steps (default: all)"
    )
    parser.add_argument("--T", type=positive_integer, default=200, help="model episode length (default: %(default)s)")
    parser.add_argument(
        "--I-max", type=positive_integer, default=50, help="inventory limit, lots (default: %(default)s)"
    )
    parser.add_argument("--lam", type=float, default=0.005, help="running inventory penalty (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.0, help="terminal inventory penalty (default: %(default)s)")
    parser.add_argument(
        "--delta-max", type=positive_number, default=5.0, help="largest quote offset, ticks (default: %(default)s)"
    )
    parser.add_argument("--reward", choices=("spread", "mtm"), default="spread", help="(default: %(default)s)")
    parser.add_argument(
        "--delta-fit-max", type=positive_number, default=None, help="deepest point of the fill fit (default: delta-max)"
    )
    parser.add_argument(
        "--impact-exponent", type=positive_number, default=None, help="fix beta at this value (default: fit it)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the model's keywords to this JSON file")
    parser.add_argument("--estimates", type=Path, default=None, help="write every estimate and diagnostic as JSON")
    parser.add_argument("--figure", type=Path, default=None, help="draw the fill curve's fit to this PNG file")
    args = parser.parse_args(argv)
    if args.figure is not None and importlib.util.find_spec("matplotlib") is None:
        parser.error('--figure needs matplotlib: pip install "mm_env[render]"')

    from agents.calibration.calibrate import calibrate

    try:
        tape = read_tape(args.tape, args.format)
        lot = args.lot if args.lot is not None else default_lot(tape)
        stepped = to_steps(tape, ModelUnits(args.dt, args.tick, lot, args.t0))
        if args.fraction < 1.0:
            stepped = stepped.window(0, max(int(args.fraction * stepped.N), 1))
        calibration = calibrate(
            stepped,
            args.delta_fit_max,
            T=args.T,
            I_max=args.I_max,
            lam=args.lam,
            alpha=args.alpha,
            delta_max=args.delta_max,
            reward=args.reward,
            impact_exponent=args.impact_exponent,
        )
        from mm_env.presets import make_params

        make_params(**calibration.model_kwargs())  # the keywords build a valid model
    except (OSError, ValueError) as error:
        parser.error(" ".join(str(error).split()))
    print(f"tape: {tape.source}")
    print(f"lot {lot:g}" + (" (the median market order on the 1-2-5 grid)" if args.lot is None else ""))
    print("\n".join(calibration.report()))
    try:
        if args.out is not None:
            calibration.write_json(args.out)
            print(f"wrote the model's keywords to {args.out}")
        if args.estimates is not None:
            args.estimates.write_text(json.dumps(calibration.as_dict(), indent=2, allow_nan=True) + "\n")
            print(f"wrote the estimates to {args.estimates}")
        if args.figure is not None:
            from agents.calibration.figure import save_fill_figure

            save_fill_figure(calibration, args.figure)
            print(f"wrote the fill curve's fit to {args.figure}")
    except OSError as error:
        parser.error(f"cannot write: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
