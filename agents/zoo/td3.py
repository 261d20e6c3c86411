"""TD3's tuned hyperparameters for the RL Zoo, from ``agents/training/hyperparams/td3.yml`` (see :mod:`agents.zoo`).

``python -m rl_zoo3.train --algo td3 --env mm_env/MarketMaking-v0 --gym-packages mm_env -conf agents.zoo.td3``
"""

from agents.zoo import zoo_hyperparams

# Read by the zoo's -conf (ExperimentManager.read_hyperparameters): entries keyed by env id and "default".
hyperparams = zoo_hyperparams("td3")
