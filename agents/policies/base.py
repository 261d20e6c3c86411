"""What a quoting policy is: offsets from the model state, for one market maker, and for every seat of a game.

A policy quotes from the model state (``t``, ``I``, the last trade's side ``L``, …), not from observation columns:
:meth:`Policy.quote` maps a :class:`~mm_env.dynamics.MarketState` of arrays to bid and ask offsets in price units.
Only learned agents read observations (see :mod:`agents.policies.learned`), which they compute from the same state.
A policy that depends on the Markov state alone is a pair of offset tables over the exact grid
(:func:`agents.exact.dp.table_shape`), which :func:`agents.exact.dp.evaluate_tables` evaluates exactly.
"""

from __future__ import annotations

import numpy as np

from agents.exact.dp import inventory_grid, last_sides, table_shape
from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState
from mm_env.params import CompetitionParams, MarketParams
from mm_env.spaces import encode_offsets


def grid_states(params: MarketParams) -> MarketState:
    """Every Markov state of the exact grid as one batch, shaped like :func:`agents.exact.dp.table_shape`.

    ``t``, ``I`` and (with adaptive traders) the last trade's side ``L``, carried as ``traded = L``; the mid, cash and
    the other parts of the state hold their starting values, which a Markov policy does not read.
    """
    axes = [np.arange(params.T, dtype=np.float64), inventory_grid(params)]
    if len(table_shape(params)) == 3:
        axes.append(np.asarray(last_sides(params), dtype=np.float64))
    mesh = [axis.ravel() for axis in np.meshgrid(*axes, indexing="ij")]
    t, inventory = mesh[0], mesh[1]
    traded = mesh[2] if len(mesh) == 3 else np.zeros(t.size)
    zeros = np.zeros(t.size)
    return MarketState(t, inventory, np.full(t.size, params.P0), zeros, zeros, traded, zeros)


class Policy:
    """A quoting policy: offsets as a function of the model state."""

    name: str = "policy"

    def quote(self, state: MarketState, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask offsets (price units) for a batch of states (a :class:`MarketState` of arrays)."""
        return self.offsets(np.asarray(state.t), np.asarray(state.inventory), params)

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask offsets for arrays of steps and inventories (broadcast together).

        A policy of ``(t, I)`` alone implements this; one that reads more of the state overrides :meth:`quote`.
        """
        raise NotImplementedError(f"{type(self).__name__} implements neither quote() nor offsets()")

    def action(self, state: MarketState, config: EnvConfig) -> np.ndarray:
        """The actions that quote this policy's offsets in an env of ``config``.

        ``(n, 2)`` for a batch of states, ``(2,)`` for one; normalised to ``[-1, 1]`` when the env normalises its
        actions.

        >>> from mm_env.env import MarketMakingEnv
        >>> env = MarketMakingEnv()
        >>> _ = env.reset(seed=0)
        >>> _ = env.step(ArticleRule().action(env.state, env.config))
        """
        batch = MarketState(*(np.atleast_1d(np.asarray(value, dtype=np.float64)) for value in state))
        bid, ask = self.quote(batch, config.params)
        offsets = np.stack(np.broadcast_arrays(bid, ask), axis=-1)
        actions = encode_offsets(offsets, config.params, normalize=True) if config.normalize_actions else offsets
        return actions if np.ndim(state.t) else actions[0]

    def tables(self, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """The policy's offsets over the whole exact grid, each of shape :func:`agents.exact.dp.table_shape`.

        Raises ``ValueError`` if the policy reads more of the state than the grid holds.
        """
        states = grid_states(params)
        bid, ask = self.quote(states, params)
        shape = table_shape(params)
        size = np.shape(states.t)
        bid_table = np.broadcast_to(bid, size).reshape(shape).copy()
        ask_table = np.broadcast_to(ask, size).reshape(shape).copy()
        return bid_table, ask_table

    def joint_policy(self, params: CompetitionParams) -> EachOnItsOwn:
        """This policy in every seat of a game: each market maker quotes it from its own inventory."""
        return EachOnItsOwn(self)

    def __repr__(self) -> str:
        return self.name


class EachOnItsOwn:
    """Every market maker quotes a one-MM policy from its own inventory and cash (the shared ``t``, mid and ``L``).

    A joint policy (:class:`mm_env.opponents.JointPolicy`): it quotes every market maker of a batch of game states.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name

    def quote(self, state: MarketState, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Each market maker's offsets from its own view of the state."""
        inventory = np.asarray(state.inventory)
        bid, ask = np.empty(inventory.shape), np.empty(inventory.shape)
        last_trade = np.asarray(state.traded).sum(axis=1)  # its sign is the side L that adaptive traders react to
        for j in range(params.num_market_makers):
            own = MarketState(
                state.t,
                inventory[:, j],
                state.mid,
                np.asarray(state.cash)[:, j],
                state.mid_change,
                last_trade,
                state.transient,
            )
            bid[:, j], ask[:, j] = self.policy.quote(own, params.market)
        return bid, ask

    def __repr__(self) -> str:
        return f"EachOnItsOwn({self.policy!r})"
