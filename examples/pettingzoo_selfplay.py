"""PettingZoo self-play: two competing market makers learn one shared policy, then are judged exactly.

The game is the PettingZoo ``ParallelEnv`` :func:`mm_env.competition.parallel_env`, first checked by PettingZoo's own
``parallel_api_test``. A compact PPO loop then plays ``--games`` copies of it side by side: at every step each
market maker of each game sends its observation (its own inventory first, so one policy can play either seat), one
shared Gaussian policy acts for all of them, and every market maker's transitions feed the same update. A game lasts
exactly ``T`` steps, so a rollout is one whole episode of every game.

At the end the policy's deterministic action (the Gaussian's mean) quotes for both market makers over the exact
grid ``(t, I_1, I_2)``, and :func:`agents.evaluation.grading.grade_game` gives each one's exact expected return,
NashConv (what a market maker would gain by its exact best response) and the collusion index Δ (0: the equilibrium,
1: the cartel), next to the exact equilibrium, the cartel and the baselines of the same game.

Run it (about four minutes on two CPU cores)::

    python examples/pettingzoo_selfplay.py
    python examples/pettingzoo_selfplay.py --iterations 3 --T 20   # a quick try: 20-step episodes
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from pettingzoo.test import parallel_api_test
from torch import nn
from torch.distributions.normal import Normal

from agents.evaluation.grading import grade_game
from mm_env.competition import parallel_env


def mlp(inputs: int, outputs: int, last_std: float) -> nn.Sequential:
    """A 64×64 tanh network with orthogonal weights (the last layer's scaled by ``last_std``)."""
    linear = [nn.Linear(inputs, 64), nn.Linear(64, 64), nn.Linear(64, outputs)]
    for layer, std in zip(linear, (np.sqrt(2), np.sqrt(2), last_std), strict=True):
        nn.init.orthogonal_(layer.weight, std)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(linear[0], nn.Tanh(), linear[1], nn.Tanh(), linear[2])


class SharedPolicy(nn.Module):
    """One Gaussian policy and one critic for every market maker, each on its own observation."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.actor_mean, self.critic = mlp(obs_dim, act_dim, 0.01), mlp(obs_dim, 1, 1.0)
        self.log_std = -1.0  # set on a schedule by the training loop

    def dist(self, obs: torch.Tensor) -> Normal:
        """The action distribution of a batch of observations."""
        mean = self.actor_mean(obs)
        return Normal(mean, torch.full_like(mean, self.log_std).exp())

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The deterministic actions (the Gaussian's mean), in the form the judging tools take a trained model."""
        with torch.no_grad():
            return self.actor_mean(torch.as_tensor(obs, dtype=torch.float32)).numpy(), None


def main() -> None:
    """Check the env, train the shared policy in self-play, then judge it against the exact equilibrium."""
    parser = argparse.ArgumentParser(description="PPO self-play on the PettingZoo env, judged exactly")
    parser.add_argument("--iterations", type=int, default=300, help="PPO iterations (default: %(default)s)")
    parser.add_argument("--games", type=int, default=16, help="games played side by side (default: %(default)s)")
    parser.add_argument("--T", type=int, default=200, help="steps per episode (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=10_000, help="Monte Carlo episodes of the judgement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gamma, gae_lambda, clip, epochs, minibatches, lr = 0.999, 0.95, 0.2, 10, 4, 1e-3
    log_std_start, log_std_end = -1.0, -3.0
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small networks: one thread is faster than several on a small CPU

    parallel_api_test(parallel_env(T=args.T), num_cycles=args.T)  # PettingZoo's own conformance test

    envs = [parallel_env(T=args.T) for _ in range(args.games)]
    agents = envs[0].possible_agents
    obs_dim = envs[0].observation_space(agents[0]).shape[0]
    act_dim = envs[0].action_space(agents[0]).shape[0]
    n = args.games * len(agents)  # one row per market maker per game
    policy = SharedPolicy(obs_dim, act_dim)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr, eps=1e-5)
    obs = torch.zeros((args.T, n, obs_dim))
    actions = torch.zeros((args.T, n, act_dim))
    logprobs, rewards, values = (torch.zeros((args.T, n)) for _ in range(3))
    return_scale = None  # a running scale of the discounted returns: the critic learns values of order one

    start = time.time()
    for iteration in range(1, args.iterations + 1):
        done = (iteration - 1) / args.iterations
        optimizer.param_groups[0]["lr"] = (1.0 - done) * lr
        policy.log_std = log_std_start + done * (log_std_end - log_std_start)

        # One whole episode of every game; the PettingZoo dicts become one batch row per market maker.
        # Each game is seeded once (its own seed), then plays fresh episodes.
        observations = [
            env.reset(seed=args.seed * args.games + g if iteration == 1 else None)[0] for g, env in enumerate(envs)
        ]
        for step in range(args.T):
            obs[step] = torch.as_tensor(np.stack([o[agent] for o in observations for agent in agents]))
            with torch.no_grad():
                dist = policy.dist(obs[step])
                action = dist.sample()
                logprobs[step] = dist.log_prob(action).sum(1)
                values[step] = policy.critic(obs[step]).flatten()
            actions[step] = action
            quotes = action.numpy().reshape(args.games, len(agents), act_dim)
            step_rewards = []
            for g, env in enumerate(envs):
                observations[g], reward, _, _, _ = env.step(dict(zip(agents, quotes[g], strict=True)))
                step_rewards += [reward[agent] for agent in agents]
            rewards[step] = torch.as_tensor(step_rewards, dtype=torch.float32)
        assert not any(env.agents for env in envs)  # every game has ended: nothing to bootstrap

        # Scale the rewards by a running standard deviation of the discounted returns, then GAE.
        discounted, to_go = torch.zeros_like(rewards), torch.zeros(n)
        for t in reversed(range(args.T)):
            to_go = rewards[t] + gamma * to_go
            discounted[t] = to_go
        scale = float(discounted.std()) + 1e-8
        return_scale = scale if return_scale is None else 0.9 * return_scale + 0.1 * scale
        scaled = rewards / return_scale
        advantages, last = torch.zeros_like(rewards), torch.zeros(n)
        for t in reversed(range(args.T)):
            next_value = values[t + 1] if t + 1 < args.T else torch.zeros(n)
            last = scaled[t] + gamma * next_value - values[t] + gamma * gae_lambda * last
            advantages[t] = last
        returns = advantages + values

        # PPO's clipped objective on every market maker's transitions.
        b_obs, b_actions = obs.reshape(-1, obs_dim), actions.reshape(-1, act_dim)
        b_logprobs, b_advantages, b_returns = logprobs.flatten(), advantages.flatten(), returns.flatten()
        for _ in range(epochs):
            for mb in torch.randperm(len(b_obs)).chunk(minibatches):
                ratio = (policy.dist(b_obs[mb]).log_prob(b_actions[mb]).sum(1) - b_logprobs[mb]).exp()
                adv = (b_advantages[mb] - b_advantages[mb].mean()) / (b_advantages[mb].std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                v_loss = 0.5 * ((policy.critic(b_obs[mb]).flatten() - b_returns[mb]) ** 2).mean()
                optimizer.zero_grad()
                (pg_loss + 0.5 * v_loss).backward()
                nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
                optimizer.step()

        if iteration % max(1, args.iterations // 10) == 0 or iteration == args.iterations:
            mean_return = rewards.sum(0).reshape(args.games, len(agents)).mean(0).tolist()
            pretty = ", ".join(f"{agent} {value:.2f}" for agent, value in zip(agents, mean_return, strict=True))
            print(f"iteration {iteration}: {time.time() - start:.0f} s, mean episode return {pretty}", flush=True)

    # The exact judgement: the shared policy in both seats, next to the exact equilibrium, the cartel and the
    # baselines (seconds at T=200: the game is solved exactly).
    print(grade_game(policy, envs[0], name="self-play PPO (shared)", episodes=args.episodes, seed=args.seed))
    print(f"{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()
