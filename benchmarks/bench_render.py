"""Cost of ``render_mode="rgb_array"``: milliseconds per frame, median of several runs.

Run: ``python benchmarks/bench_render.py`` (``--quick`` for a smoke run, ``--T`` for another horizon). The process
pins itself to one CPU core, as ``bench_env.py`` does. Each case renders a frame after the reset and after every step
of an episode of ``T`` steps, as ``RecordVideo`` does, and reports the mean time of a frame over the episode; the env
has drawn a frame before, so its figure exists (the first frame, which makes it, is reported on its own). The
reference is the approach the env used before: a new figure for every frame, ``figure_to_rgb(episode_figure(history))``,
timed at four points of an episode (a whole episode of it takes a minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from bench_env import OFFSET_ACTION, machine

import mm_env
from mm_env.render import LIVE_DPI, LIVE_FIGSIZE, episode_figure, figure_to_rgb


def episode_frame_ms(env: mm_env.MarketMakingEnv | mm_env.MarketMakingVectorEnv, seed: int) -> float:
    """Mean milliseconds of ``render()`` over one episode (the frame after the reset and after each step)."""
    vector = isinstance(env, mm_env.MarketMakingVectorEnv)
    action = np.full((env.num_envs, 2) if vector else 2, OFFSET_ACTION, dtype=np.float32)
    env.reset(seed=seed)
    start = time.perf_counter()
    env.render()
    rendering = time.perf_counter() - start
    for _ in range(env.params.T):
        env.step(action)
        start = time.perf_counter()
        env.render()
        rendering += time.perf_counter() - start
    return 1000 * rendering / (env.params.T + 1)


def last_frame_ms(env: mm_env.MarketMakingEnv | mm_env.MarketMakingVectorEnv, frames: int = 20) -> float:
    """Median milliseconds of ``render()`` with the whole episode drawn (call after an episode)."""
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        env.render()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def first_frame_ms(make: Callable[[], mm_env.MarketMakingEnv | mm_env.MarketMakingVectorEnv]) -> float:
    """Milliseconds of the first ``render()`` of a new env, which makes its figure."""
    env = make()
    env.reset(seed=0)
    start = time.perf_counter()
    env.render()
    return 1000 * (time.perf_counter() - start)


def episode_history(T: int) -> dict[str, list[float]]:
    """The history of one episode of ``T`` steps, as the env records it for ``render()``."""
    env = mm_env.MarketMakingEnv(T=T, render_mode="rgb_array")
    env.reset(seed=0)
    action = np.full(2, OFFSET_ACTION, dtype=np.float32)
    for _ in range(T):
        env.step(action)
    return env._renderer.history


def reference_frame_ms(history: dict[str, list[float]], t: int, T: int) -> float:
    """Milliseconds of the frame after ``t`` steps drawn as the env did before: a new figure, drawn whole."""
    partial = {key: values[:t] for key, values in history.items()}
    start = time.perf_counter()
    figure_to_rgb(episode_figure(partial, title=f"t = {t} / {T}"))
    return 1000 * (time.perf_counter() - start)


def median_ms(measure: Callable[[], float], repeats: int) -> float:
    measure()  # warm-up: the figure, the fonts and matplotlib's caches
    return statistics.median(measure() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (the median is reported)")
    parser.add_argument("--T", type=int, default=200, help="episode length")
    parser.add_argument("--quick", action="store_true", help="two runs per case, for a smoke run")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    T = args.T
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {machine()}; pinned to one core; T = {T}; median of {repeats} runs")

    history = episode_history(T)
    # The mean over an episode from four evenly spaced frames: a frame costs about the same at every step.
    points = [T // 4, T // 2, 3 * T // 4, T]
    reference = [median_ms(lambda t=t: reference_frame_ms(history, t, T), repeats) for t in points]
    reference_episode, reference_last = statistics.mean(reference), reference[-1]
    print(f"reference, a new figure per frame (900 x 750): episode mean {reference_episode:6.1f} ms/frame, ", end="")
    print(f"whole episode {reference_last:6.1f} ms/frame")
    cases: list[tuple[str, Callable[[], mm_env.MarketMakingEnv | mm_env.MarketMakingVectorEnv]]] = [
        ("MarketMakingEnv", lambda: mm_env.MarketMakingEnv(T=T, render_mode="rgb_array")),
        ("MarketMakingVectorEnv, num_envs=4", lambda: mm_env.MarketMakingVectorEnv(4, T=T, render_mode="rgb_array")),
    ]
    for name, make in cases:
        env = make()
        seeds = iter(range(1_000_000))  # the same episodes for every case
        episode = median_ms(lambda env=env, seeds=seeds: episode_frame_ms(env, next(seeds)), repeats)
        last = last_frame_ms(env)  # after the last episode: its whole history is drawn
        print(f"{name:<34} episode mean {episode:6.1f} ms/frame ({reference_episode / episode:.0f}x faster), ", end="")
        print(f"whole episode {last:6.1f} ms/frame ({reference_last / last:.0f}x faster)")
    first = median_ms(lambda: first_frame_ms(cases[0][1]), repeats)
    width, height = (round(inches * LIVE_DPI) for inches in LIVE_FIGSIZE)
    print(f"frames of {width} x {height}; the first frame of an env, which makes its figure: {first:.1f} ms")


if __name__ == "__main__":
    main()
