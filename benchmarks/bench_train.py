"""Training quality and time: runs ``train.py`` and reports wall time and the final comparison.

Run: ``python benchmarks/bench_train.py`` (the default ``python train.py``), or pass ``train.py`` arguments after
``--``, e.g. ``python benchmarks/bench_train.py -- --algo sac``. ``--twice`` runs it twice with the same seed and
checks that both runs give the same result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_training(train_args: list[str], log_dir: Path) -> tuple[float, Path]:
    start = time.perf_counter()
    command = [sys.executable, str(ROOT / "train.py"), "--log-dir", str(log_dir), "--no-progress-bar", *train_args]
    subprocess.run(command, check=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    return seconds, max(log_dir.iterdir(), key=lambda p: p.stat().st_mtime)


def report(seconds: float, run_dir: Path, train_args: list[str]) -> None:
    """The wall time and the run's own final table (one market maker, or the game's)."""
    comparison = json.loads((run_dir / "comparison.json").read_text())
    print(f"\npython train.py {' '.join(train_args)}: {seconds / 60:.1f} min wall time")
    print(f"final comparison on {comparison['episodes']:,} episodes (seed {comparison['seed']}):")
    print((run_dir / "comparison.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--twice", action="store_true", help="run twice with the same seed and compare")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("train_args", nargs="*", help="arguments for train.py (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        log_dir = args.log_dir or Path(scratch)
        log_dir.mkdir(parents=True, exist_ok=True)
        seconds, first = run_training(args.train_args, log_dir)
        report(seconds, first, args.train_args)
        if args.twice:
            _, second = run_training(args.train_args, log_dir)
            rows = [json.loads((run / "comparison.json").read_text())["rows"] for run in (first, second)]
            same = rows[0] == rows[1]
            print(f"\nsame seed, same device, second run: {'identical results' if same else 'DIFFERENT results'}")
            if not same:
                sys.exit(1)


if __name__ == "__main__":
    main()
