"""Train a Stable-Baselines3 agent to quote, log it to TensorBoard, and compare it with the article's rule and the DP.

Examples::

    python train.py                                   # PPO on the default preset, about ten minutes on two cores
    python train.py --algo sac --timesteps 200000     # another algorithm, another budget
    python train.py --env-kwargs preset=easy lam=0.003 --hyperparams learning_rate=1e-4
    python train.py --evaluate runs/ppo_MarketMaking-v0_1          # compare a saved run again, no training
    python train.py --continue-from runs/ppo_MarketMaking-v0_1 --timesteps 1000000

Watch it with ``tensorboard --logdir runs``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import mm_env
from agents.cli import add_env_kwargs_argument, parse_key_values
from agents.training import ALGORITHMS, RunConfig, algorithm_kwargs, env_setup, final_comparison, load_hyperparams


def _positive(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1 or value != float(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", default="ppo", choices=sorted(ALGORITHMS), help="algorithm (default: %(default)s)")
    parser.add_argument("--env", default=mm_env.MARKET_MAKING_ID, help="registered env id (default: %(default)s)")
    add_env_kwargs_argument(parser)
    parser.add_argument("--timesteps", type=_positive, help="training steps (default: the hyperparameter file's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--n-envs", type=_positive, help="parallel environments (default: the hyperparameter file's)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, ... (default: %(default)s)")
    parser.add_argument("--eval-freq", type=_positive, help="steps between evaluations (default: a tenth of the run)")
    parser.add_argument(
        "--eval-episodes", type=_positive, default=1_000, help="episodes per periodic evaluation (default: %(default)s)"
    )
    parser.add_argument(
        "--final-episodes",
        type=_positive,
        default=10_000,
        help="episodes of the final comparison (default: %(default)s)",
    )
    parser.add_argument("--log-dir", default="runs", help="folder of the runs (default: %(default)s)")
    parser.add_argument(
        "--hyperparams", nargs="+", default=[], metavar="KEY=VALUE", help="override tuned hyperparameters"
    )
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
    if args.final_episodes < 2 or args.eval_episodes < 2:
        parser.error("--final-episodes and --eval-episodes must be at least 2")
    if args.evaluate is not None:
        if not (args.evaluate / "config.yaml").exists():
            parser.error(f"--evaluate {args.evaluate}: not a run folder (no config.yaml)")
        final_comparison(args.evaluate, args.final_episodes, 2_000_000 + args.seed, device=args.device)
        return 0
    if args.continue_from is not None and not (args.continue_from / "model.zip").exists():
        parser.error(f"--continue-from {args.continue_from}: no model.zip there")
    try:
        config = RunConfig(
            algo=args.algo,
            env_id=args.env,
            env_kwargs=parse_key_values(args.env_kwargs),
            timesteps=args.timesteps,
            seed=args.seed,
            n_envs=args.n_envs,
            device=args.device,
            eval_freq=args.eval_freq,
            eval_episodes=args.eval_episodes,
            final_episodes=args.final_episodes,
            log_dir=args.log_dir,
            hyperparams=parse_key_values(args.hyperparams, "--hyperparams"),
            progress_bar=sys.stderr.isatty() and not args.no_progress_bar,
            verbose=int(args.verbose),
        )
        env_setup(config.env_id, config.env_kwargs)
        algorithm_kwargs(config.algo, load_hyperparams(config.algo, config.env_id, config.hyperparams), n_actions=2)
    except ValueError as error:
        parser.error(str(error))
    from agents.training import train  # after the checks, so argument errors come back fast

    train(config, continue_from=args.continue_from)
    return 0


if __name__ == "__main__":
    sys.exit(main())
