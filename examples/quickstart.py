"""Make the env, step it, and grade a policy exactly against the DP optimum.

Run: ``python examples/quickstart.py``. The docs' quickstart shows this file and its output.
"""

# --8<-- [start:quickstart]
import gymnasium as gym
import numpy as np

import mm_env  # noqa: F401  (registers the ids)
from agents.evaluation.grading import grade

env = gym.make("mm_env/MarketMaking-v0")
obs, info = env.reset(seed=0)  # [I / I_max, (T - t) / T]
obs, reward, terminated, truncated, info = env.step(env.action_space.sample())


def skew(obs: np.ndarray) -> np.ndarray:  # a batch of observations -> bid and ask actions in [-1, 1]
    """Quote 0.7 from the mid, skewed against the inventory."""
    inventory = obs[:, 0]
    return np.stack([-0.72 + 1.2 * inventory, -0.72 - 1.2 * inventory], axis=1)  # offsets 0.7 ± 3·I/I_max


print(grade(skew, env))
# --8<-- [end:quickstart]
