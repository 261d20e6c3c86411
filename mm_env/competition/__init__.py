"""Competing market makers (``MODEL.md`` §8): ``M`` market makers quoting for one order flow.

:func:`parallel_env` and :func:`env` are the PettingZoo forms (parallel and AEC); ``CompetingMarketMakers-v0`` is a
single-agent Gymnasium env in which the other market makers follow given policies. The exact tools for two market
makers (equilibrium, cartel, best response, NashConv, the collusion index) are in :mod:`agents.game`.
"""

from mm_env.competition.batch import CompetitionBatch, CompetitionConfig
from mm_env.competition.core import CompetitionOutcome, CompetitionState, compete, initial_competition_state
from mm_env.competition.parallel import CompetitionParallelEnv, env, parallel_env, raw_env
from mm_env.competition.params import CompetitionParams, make_competition_params

__all__ = [
    "CompetitionBatch",
    "CompetitionConfig",
    "CompetitionOutcome",
    "CompetitionParallelEnv",
    "CompetitionParams",
    "CompetitionState",
    "compete",
    "env",
    "initial_competition_state",
    "make_competition_params",
    "parallel_env",
    "raw_env",
]
