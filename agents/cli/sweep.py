"""Sweeps on Ray Tune: a grid of model parameters × algorithms × seeds, each trial an ordinary training run.

Examples::

    mm-env-sweep sweeps/example.yml                       # on this machine (Ray started in-process)
    mm-env-sweep sweeps/example.yml --address HOST:6379   # on a running Ray cluster (or RAY_ADDRESS)
    mm-env-sweep sweeps/example.yml --out runs/sweeps/try2 --max-failures 3

(``python -m agents.cli.sweep`` is the same command.) The YAML file names the grid (``grid``: model parameter → list
of values; the cartesian product gives the cells), the algorithms and the seeds, and the settings every run shares
(see ``sweeps/example.yml``). Every trial is one ``train.py`` run in ``<out>/<cell>/seed<seed>/<algo>_<env>_<n>/``
with its TensorBoard logs, model and ``comparison.json``. At the end the sweep writes ``results.md``, ``results.csv``
and ``results.png`` into ``<out>``: per cell and algorithm, the mean ± standard error across seeds of the final
model's return as % of the DP value (or, where the model has no exact optimum, of the best tuned heuristic; for
competing market makers, of mm_0's exact best response). Running the same command again resumes: finished runs are
kept, the others (interrupted or failed) run again.

On a cluster of several machines the trials write their run folders themselves, so ``--out`` must be a folder that
every node sees at the same path (a shared file system), as Ray Tune's own storage requires.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from agents.cli.arguments import non_negative_integer, positive_integer, positive_number, run_with_extra
from agents.training.interrupts import DeferredInterrupts, PolledInterrupts, command_signals

if TYPE_CHECKING:
    from agents.sweep.spec import SweepSpec, TrialKey
    from agents.sweep.tune import TuneRun


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="mm-env-sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("spec", type=Path, help="the sweep's YAML file (see sweeps/example.yml)")
    parser.add_argument(
        "--address", help="a running Ray cluster, e.g. HOST:6379 (default: $RAY_ADDRESS, else Ray in-process)"
    )
    parser.add_argument(
        "--out", type=Path, help="the sweep folder (default: runs/sweeps/<name>; on a cluster: on a shared file system)"
    )
    parser.add_argument(
        "--max-failures", type=non_negative_integer, default=2, help="retries of a failed trial (default: %(default)s)"
    )
    parser.add_argument(
        "--cpus-per-trial", type=positive_number, default=1.0, help="CPUs Ray reserves per trial (default: 1)"
    )
    parser.add_argument(
        "--num-cpus", type=positive_integer, help="CPUs of the in-process Ray (default: all of this machine's)"
    )
    return parser


def main(argv: Sequence[str] | None = None, *, whole_process: bool = False) -> int:
    """The command with ``argv`` (default: ``sys.argv``; see :func:`run`); the core install: one line naming the extra.

    Ctrl-C and SIGTERM (timeout, Slurm, systemd) stop the sweep alike, once: the first stops the trials under way
    and ends it with status 130, the sweep folder left to resume; later ones only print a note. ``whole_process``:
    the call is the process's own command (:func:`command`), which exits right after, so after a signal both stay
    ignored up to the exit; otherwise (a call from Python, a notebook) the previous handlers come back (see
    :func:`agents.training.interrupts.command_signals`).
    """
    try:
        with command_signals(whole_process):
            return run_with_extra(run, argv, "mm-env-sweep", "ray")
    except KeyboardInterrupt:
        print("mm-env-sweep: interrupted before the trials started; run the same command again", file=sys.stderr)
        return 130


def run(argv: Sequence[str] | None = None) -> int:
    """The command: validate the sweep, run its pending trials on Ray Tune, write and print the results.

    Returns 0 when every trial finished, 1 when some failed after their retries or Ray Tune gave up, 130 when
    interrupted (run the same command again to resume), 2 for bad arguments or a bad sweep file.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # The sweep's own modules import SB3, torch and PyYAML: after the arguments (and their --help), with Ctrl-C and
    # SIGTERM held until they are complete (a KeyboardInterrupt inside a C extension's start can abort the process).
    with DeferredInterrupts(note=None):
        import yaml

        from agents.storage.files import atomic_write_text
        from agents.sweep.results import write_results
        from agents.sweep.runs import collect, unfinished_attempts
        from agents.sweep.spec import DEFAULT_ROOT, load_spec
        from agents.sweep.tune import pending_trials

    address = args.address or os.environ.get("RAY_ADDRESS") or None
    if address and args.num_cpus is not None:
        parser.error("--num-cpus sizes the in-process Ray; a cluster (--address or RAY_ADDRESS) has its own")
    try:
        spec = load_spec(args.spec)
        sweep_dir = (args.out or DEFAULT_ROOT / spec.name).resolve()
        pending = pending_trials(spec, sweep_dir)
        if not address and args.cpus_per_trial > (args.num_cpus or os.cpu_count() or 1):
            # Such a trial would wait for ever on this machine; a cluster's autoscaler may add nodes, so only here.
            raise ValueError(f"--cpus-per-trial {args.cpus_per_trial:g} is more than the CPUs Ray would have")
    except ValueError as error:
        parser.error(str(error))
    from agents.storage.files import writable_problem

    problem = writable_problem(sweep_dir)  # before any trial: the results are written there at the end
    if problem is not None:
        parser.error(f"--out {problem}")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sweep_dir / "sweep.yaml", yaml.safe_dump(spec.as_dict(), sort_keys=False))
    total = len(spec.trials())
    print(f"sweep {spec.name}: {total} trials, {total - len(pending)} already finished; folder {sweep_dir}")
    for line in unfinished_attempts(pending, sweep_dir):  # killed, interrupted or failed before: said, and rerun
        print(line)
    try:
        run = _run_pending(spec, sweep_dir, pending, args, address)
    except ValueError as error:  # no Ray Tune, or no Ray cluster at that address
        parser.error(" ".join(str(error).split()))
    outcomes = collect(spec, sweep_dir, run.errors)
    table = write_results(spec, sweep_dir, outcomes)
    print(f"\n{table}\n\nwrote {sweep_dir / 'results.md'}, results.csv and results.png")
    print(f"TensorBoard: tensorboard --logdir {sweep_dir}")
    unfinished = sum(outcome.metrics is None and outcome.error is None for outcome in outcomes)
    failed = sum(outcome.error is not None for outcome in outcomes)
    resume = "run the same command again to resume"
    if run.stopped:
        print(f"{run.stopped}\n{unfinished} of {total} trials unfinished: {resume}")
        return 1
    # A signal stops the trials under way (Tune polls for it) and Tune returns: unfinished trials also tell.
    if run.interrupted or unfinished:
        print(f"interrupted with {unfinished} of {total} trials unfinished: {resume}")
        return 130
    if failed:
        print(f"{failed} trial(s) failed after {args.max_failures} retries (see results.md): rerun to retry them")
        return 1
    return 0


