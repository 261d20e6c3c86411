"""Throughput of the environment front-ends: environment steps per second, median of several runs.

Run: ``python benchmarks/bench_env.py`` (add ``--quick`` for a fast smoke run, ``--markdown`` for a README table).
The process pins itself to one CPU core so that figures are per core.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import mm_env
from mm_env.sb3_vec_env import MarketMakingVecEnv

OFFSET_ACTION = -0.72  # normalised action for an offset of 0.7, close to the optimal quote


def single_env_rate(env: gym.Env, steps: int) -> float:
    action = np.full(2, OFFSET_ACTION, dtype=np.float32)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        terminated = env.step(action)[2]
        if terminated:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector_env_rate(env: gym.vector.VectorEnv, steps: int) -> float:
    actions = np.full((env.num_envs, 2), OFFSET_ACTION, dtype=np.float32)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(actions)
    return env.num_envs * steps / (time.perf_counter() - start)


def sb3_vec_env_rate(env: MarketMakingVecEnv, steps: int) -> float:
    actions = np.full((env.num_envs, 2), OFFSET_ACTION, dtype=np.float32)
    env.seed(0)
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        env.step(actions)
    return env.num_envs * steps / (time.perf_counter() - start)


def median_rate(measure: Callable[[], float], repeats: int) -> float:
    measure()  # warm-up: first-touch allocations and caches
    return statistics.median(measure() for _ in range(repeats))


def cases(quick: bool) -> list[tuple[str, Callable[[], float]]]:
    scale = 10 if quick else 1
    return [
        ("MarketMakingEnv, unwrapped", lambda: single_env_rate(mm_env.MarketMakingEnv(), 200_000 // scale)),
        (
            'gymnasium.make("mm_env/MarketMaking-v0")',
            lambda: single_env_rate(gym.make("mm_env/MarketMaking-v0"), 100_000 // scale),
        ),
        (
            "MarketMakingVectorEnv, num_envs=1",
            lambda: vector_env_rate(mm_env.MarketMakingVectorEnv(1), 50_000 // scale),
        ),
        (
            "MarketMakingVectorEnv, num_envs=64",
            lambda: vector_env_rate(mm_env.MarketMakingVectorEnv(64), 20_000 // scale),
        ),
        (
            "MarketMakingVectorEnv, num_envs=4096",
            lambda: vector_env_rate(mm_env.MarketMakingVectorEnv(4096), 2_000 // scale),
        ),
        ("MarketMakingVecEnv (SB3), num_envs=64", lambda: sb3_vec_env_rate(MarketMakingVecEnv(64), 5_000 // scale)),
        (
            "MarketMakingVecEnv (SB3), num_envs=4096, market_info=False",
            lambda: sb3_vec_env_rate(MarketMakingVecEnv(4096, market_info=False), 1_000 // scale),
        ),
    ]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="10x fewer steps, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {machine()}; pinned to one core; median of {args.repeats} runs")
    if args.markdown:
        print("\n| front-end | env-steps/s |\n|---|---:|")
    for name, measure in cases(args.quick):
        rate = median_rate(measure, args.repeats)
        print(f"| {name} | {rate:,.0f} |" if args.markdown else f"{name:<60} {rate:>16,.0f} env-steps/s")


if __name__ == "__main__":
    main()
