"""Opponents by name: the policies the other market makers of a game follow, found through a registry.

As Gymnasium finds an environment by its entry point, an opponent's name maps to an entry point
``"module:factory"``, imported only when that opponent is asked for; ``factory(params)`` returns a
:class:`JointPolicy`. So this package never imports the code of a policy: the exact equilibrium and cartel, for
instance, come from ``agents`` (registered in :mod:`mm_env.registration`), and a user registers more with
:func:`register_opponent`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from mm_env.dynamics import MarketState
from mm_env.params import CompetitionParams


@runtime_checkable
class JointPolicy(Protocol):
    """A policy for every market maker of a game: offsets ``(n, M)`` from a batch of states with an agent axis."""

    def quote(self, state: MarketState, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask offsets (price units) of every market maker."""
        ...


@runtime_checkable
class SeatedPolicy(Protocol):
    """A policy that knows how to play every seat of a game: it gives the joint policy that does.

    The one-MM policies of ``agents`` are such: each market maker quotes from its own inventory.
    """

    def joint_policy(self, params: CompetitionParams) -> JointPolicy:
        """The joint policy in which every market maker follows this policy."""
        ...


Opponent = str | JointPolicy | SeatedPolicy
"""What may be given as an opponent: a registered name, a joint policy, or a policy that plays every seat."""

_REGISTRY: dict[str, str] = {}


def register_opponent(name: str, entry_point: str) -> None:
    """Register ``name`` for the factory at ``entry_point`` (``"package.module:function"``, taking the game).

    Registering a name again replaces its entry point.
    """
    module, sep, attribute = entry_point.partition(":")
    if not name or not module or not sep or not attribute:
        raise ValueError(f"opponent {name!r}: entry point {entry_point!r} is not of the form 'module:function'")
    _REGISTRY[name] = entry_point


def opponent_names() -> tuple[str, ...]:
    """The registered opponents' names, in the order of registration."""
    return tuple(_REGISTRY)


def make_opponent(opponent: Opponent, params: CompetitionParams) -> JointPolicy:
    """The joint policy of an opponent: a registered name, a :class:`SeatedPolicy`, or a :class:`JointPolicy`.

    Raises ``ValueError`` for an unknown name or an object that cannot quote; a registered factory raises
    ``ValueError`` itself where the game does not allow it (an exact solution that does not exist, say).
    """
    if isinstance(opponent, str):
        if opponent not in _REGISTRY:
            raise ValueError(
                f"opponent={opponent!r} is not a known opponent; allowed: {list(_REGISTRY)} or a policy object"
            )
        module, _, attribute = _REGISTRY[opponent].partition(":")
        factory: Callable[[CompetitionParams], JointPolicy] = getattr(importlib.import_module(module), attribute)
        return factory(params)
    if isinstance(opponent, SeatedPolicy):
        return opponent.joint_policy(params)
    if isinstance(opponent, JointPolicy):
        return opponent
    raise ValueError(
        f"opponent={opponent!r} is invalid: must be one of {list(_REGISTRY)}, a policy with joint_policy(params) "
        "(as agents.policies.Policy), or an object with quote(state, params) over competition states"
    )
