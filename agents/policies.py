"""Quoting policies: the article's rule, inventory-skew heuristics, the DP optimum, and any offset table.

A policy quotes from the model state (``t``, ``I``, the last trade's side ``L``, …), not from observation columns:
:meth:`Policy.quote` maps a :class:`~mm_env.dynamics.MarketState` of arrays to bid and ask offsets in price units.
Only learned agents read observations (see :mod:`agents.sb3_policy`), which they compute from the same state.
A policy that depends on the Markov state alone is a pair of offset tables over the exact grid
(:func:`agents.dp.table_shape`), which :func:`agents.dp.evaluate_tables` evaluates exactly.
"""

from __future__ import annotations

import numpy as np

from agents.dp import DPSolution, inventory_grid, last_sides, solve_dp, table_shape
from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState
from mm_env.params import MarketParams
from mm_env.spaces import encode_offsets


def grid_states(params: MarketParams) -> MarketState:
    """Every Markov state of the exact grid as one batch, shaped like :func:`agents.dp.table_shape`.

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
        """The policy's offsets over the whole exact grid, each of shape :func:`agents.dp.table_shape`.

        Raises ``ValueError`` if the policy reads more of the state than the grid holds.
        """
        states = grid_states(params)
        bid, ask = self.quote(states, params)
        shape = table_shape(params)
        bid_table = np.broadcast_to(bid, states.t.shape).reshape(shape).copy()
        ask_table = np.broadcast_to(ask, states.t.shape).reshape(shape).copy()
        return bid_table, ask_table

    def __repr__(self) -> str:
        return self.name


class ArticleRule(Policy):
    """The article's γ-skew rule in the consistent sign convention of ``MODEL.md`` §1.

    ``δ_b = Δ + max(γ·I, 0)`` and ``δ_a = Δ + max(−γ·I, 0)``: a long market maker widens its bid, so that it buys
    less. These are exactly the article's ``bid = P − Δ − |min(γq, 0)|``, ``ask = P + Δ + max(γq, 0)`` with the
    article's ``q`` the traders' net flow ``−I``, so in article mode this rule reproduces the article's quotes.
    ``flipped=True`` reads the article's ``q`` as the market maker's own inventory instead: it widens the side that
    would reduce risk, the sign error ``MODEL.md`` §1 warns about.
    """

    def __init__(self, spread_base: float = 0.5, gamma: float = 0.1, flipped: bool = False) -> None:
        self.spread_base, self.gamma, self.flipped = float(spread_base), float(gamma), bool(flipped)
        label = "article rule (flipped sign)" if flipped else "article rule"
        self.name = f"{label} Δ={self.spread_base:.3g}, γ={self.gamma:.3g}"

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the rule (time-independent)."""
        skew = self.gamma * np.asarray(inventory, dtype=np.float64)
        if self.flipped:
            skew = -skew
        return self.spread_base + np.maximum(skew, 0.0), self.spread_base + np.maximum(-skew, 0.0)


class ConstantSpread(Policy):
    """The same offset on both sides, whatever the inventory."""

    def __init__(self, offset: float = 0.5) -> None:
        self.offset = float(offset)
        self.name = f"constant offset {self.offset:.3g}"

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """A constant offset on both sides."""
        constant = np.full(np.shape(inventory), self.offset)
        return constant, constant


class LinearSkew(Policy):
    """A linear inventory skew ``δ_b = c + s·I``, ``δ_a = c − s·I``, clipped to ``[delta_min, delta_max]``."""

    def __init__(self, center: float = 0.7, slope: float = 0.06) -> None:
        self.center, self.slope = float(center), float(slope)
        self.name = f"linear skew c={self.center:.3g}, s={self.slope:.3g}"

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the skew, clipped to the allowed range."""
        skew = self.slope * np.asarray(inventory, dtype=np.float64)
        bounds = (params.delta_min, params.delta_max)
        return np.clip(self.center + skew, *bounds), np.clip(self.center - skew, *bounds)


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


class DPPolicy(TabularPolicy):
    """The exact optimum (see :func:`agents.dp.solve_dp`); ``ValueError`` where the model has none."""

    def __init__(self, params: MarketParams, solution: DPSolution | None = None) -> None:
        self.solution = solution if solution is not None else solve_dp(params)
        super().__init__(self.solution.bid, self.solution.ask, name="DP optimum")
