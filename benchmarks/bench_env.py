"""Throughput of the environment front-ends: environment steps per second, median of several runs.

Run: ``python benchmarks/bench_env.py`` (add ``--quick`` for a fast smoke run, ``--markdown`` for a table of
docs/speed.md,
``--presets`` for the vector env on every preset, ``--competition`` for competing market makers, ``--selects`` for
the choices on random draws). The process pins itself to one CPU core so that figures are per core. The machine is
shared and noisy, so the table also gives each batched figure as a ratio to a reference measured right after it in
the same process: a minimal NumPy loop of the same dynamics (the cost of the front-end, the components and the
``info`` over the arithmetic of the model itself); for competing market makers the one-MM VecEnv of the same size;
for ``--selects`` the same batched step with ``numpy.where`` for the choices that :mod:`mm_env.xp` makes by
arithmetic (a ratio above 1: the arithmetic pays).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import mm_env
from mm_env.batch import MarketBatch
from mm_env.competition.sb3_vec_env import CompetitionVecEnv
from mm_env.config import EnvConfig
from mm_env.sb3_vec_env import MarketMakingVecEnv
from mm_env.xp import NUMPY, ArrayNamespace

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


def minimal_numpy_rate(num_envs: int, steps: int) -> float:
    """The default model written as one plain NumPy loop: decode the actions, draw, trade, reward, observe.

    No components, no ``info``, no episode bookkeeping: the reference that the vector env's overhead is measured
    against (MODEL.md §2 with the default parameters).
    """
    rng = np.random.default_rng(0)
    actions = np.full((num_envs, 2), OFFSET_ACTION, dtype=np.float32)
    inventory, cash, mid, t = np.zeros(num_envs), np.zeros(num_envs), np.full(num_envs, 100.0), np.zeros(num_envs)
    start = time.perf_counter()
    for _ in range(steps):
        offsets = np.clip(2.5 * actions.T.astype(np.float64) + 2.5, 0.0, 5.0)
        u_side, u_size, u_fill = rng.random((3, num_envs))
        side = np.where(u_side < 0.5, 1.0, -1.0)
        size = np.floor(9.0 * u_size) + 1.0
        offset = np.where(side > 0, offsets[1], offsets[0])
        executed = np.minimum(size, 50.0 + side * inventory) * (u_fill < 0.9 * np.exp(-2.0 * offset))
        traded = side * executed
        cash = cash + traded * mid + executed * offset
        inventory = inventory - traded
        mid = mid + 0.05 * traded
        t = t + 1.0
        reward = executed * offset - 0.005 * inventory * inventory  # noqa: F841  (computed, as the env does)
        obs = np.empty((num_envs, 2), dtype=np.float32)
        obs[:, 0], obs[:, 1] = inventory / 50.0, (200.0 - t) / 200.0
    return num_envs * steps / (time.perf_counter() - start)


def minimal_python_rate(steps: int) -> float:
    """The default model's step for one environment as a plain Python loop: decode, draw, trade, reward, observe.

    What a hand-written single environment does at the least (a float32 observation, a small ``info``): the
    reference for the one-environment front-ends.
    """
    rng = np.random.default_rng(0)
    action = np.full(2, OFFSET_ACTION, dtype=np.float32)
    t, inventory, cash, mid = 0, 0, 0.0, 100.0
    start = time.perf_counter()
    for _ in range(steps):
        bid_action, ask_action = action.tolist()
        bid, ask = min(max(2.5 * bid_action + 2.5, 0.0), 5.0), min(max(2.5 * ask_action + 2.5, 0.0), 5.0)
        u_side, u_size, u_fill = rng.random(3).tolist()
        side = 1 if u_side < 0.5 else -1
        size = int(9 * u_size) + 1
        offset = ask if side > 0 else bid
        executed = min(size, 50 + side * inventory) if u_fill < 0.9 * math.exp(-2.0 * offset) else 0
        traded = side * executed
        cash += traded * mid + executed * offset
        inventory -= traded
        mid += 0.05 * traded
        t += 1
        reward = executed * offset - 0.005 * inventory * inventory
        obs = np.array([inventory / 50, (200 - t) / 200], dtype=np.float32)
        info = {"inventory": inventory, "mid": mid, "cash": cash, "reward": reward, "obs": obs}
        if t == 200:
            t, inventory, cash, mid = 0, 0, 0.0, 100.0
    del info
    return steps / (time.perf_counter() - start)


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
        *(
            (
                f"MarketMakingVectorEnv, num_envs={n}",
                lambda n=n: vector_env_rate(mm_env.MarketMakingVectorEnv(n), max(8_000_000 // n // scale, 10)),
            )
            for n in (4096, 16384, 65536)
        ),
        ("MarketMakingVecEnv (SB3), num_envs=64", lambda: sb3_vec_env_rate(MarketMakingVecEnv(64), 5_000 // scale)),
        (
            "MarketMakingVecEnv (SB3), num_envs=4096, market_info=False",
            lambda: sb3_vec_env_rate(MarketMakingVecEnv(4096, market_info=False), 1_000 // scale),
        ),
    ]


def reference_cases(quick: bool) -> dict[str, Callable[[], float]]:
    """The minimal loops (plain Python for one env, NumPy for batches), keyed by the case they are the reference of."""
    scale = 10 if quick else 1
    references: dict[str, Callable[[], float]] = {
        "MarketMakingEnv, unwrapped": lambda: minimal_python_rate(200_000 // scale)
    }
    for n in (4096, 16384, 65536):
        steps = max(8_000_000 // n // scale, 10)
        references[f"MarketMakingVectorEnv, num_envs={n}"] = lambda n=n, steps=steps: minimal_numpy_rate(n, steps)
    return references


def preset_cases(quick: bool) -> list[tuple[str, Callable[[], float]]]:
    """The vector env at 4096 environments on every preset: what each extension of MODEL.md §7 costs."""
    steps = 2_000 // (10 if quick else 1)
    return [
        (f"preset={name}", lambda name=name: vector_env_rate(mm_env.MarketMakingVectorEnv(4096, preset=name), steps))
        for name in mm_env.PRESETS
        if not name.startswith("article_")
    ]


def competition_cases(quick: bool) -> list[tuple[str, Callable[[], float]]]:
    """Competing market makers' SB3 VecEnv at 64 environments (training's size), the one-MM VecEnv the reference.

    Against fixed opponents, and in self-play (each market maker's view is one environment).
    """
    steps = 5_000 // (10 if quick else 1)
    return [
        (
            f"CompetitionVecEnv (SB3), num_envs=64, {label}",
            lambda kwargs=kwargs: sb3_vec_env_rate(CompetitionVecEnv(64, **kwargs), steps),
        )
        for label, kwargs in (
            ("opponent=article", {"opponent": "article"}),
            ("opponent=monopoly", {"opponent": "monopoly"}),
            ("self-play", {"opponent": None, "self_play": True}),
        )
    ]


def _where_sign_of(condition):
    return np.where(condition, 1.0, -1.0)


def _where_signed_event(u, probability):
    return np.where(u < 0.5 * probability, 1.0, np.where(u < probability, -1.0, 0.0))


WHERE = dataclasses.replace(
    NUMPY, name="numpy, where", pick=np.where, sign_of=_where_sign_of, signed_event=_where_signed_event
)
"""NumPy's namespace with every choice on random draws made by ``numpy.where`` (the reference of ``--selects``)."""


def batch_step_rate(num_envs: int, steps: int, preset: str, xp: ArrayNamespace) -> float:
    """The bare batched step (decode, draws, transition, info) of ``num_envs`` environments in namespace ``xp``."""
    batch = MarketBatch(EnvConfig.from_kwargs(preset=preset), num_envs, xp=xp)
    rng = np.random.default_rng(0)
    actions = np.full((num_envs, 2), OFFSET_ACTION, dtype=np.float32)
    start = time.perf_counter()
    for step in range(steps):
        if step % batch.params.T == 0:
            batch.reset()
        batch.step(actions, rng)
    return num_envs * steps / (time.perf_counter() - start)


def select_cases(quick: bool) -> tuple[list[tuple[str, Callable[[], float]]], dict[str, Callable[[], float]]]:
    """The batched step with the arithmetic choices, and the same with ``numpy.where`` as each one's reference."""
    scale = 10 if quick else 1
    selected, references = [], {}
    for preset in ("default", "informed"):
        for n in (32, 4096, 65536):
            steps = max(4_000_000 // n // scale, 200 // scale)
            name = f"MarketBatch.step, preset={preset}, num_envs={n}"
            selected.append((name, lambda n=n, steps=steps, preset=preset: batch_step_rate(n, steps, preset, NUMPY)))
            references[name] = lambda n=n, steps=steps, preset=preset: batch_step_rate(n, steps, preset, WHERE)
    return selected, references


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
    parser.add_argument("--presets", action="store_true", help="the vector env at 4096 on every preset instead")
    parser.add_argument(
        "--competition", action="store_true", help="competing market makers' VecEnv, ratio to the one-MM VecEnv"
    )
    parser.add_argument(
        "--selects", action="store_true", help="the arithmetic choices on random draws, ratio to numpy.where"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {machine()}; pinned to one core; median of {args.repeats} runs")
    references = {} if args.presets else reference_cases(args.quick)
    selected = cases(args.quick)
    if args.presets:
        selected = preset_cases(args.quick)
    elif args.selects:
        selected, references = select_cases(args.quick)
    elif args.competition:
        selected = competition_cases(args.quick)
        one_mm = lambda: sb3_vec_env_rate(MarketMakingVecEnv(64), 5_000 // (10 if args.quick else 1))  # noqa: E731
        references = {name: one_mm for name, _ in selected}
    if args.markdown:
        reference = "× one-MM VecEnv" if args.competition else "× numpy.where" if args.selects else "× minimal loop"
        print(f"\n| front-end | env-steps/s | {reference} |\n|---|---:|---:|")
    for name, measure in selected:
        # The reference runs right after its case, so both see the same load on the machine.
        rate = median_rate(measure, args.repeats)
        ratio = f"{rate / median_rate(references[name], args.repeats):.2f}" if name in references else ""
        print(
            f"| {name} | {rate:,.0f} | {ratio} |" if args.markdown else f"{name:<60} {rate:>16,.0f} env-steps/s {ratio}"
        )


if __name__ == "__main__":
    main()
