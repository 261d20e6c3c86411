"""Quoting policies over a batch of observations: the article's rule, inventory-skew heuristics, the DP optimum.

A policy maps a batch of observations ``(n, d)`` and the model parameters to a batch of actions ``(n, 2)``: the bid
and ask offsets, raw (for an env built with ``normalize_actions=False``) or normalised to ``[-1, 1]``. Every policy
here is Markov in ``(t, I)``, read from the default observation ``[I / I_max, (T − t) / T]``, so its whole behaviour
is a pair of offset tables over the ``(t, I)`` grid, which :mod:`agents.dp` evaluates exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from agents.dp import DPSolution, inventory_grid, solve_dp
from mm_env.params import MarketParams
from mm_env.spaces import DEFAULT_FEATURES, encode_offsets


def observation_to_state(obs: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
    """Recover the integer step ``t`` and inventory ``I`` from default observations ``[I / I_max, (T − t) / T]``."""
    obs = np.asarray(obs)
    if obs.ndim != 2 or obs.shape[1] < len(DEFAULT_FEATURES):
        raise ValueError(f"observations must have shape (n, {len(DEFAULT_FEATURES)}) with the default features")
    inventory = np.rint(obs[:, 0].astype(np.float64) * params.I_max)
    t = params.T - np.rint(obs[:, 1].astype(np.float64) * params.T)
    return t.astype(np.intp), inventory


def state_to_observation(t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> np.ndarray:
    """The default observations of the states ``(t, I)`` (the inverse of :func:`observation_to_state`)."""
    t, inventory = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(inventory, dtype=np.float64))
    return np.stack([inventory / params.I_max, (params.T - t) / params.T], axis=-1).astype(np.float32)


class Policy(ABC):
    """A Markov quoting policy: offsets as a function of the step ``t`` and the inventory ``I``."""

    name: str = "policy"

    @abstractmethod
    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask offsets (price units) for arrays of steps and inventories (broadcast together)."""

    def act(self, obs: np.ndarray, params: MarketParams, normalize_actions: bool = False) -> np.ndarray:
        """Actions ``(n, 2)`` for a batch of default observations."""
        t, inventory = observation_to_state(obs, params)
        bid, ask = self.offsets(t, inventory, params)
        offsets = np.stack(np.broadcast_arrays(bid, ask), axis=-1)
        return encode_offsets(offsets, params, normalize=True) if normalize_actions else offsets

    def tables(self, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """The policy's bid and ask offsets over the whole grid, each of shape ``(T, 2·I_max + 1)``."""
        t = np.arange(params.T)[:, None]
        inventory = inventory_grid(params)[None, :]
        bid, ask = self.offsets(t, inventory, params)
        shape = (params.T, len(inventory[0]))
        return np.broadcast_to(bid, shape).copy(), np.broadcast_to(ask, shape).copy()

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
    """Offsets looked up in tables ``bid[t, I + I_max]`` and ``ask[t, I + I_max]``."""

    def __init__(self, bid: np.ndarray, ask: np.ndarray, name: str = "tabular") -> None:
        self.bid_table, self.ask_table = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
        if self.bid_table.ndim != 2 or self.bid_table.shape != self.ask_table.shape:
            raise ValueError("bid and ask tables must be 2-D arrays of equal shape (T, 2·I_max + 1)")
        self.name = name

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """Table lookups (``t`` is capped at the last row so terminal observations still get an action)."""
        if self.bid_table.shape != (params.T, 2 * params.I_max + 1):
            raise ValueError(f"tables of shape {self.bid_table.shape} do not fit T={params.T}, I_max={params.I_max}")
        row = np.minimum(np.asarray(t, dtype=np.intp), params.T - 1)
        column = (np.asarray(inventory) + params.I_max).astype(np.intp)
        return self.bid_table[row, column], self.ask_table[row, column]

    def tables(self, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """The tables themselves."""
        self.offsets(np.zeros(1), np.zeros(1), params)  # validates the shape
        return self.bid_table.copy(), self.ask_table.copy()


class DPPolicy(TabularPolicy):
    """The exact optimum of ``MODEL.md`` §4 (see :func:`agents.dp.solve_dp`)."""

    def __init__(self, params: MarketParams, solution: DPSolution | None = None) -> None:
        self.solution = solution if solution is not None else solve_dp(params)
        super().__init__(self.solution.bid, self.solution.ask, name="DP optimum")
