"""CleanRL-style PPO (continuous actions) on mm_env's batched vector env, graded exactly against the DP optimum.

One file, in the layout of CleanRL's ``ppo_continuous_action.py``: the arguments, an agent ``nn.Module`` with a
Gaussian policy, a rollout buffer, GAE and the clipped objective. It trains on
``gym.make_vec("mm_env/MarketMaking-v0", num_envs=...)``, the natively batched NumPy vector env, then
:func:`agents.evaluation.grading.grade` tabulates the deterministic policy (the Gaussian's mean) over the exact grid
``(t, I)`` and evaluates it exactly against the DP optimum: no sampling noise in the grade.

Two things differ from CleanRL's file, both for this env: every episode lasts exactly ``T`` steps, so one rollout is
one whole episode of every env (no bootstrapping, no autoreset); and the policy's log standard deviation follows a
schedule from wide to narrow instead of being learned, because PPO plays the Gaussian's mean, and the mean that is
best for a noisy policy quotes wider than the best quote (``--learn-log-std`` learns it as CleanRL does).

Run it (the whole run takes about two minutes on two CPU cores)::

    python examples/cleanrl_ppo.py
    python examples/cleanrl_ppo.py --total-timesteps 200000 --preset momentum   # a quick try on another preset
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions.normal import Normal

import mm_env
from agents.evaluation.grading import grade


@dataclass
class Args:
    """The run's settings; every one is a command-line flag (``--total-timesteps 100000``)."""

    preset: str = "default"
    """the market: a name in mm_env.PRESETS"""
    seed: int = 0
    """seed of the env, the network and the sampling"""
    total_timesteps: int = 3_000_000
    """env steps in all (rounded up to whole rollouts)"""
    num_envs: int = 64
    """environments stepped together; one rollout is one episode of each"""
    learning_rate: float = 1e-3
    """Adam's learning rate, annealed linearly to 0 unless --no-anneal-lr"""
    anneal_lr: bool = True
    """decay the learning rate linearly over the run"""
    gamma: float = 0.999
    """discount factor"""
    gae_lambda: float = 0.7
    """GAE's lambda (lower than the usual 0.95: less noisy advantages on these long episodes)"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    update_epochs: int = 10
    """epochs over each rollout"""
    clip_coef: float = 0.2
    """the surrogate's clipping coefficient"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    max_grad_norm: float = 0.5
    """gradient clipping"""
    log_std_start: float = -1.0
    """the policy's log standard deviation at the start ..."""
    log_std_end: float = -4.0
    """... and at the end of the run (linear in between)"""
    learn_log_std: bool = False
    """learn the log standard deviation instead (CleanRL's choice)"""


def parse_args() -> Args:
    """The arguments from the command line: one flag per field of :class:`Args`."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for field in fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    return Args(**vars(parser.parse_args()))


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    """Orthogonal weights and constant biases, as in CleanRL."""
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """A critic and a Gaussian actor, each a 64×64 tanh network of the observation."""

    def __init__(self, obs_dim: int, act_dim: int, log_std: float, learn_log_std: bool) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, act_dim), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.full((1, act_dim), log_std), requires_grad=learn_log_std)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's value of a batch of observations."""
        return self.critic(x)

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A sampled action (or the given one), its log-probability, the policy's entropy and the value."""
        action_mean = self.actor_mean(x)
        probs = Normal(action_mean, self.actor_logstd.expand_as(action_mean).exp())
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic policy, the Gaussian's mean: what ``grade`` evaluates (observations to actions)."""
        with torch.no_grad():
            return self.actor_mean(torch.as_tensor(obs, dtype=torch.float32)).numpy()


