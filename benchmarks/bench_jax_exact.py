"""The exact solvers on JAX against the NumPy ones, in the same process.

* the one-MM DP over 1,000 cells of ``λ × κ`` (40 × 25 on the default model): one batched call of
  :func:`agents.exact.jax_dp.solve_dp_grid` (the first call compiles) against a loop of
  :func:`agents.exact.dp.solve_dp`, and exact evaluation of the 1,000 optimal policies;
* the two-MM equilibrium at the defaults (with its certificates): :func:`agents.exact.game.solve_equilibrium`
  against :func:`agents.exact.game.jax_solve.solve_equilibrium` (the first call compiles).

Run: ``python benchmarks/bench_jax_exact.py`` (``--skip-dp`` or ``--skip-game`` for one half; ``--repeats``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from agents.exact.dp import evaluate_tables, solve_dp
from agents.exact.game import jax_solve, solve_equilibrium
from agents.exact.jax_dp import evaluate_tables_batch, solve_dp_grid
from mm_env.params import CompetitionParams
from mm_env.presets import make_params


def seconds(task: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = task()
    return time.perf_counter() - start, result


def median_seconds(task: Callable[[], object], repeats: int) -> float:
    return statistics.median(seconds(task)[0] for _ in range(repeats))


def bench_dp(repeats: int) -> None:
    base = make_params("default")
    lams, kappas = np.linspace(0.001, 0.02, 40), np.linspace(0.0, 0.2, 25)
    first, grid = seconds(lambda: solve_dp_grid(base, lam=lams, kappa=kappas))
    warm = median_seconds(lambda: solve_dp_grid(base, lam=lams, kappa=kappas), repeats)
    loop, solutions = seconds(lambda: [solve_dp(params) for params in grid.params])
    values = grid.value.reshape(len(grid.params), *grid.value.shape[2:])
    gap = max(float(np.abs(values[i] - solution.value).max()) for i, solution in enumerate(solutions))
    cells = len(grid.params)
    print(f"one-MM DP, {cells:,} cells of lam x kappa (T={base.T}, I_max={base.I_max}, 9 sizes)")
    print(f"  NumPy loop of solve_dp          {loop:8.2f} s")
    print(f"  JAX solve_dp_grid, first call   {first:8.2f} s (compiles)")
    print(f"  JAX solve_dp_grid, warm         {warm:8.2f} s   NumPy / JAX = {loop / warm:.1f}")
    print(f"  largest difference of the values over every cell: {gap:.1e}")
    flat = (cells, *grid.bid.shape[2:])
    flat_bid, flat_ask = grid.bid.reshape(flat), grid.ask.reshape(flat)
    evaluate = lambda: evaluate_tables_batch(grid.params, flat_bid, flat_ask)  # noqa: E731
    first_eval, result = seconds(evaluate)
    warm_eval = median_seconds(evaluate, repeats)
    sample = range(0, cells, cells // 50)  # a loop of evaluate_tables over every 20th cell, scaled to all of them
    numpy_eval, _ = seconds(lambda: [evaluate_tables(grid.params[i], flat_bid[i], flat_ask[i]) for i in sample])
    scaled = numpy_eval * cells / len(sample)
    print(f"  NumPy loop of evaluate_tables   {scaled:8.2f} s (timed on {len(sample)} cells, scaled)")
    gap = float(np.abs(result.mean - grid.expected_return.ravel()).max())
    print(
        f"  JAX evaluate_tables_batch of the {cells:,} optimal policies: first {first_eval:.2f} s,"
        f" warm {warm_eval:.2f} s"
    )
    print(f"  (their exact means equal the DP values to {gap:.1e})")


def bench_game(repeats: int) -> None:
    params = CompetitionParams()
    first, new = seconds(lambda: jax_solve.solve_equilibrium(params))
    warm = median_seconds(lambda: jax_solve.solve_equilibrium(params), repeats)
    old_time = median_seconds(lambda: solve_equilibrium(params), max(1, repeats // 2))
    old = solve_equilibrium(params)
    assert old is not None and new is not None
    same = np.array_equal(old.bid, new.bid) and np.array_equal(old.ask, new.ask)
    values = float(np.abs(old.value - new.value).max())
    print("two-MM equilibrium at the defaults (T=200, I_max=50, tick 0.01), with its certificates")
    print(f"  NumPy solve_equilibrium         {old_time:8.2f} s")
    print(f"  JAX solve_equilibrium, first    {first:8.2f} s (compiles)")
    print(f"  JAX solve_equilibrium, warm     {warm:8.2f} s   NumPy / JAX = {old_time / warm:.1f}")
    print(f"  same tables: {same}; largest difference of the values: {values:.1e}")
    assert new.nash_conv is not None and old.nash_conv is not None
    print(f"  NashConv {new.nash_conv.nash_conv:.1e} (NumPy {old.nash_conv.nash_conv:.1e}), per MM {new.start_value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-dp", action="store_true")
    parser.add_argument("--skip-game", action="store_true")
    args = parser.parse_args()
    if not args.skip_dp:
        bench_dp(args.repeats)
    if not args.skip_game:
        bench_game(args.repeats)


if __name__ == "__main__":
    main()
