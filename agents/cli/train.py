"""Train a Stable-Baselines3 agent to quote, log it to TensorBoard, and compare it with the article's rule and the DP.

The main job, installed as ``mm-env-train`` (also ``python -m agents.cli.train``, or ``python train.py`` in a checkout).

Examples::

    mm-env-train                                      # PPO on the default preset, about five minutes on two cores
    mm-env-train --algo sac --timesteps 200000        # another algorithm, another budget
    mm-env-train --env-kwargs preset=easy lam=0.003 --hyperparams learning_rate=1e-4
    mm-env-train --evaluate runs/ppo_MarketMaking-v0_1              # compare a saved run again, no training
    mm-env-train --continue-from runs/ppo_MarketMaking-v0_1 --timesteps 1000000
    mm-env-train --backend jax                        # PPO on JAX: the same run, under a minute on two cores
    mm-env-train --backend jax --seeds 5              # five seeds at once, each one's row and their mean ± s.e.

Watch it with ``tensorboard --logdir runs``.

Exit status: 0 done; 1 the run failed (the run folder holds the model, ``run_status.json`` says "failed" and
``error.log`` the traceback); 2 a bad argument or a run folder that cannot be used (one line, nothing written);
130 interrupted by Ctrl-C or SIGTERM (during training the model is saved first).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

# Only the standard library here: torch and SB3 take seconds to import, and they are imported inside main(), where
# Ctrl-C and SIGTERM end the start-up with one line instead of a traceback through importlib.
from agents import TRAIN_COMMAND
from agents.cli.arguments import integer, limits_problem, missing_jax, positive_integer, run_with_extra
from agents.training.interrupts import DeferredInterrupts, command_signals


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    import mm_env
    from agents.cli.options import add_env_kwargs_argument
    from agents.training.hyperparameters import ALGORITHMS

    parser = argparse.ArgumentParser(
        prog=TRAIN_COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", choices=sorted(ALGORITHMS), help="algorithm (default: ppo)")
    parser.add_argument(
        "--backend",
        choices=["sb3", "jax"],
        help="sb3: Stable-Baselines3 on PyTorch (default); jax: PPO on JAX, one market maker (needs the jax extra)",
    )
    parser.add_argument(
        "--seeds",
        type=positive_integer,
        help="with --backend jax: train this many seeds at once, --seed, --seed + 1, ... (default: 1)",
    )
    parser.add_argument("--env", help=f"registered env id (default: {mm_env.MARKET_MAKING_ID})")
    add_env_kwargs_argument(parser)
    parser.add_argument(
        "--timesteps", type=positive_integer, help="training steps (default: the hyperparameter file's)"
    )
    parser.add_argument("--seed", type=integer, help="random seed (default: 0; with --evaluate, the run's own)")
    parser.add_argument(
        "--n-envs", type=positive_integer, help="parallel environments (default: the hyperparameter file's)"
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, ... (default: %(default)s)")
    parser.add_argument(
        "--torch-threads",
        type=positive_integer,
        default=1,
        help="CPU threads for torch (default: %(default)s; the small networks gain nothing from more)",
    )
    parser.add_argument(
        "--eval-freq", type=positive_integer, help="steps between evaluations (default: a tenth of the run)"
    )
    parser.add_argument(
        "--eval-episodes",
        type=integer,
        default=1_000,
        help="episodes per periodic evaluation (default: %(default)s)",
    )
    parser.add_argument(
        "--final-episodes",
        type=integer,
        default=None,
        help="episodes of the final comparison (default: 10,000; with --evaluate, the run's own)",
    )
    parser.add_argument("--log-dir", default="runs", help="folder of the runs (default: %(default)s)")
    parser.add_argument("--hyperparams", nargs="+", metavar="KEY=VALUE", help="override tuned hyperparameters")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--evaluate", type=Path, metavar="RUN_DIR", help="compare a saved run again, without training")
    mode.add_argument("--continue-from", type=Path, metavar="RUN_DIR", help="continue training a saved run")
    parser.add_argument("--no-progress-bar", action="store_true", help="no progress bar even on a terminal")
    parser.add_argument(
        "--verbose", action="store_true", help="print SB3's training tables, and the traceback of a failure"
    )
    return parser


def refuse(parser: argparse.ArgumentParser, problem: object) -> NoReturn:
    """Exit with status 2 and one line, ``mm-env-train: error: <problem>`` (argparse's style, without the usage).

    For run folders that cannot be used: the arguments were fine, so the usage would only hide the message.
    """
    parser.exit(2, f"{parser.prog}: error: {problem}\n")


def main(argv: Sequence[str] | None = None, *, whole_process: bool = False) -> int:
    """Parse ``argv`` (default: ``sys.argv``), check every argument up front, then train or evaluate.

    Returns the exit status (see above). SIGTERM (timeout, Docker, Slurm, systemd) stops a run like Ctrl-C: what was
    learned is saved; the first signal stops the command, every later one only waits. ``whole_process``: the call is
    the process's own command (:func:`command`), which exits right after, so after a signal both stay ignored up to
    the exit; otherwise (a call from Python, a notebook) the previous handlers come back (see
    :func:`agents.training.interrupts.command_signals`).
    """
    try:
        with command_signals(whole_process):
            return run_with_extra(_main, argv, TRAIN_COMMAND, "train")  # the light core install: one line
    except KeyboardInterrupt:
        print(f"{TRAIN_COMMAND}: interrupted before the run started; nothing was written", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    _import_libraries()  # first: the parser reads the algorithms from agents.training, which imports torch and SB3
    parser = build_parser()
    args = parser.parse_args(argv)
    from agents.training.config import device_problem

    episodes = {"--eval-episodes": args.eval_episodes, "--final-episodes": args.final_episodes}
    problem = limits_problem({"--seed": args.seed}, episodes) or device_problem(args.device)
    if problem is not None:
        parser.error(problem)
    if args.backend == "jax" and missing_jax() is not None:
        refuse(parser, missing_jax())
    source = args.evaluate or args.continue_from
    if source is not None and not (source / "config.yaml").exists():
        refuse(parser, f"{source}: not a run folder (no config.yaml)")
    if source is not None and _backend_of(source) == "jax" and missing_jax() is not None:
        refuse(parser, f"{source} is a JAX run: {missing_jax()}")
    if args.evaluate is not None:
        return _evaluate(parser, args)
    return _train(parser, args)


def _backend_of(run_dir: Path) -> str | None:
    """The backend a run folder's ``config.yaml`` records, or ``None`` where it cannot be read (said later)."""
    from agents.storage.run_folder import RunFolderError, read_config
    from agents.training.hyperparameters import ALGORITHMS

    try:
        backend = read_config(run_dir, ALGORITHMS).get("backend")
    except RunFolderError:
        return None
    return backend if isinstance(backend, str) else None


def _import_libraries() -> None:
    """Import PyTorch, SB3 and the training code with Ctrl-C and SIGTERM held until the imports are complete.

    A KeyboardInterrupt raised inside a C extension's initialisation can abort the interpreter (SIGABRT); held, the
    signal takes effect right after, where it ends the start-up with one line.
    """
    with DeferredInterrupts(note=None):
        import torch  # noqa: F401

        import agents.training.experiment  # noqa: F401  (imports SB3 and every market family)


def _evaluate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from agents.storage.files import writable_problem
    from agents.storage.run_folder import RunFolderError, note_unfinished, one_line
    from agents.training.experiment import evaluate_saved_run

    problem = writable_problem(args.evaluate)
    if problem is not None:
        refuse(parser, problem)
    note = note_unfinished(args.evaluate)  # killed, interrupted or failed: say so before comparing what it left
    if note is not None:
        print(f"{args.evaluate}: {note}")
    try:
        evaluate_saved_run(args.evaluate, args.final_episodes, args.seed, device=args.device)
    except RunFolderError as error:
        refuse(parser, error)
    except KeyboardInterrupt:
        print(
            f"{TRAIN_COMMAND}: interrupted; the comparison was not finished (no file of it is half-written); "
            f"rerun: {TRAIN_COMMAND} --evaluate {args.evaluate}",
            file=sys.stderr,
        )
        return 130
    except Exception as error:
        if args.verbose:
            traceback.print_exception(type(error), error, error.__traceback__)
        hint = "" if args.verbose else " (--verbose shows the traceback)"
        print(f"{TRAIN_COMMAND}: error: evaluating {args.evaluate} failed: {one_line(error)}{hint}", file=sys.stderr)
        return 1
    return 0


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import torch

    import mm_env
    from agents.cli.options import parse_key_values
    from agents.storage.files import writable_problem
    from agents.storage.run_folder import RunFailed, RunFolderError
    from agents.training.algorithm import check_run
    from agents.training.config import RunConfig, size_problem
    from agents.training.experiment import continued_config, prepare, train

    try:
        run_settings = {
            "timesteps": args.timesteps,
            "eval_freq": args.eval_freq,
            "eval_episodes": args.eval_episodes,
            "final_episodes": args.final_episodes or 10_000,
            "device": args.device,
            "log_dir": args.log_dir,
            "progress_bar": sys.stderr.isatty() and not args.no_progress_bar,
            "verbose": int(args.verbose),
        }
        if args.continue_from is not None:
            fixed = {"--algo": args.algo, "--env": args.env, "--env-kwargs": args.env_kwargs, "--n-envs": args.n_envs}
            fixed.update({"--backend": args.backend, "--seeds": args.seeds})
            given = [flag for flag, value in {**fixed, "--hyperparams": args.hyperparams}.items() if value]
            if given:
                parser.error(f"--continue-from keeps the run's own settings; drop {', '.join(given)}")
            seed = {} if args.seed is None else {"seed": args.seed}
            config = continued_config(args.continue_from, **run_settings, **seed)
        else:
            config = RunConfig(
                algo=args.algo or "ppo",
                env_id=args.env or mm_env.MARKET_MAKING_ID,
                env_kwargs=parse_key_values(args.env_kwargs),
                seed=0 if args.seed is None else args.seed,
                n_envs=args.n_envs,
                hyperparams=parse_key_values(args.hyperparams, "--hyperparams"),
                backend=args.backend or "sb3",
                seeds=args.seeds or 1,
                **run_settings,
            )
        prepared = prepare(config)
        if prepared.config.backend == "jax":  # the hyperparameters are checked; no SB3 model to build
            problem = size_problem(prepared)
            if problem is not None:
                raise ValueError(problem)
        else:
            check_run(prepared)
    except RunFolderError as error:  # a --continue-from folder whose config.yaml cannot be used
        refuse(parser, error)
    except ValueError as error:
        parser.error(str(error))
    log_dir = Path(args.log_dir)
    made = not log_dir.exists()
    problem = writable_problem(log_dir)  # after the checks: a bad argument leaves no folder behind
    if problem is not None:
        parser.error(f"--log-dir {problem}")
    torch.set_num_threads(args.torch_threads)
    try:
        _, interrupted = train(prepared, continue_from=args.continue_from)
    except RunFolderError as error:  # the --continue-from folder, found unusable before the new run folder was made
        if made and not any(log_dir.iterdir()):
            log_dir.rmdir()  # the check above made it: leave nothing behind
        refuse(parser, error)
    except RunFailed as failure:
        if args.verbose:
            traceback.print_exception(type(failure.error), failure.error, failure.error.__traceback__)
        print(f"{TRAIN_COMMAND}: error: {failure}", file=sys.stderr)
        return 1
    return 130 if interrupted else 0


def command() -> NoReturn:
    """The ``mm-env-train`` command (also ``python -m agents.cli.train`` and ``python train.py``): the whole process."""
    sys.exit(main(whole_process=True))


if __name__ == "__main__":
    command()
