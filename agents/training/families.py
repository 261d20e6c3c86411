"""The market families the training pipeline knows, and how an env id finds its own.

A new family is its own module (the :class:`~agents.training.family.MarketFamily` protocol) and one line in
:data:`FAMILIES`.
"""

from __future__ import annotations

import gymnasium as gym

import mm_env  # noqa: F401  (registers the ids)
from agents.training.family import MarketFamily, registered_kwargs
from agents.training.game import CompetingMarketMakers
from agents.training.market import OneMarketMaker
from agents.training.multi_asset import MultiAssetMarketMaker

FAMILIES: tuple[type[MarketFamily], ...] = (OneMarketMaker, CompetingMarketMakers, MultiAssetMarketMaker)


def family_of(env_id: str) -> type[MarketFamily]:
    """The family of a registered env id, found by the id's entry point (``ValueError`` for any other id)."""
    registered_kwargs(env_id, {})  # an unknown id: one line
    spec = gym.spec(env_id)
    for family in FAMILIES:
        if spec.entry_point in family.entry_points:
            return family
    raise ValueError(f"--env {env_id!r} is not a market-making environment of mm_env (entry point {spec.entry_point})")
