"""The DP optimum quoted in 4,096 JAX environments at once, one jit: Monte Carlo against the exact value.

Run: ``python examples/jax_rollout.py`` (needs ``pip install -e ".[jax]"``; ``--envs N`` for another batch).
The exact optimum's offsets are a table over ``(t, I)``; every environment looks its quotes up there, all of them
step together under ``jax.vmap`` and the episode rolls under ``jax.lax.scan``. The mean return must agree with the
exact value within its standard error.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from agents.exact.dp import evaluate_tables, solve_dp
from mm_env.jax import MarketMakingEnv

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--envs", type=int, default=4096)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

env = MarketMakingEnv(normalize_actions=False)  # raw offsets: the DP's own units
params = env.default_params
solution = solve_dp(params)
bid_table, ask_table = jnp.asarray(solution.bid), jnp.asarray(solution.ask)  # (T, 2·I_max + 1)


def episode_return(key: jax.Array) -> jax.Array:
    """One episode of the DP optimum from its key: the sum of its rewards."""
    _, state = env.reset(key, params)

    def step(carry, step_key):
        state, total = carry
        t, level = state.t, state.inventory.astype(jnp.int32) + params.I_max
        action = jnp.stack([bid_table[t, level], ask_table[t, level]])
        _, state, reward, *_ = env.step(step_key, state, action, params)
        return (state, total + reward), None

    (_, total), _ = jax.lax.scan(step, (state, jnp.zeros(())), jax.random.split(key, params.T))
    return total


start = time.perf_counter()
returns = jax.jit(jax.vmap(episode_return))(jax.random.split(jax.random.key(args.seed), args.envs))
returns = jax.block_until_ready(returns)
elapsed = time.perf_counter() - start
mean, se = float(returns.mean()), float(returns.std(ddof=1)) / args.envs**0.5
exact = evaluate_tables(params, solution.bid, solution.ask).mean
print(f"{args.envs} episodes of {params.T} steps in {elapsed:.1f} s (compile included)")
print(f"jax: mean={mean:.4f} se={se:.4f} exact={float(exact):.4f} z={(mean - float(exact)) / se:.2f}")
