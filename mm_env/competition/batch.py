"""The configuration, observations and batched step shared by the competing market makers' front-ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from mm_env.batch import keep_freed_memory
from mm_env.competition.core import (
    CompetitionOutcome,
    CompetitionState,
    compete,
    initial_competition_state,
    sample_competition_draws,
)
from mm_env.competition.params import CompetitionParams, make_competition_params
from mm_env.params import MarketParams
from mm_env.spaces import action_space, decode_actions


@dataclass(frozen=True)
class CompetitionConfig:
    """Everything that defines a competition environment besides its seed and batch size.

    Attributes:
        params: the game (:class:`~mm_env.competition.params.CompetitionParams`).
        normalize_actions: ``True`` for each market maker's ``[-1, 1]²`` action box, ``False`` for raw offsets.

    Each market maker observes, in this order: its own inventory ``I_j / I_max``, the other market makers'
    inventories ``I_i / I_max`` (in their index order), the fraction of the episode left ``(T − t) / T`` and, when
    traders react to the last trade (``momentum ≠ 0``), its side ``L``. That is the state of the exact tools, so the
    observation is Markov wherever they apply.
    """

    params: CompetitionParams
    normalize_actions: bool = True
    view_order: np.ndarray = field(init=False, repr=False, compare=False)
    """``(M, M)``: row ``j`` lists market maker ``j`` first, then the others in their order (each one's view)."""

    def __post_init__(self) -> None:
        if not isinstance(self.params, CompetitionParams):
            raise ValueError(f"params={self.params!r} is invalid: must be a CompetitionParams")
        if not isinstance(self.normalize_actions, (bool, np.bool_)):
            raise ValueError(f"normalize_actions={self.normalize_actions!r} is invalid: must be True or False")
        object.__setattr__(self, "normalize_actions", bool(self.normalize_actions))
        m = self.params.num_market_makers
        order = np.array([[j, *(i for i in range(m) if i != j)] for j in range(m)])
        order.flags.writeable = False
        object.__setattr__(self, "view_order", order)

    @classmethod
    def from_kwargs(
        cls,
        params: CompetitionParams | MarketParams | None = None,
        preset: str | None = None,
        num_market_makers: int | None = None,
        tick: float | None = None,
        normalize_actions: bool = True,
        **overrides: Any,
    ) -> CompetitionConfig:
        """The configuration from the front-ends' keywords.

        Args:
            params: a game (``CompetitionParams``) or the market the market makers share (``MarketParams``); or
            preset: the name of a market in :data:`mm_env.params.PRESETS` (default ``"default"``), not both.
            num_market_makers: ``M`` (default 2, or that of ``params``).
            tick: the tick size (default 0.01, or that of ``params``).
            normalize_actions: ``True`` (default) for the ``[-1, 1]`` action box, ``False`` for raw offsets.
            **overrides: any market parameter by its flat name (``lam=0.002``, ``reward="mtm"``).
        """
        if params is not None and preset is not None:
            raise ValueError(f"give params or preset={preset!r}, not both")
        if isinstance(params, CompetitionParams):
            market: str | MarketParams = params.market
            num_market_makers = params.num_market_makers if num_market_makers is None else num_market_makers
            tick = params.tick if tick is None else tick
        elif params is None or isinstance(params, MarketParams):
            market = params if params is not None else preset or "default"
        else:
            raise ValueError(f"params={params!r} is invalid: must be a CompetitionParams or a MarketParams")
        game = make_competition_params(
            market, 2 if num_market_makers is None else num_market_makers, 0.01 if tick is None else tick, **overrides
        )
        return cls(game, normalize_actions)

    @property
    def num_market_makers(self) -> int:
        """``M``."""
        return self.params.num_market_makers

    @property
    def observation_space(self) -> spaces.Box:
        """One market maker's observation space."""
        m = self.params.num_market_makers
        low = [-1.0] * m + [0.0] + [-1.0] * self.observes_last_side
        high = [1.0] * (m + 1 + self.observes_last_side)
        return spaces.Box(np.array(low, dtype=np.float32), np.array(high, dtype=np.float32), dtype=np.float32)

    @property
    def action_space(self) -> spaces.Box:
        """One market maker's action space (that of the one-MM env)."""
        return action_space(self.params.market, self.normalize_actions)

    @property
    def features(self) -> tuple[str, ...]:
        """The names of one market maker's observation columns, in order."""
        others = tuple(f"other_inventory_{i}" for i in range(1, self.params.num_market_makers))
        return ("inventory", *others, "time_left", *(("last_side",) if self.observes_last_side else ()))

    @property
    def observes_last_side(self) -> bool:
        """Whether the observation carries the last trade's side (with adaptive traders)."""
        return self.params.market.flow.momentum != 0.0

    def observe(self, state: CompetitionState) -> np.ndarray:
        """Every market maker's observation, shape ``(n, M, d)``, float32."""
        n, m = state.inventory.shape
        market = self.params.market
        obs = np.empty((n, m, m + 1 + self.observes_last_side), dtype=np.float32)
        scaled = state.inventory / market.I_max
        obs[:, :, :m] = scaled[:, self.view_order]  # one gather for every market maker's view
        obs[:, :, m] = ((market.T - state.t) / market.T)[:, None]
        if self.observes_last_side:
            obs[:, :, m + 1] = np.sign(state.traded.sum(axis=1))[:, None]
        return obs

    def decode(self, actions: object, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask offsets of shape ``shape`` on the tick grid, from actions of shape ``(*shape, 2)``.

        ``shape`` is ``(environments, market makers)``: all of them in the PettingZoo env, the learners elsewhere.
        """
        array = np.asarray(actions)
        if array.shape != (*shape, 2):
            raise ValueError(
                f"actions must have shape {(*shape, 2)} (bid and ask offset per environment and market maker); "
                f"got shape {array.shape}"
            )
        flat = array.reshape(-1, 2)
        bid, ask = decode_actions(flat, self.params.market, self.normalize_actions, len(flat))
        return self.params.on_grid(bid).reshape(shape), self.params.on_grid(ask).reshape(shape)


def competition_info(
    state: CompetitionState,
    before: CompetitionState | None = None,
    quotes: tuple[np.ndarray, np.ndarray] | None = None,
    outcome: CompetitionOutcome | None = None,
) -> dict[str, np.ndarray]:
    """``info`` arrays of a batch: the state and, after a step from ``before``, the quotes as prices and the trade.

    Per market maker, shape ``(n, M)``: ``inventory``, ``cash``, ``mtm_pnl``, ``bid``, ``ask``, ``fill_size``,
    ``spread_captured``, ``inventory_penalty``; per environment, ``(n,)``: ``mid``, ``trader_side``, ``trader_size``,
    ``winner``.
    """
    info = {
        "inventory": state.inventory,
        "cash": state.cash,
        "mtm_pnl": state.cash + state.inventory * state.mid[:, None],
        "mid": state.mid,
    }
    if before is not None and quotes is not None and outcome is not None:
        info["bid"] = before.mid[:, None] - quotes[0]
        info["ask"] = before.mid[:, None] + quotes[1]
        info["fill_size"] = outcome.executed
        info["spread_captured"] = outcome.spread_captured
        info["inventory_penalty"] = outcome.inventory_penalty
        info["trader_side"] = outcome.trader_side
        info["trader_size"] = outcome.trader_size
        info["winner"] = outcome.winner
    return info


class CompetitionBatch:
    """The state of ``num_envs`` competition environments and one batched step over them."""

    def __init__(self, config: CompetitionConfig, num_envs: int) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer >= 1")
        self.config = config
        self.params = config.params
        self.num_envs = int(num_envs)
        self.state = initial_competition_state(self.params, self.num_envs)
        keep_freed_memory(self.num_envs * self.params.num_market_makers)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every environment, or only where ``mask`` is true."""
        fresh = initial_competition_state(self.params, self.num_envs)
        if mask is None:
            self.state = fresh
            return
        self.state = CompetitionState(
            *(
                np.where(mask if new.ndim == 1 else mask[:, None], new, old)
                for new, old in zip(fresh, self.state, strict=True)
            )
        )

    def observe(self) -> np.ndarray:
        """Every market maker's observation, ``(num_envs, M, d)``."""
        return self.config.observe(self.state)

    def step(
        self, bid: np.ndarray, ask: np.ndarray, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> CompetitionOutcome:
        """Step every environment (or those where ``active`` is true) with offsets ``(num_envs, M)`` on the grid.

        Draws are taken only for the environments that step, in index order. Entries of inactive environments in
        the outcome are zero (their ``winner`` is −1). :func:`competition_info` turns a step into ``info`` arrays.
        """
        before = self.state
        if active is None:
            draws = sample_competition_draws(rng, self.params, self.num_envs)
            self.state, outcome = compete(before, bid, ask, draws, self.params)
            return outcome
        index = np.flatnonzero(active)
        draws = sample_competition_draws(rng, self.params, len(index))
        sub_before = CompetitionState(*(field[index] for field in before))
        sub_after, sub_outcome = compete(sub_before, bid[index], ask[index], draws, self.params)
        self.state = CompetitionState(*(_scatter(old, index, new) for old, new in zip(before, sub_after, strict=True)))
        outcome = CompetitionOutcome(
            *(_scatter(np.zeros_like(new, shape=(self.num_envs, *new.shape[1:])), index, new) for new in sub_outcome)
        )
        return outcome._replace(winner=np.where(active, outcome.winner, -1))


def _scatter(base: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.array(base, dtype=np.result_type(base, values))
    out[index] = values
    return out
