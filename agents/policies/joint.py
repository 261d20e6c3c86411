"""Joint policies given as tables: two market makers' offsets over the exact grid ``(t, I_1, I_2)``.

A joint policy (:class:`mm_env.opponents.JointPolicy`) quotes every market maker of a batch of game states; the
exact tools of :mod:`agents.exact.game` solve and judge such tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.exact.dp import inventory_grid
from agents.exact.game import GameSolution
from mm_env.dynamics import MarketState
from mm_env.params import CompetitionParams


class GamePolicy:
    """A joint Markov policy of two market makers: offset tables ``(2, T, N, N)`` over ``(t, I_1, I_2)``."""

    def __init__(self, bid: Any, ask: Any, name: str = "game policy") -> None:
        self.bid_table = np.asarray(bid, dtype=np.float64)
        self.ask_table = np.asarray(ask, dtype=np.float64)
        shape = self.bid_table.shape
        if shape != self.ask_table.shape or len(shape) != 4 or shape[0] != 2 or shape[2] != shape[3]:
            raise ValueError(
                f"bid and ask tables must have one shape (2, T, N, N); got {shape}, {self.ask_table.shape}"
            )
        self.name = name

    @classmethod
    def from_one_mm(cls, params: CompetitionParams, policy: Any, name: str | None = None) -> GamePolicy:
        """Each market maker applies a one-MM policy to its own inventory.

        ``policy`` is a pair of one-MM tables ``(bid, ask)`` of shape ``(T, N)`` (``[t, I + I_max]``), an object with
        ``bid`` and ``ask`` tables (an :class:`agents.exact.dp.DPSolution`), a one-MM policy with ``tables(market)``
        (:class:`agents.policies.Policy`), or a function ``(t, I) -> (bid, ask)`` of arrays.
        """
        market = params.market
        if isinstance(policy, tuple):
            bid, ask = policy
        elif hasattr(policy, "bid") and hasattr(policy, "ask"):
            bid, ask = policy.bid, policy.ask
        elif hasattr(policy, "tables"):
            bid, ask = policy.tables(market)
        elif callable(policy):
            t, inventory = np.meshgrid(np.arange(market.T, dtype=np.float64), inventory_grid(market), indexing="ij")
            bid, ask = (np.broadcast_to(np.asarray(side, dtype=np.float64), t.shape) for side in policy(t, inventory))
        else:
            raise ValueError(f"policy={policy!r} is not one-MM tables, a DP solution, a Policy or a function")
        bid, ask = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
        shape = (market.T, 2 * market.I_max + 1)
        if bid.shape != shape or ask.shape != shape:
            raise ValueError(f"one-MM tables must have shape (T, N) = {shape}; got {bid.shape} and {ask.shape}")

        def joint(table: np.ndarray) -> np.ndarray:
            n = shape[1]
            first = np.broadcast_to(table[:, :, None], (*shape, n))  # MM 1 reads I_1
            second = np.broadcast_to(table[:, None, :], (*shape, n))  # MM 2 reads I_2
            return np.stack([first, second])

        label = name or f"both quote {getattr(policy, 'name', 'a one-MM policy')}"
        return cls(joint(bid), joint(ask), name=label)

    @classmethod
    def from_solution(cls, solution: GameSolution) -> GamePolicy:
        """The policy of an equilibrium or cartel solution, named by its kind."""
        return cls(solution.bid, solution.ask, name=solution.kind)

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the bid and ask tables."""
        return self.bid_table.copy(), self.ask_table.copy()

    def quote(self, state: MarketState, params: CompetitionParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets ``(n, 2)`` (bid, ask) on the tick grid for a batched state.

        ``state.t`` has shape ``(n,)`` and ``state.inventory`` ``(n, 2)``; ``t`` is capped at the last row so that
        terminal states still get a quote.
        """
        market = params.market
        if self.bid_table.shape[1:] != (market.T, 2 * market.I_max + 1, 2 * market.I_max + 1):
            raise ValueError(f"tables of shape {self.bid_table.shape} do not fit this game's grid")
        t = np.minimum(np.asarray(state.t, dtype=np.intp), market.T - 1)
        inventory = (np.asarray(state.inventory) + market.I_max).astype(np.intp)
        index = (t[:, None], inventory[:, 0:1], inventory[:, 1:2])
        players = np.arange(2)[None, :]
        bid = self.bid_table[(players, *index)]
        ask = self.ask_table[(players, *index)]
        return params.on_grid(bid), params.on_grid(ask)

    def __repr__(self) -> str:
        return self.name
