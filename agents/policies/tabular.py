"""Policies given as offset tables over the exact grid, and the exact optimum (the DP's tables)."""

from __future__ import annotations

import numpy as np

from agents.exact.dp import DPSolution, solve_dp, table_shape
from agents.policies.base import Policy
from mm_env.dynamics import MarketState
from mm_env.params import MarketParams


class TabularPolicy(Policy):
    """Offsets looked up in tables over the exact grid: ``[t, I + I_max]``, plus ``[L + 1]`` with adaptive traders."""

    def __init__(self, bid: np.ndarray, ask: np.ndarray, name: str = "tabular") -> None:
        self.bid_table, self.ask_table = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
        shape = self.bid_table.shape
        if shape != self.ask_table.shape or not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
            raise ValueError(
                "bid and ask tables must be 2-D arrays of equal shape (T, 2·I_max + 1), or 3-D (T, 2·I_max + 1, 3) "
                f"with the last trade's side; got {shape} and {self.ask_table.shape}"
            )
        self.name = name

    def quote(self, state: MarketState, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Table lookups (``t`` is capped at the last row so terminal states still get an action)."""
        self._check_shape(params)
        row = np.minimum(np.asarray(state.t, dtype=np.intp), params.T - 1)
        index: tuple[np.ndarray, ...] = (row, (np.asarray(state.inventory) + params.I_max).astype(np.intp))
        if self.bid_table.ndim == 3:
            index += ((np.sign(state.traded) + 1).astype(np.intp),)
        return self.bid_table[index], self.ask_table[index]

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Table lookups at steps and inventories (the last trade's side taken as 0)."""
        t, inventory = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(inventory, dtype=np.float64))
        zeros = np.zeros(t.shape)
        state = MarketState(t, inventory, np.full(t.shape, params.P0), zeros, zeros, zeros, zeros)
        return self.quote(state, params)

    def tables(self, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """The tables themselves."""
        self._check_shape(params)
        return self.bid_table.copy(), self.ask_table.copy()

    def _check_shape(self, params: MarketParams) -> None:
        if self.bid_table.shape != table_shape(params):
            shape, grid = self.bid_table.shape, table_shape(params)
            raise ValueError(f"tables of shape {shape} do not fit this model's grid {grid}")


DP_NAME = "DP optimum"
"""The exact optimum's name: its row in the comparison table, and the benchmark that ``comparison.json`` names."""


class DPPolicy(TabularPolicy):
    """The exact optimum (see :func:`agents.exact.dp.solve_dp`); ``ValueError`` where the model has none."""

    def __init__(self, params: MarketParams, solution: DPSolution | None = None) -> None:
        self.solution = solution if solution is not None else solve_dp(params)
        super().__init__(self.solution.bid, self.solution.ask, name=DP_NAME)
