"""A sweep's pending trials on Ray Tune: each one an ordinary training run, reported to Tune."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.storage.run_folder import RunFailed
from agents.sweep.results import benchmark_text
from agents.sweep.runs import check_finished_run, finished_run, read_metrics
from agents.sweep.spec import TUNE_FOLDER, SweepSpec, TrialKey, trial_dir
from agents.training.experiment import prepare
from agents.training.interrupts import PolledInterrupts


def run_trial(config: dict[str, Any], spec: dict[str, Any], sweep_dir: str) -> None:
    """Ray Tune's trainable: one ordinary training run (skipped if it already finished), reported to Tune.

    Runs in a Ray worker: everything it needs comes in its arguments (absolute paths; never the driver's working
    directory). SB3's and the comparison's printing goes to ``<algo>.log`` next to the run folder.
    """
    import torch
    from ray import tune

    from agents.training.experiment import train

    torch.set_num_threads(1)  # the small networks gain nothing from more; Ray gives each trial its own CPU
    sweep = SweepSpec.from_dict(spec)
    key = TrialKey(**config["trial"])
    run_dir = finished_run(key, Path(sweep_dir))
    if run_dir is None:
        prepared = prepare(sweep.run_config(key, Path(sweep_dir)))
        log_path = trial_dir(Path(sweep_dir), key) / f"{key.algo}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log, contextlib.redirect_stdout(log):
            run_dir, interrupted = train(prepared)
        if interrupted:
            raise RuntimeError(f"{run_dir}: training was interrupted before the final comparison")
    metrics = read_metrics(run_dir, key.algo)
    tune.report({**asdict(metrics), "run_dir": str(run_dir)})


def pending_trials(spec: SweepSpec, sweep_dir: Path) -> list[TrialKey]:
    """The trials without a finished run; a finished run trained with other settings is an error."""
    pending = []
    for key in spec.trials():
        run_dir = finished_run(key, sweep_dir)
        if run_dir is None:
            pending.append(key)
        else:
            check_finished_run(run_dir, prepare(spec.run_config(key, sweep_dir)))
    return pending


@dataclass(frozen=True)
class TuneRun:
    """What running the pending trials came to."""

    errors: Mapping[TrialKey, str] = field(default_factory=dict)
    """The error of each trial that failed after its retries (one line)."""
    interrupted: bool = False
    """Ctrl-C or SIGTERM stopped the sweep."""
    stopped: str | None = None
    """Why Ray Tune gave up, if it did."""


def run_tune(
    spec: SweepSpec, sweep_dir: Path, pending: Sequence[TrialKey], max_failures: int, cpus_per_trial: float
) -> TuneRun:
    """Run the pending trials with Ray Tune (Ray must be initialised)."""
    from ray import tune
    from ray.exceptions import RayError

    signals = PolledInterrupts(note=STOPPING_NOTE)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec.as_dict(), sweep_dir=str(sweep_dir)), {"cpu": cpus_per_trial}
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([key.as_dict() for key in pending])},
        # Reusing the workers spares each trial the imports of torch and SB3 (seconds, for short trials).
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_FOLDER,
            storage_path=str(sweep_dir),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,  # Tune's tables are wide and long; one line per trial instead (progress_callback)
            callbacks=[progress_callback(len(pending))],
            stop=stop_on_signal(signals),
        ),
    )
    try:
        with signals, _without_tune_sigint_handler():
            results = tuner.fit()
    except (RuntimeError, RayError, tune.TuneError) as error:
        # Tune gives up on failures it does not classify, e.g. a worker killed by Ray's out-of-memory monitor
        # (in Ray 2.58). The finished runs are on disk: report them, and a rerun resumes.
        return TuneRun(stopped=f"Ray Tune stopped: {' '.join(str(error).split())[:300]}")
    errors = {}
    for index in range(len(results)):  # a ResultGrid iterates by index: it has __getitem__ but no __iter__
        result = results[index]
        if result.error is not None:
            if result.config is None:  # Tune keeps every trial's config; None would mean a trial it never started
                raise RuntimeError(f"Tune reported a failed trial without its config: {result.error}")
            key = TrialKey(**result.config["trial"])
            errors[key] = trial_error(result.error)
    return TuneRun(errors, interrupted=signals.received is not None)


def trial_error(error: BaseException) -> str:
    """One line on why a trial failed.

    A failed run's own message (what failed, and what its folder holds), else the end of Ray's message (the
    exception's last line, after Ray's traceback).
    """
    cause = getattr(error, "cause", None)  # Ray's task error holds the exception the trial raised
    if isinstance(cause, RunFailed):
        return " ".join(str(cause).split())
    return " ".join(str(error).split())[-300:]


STOPPING_NOTE = "stopping the sweep: the trials under way are stopped; run the same command again to resume"


def stop_on_signal(signals: PolledInterrupts) -> Any:
    """A Tune stopper that ends the whole sweep once ``signals`` has received Ctrl-C or SIGTERM.

    Tune polls it between its steps (every 0.1 s or so) and stops the trials under way itself, so that no exception
    is raised inside Tune or Ray (which would end in a stack dump and their processes left as they were).
    """
    from ray import tune

    class StopOnSignal(tune.Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return signals.received is not None

    return StopOnSignal()


@contextlib.contextmanager
def _without_tune_sigint_handler() -> Iterator[None]:
    """Keep Tune from replacing the Ctrl-C handler with its own during the block: ours stops it instead.

    Tune's handler logs a warning of several lines and lets a second Ctrl-C raise inside Tune; ours
    (:func:`stop_on_signal`) only asks it to stop. The setting Tune reads, ``TUNE_DISABLE_SIGINT_HANDLER``, is put
    back as it was when the block ends.
    """
    name = "TUNE_DISABLE_SIGINT_HANDLER"
    previous = os.environ.get(name)
    os.environ[name] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def progress_callback(total: int) -> Any:
    """A Tune callback printing one line per finished, retried or failed trial."""
    from ray import tune

    class Progress(tune.Callback):
        def __init__(self) -> None:
            self.done = 0

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            self.done += 1
            print(
                f"[{self.done}/{total}] {_trial_text(trial)}: {result['pct']:.1f}% of "
                f"{benchmark_text(result['benchmark'], result['exact'])} ({result['time_total_s']:.0f} s)",
                flush=True,
            )

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"{_trial_text(trial)} failed; retrying it", flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"{_trial_text(trial)} failed after its retries (error in {trial.error_file})", flush=True)

    return Progress()


def _trial_text(trial: Any) -> str:
    key = trial.config["trial"]
    return f"{key['cell']} {key['algo']} seed {key['seed']}"


def start_ray(address: str | None, num_cpus: int | None, signals: PolledInterrupts) -> None:
    """Connect to a Ray cluster at ``address``, or start Ray in-process (Ray must not be initialised yet).

    Ctrl-C and SIGTERM during the start only set ``signals.received`` (printing its note): nothing is raised inside
    Ray's start, which would leave its processes half started; the caller stops right after it and shuts Ray down.
    The command's handlers stay in force throughout: ``ray.init`` would otherwise replace the SIGTERM handler with
    its own before it starts anything (``sys.exit(15)``: status 15, nothing shut down), see
    :func:`_ray_keeps_the_sigterm_handler`; once it has returned, the handlers it found are installed again (at the
    level of the operating system too), whatever a Ray without those settings did.
    """
    import ray

    handlers = _signal_handlers()
    try:
        with signals, _ray_keeps_the_sigterm_handler():
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _ray_keeps_the_sigterm_handler() -> Iterator[None]:
    """Within the block, ``ray.init`` leaves the handlers of this process's signals as they are.

    ``ray.init`` installs a Python SIGTERM handler through ``ray._private.utils.set_sigterm_handler`` (its only use
    in the driver), and its core a C-level one for SIGTERM and the crash signals (a stack dump, then abort or the
    previous handler) unless ``RAY_DISABLE_FAILURE_SIGNAL_HANDLER``, which Ray reads when its core starts. The block
    makes the first call do nothing and sets the second for this process only (Ray's own processes, started with the
    environment, keep their handlers), and puts both back when it ends. Where a Ray lacks either, it is left alone.
    """
    import ray._private.ray_constants as ray_constants
    import ray._private.utils as ray_utils

    changes: list[tuple[Any, str, Any]] = [
        (ray_utils, "set_sigterm_handler", _keep_handler),
        (ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", True),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in changes if hasattr(module, name)]
    try:
        for module, name, value in changes:
            if hasattr(module, name):
                setattr(module, name, value)
        yield
    finally:
        for module, name, value in originals:
            setattr(module, name, value)


def _keep_handler(handler: Any) -> None:
    """Ray's ``set_sigterm_handler`` within :func:`_ray_keeps_the_sigterm_handler`: the handler in force stays."""


def _signal_handlers() -> dict[int, Any]:
    """The handlers of Ctrl-C and SIGTERM, to install again after ``ray.init`` (in the main thread; elsewhere none).

    Starting Ray in-process installs, below the Python handlers, a C-level one from Ray's core for SIGTERM (a stack
    dump, then the Python handler). Installing the command's handlers again restores them at the level of the
    operating system too; the command then stops the trials and shuts Ray down itself.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    return {number: handler for number, handler in handlers.items() if handler is not None}
