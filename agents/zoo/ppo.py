"""PPO's tuned hyperparameters for the RL Zoo, from ``agents/training/hyperparams/ppo.yml`` (see :mod:`agents.zoo`).

``python -m rl_zoo3.train --algo ppo --env mm_env/MarketMaking-v0 --gym-packages mm_env -conf agents.zoo.ppo``
"""

from agents.zoo import zoo_hyperparams

# Read by the zoo's -conf (ExperimentManager.read_hyperparameters): entries keyed by env id and "default".
hyperparams = zoo_hyperparams("ppo")
