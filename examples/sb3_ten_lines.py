"""Stable-Baselines3 in ten lines: PPO on mm_env's batched SB3 ``VecEnv``, graded exactly against the DP optimum.

``grade(model, venv)`` reads the market, the observations, the action map and the ``VecNormalize`` from the env, and
evaluates the model's deterministic policy exactly over the grid ``(t, I)``. The PPO settings are a few of those
``python train.py`` uses (``agents/training/hyperparams/ppo.yml``), whose log-std schedule is a public callback.

Run it (about two minutes on two CPU cores)::

    python examples/sb3_ten_lines.py
    python examples/sb3_ten_lines.py --timesteps 20000   # any budget
"""

import argparse

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from agents.evaluation.grading import grade
from agents.training.callbacks import LogStdSchedule
from mm_env.sb3_vec_env import MarketMakingVecEnv


def main() -> None:
    """Train PPO, then print its exact grade."""
    parser = argparse.ArgumentParser(description="PPO on mm_env, graded exactly against the DP optimum")
    parser.add_argument("--timesteps", type=int, default=2_000_000)
    timesteps = parser.parse_args().timesteps
    torch.set_num_threads(1)  # small networks: one thread is much faster than several on a small CPU
    venv = VecNormalize(MarketMakingVecEnv(num_envs=32), norm_obs=False, gamma=0.999)  # normalised rewards
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=1024, gamma=0.999, gae_lambda=0.7, seed=0, device="cpu")
    model.learn(timesteps, callback=LogStdSchedule(start=-1.0, end=-4.0))
    print(grade(model, venv))


if __name__ == "__main__":
    main()
