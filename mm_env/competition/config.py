"""The configuration of competing market makers' environments: the game, the observations, the action map, ``info``.

Their batch is the one-MM envs' :class:`mm_env.batch.MarketBatch`, with this configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from mm_env.dynamics import MarketState, Outcome, wealth
from mm_env.params import CompetitionParams, MarketParams
from mm_env.presets import make_competition_params
from mm_env.spaces import action_space, decode_actions
from mm_env.xp import NUMPY, ArrayNamespace, Number


@dataclass(frozen=True)
class CompetitionConfig:
    """Everything that defines a competition environment besides its seed and batch size.

    Attributes:
        params: the game (:class:`~mm_env.params.CompetitionParams`).
        normalize_actions: ``True`` for each market maker's ``[-1, 1]²`` action box, ``False`` for raw offsets.

    Each market maker observes, in this order: its own inventory ``I_j / I_max``, the other market makers'
    inventories ``I_i / I_max`` (in their index order), the fraction of the episode left ``(T − t) / T`` and, when
    traders react to the last trade (``momentum ≠ 0``), its side ``L``. That is the state of the exact tools, so the
    observation is Markov wherever they apply.
    """

    params: CompetitionParams
    normalize_actions: bool = True
    STATE_INFO_KEYS: ClassVar[tuple[str, ...]] = ("inventory", "cash", "mtm_pnl", "mid")
    """The ``info`` entries that describe the state."""
    TRADE_INFO_KEYS: ClassVar[tuple[str, ...]] = (
        "bid",
        "ask",
        "fill_size",
        "spread_captured",
        "inventory_penalty",
        "trader_side",
        "trader_size",
        "winner",
    )
    """The ``info`` entries that describe a step's quotes and trade."""
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
            preset: the name of a market in :data:`mm_env.presets.PRESETS` (default ``"default"``), not both.
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

    def observe(self, state: MarketState, xp: ArrayNamespace | None = None) -> np.ndarray:
        """Every market maker's observation, shape ``(n, M, d)``, float32 (``xp``: the state's namespace, NumPy's)."""
        xp = NUMPY if xp is None else xp
        m = self.params.num_market_makers
        market = self.params.market
        own_first = (state.inventory / market.I_max)[:, self.view_order]  # type: ignore[index]  # one gather for all
        columns = [own_first, xp.stack([(market.T - state.t) / market.T] * m, axis=-1)[..., None]]  # type: ignore[index]
        if self.observes_last_side:
            last_side = xp.stack([xp.sign(xp.sum(state.traded, axis=1))] * m, axis=-1)
            columns.append(last_side[..., None])  # type: ignore[index]
        return xp.as_float32(xp.concatenate(columns, axis=-1))  # type: ignore[return-value]  # the namespace's array

    def decode(
        self, actions: object, batch: int, shape: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask offsets on the tick grid, shape ``(batch, M)``, from actions of shape ``(batch, M, 2)``.

        ``shape`` overrides ``(batch, M)``: the learners' views decode ``(games, learners)``.
        """
        shape = (batch, self.params.num_market_makers) if shape is None else shape
        array = np.asarray(actions)
        if array.shape != (*shape, 2):
            raise ValueError(
                f"actions must have shape {(*shape, 2)} (bid and ask offset per environment and market maker); "
                f"got shape {array.shape}"
            )
        flat = array.reshape(-1, 2)
        bid, ask = decode_actions(flat, self.params.market, self.normalize_actions, len(flat))
        return self.params.on_grid(bid).reshape(shape), self.params.on_grid(ask).reshape(shape)

    def state_info(self, state: MarketState) -> dict[str, Any]:
        """``info`` arrays of a state: per market maker ``(n, M)`` ``inventory``, ``cash``, ``mtm_pnl``; ``mid``."""
        return {
            "inventory": state.inventory,
            "cash": state.cash,
            "mtm_pnl": wealth(state, self.params),
            "mid": state.mid,
        }

    def step_info(
        self, before: MarketState, after: MarketState, bid: Number, ask: Number, outcome: Outcome
    ) -> dict[str, Any]:
        """``info`` arrays after a step from ``before``: the state, the quotes as prices and the trade.

        Per market maker, shape ``(n, M)``: ``inventory``, ``cash``, ``mtm_pnl``, ``bid``, ``ask``, ``fill_size``,
        ``spread_captured``, ``inventory_penalty``; per environment, ``(n,)``: ``mid``, ``trader_side``,
        ``trader_size``, ``winner``.
        """
        info = self.state_info(after)
        mid = np.asarray(before.mid)[:, None]
        info["bid"] = mid - bid
        info["ask"] = mid + ask
        info["fill_size"] = outcome.executed
        info["spread_captured"] = outcome.spread_captured
        info["inventory_penalty"] = outcome.inventory_penalty
        info["trader_side"] = outcome.trader_side
        info["trader_size"] = outcome.trader_size
        info["winner"] = outcome.winner
        return info
