"""Throughput of the JAX environment against the NumPy vector env: environment steps per second, same process.

Run: ``python benchmarks/bench_jax_env.py`` (``--quick`` for a smoke run, ``--sizes 4096 65536``, ``--all-cores`` to
let both use every core, ``--markdown`` for a table of docs/jax.md).

Two JAX figures, each ``MarketMakingEnv.step`` (auto-reset and ``info`` included) rolled with ``lax.scan`` inside one
``jit``: ``vmap``-ped over the environments with a key each (gymnax's way), and stepping the batch of ``reset_batch``
with one key per step (every environment's draws at once, as the NumPy vector env draws them). The NumPy figure is
``gym.make_vec("mm_env/MarketMaking-v0", n)`` stepped from Python. All take the same constant action.

The ratios are measured in one process, right after each other, because the machine is shared and noisy. By default
the process pins itself to one core (XLA's threads included), so that figures are per core. On a GPU the same command
measures the JAX steps on the device (the NumPy figure stays on the CPU).
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


def jax_rate(num_envs: int, steps: int, batched: bool) -> float:
    env = MarketMakingEnv()
    params = env.default_params
    action = jnp.full((num_envs, 2), OFFSET_ACTION, dtype=jnp.float32)
    vmapped = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def step(key, state):
        if batched:  # the whole batch's draws from one key
            return env.step(key, state, action, params)
        return vmapped(jax.random.split(key, num_envs), state, action, params)

    @jax.jit
    def roll(key, state):
        def body(carry, step_key):
            state, total = carry
            _, state, reward, *_ = step(step_key, state)
            return (state, total + reward.sum()), None

        return jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, steps))[0]

    if batched:
        _, state = env.reset_batch(jax.random.key(0), num_envs, params)
    else:
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
        runs = []
        for _ in range(1 if args.quick else args.repeats):
            numpy_value = numpy_rate(n, steps)
            keyed, batched = jax_rate(n, steps, batched=False), jax_rate(n, steps, batched=True)
            runs.append((numpy_value, keyed, batched, keyed / numpy_value, batched / numpy_value))
        rows.append((n, *(statistics.median(column) for column in zip(*runs, strict=True))))
        if not args.markdown:
            _, numpy_value, keyed, batched, keyed_ratio, batched_ratio = rows[-1]
            print(
                f"{n:>7} envs  NumPy {numpy_value:>12,.0f}/s  JAX, a key per env {keyed:>12,.0f}/s ({keyed_ratio:.2f}×)"
                f"  JAX, one key per step {batched:>12,.0f}/s ({batched_ratio:.2f}×)"
            )
    if args.markdown:
        print(
            "| environments | NumPy vector env (steps/s) | JAX, `vmap`, a key per env (steps/s) | × NumPy "
            "| JAX, the batch with one key (steps/s) | × NumPy |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        for n, numpy_value, keyed, batched, keyed_ratio, batched_ratio in rows:
            cells = (f"{n:,}", f"{numpy_value:,.0f}", f"{keyed:,.0f}", f"{keyed_ratio:.2f}", f"{batched:,.0f}")
            print(f"| {' | '.join(cells)} | {batched_ratio:.2f} |")


if __name__ == "__main__":
    main()