def _run_pending(
    spec: SweepSpec, sweep_dir: Path, pending: Sequence[TrialKey], args: argparse.Namespace, address: str | None
) -> TuneRun:
    """Run the pending trials on Ray, started here or joined (``ValueError`` if there is no Ray at ``address``).

    Ctrl-C and SIGTERM (see :func:`main`): while Ray starts, they are noted and the sweep stops right after the start
    (:func:`~agents.sweep.tune.start_ray`); while the trials run, Tune polls for them and stops the trials itself
    (:func:`~agents.sweep.tune.run_tune`). A Ray started here is shut down whatever happens, later signals held.
    """
    from agents.sweep.tune import STOPPING_NOTE, TuneRun, run_tune, start_ray

    if not pending:
        return TuneRun()
    with DeferredInterrupts(note=None):  # a KeyboardInterrupt inside a C extension's start can abort the process
        try:
            import ray
            import ray.tune  # noqa: F401  (Ray without its Tune extra lacks it)
        except ImportError:
            raise ValueError("sweeps run on Ray Tune, which is not installed: pip install 'ray[tune]'") from None

    owned = not ray.is_initialized()  # else a caller's session (a notebook, the tests): joined, left running
    try:
        if owned:
            starting = PolledInterrupts(note=STOPPING_NOTE)
            start_ray(address, args.num_cpus, starting)
            if starting.received is not None:
                return TuneRun(interrupted=True)
        print(f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs, {args.cpus_per_trial:g} per trial", flush=True)
        return run_tune(spec, sweep_dir, pending, args.max_failures, args.cpus_per_trial)
    except KeyboardInterrupt:
        return TuneRun(interrupted=True)
    except ConnectionError as error:
        token = " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token)"
        raise ValueError(f"cannot connect to Ray at {address}: {error}{token}") from None
    finally:
        if owned:  # also after a failed or interrupted start: whatever it started is stopped
            with PolledInterrupts(note=None):  # a signal now only waits for the shutdown (and is remembered)
                ray.shutdown()


def command() -> NoReturn:
    """The ``mm-env-sweep`` command (also ``python -m agents.cli.sweep``): the whole process."""
    sys.exit(main(whole_process=True))


if __name__ == "__main__":
    command()
