"""PPO on JAX: wall time, CPU time and the exact % of the DP optimum per seed, one seed at a time or many at once.

Run: ``python benchmarks/bench_jax_train.py`` trains seeds 0–4 one after the other on the default preset with the
default budget (:class:`agents.training.jax_ppo.PPOConfig`, as ``train.py --backend jax``), each in one process's
compiled program (the first pays the compilation), and prints each seed's times and its deterministic policy's exact
return as % of the DP. ``--at-once N`` trains seeds ``0 … N−1`` together in one process instead, as ``train.py
--backend jax --seeds N`` does (``vmap`` over the seeds; on a CPU one group of seeds per core, the groups side by
side; ``--groups`` sets their number, PPOConfig's ``seed_groups``), and prints the same per seed, with their mean ±
standard error and how many seeds would fit in five minutes at that speed. On a GPU it is the same command
(``--at-once 16``; one group); the device JAX uses is printed first. The training is the pipeline's, without its
periodic evaluations and final comparison (``train.py --backend jax`` adds those).

Examples::

    python benchmarks/bench_jax_train.py                      # seeds 0-4, one at a time
    python benchmarks/bench_jax_train.py --seeds 0            # seed 0 only
    python benchmarks/bench_jax_train.py --at-once 16         # 16 seeds in one process (the five-minute check)
    python benchmarks/bench_jax_train.py --env-kwargs preset=easy --timesteps 2e6
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import jax
import numpy as np

from agents.cli.arguments import positive_integer
from agents.cli.options import add_env_kwargs_argument, parse_key_values
from agents.evaluation.grading import grade
from agents.training.jax_backend import JaxPolicy, make_jax_env
from agents.training.jax_ppo import PPOConfig, Trainer
from mm_env.config import EnvConfig

BUDGET_SECONDS = 300.0
"""The time budget against which ``--at-once`` says how many seeds fit."""


def train(config: EnvConfig, ppo: PPOConfig, timesteps: int, seeds: list[int]) -> tuple[float, float, list[float]]:
    """Train ``seeds`` together; the wall and CPU seconds (compilation included) and each one's exact % of the DP."""
    env = make_jax_env(config)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer = Trainer(env, env.default_params, ppo, timesteps)
    state, _ = trainer.train(trainer.init(seeds), trainer.total_updates)
    jax.block_until_ready(state.params)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    grades = []
    for index in range(len(seeds)):
        params = jax.tree.map(lambda leaf, i=index: leaf[i], state.params)
        policy = JaxPolicy(params, activation=ppo.activation, features=config.features)
        graded = grade(policy, config)
        grades.append(graded.pct_of_benchmark if graded.exact else math.nan)
    return wall, cpu, grades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds trained one at a time (default: %(default)s)")
    parser.add_argument("--at-once", type=positive_integer, help="train seeds 0 … N−1 together instead")
    parser.add_argument(
        "--groups", type=positive_integer, help="with --at-once: groups of seeds side by side (default: one per core)"
    )
    parser.add_argument("--timesteps", type=positive_integer, help="steps per seed (default: PPOConfig's)")
    parser.add_argument("--hyperparams", nargs="+", metavar="KEY=VALUE", help="override PPOConfig's defaults")
    add_env_kwargs_argument(parser)
    args = parser.parse_args()
    if args.groups and not args.at_once:
        parser.error("--groups needs --at-once (seeds trained one at a time are one group each)")
    config = EnvConfig.from_kwargs(**parse_key_values(args.env_kwargs))
    ppo = PPOConfig.from_dict(parse_key_values(args.hyperparams, "--hyperparams"))
    timesteps = args.timesteps or ppo.n_timesteps
    print(
        f"JAX {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}); {timesteps:,} steps a seed"
    )
    if args.at_once:
        seeds = list(range(args.at_once))
        ppo = replace(ppo, seed_groups=args.groups) if args.groups else ppo.resolved()
        print(f"{len(seeds)} seeds in {min(len(seeds), ppo.seed_groups or 1)} group(s) side by side")
        wall, cpu, grades = train(config, ppo, timesteps, seeds)
        for seed, pct in zip(seeds, grades, strict=True):
            print(f"seed {seed}: {pct:.2f}% of the DP (exact)")
        mean, se = (
            float(np.mean(grades)),
            float(np.std(grades, ddof=1) / math.sqrt(len(grades))) if len(seeds) > 1 else 0.0,
        )
        print(f"{len(seeds)} seeds at once: {wall:.1f} s wall, {cpu:.1f} s CPU; {mean:.2f} ± {se:.2f}% of the DP")
        fit = int(len(seeds) * BUDGET_SECONDS / wall)
        print(f"at this speed about {fit} seeds fit in {BUDGET_SECONDS / 60:.0f} minutes (more seeds may run faster)")
        return
    for seed in (int(text) for text in args.seeds.split(",")):
        wall, cpu, (pct,) = train(config, ppo, timesteps, [seed])
        print(f"seed {seed}: {wall:.1f} s wall, {cpu:.1f} s CPU (compilation included): {pct:.2f}% of the DP (exact)")


if __name__ == "__main__":
    main()
