"""RLlib (new API stack): PPO on the competing market makers (multi-agent, PettingZoo) and on the single-agent env.

Marked ``rllib``: RLlib pins Gymnasium, so these run in an environment of their own with the ``rllib`` extra
(``python -m pytest -m rllib``, README's ``ci:rllib`` command), and are skipped where RLlib is not installed.
"""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.rllib

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")

from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv  # noqa: E402
from ray.tune.registry import register_env  # noqa: E402

from mm_env.competition import parallel_env  # noqa: E402

# Tiny settings: 20-step episodes, 80 env steps per iteration, one epoch of two minibatches, one hidden layer.
ENV_CONFIG = {"T": 20}
TRAINING = {"train_batch_size_per_learner": 80, "minibatch_size": 40, "num_epochs": 1}
MODEL = {"fcnet_hiddens": [16]}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _train(config: PPOConfig, iterations: int = 2) -> dict:
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            result = algo.train()
    finally:
        algo.stop()
    return result


def _check(result: dict, iterations: int = 2) -> dict:
    """Steps were sampled, and every episode return RLlib reports is finite; returns the env runners' metrics."""
    assert result["num_env_steps_sampled_lifetime"] >= iterations * TRAINING["train_batch_size_per_learner"]
    runners = result["env_runners"]
    assert runners["num_env_steps_sampled"] > 0
    assert runners["num_episodes_lifetime"] > 0
    returns = [runners[key] for key in ("episode_return_mean", "episode_return_min", "episode_return_max")]
    for key in ("agent_episode_returns_mean", "module_episode_returns_mean"):
        returns += runners.get(key, {}).values()
    assert returns and all(math.isfinite(value) for value in returns)
    return runners


def _competition_config(policies: set[str], policy_mapping_fn, num_env_runners: int) -> PPOConfig:
    register_env("competing_market_makers", lambda cfg: ParallelPettingZooEnv(parallel_env(**cfg)))
    return (
        PPOConfig()
        .environment("competing_market_makers", env_config={"num_market_makers": 2, **ENV_CONFIG})
        .env_runners(num_env_runners=num_env_runners)
        .multi_agent(policies=policies, policy_mapping_fn=policy_mapping_fn)
        .training(**TRAINING)
        .rl_module(model_config=MODEL)
    )


def test_ppo_shared_policy_on_competing_market_makers():
    # One env runner actor: the registered creator must rebuild the env in another process.
    config = _competition_config({"shared"}, lambda agent_id, episode, **kwargs: "shared", num_env_runners=1)
    runners = _check(_train(config))
    assert set(runners["agent_episode_returns_mean"]) == {"mm_0", "mm_1"}
    assert set(runners["module_episode_returns_mean"]) == {"shared"}
    assert runners["num_module_steps_sampled"]["shared"] == 2 * runners["num_env_steps_sampled"]


def test_ppo_one_policy_per_market_maker():
    config = _competition_config({"mm_0", "mm_1"}, lambda agent_id, episode, **kwargs: agent_id, num_env_runners=0)
    result = _train(config)
    runners = _check(result)
    assert set(runners["module_episode_returns_mean"]) == {"mm_0", "mm_1"}
    assert set(result["learners"]) >= {"mm_0", "mm_1"}


def test_ppo_single_agent_env_by_id():
    # The "mm_env:" prefix makes Gymnasium import mm_env (which registers the ids) in the env runner's process.
    config = (
        PPOConfig()
        .environment("mm_env:mm_env/MarketMaking-v0", env_config=ENV_CONFIG)
        .env_runners(num_env_runners=1)
        .training(**TRAINING)
        .rl_module(model_config=MODEL)
    )
    runners = _check(_train(config))
    assert runners["episode_len_max"] == ENV_CONFIG["T"]
