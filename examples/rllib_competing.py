"""RLlib (new API stack): two competing market makers learn one shared PPO policy, then are judged exactly.

The game is the PettingZoo ``ParallelEnv`` :func:`mm_env.competition.parallel_env`, which RLlib takes through its
``ParallelPettingZooEnv`` wrapper; ``mm_0`` and ``mm_1`` share one RLModule (self-play). After training, the module's
deterministic action (its Gaussian's mean) quotes for both market makers over the exact grid ``(t, I_1, I_2)``,
and :func:`agents.evaluation.grading.grade_game` gives each one's exact expected return, NashConv (what a market
maker would gain by its exact best response) and the collusion index Δ (0: the equilibrium, 1: the cartel), next to
the exact equilibrium, the cartel and the baselines of the same game.

Run it (about three minutes on two CPU cores)::

    python examples/rllib_competing.py
    python examples/rllib_competing.py --iterations 2 --T 20   # a quick try: 20-step episodes
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import ray
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

from agents.evaluation.grading import grade_game
from mm_env.competition import CompetitionConfig, parallel_env


class RLlibModel:
    """An RLlib module in the form the judging tools take a trained model: ``predict(obs) -> (actions, None)``."""

    def __init__(self, module: RLModule) -> None:
        self.module = module

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The deterministic actions (the mean of the module's Gaussian) of a batch of observations."""
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: torch.as_tensor(obs, dtype=torch.float32)})
            dist = self.module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
            return np.asarray(dist.to_deterministic().sample()), None


def main() -> None:
    """Train the shared policy with RLlib's PPO, then judge it against the exact equilibrium and cartel."""
    parser = argparse.ArgumentParser(description="RLlib PPO self-play on competing market makers, judged exactly")
    parser.add_argument("--iterations", type=int, default=30, help="PPO iterations (default: %(default)s)")
    parser.add_argument("--T", type=int, default=200, help="steps per episode (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=4000, help="env steps per iteration (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=10_000, help="Monte Carlo episodes of the judgement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    env_config: dict[str, Any] = {"num_market_makers": 2, "T": args.T}

    torch.set_num_threads(1)  # the learner runs in this process: small networks train faster on one thread
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_env("competing_market_makers", lambda cfg: ParallelPettingZooEnv(parallel_env(**cfg)))
    config = (
        PPOConfig()
        .environment("competing_market_makers", env_config=env_config)
        .env_runners(num_env_runners=0)  # sample in this process: on a small machine, no actor to start
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=min(1000, args.batch),
            num_epochs=10,
            lr=1e-3,
            gamma=0.999,
            lambda_=0.95,
            vf_clip_param=1e4,  # returns reach tens: do not clip the value loss at RLlib's default of 10
        )
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    start = time.time()
    try:
        for iteration in range(1, args.iterations + 1):
            runners = algo.train()["env_runners"]
            returns = runners.get("agent_episode_returns_mean", {})
            pretty = ", ".join(f"{agent} {value:.2f}" for agent, value in sorted(returns.items()))
            print(f"iteration {iteration}: {time.time() - start:.0f} s, mean episode return {pretty}", flush=True)
        module = algo.get_module("shared")
        assert module is not None
        model = RLlibModel(module)
    finally:
        algo.stop()
        ray.shutdown()

    # The exact judgement: the shared policy in both seats, next to the exact equilibrium, the cartel and the
    # baselines (seconds at T=200: the game is solved exactly).
    game = CompetitionConfig.from_kwargs(**env_config)
    print(grade_game(model, game, name="RLlib PPO (shared)", episodes=args.episodes, seed=args.seed))
    print(f"{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()
