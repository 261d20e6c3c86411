"""Playing policies on common random numbers: whole episodes of a batch, one market maker or a game alike.

Every policy run with the same seed meets the same traders, fill uniforms and mid moves, whatever it quotes: the draws
come from ``numpy.random.default_rng(seed)`` and never depend on the state (:mod:`mm_env.dynamics`). Differences
between policies are then paired, and their standard errors small. The policies quote from the model state: a
one-MM policy (:class:`agents.policies.Policy`) or a joint policy of a game (:class:`mm_env.opponents.JointPolicy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.policies.base import Policy
from mm_env.batch import BatchConfig, MarketBatch
from mm_env.competition.config import CompetitionConfig
from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState
from mm_env.opponents import JointPolicy
from mm_env.params import CompetitionParams, MarketParams
from mm_env.render import HISTORY_KEYS
from mm_env.xp import Number

Quotes = Callable[[MarketState], tuple[Number, Number]]
"""A policy bound to its model: the bid and ask offsets of a batch of states."""


@dataclass(frozen=True)
class Episodes:
    """Per-episode results of one policy: arrays over episodes, with a last axis per market maker in a game."""

    returns: np.ndarray
    pnl: np.ndarray
    """Final mark-to-market P&L ``X_T + I_T·P_T``."""
    max_drawdown: np.ndarray
    """Largest fall of the mark-to-market P&L from its running peak within the episode."""
    mean_abs_inventory: np.ndarray
    final_abs_inventory: np.ndarray
    fills: np.ndarray
    arrivals: np.ndarray
    """Steps in which a trader came (per episode: the environment's, shared by its market makers)."""
    mean_spread: np.ndarray
    """Mean quoted spread ``δ_b + δ_a`` over the episode."""


def raw_offsets_config(params: MarketParams | CompetitionParams) -> BatchConfig:
    """The configuration of a batch that takes offsets in price units as actions (clipped, and put on the grid)."""
    if isinstance(params, CompetitionParams):
        return CompetitionConfig(params, normalize_actions=False)
    return EnvConfig(params, normalize_actions=False)


def rollout(quotes: Quotes, params: MarketParams | CompetitionParams, episodes: int, seed: int) -> Episodes:
    """Run ``episodes`` full episodes of a policy as one batch whose draws come from ``default_rng(seed)``."""
    batch = MarketBatch(raw_offsets_config(params), episodes)
    rng = np.random.default_rng(seed)
    shape = np.shape(batch.state.inventory)
    returns, peak, drawdown, abs_inventory, spread = (np.zeros(shape) for _ in range(5))
    fills, arrivals = np.zeros(shape, dtype=np.int64), np.zeros(episodes, dtype=np.int64)
    for _ in range(params.market.T):
        bid, ask = quotes(batch.state)
        outcome, info = batch.step(np.stack(np.broadcast_arrays(bid, ask), axis=-1), rng)
        returns += outcome.reward
        pnl = info["mtm_pnl"]
        np.maximum(peak, pnl, out=peak)
        np.maximum(drawdown, peak - pnl, out=drawdown)
        abs_inventory += np.abs(info["inventory"])
        fills += info["fill_size"] > 0
        arrivals += info["trader_side"] != 0
        spread = spread + (info["ask"] - info["bid"])
    if not np.all(outcome.terminated):
        raise RuntimeError("episodes did not end after T steps")
    return Episodes(
        returns=returns,
        pnl=pnl,
        max_drawdown=drawdown,
        mean_abs_inventory=abs_inventory / params.market.T,
        final_abs_inventory=np.abs(info["inventory"]),
        fills=fills,
        arrivals=arrivals,
        mean_spread=spread / params.market.T,
    )


def run_episodes(policy: Policy, params: MarketParams, episodes: int, seed: int) -> Episodes:
    """Run ``episodes`` full episodes of a one-MM ``policy`` (see :func:`rollout`)."""
    return rollout(lambda state: policy.quote(state, params), params, episodes, seed)


def run_games(policy: JointPolicy, params: CompetitionParams, episodes: int, seed: int) -> np.ndarray:
    """Each market maker's return in ``episodes`` games of a joint ``policy``, shape ``(episodes, M)``."""
    return rollout(lambda state: policy.quote(state, params), params, episodes, seed).returns


def episode_history(policy: Policy, params: MarketParams, seed: int) -> dict[str, np.ndarray]:
    """One episode of ``policy`` step by step: the arrays of ``mm_env.render.HISTORY_KEYS`` plus ``spread``.

    The episode is the single environment's for ``seed`` (a batch of one draws the same traders).
    """
    batch = MarketBatch(raw_offsets_config(params), 1)
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {key: [] for key in (*HISTORY_KEYS, "spread")}
    for _ in range(params.T):
        mid = np.asarray(batch.state.mid)[0]
        bid, ask = policy.quote(batch.state, params)
        outcome, info = batch.step(np.stack(np.broadcast_arrays(bid, ask), axis=-1), rng)
        values = (
            mid,
            info["bid"][0],
            info["ask"][0],
            info["inventory"][0],
            np.asarray(outcome.reward)[0],
            info["ask"][0] - info["bid"][0],
        )
        for key, value in zip(history, values, strict=True):
            history[key].append(float(value))
    return {key: np.asarray(values) for key, values in history.items()}
