"""Train a Stable-Baselines3 agent to quote, log it to TensorBoard, and compare it with the article's rule and the DP.

The main job, installed as ``mm-env-train`` (also ``python -m agents.train``, or ``python train.py`` in a checkout).

Examples::

    mm-env-train                                      # PPO on the default preset, six to eight minutes on two cores
    mm-env-train --algo sac --timesteps 200000        # another algorithm, another budget
    mm-env-train --env-kwargs preset=easy lam=0.003 --hyperparams learning_rate=1e-4
    mm-env-train --evaluate runs/ppo_MarketMaking-v0_1              # compare a saved run again, no training
    mm-env-train --continue-from runs/ppo_MarketMaking-v0_1 --timesteps 1000000

Watch it with ``tensorboard --logdir runs``.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

import mm_env
from agents.cli import TRAIN_COMMAND, add_env_kwargs_argument, parse_key_values
from agents.game_training import PreparedGame, is_game, prepare_game, train_game
from agents.training import ALGORITHMS, RunConfig, continued_config, prepare, train


def _positive(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(value)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog=TRAIN_COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", choices=sorted(ALGORITHMS), help="algorithm (default: ppo)")
    parser.add_argument("--env", help=f"registered env id (default: {mm_env.MARKET_MAKING_ID})")
    add_env_kwargs_argument(parser)
    parser.add_argument("--timesteps", type=_positive, help="training steps (default: the hyperparameter file's)")
    parser.add_argument("--seed", type=int, help="random seed (default: 0; with --evaluate, the run's own)")
    parser.add_argument("--n-envs", type=_positive, help="parallel environments (default: the hyperparameter file's)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, ... (default: %(default)s)")
    parser.add_argument(
        "--torch-threads",
        type=_positive,
        default=1,
        help="CPU threads for torch (default: %(default)s; the small networks gain nothing from more)",
    )
    parser.add_argument("--eval-freq", type=_positive, help="steps between evaluations (default: a tenth of the run)")
    parser.add_argument(
        "--eval-episodes", type=_positive, default=1_000, help="episodes per periodic evaluation (default: %(default)s)"
    )
    parser.add_argument(
        "--final-episodes",
        type=_positive,
        default=None,
        help="episodes of the final comparison (default: 10,000; with --evaluate, the run's own)",
    )
    parser.add_argument("--log-dir", default="runs", help="folder of the runs (default: %(default)s)")
    parser.add_argument("--hyperparams", nargs="+", metavar="KEY=VALUE", help="override tuned hyperparameters")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--evaluate", type=Path, metavar="RUN_DIR", help="compare a saved run again, without training")
    mode.add_argument("--continue-from", type=Path, metavar="RUN_DIR", help="continue training a saved run")
    parser.add_argument("--no-progress-bar", action="store_true", help="no progress bar even on a terminal")
    parser.add_argument("--verbose", action="store_true", help="print SB3's training tables")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, check every argument up front, then train or evaluate."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.final_episodes is not None and args.final_episodes < 2) or args.eval_episodes < 2:
        parser.error("--final-episodes and --eval-episodes must be at least 2")
    source = args.evaluate or args.continue_from
    if source is not None and not (source / "config.yaml").exists():
        parser.error(f"{source}: not a run folder (no config.yaml)")
    if args.evaluate is not None:
        from agents.training import evaluate_saved_run

        evaluate_saved_run(args.evaluate, args.final_episodes, args.seed, device=args.device)
        return 0
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
            if not (args.continue_from / "model.zip").exists():
                parser.error(f"--continue-from {args.continue_from}: no model.zip there")
            fixed = {"--algo": args.algo, "--env": args.env, "--env-kwargs": args.env_kwargs, "--n-envs": args.n_envs}
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
                **run_settings,
            )
        prepared = prepare_game(config) if is_game(config.env_id) else prepare(config)
    except ValueError as error:
        parser.error(str(error))
    torch.set_num_threads(args.torch_threads)
    # SIGTERM (timeout, Docker, Slurm, systemd) stops a run like Ctrl-C: what was learned is saved.
    signal.signal(signal.SIGTERM, _interrupt)
    if isinstance(prepared, PreparedGame):
        _, interrupted = train_game(prepared, continue_from=args.continue_from)
    else:
        _, interrupted = train(prepared, continue_from=args.continue_from)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