def main() -> None:
    """Train, then grade the deterministic policy exactly."""
    args = parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small networks: one thread is faster than several on a small CPU

    # The natively batched vector env; CleanRL's reward normalisation. Observations are already in [-1, 1].
    envs: gym.vector.VectorEnv[np.ndarray, np.ndarray, np.ndarray] = gym.wrappers.vector.NormalizeReward(
        gym.make_vec(mm_env.MARKET_MAKING_ID, num_envs=args.num_envs, preset=args.preset), gamma=args.gamma
    )
    num_steps = mm_env.PRESETS[args.preset].T  # one rollout = one whole episode of every env
    batch_size = args.num_envs * num_steps
    num_iterations = math.ceil(args.total_timesteps / batch_size)
    obs_dim = gym.spaces.flatdim(envs.single_observation_space)
    act_dim = gym.spaces.flatdim(envs.single_action_space)

    agent = Agent(obs_dim, act_dim, args.log_std_start, args.learn_log_std)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # The rollout buffer.
    obs = torch.zeros((num_steps, args.num_envs, obs_dim))
    actions = torch.zeros((num_steps, args.num_envs, act_dim))
    logprobs = torch.zeros((num_steps, args.num_envs))
    rewards = torch.zeros((num_steps, args.num_envs))
    values = torch.zeros((num_steps, args.num_envs))

    start = time.time()
    for iteration in range(1, num_iterations + 1):
        done_fraction = (iteration - 1) / num_iterations
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - done_fraction) * args.learning_rate
        if not args.learn_log_std:
            agent.actor_logstd.data.fill_(args.log_std_start + done_fraction * (args.log_std_end - args.log_std_start))

        next_obs, _ = envs.reset(seed=args.seed if iteration == 1 else None)  # seeded once, then fresh episodes
        for step in range(num_steps):
            obs[step] = torch.as_tensor(next_obs)
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(obs[step])
            actions[step], logprobs[step], values[step] = action, logprob, value.flatten()
            # Out-of-box actions are clipped by the env.
            next_obs, reward, terminations, truncations, _ = envs.step(action.numpy())
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
        assert terminations.all()  # every episode ends at T: nothing to bootstrap

        # GAE over whole episodes: the value after the last step is 0.
        advantages = torch.zeros_like(rewards)
        last_gae = torch.zeros(args.num_envs)
        for t in reversed(range(num_steps)):
            next_value = values[t + 1] if t + 1 < num_steps else torch.zeros(args.num_envs)
            delta = rewards[t] + args.gamma * next_value - values[t]
            last_gae = delta + args.gamma * args.gae_lambda * last_gae
            advantages[t] = last_gae
        returns = advantages + values

        b_obs, b_actions = obs.reshape(-1, obs_dim), actions.reshape(-1, act_dim)
        b_logprobs, b_advantages, b_returns = logprobs.reshape(-1), advantages.reshape(-1), returns.reshape(-1)

        # The clipped objective, for a few epochs of minibatches.
        for _ in range(args.update_epochs):
            for mb in torch.randperm(batch_size).chunk(args.num_minibatches):
                _, newlogprob, _, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                ratio = (newlogprob - b_logprobs[mb]).exp()
                mb_adv = b_advantages[mb]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef))
                v_loss = 0.5 * ((newvalue.flatten() - b_returns[mb]) ** 2).mean()
                loss = pg_loss.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        if iteration % max(1, num_iterations // 10) == 0 or iteration == num_iterations:
            steps, seconds = iteration * batch_size, time.time() - start
            pct = grade(agent.act, envs).pct_of_benchmark  # exact, a fraction of a second
            print(f"{steps:>10,} steps  {seconds:6.1f} s  exact return {pct:6.2f}% of the DP optimum", flush=True)

    # The exact grade of the deterministic policy: the env gives the market, its observations and its action map.
    result = grade(agent.act, envs, name="CleanRL PPO")
    print(result)
    print(
        f"grade: exact={result.exact} return={result.expected_return:.4f} std={result.std:.4f} "
        f"pct_of_dp={result.pct_of_benchmark:.4f} seconds={time.time() - start:.1f}"
    )


if __name__ == "__main__":
    main()
