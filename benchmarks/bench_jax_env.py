"""Throughput of the JAX environment against the NumPy vector env: environment steps per second, same process.

Run: ``python benchmarks/bench_jax_env.py`` (``--quick`` for a smoke run, ``--sizes 4096 65536``, ``--all-cores`` to
let both use every core, ``--markdown`` for a table of docs/jax.md). The JAX figure is ``MarketMakingEnv.step``
(auto-reset and ``info`` included) ``vmap``-ped over the environments and rolled with ``lax.scan`` inside one
``jit``; the NumPy figure is ``gym.make_vec("mm_env/MarketMaking-v0", n)`` stepped from Python, each with the same
constant action. The ratio is measured in one process, right after each other, because the machine is shared and
noisy. By default the process pins itself to one core (XLA's threads included), so that figures are per core. On a
GPU the same command measures the JAX step on the device (the NumPy figure stays on the CPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

import mm_env  # noqa: F401  (registers the ids)
from mm_env.jax import MarketMakingEnv

OFFSET_ACTION = -0.72  # normalised action for an offset of 0.7, close to the optimal quote


def numpy_rate(num_envs: int, steps: int) -> float:
    env = gym.make_vec("mm_env/MarketMaking-v0", num_envs=num_envs)
    actions = np.full((num_envs, 2), OFFSET_ACTION, dtype=np.float32)
    env.reset(seed=0)
    env.step(actions)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(actions)
    elapsed = time.perf_counter() - start
    env.close()
    return num_envs * steps / elapsed


def jax_rate(num_envs: int, steps: int) -> float:
    env = MarketMakingEnv()
    params = env.default_params
    action = jnp.full((num_envs, 2), OFFSET_ACTION, dtype=jnp.float32)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    @jax.jit
    def roll(key, state):
        def body(carry, step_key):
            state, total = carry
            _, state, reward, *_ = step(jax.random.split(step_key, num_envs), state, action, params)
            return (state, total + reward.sum()), None

        return jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, steps))[0]

    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), num_envs), params)
    jax.block_until_ready(roll(jax.random.key(1), state))  # compile
    start = time.perf_counter()
    jax.block_until_ready(roll(jax.random.key(2), state))
    return num_envs * steps / (time.perf_counter() - start)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}; JAX {jax.__version__} on {jax.devices()[0].platform}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 65536])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps: a smoke run")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    sizes = [256] if args.quick else args.sizes
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {machine()}; {'all cores' if args.all_cores else 'pinned to one core'}; median of {args.repeats}")
    rows = []
    for n in sizes:
        steps = 20 if args.quick else max(20, 2_000_000 // n)
        ratios, numpy_rates, jax_rates = [], [], []
        for _ in range(1 if args.quick else args.repeats):
            numpy_rates.append(numpy_rate(n, steps))
            jax_rates.append(jax_rate(n, steps))
            ratios.append(jax_rates[-1] / numpy_rates[-1])
        rows.append((n, statistics.median(numpy_rates), statistics.median(jax_rates), statistics.median(ratios)))
        if not args.markdown:
            _, numpy_value, jax_value, ratio = rows[-1]
            print(
                f"{n:>7} envs  NumPy vector env {numpy_value:>12,.0f}/s  JAX {jax_value:>12,.0f}/s  ratio {ratio:.2f}"
            )
    if args.markdown:
        print("| environments | NumPy vector env (steps/s) | JAX, `lax.scan` (steps/s) | JAX / NumPy |")
        print("|---:|---:|---:|---:|")
        for n, numpy_value, jax_value, ratio in rows:
            print(f"| {n:,} | {numpy_value:,.0f} | {jax_value:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
