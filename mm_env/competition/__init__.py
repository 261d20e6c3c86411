"""Competing market makers (``MODEL.md`` §8): ``M`` market makers quoting for one order flow.

Their model is the one-MM model with an agent axis (:class:`CompetitionParams`: the market, ``M`` and the tick), run
by the same transition (:func:`mm_env.dynamics.transition`) and batch (:class:`mm_env.batch.MarketBatch`).

:func:`parallel_env` and :func:`env` are the PettingZoo forms (parallel and AEC); ``CompetingMarketMakers-v0`` is a
single-agent Gymnasium env in which the other market makers follow given policies. The exact tools for two market
makers (equilibrium, cartel, best response, NashConv, the collusion index) are in :mod:`agents.exact.game`.
"""

from typing import Any

from mm_env.competition.config import CompetitionConfig
from mm_env.params import CompetitionParams
from mm_env.presets import make_competition_params

# The PettingZoo forms need the optional PettingZoo (``pip install "mm_env[multiagent]"``); they are imported on
# first use, so that the core, the Gymnasium env and the exact tools work without it.
_PETTINGZOO_NAMES = ("CompetitionParallelEnv", "env", "parallel_env", "raw_env")


def __getattr__(name: str) -> Any:
    if name not in _PETTINGZOO_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from mm_env.competition import parallel
    except ModuleNotFoundError as error:
        if error.name != "pettingzoo":
            raise
        raise ModuleNotFoundError(
            f'mm_env.competition.{name} needs PettingZoo: pip install "mm_env[multiagent]"', name="pettingzoo"
        ) from error
    return getattr(parallel, name)


__all__ = [
    "CompetitionConfig",
    "CompetitionParallelEnv",
    "CompetitionParams",
    "env",
    "make_competition_params",
    "parallel_env",
    "raw_env",
]
