"""The replay backtest (``MODEL.md`` §10.5): a recorded market drives a one-market-maker environment.

Nothing is simulated. The tape's mid path and its market orders (a :class:`~mm_env.data.steps.SteppedTape`) decide
every step: the market maker quotes ``bid = P_n − δ_b`` and ``ask = P_n + δ_a`` around the step-start mid for the
whole step, and each of the step's market orders, in time order, fills the quote on its side if it reached it.

* **Prices.** By default (``prices="tick"``) the quotes are rounded *outward* to the exchange's grid, the bid down and
  the ask up to a whole tick (one model price unit), so on a one-tick spread every offset in ``[0, ½]`` lands on the
  touch. ``prices="continuous"`` skips the rounding, as the model itself does.
* **Which orders fill, and how much.** A buy fills the ask if one of its fills printed at a price ``≥ ask``
  (``queue="first"``, the default: the market maker is first in the queue at its price, and takes the order's volume
  at prices at or beyond its quote) or ``> ask`` (``queue="strict"``: last in the queue, it takes only the volume
  that traded strictly beyond its quote); sells likewise at the bid. The size is
  ``Q' = min(bin(q_reach), capacity)`` lots with ``bin`` of :func:`~mm_env.data.steps.bin_sizes` and the capacity
  ``I + I_max`` on the ask and ``I_max − I`` on the bid at that moment: several fills per step, each against the
  current capacity.
* **Updates and rewards** (model units: ticks, lots, tick·lot). ``I ← I − S·Q'``, ``X ← X + S·Q'·(quote price)``,
  and the realised offset is ``δ'_S = |quote − P_n|``. The spread reward is ``Σ Q'·δ'_S − λ·I'²``, the
  mark-to-market reward ``(X' + I'·P_{n+1}) − (X + I·P_n) − λ·I'²``; the last step also charges ``α·I_T²``.
  Currency is model units times ``tick × lot``.

The recorded mid never moves because of the market maker, nobody reacts to its quotes, and quotes inside the spread
fill as if they were free: ``MODEL.md`` §10.5 says what that makes optimistic and what pessimistic.

:class:`ReplayEnv` is the Gymnasium environment (``mm_env/Replay-v0``), with the one-market-maker environment's
action and observation conventions; :func:`replay_step` is its step, a pure function of the state and the quotes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from mm_env.config import EnvConfig
from mm_env.data.steps import SteppedTape, bin_sizes
from mm_env.dynamics import MarketState
from mm_env.limits import check_options
from mm_env.params import MarketParams
from mm_env.render import EpisodeRenderer, require_matplotlib

__all__ = [
    "PRICES",
    "QUEUES",
    "REPLAY_INFO_KEYS",
    "ReplayConfig",
    "ReplayEnv",
    "ReplayOutcome",
    "ReplayTotals",
    "replay_initial_state",
    "replay_step",
]

QUEUES = ("first", "strict")
"""The queue assumptions: first in the queue at the quote's price (fills at or beyond it), or last (strictly beyond)."""
PRICES = ("tick", "continuous")
"""The quote prices: rounded outward to whole ticks, or left as ``P_n ± δ``."""
_TOLERANCE = 1e-9
"""Prices within this many ticks (relative to the price, at least one) count as equal: decimal prices divided by the
tick are whole numbers only to rounding."""
_UNSUPPORTED_FEATURES = ("last_fill",)

STATE_INFO_KEYS = ("inventory", "mid", "cash", "mtm_pnl", "pnl", "tape_step", "time")
"""The ``info`` entries that describe the state (after ``reset`` and every step)."""
STEP_INFO_KEYS = (
    "bid",
    "ask",
    "bid_offset",
    "ask_offset",
    "trader_side",
    "trader_size",
    "fills",
    "sold",
    "bought",
    "spread_captured",
    "mtm_change",
    "inventory_penalty",
)
"""The ``info`` entries that describe one step's quotes and fills."""
EPISODE_INFO_KEYS = (
    "episode_captured",
    "episode_spread_reward",
    "episode_mtm_reward",
    "episode_fills",
    "episode_volume",
    "episode_both_sided",
    "episode_max_abs_inventory",
)
"""The ``info`` entries that sum up the episode so far (the report quantities of ``MODEL.md`` §10.5 step 6)."""
REPLAY_INFO_KEYS = STATE_INFO_KEYS + STEP_INFO_KEYS + EPISODE_INFO_KEYS
"""Every ``info`` entry after a step."""


class _Order(NamedTuple):
    """One market order of a step: its side and its fills (prices in ticks, sizes in base units), in time order."""

    side: int
    prices: tuple[float, ...]
    sizes: tuple[float, ...]


def _step_orders(tape: SteppedTape) -> tuple[tuple[_Order, ...], ...]:
    """Every step's market orders with their fills, as Python numbers (the step reads a handful of them)."""
    orders, tick = tape.orders, tape.units.tick
    prices = (orders.fill_price / tick).tolist()
    sizes = orders.fill_size.tolist()
    first, count, side = orders.first_fill_index.tolist(), orders.n_fills.tolist(), orders.side.tolist()
    each = [
        _Order(
            int(side[i]), tuple(prices[first[i] : first[i] + count[i]]), tuple(sizes[first[i] : first[i] + count[i]])
        )
        for i in range(len(side))
    ]
    bounds = tape.orders_in_step.tolist()
    return tuple(tuple(each[bounds[n] : bounds[n + 1]]) for n in range(tape.N))


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is invalid: must be one of {list(allowed)}")
    return value


def _check_start(value: Any, tape: SteppedTape, T: int, name: str = "start") -> int:
    """A window's first step: an integer in ``[0, N − T]``."""
    last = tape.N - T
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) <= last:
        raise ValueError(
            f"{name}={value!r} is invalid: must be an integer in [0, {last}] (the tape has N={tape.N} steps and an "
            f"episode T={T})"
        )
    return int(value)


@dataclass(frozen=True, eq=False)
class ReplayConfig:
    """What a replay needs besides its state: the tape, the environment's configuration, the queue and price rules.

    Attributes:
        tape: the recorded market on the model's step grid (:class:`~mm_env.data.steps.SteppedTape`).
        env: the one-market-maker configuration (:class:`~mm_env.config.EnvConfig`): the model (its ``T`` is the
            episode's length in steps; ``I_max``, ``delta_min``, ``delta_max``, ``lam``, ``alpha`` and ``reward`` apply;
            the rest of the model is not simulated, and tells policies what they were built for), the observation
            features and the action map.
        queue: ``"first"`` (default) or ``"strict"`` (see :data:`QUEUES`).
        prices: ``"tick"`` (default) or ``"continuous"`` (see :data:`PRICES`).
        start: the first tape step of an episode, in ``[0, N − T]``; ``None`` draws it uniformly at every ``reset``.
    """

    tape: SteppedTape
    env: EnvConfig
    queue: str = "first"
    prices: str = "tick"
    start: int | None = 0
    orders: tuple[tuple[_Order, ...], ...] = field(init=False, repr=False, compare=False)
    """Each step's market orders, with their fills in ticks and base units."""
    mids: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """The tape's mids ``P_0 … P_N`` as Python numbers."""
    sides: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """The tape's step sides ``S_0 … S_{N−1}`` as Python numbers."""

    def __post_init__(self) -> None:
        if not isinstance(self.tape, SteppedTape):
            raise ValueError(
                f"tape={type(self.tape).__name__} is invalid: must be a SteppedTape (mm_env.data.to_steps)"
            )
        if not isinstance(self.env, EnvConfig):
            raise ValueError(f"env={type(self.env).__name__} is invalid: must be an EnvConfig")
        params = self.env.params
        if not params.fill.quotes_matter:
            raise ValueError(f"mode={params.fill.mode!r} is invalid: the replay fills from the tape; use 'standard'")
        unsupported = [name for name in self.env.features if name in _UNSUPPORTED_FEATURES]
        if unsupported:
            raise ValueError(
                f"observation feature {unsupported[0]!r} is invalid for the replay (several fills per step): allowed "
                "inventory, time_left, last_side, mid_change"
            )
        if params.T > self.tape.N:
            raise ValueError(f"T={params.T} is invalid: must be an integer in [1, {self.tape.N}] (the tape's steps)")
        _check_choice("queue", self.queue, QUEUES)
        _check_choice("prices", self.prices, PRICES)
        if self.start is not None:
            object.__setattr__(self, "start", _check_start(self.start, self.tape, params.T))
        object.__setattr__(self, "orders", _step_orders(self.tape))
        object.__setattr__(self, "mids", tuple(float(mid) for mid in self.tape.mid.tolist()))
        object.__setattr__(self, "sides", tuple(int(side) for side in self.tape.side.tolist()))

    @property
    def params(self) -> MarketParams:
        """The model (``env.params``)."""
        return self.env.params

    @property
    def currency(self) -> float:
        """Quote currency per model unit of money, ``tick × lot``."""
        return self.tape.units.tick * self.tape.units.lot

    def quote_prices(self, mid: float, bid_offset: float, ask_offset: float) -> tuple[float, float]:
        """The bid and ask prices (ticks) quoted at offsets from the mid: rounded outward with ``prices="tick"``."""
        bid, ask = mid - bid_offset, mid + ask_offset
        if self.prices == "continuous":
            return bid, ask
        rounded_bid = math.floor(bid + _TOLERANCE * max(1.0, abs(bid)))
        rounded_ask = math.ceil(ask - _TOLERANCE * max(1.0, abs(ask)))
        return float(rounded_bid), float(rounded_ask)

    def reach(self, order: _Order, quote: float) -> float:
        """The volume (base units) of ``order`` that the market maker's quote at ``quote`` (ticks) would take.

        Queue-first: the fills at prices at or beyond the quote; strict: those strictly beyond it. ``beyond`` is in
        the order's direction: above the ask for a buy, below the bid for a sell.
        """
        tolerance = _TOLERANCE * max(1.0, abs(quote))
        side, volume = order.side, 0.0
        if self.queue == "first":
            for price, size in zip(order.prices, order.sizes, strict=True):
                if side * (price - quote) >= -tolerance:
                    volume += size
        else:
            for price, size in zip(order.prices, order.sizes, strict=True):
                if side * (price - quote) > tolerance:
                    volume += size
        return volume


class ReplayOutcome(NamedTuple):
    """What one replayed step did, besides the new state (model units: ticks, lots, tick·lot)."""

    reward: float
    """The step's reward: the spread or mark-to-market gain less the inventory penalty."""
    bid: float
    """The bid price quoted (ticks, after rounding)."""
    ask: float
    """The ask price quoted."""
    bid_offset: float
    """The bid's realised offset ``P_n − bid``."""
    ask_offset: float
    """The ask's realised offset ``ask − P_n``."""
    fills: int
    """How many of the step's market orders filled a quote (with ``Q' > 0``)."""
    sold: int
    """Lots sold at the ask (to buyers)."""
    bought: int
    """Lots bought at the bid (from sellers)."""
    spread_captured: float
    """``Σ Q'·δ'_S`` over the step's fills."""
    mtm_change: float
    """The change of mark-to-market wealth ``(X' + I'·P_{n+1}) − (X + I·P_n)``, without the penalty."""
    inventory_penalty: float
    """``λ·I'²``, plus ``α·I'²`` on the last step."""
    terminated: bool


def replay_initial_state(config: ReplayConfig, start: int) -> MarketState:
    """The state at the start of a window that begins at tape step ``start``: no inventory, no cash, ``L_0 = 0``.

    The replay's :class:`~mm_env.dynamics.MarketState` holds the steps taken ``t``, the inventory, the mid ``P_n``,
    the cash, the mid's last move and, in ``traded``, the *tape's* last-trade side ``L_n`` (so that the
    ``last_side`` feature and the policies with momentum read it, ``MODEL.md`` §10.5).
    """
    start = _check_start(start, config.tape, config.params.T)
    return MarketState(0, 0, float(config.tape.mid[start]), 0.0, 0.0, 0, 0.0)


def replay_step(
    config: ReplayConfig, start: int, state: MarketState, bid_offset: float, ask_offset: float
) -> tuple[MarketState, ReplayOutcome]:
    """Replay one step of the window that begins at tape step ``start`` (``MODEL.md`` §10.5).

    ``state.t`` steps of the window are done, so this is tape step ``n = start + t``. The offsets are in model
    price units, within ``[delta_min, delta_max]``.
    """
    params = config.params
    t, inventory, mid, cash = int(state.t), int(state.inventory), float(state.mid), float(state.cash)
    n = start + t
    bid, ask = config.quote_prices(mid, bid_offset, ask_offset)
    realised = {1: ask - mid, -1: mid - bid}  # the side a trader takes: +1 buys at the ask, −1 sells at the bid
    quotes = {1: ask, -1: bid}
    lot, I_max = config.tape.units.lot, params.I_max
    new_inventory, new_cash, captured = inventory, cash, 0.0
    fills = sold = bought = 0
    for order in config.orders[n]:
        side = order.side
        volume = config.reach(order, quotes[side])
        if volume <= 0.0:
            continue
        capacity = I_max + side * new_inventory
        executed = min(int(bin_sizes(volume, lot)), capacity)
        if executed <= 0:
            continue
        new_inventory -= side * executed
        new_cash += side * executed * quotes[side]
        captured += executed * realised[side]
        fills += 1
        if side > 0:
            sold += executed
        else:
            bought += executed
    new_mid = config.mids[n + 1]
    new_t = t + 1
    terminated = new_t >= params.T
    change = (new_cash + new_inventory * new_mid) - (cash + inventory * mid)
    objective = params.objective
    squared = new_inventory * new_inventory
    penalty = objective.lam * squared + (objective.alpha * squared if terminated else 0.0)
    reward = (change if objective.reads_mid else captured) - penalty
    last_side = config.sides[n]  # L_{n+1} = S_n, the tape's
    new_state = MarketState(new_t, new_inventory, new_mid, new_cash, new_mid - mid, last_side, 0.0)
    outcome = ReplayOutcome(
        reward, bid, ask, realised[-1], realised[1], fills, sold, bought, captured, change, penalty, terminated
    )
    return new_state, outcome


class ReplayTotals:
    """The report quantities of an episode so far (``MODEL.md`` §10.5 step 6), summed step by step."""

    def __init__(self) -> None:
        self.captured = self.spread_reward = self.mtm_reward = 0.0
        self.fills = self.volume = self.both_sided = self.max_abs_inventory = 0

    def add(self, outcome: ReplayOutcome, inventory: int) -> None:
        """Count one step's outcome; ``inventory`` is the inventory after it."""
        self.captured += outcome.spread_captured
        self.spread_reward += outcome.spread_captured - outcome.inventory_penalty
        self.mtm_reward += outcome.mtm_change - outcome.inventory_penalty
        self.fills += outcome.fills
        self.volume += outcome.sold + outcome.bought
        self.both_sided += outcome.sold > 0 and outcome.bought > 0
        self.max_abs_inventory = max(self.max_abs_inventory, abs(inventory))

    def info(self) -> dict[str, float | int]:
        """The totals as the ``episode_…`` entries of ``info`` (:data:`EPISODE_INFO_KEYS`)."""
        return {
            "episode_captured": self.captured,
            "episode_spread_reward": self.spread_reward,
            "episode_mtm_reward": self.mtm_reward,
            "episode_fills": self.fills,
            "episode_volume": self.volume,
            "episode_both_sided": self.both_sided,
            "episode_max_abs_inventory": self.max_abs_inventory,
        }


class ReplayEnv(gym.Env[np.ndarray, np.ndarray]):
    r"""A market maker replayed against a recorded market: the tape's mid and market orders decide every step.

    ## Description

    The replay backtest of ``MODEL.md`` §10.5. At step ``n`` the market maker quotes ``bid = P_n − δ_b`` and
    ``ask = P_n + δ_a`` around the tape's step-start mid ``P_n`` for the whole step (rounded outward to whole ticks
    by default, ``prices="continuous"`` for the model's unrounded quotes). Each of the step's recorded market
    orders, in time order, fills the quote on its side if it printed at or beyond it (``queue="first"``, default) or
    strictly beyond it (``queue="strict"``), for the volume it traded there, binned to lots and cut to the
    inventory limit at that moment. The mid then moves as recorded: never because of the market maker.

    ## Action Space

    As :class:`~mm_env.env.MarketMakingEnv`: ``Box(-1, 1, (2,), float32)``, the bid and ask offsets mapped linearly
    onto ``[delta_min, delta_max]`` (in ticks); ``normalize_actions=False`` takes the raw offsets.

    ## Observation Space

    As :class:`~mm_env.env.MarketMakingEnv`: ``(I/I_max, time left)`` by default, plus ``last_side`` when the model
    has momentum. ``last_side`` is the *tape's* last-trade side ``L_n`` (0 at the start of an episode), because on a
    real market the market maker is not the only liquidity; ``mid_change`` is the recorded mid's last move over the
    model's scale. ``last_fill`` is not offered (a step may fill both sides).

    ## Rewards

    In model units (tick·lot). ``reward="spread"``: ``Σ Q'·δ'_S − lam·I'²`` with the realised offsets
    ``δ'_S = |quote − P_n|``; ``reward="mtm"``: ``(X' + I'·P_{n+1}) − (X + I·P_n) − lam·I'²``. The last step also
    subtracts ``alpha·I_T²``.

    ## Starting State

    No inventory, no cash, ``L = 0``, at the window's first step ``start`` (``reset(options={"start": n})``, else the
    constructor's ``start``; ``start=None`` draws it uniformly from ``[0, N − T]`` with the env's generator).

    ## Episode End

    Terminated after ``T`` steps (the model's ``T``: the window's length), the inventory marked at the window's last
    mid.

    ## Info

    After ``reset``: ``inventory``, ``mid`` (ticks), ``cash``, ``mtm_pnl`` (``X + I·P``, tick·lot), ``pnl`` (the same
    in quote currency), ``tape_step`` (``n``) and ``time`` (``t_n``, exchange seconds). After ``step`` also ``bid``
    and ``ask`` (the quoted prices, ticks), ``bid_offset`` and ``ask_offset`` (realised), ``trader_side`` and
    ``trader_size`` (the tape's step trader ``S_n``, ``Q_n``), ``fills``, ``sold`` and ``bought`` (lots),
    ``spread_captured``, ``mtm_change`` and ``inventory_penalty``, and the episode so far: ``episode_captured``,
    ``episode_spread_reward``, ``episode_mtm_reward``, ``episode_fills``, ``episode_volume`` (lots),
    ``episode_both_sided`` (steps with fills on both sides) and ``episode_max_abs_inventory``.

    ## Arguments

    ```python
    import gymnasium as gym
    import mm_env
    from mm_env.data import ModelUnits, to_steps

    stepped = to_steps(tape, ModelUnits(dt=1.0, tick=1.0, lot=0.01))
    env = gym.make("mm_env/Replay-v0", tape=stepped, T=900, I_max=100, lam=1e-4, delta_max=20.0)
    env = gym.make("mm_env/Replay-v0", tape=stepped, params=calibrated, queue="strict", start=None)
    ```

    ``tape`` (a :class:`~mm_env.data.steps.SteppedTape`), ``queue``, ``prices`` and ``start``, and the keywords of
    :meth:`mm_env.config.EnvConfig.from_kwargs` (``params`` or ``preset``, ``observation_features``,
    ``normalize_actions`` and any model parameter by its flat name). Without ``params`` and ``T``, an episode runs
    from ``start`` to the tape's end. ``render_mode="rgb_array"`` draws the episode (it needs matplotlib).
    ``env.state`` is the replay's state (see :func:`replay_initial_state`), which the policies of ``agents`` quote
    from.

    ## Version History

    * v0: Initial version.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        tape: SteppedTape,
        params: MarketParams | None = None,
        *,
        start: int | None = 0,
        queue: str = "first",
        prices: str = "tick",
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if not isinstance(tape, SteppedTape):
            raise ValueError(f"tape={type(tape).__name__} is invalid: must be a SteppedTape (mm_env.data.to_steps)")
        if params is None and "T" not in env_kwargs:
            first = start if isinstance(start, Integral) and not isinstance(start, bool) and 0 <= start < tape.N else 0
            env_kwargs["T"] = tape.N - int(first)
        self.config = ReplayConfig(tape, EnvConfig.from_kwargs(params, **env_kwargs), queue, prices, start)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is invalid: allowed {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.params = self.config.params
        self.observation_space = self.config.env.observation_space
        self.action_space = self.config.env.action_space
        self.state: MarketState | None = None
        self.start = 0
        """The current episode's first tape step."""
        self._totals = ReplayTotals()
        self._renderer: EpisodeRenderer | None = None
        if render_mode == "rgb_array":
            require_matplotlib()
            self._renderer = EpisodeRenderer(self.params.T)

    @property
    def tape(self) -> SteppedTape:
        """The recorded market."""
        return self.config.tape

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode at ``options["start"]`` (a tape step), else at the constructor's ``start``."""
        chosen = check_options(options, ("start",))
        super().reset(seed=seed)
        T = self.params.T
        if "start" in chosen:
            start = _check_start(chosen["start"], self.tape, T, 'options["start"]')
        elif self.config.start is None:
            start = int(self.np_random.integers(0, self.tape.N - T + 1))
        else:
            start = self.config.start
        self.start = start
        self.state = replay_initial_state(self.config, start)
        self._totals = ReplayTotals()
        if self._renderer is not None:
            self._renderer.clear()
        return self.config.env.observe(self.state), self._state_info(self.state)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Quote the offsets in ``action`` for one step of the tape."""
        before = self.state
        if before is None:
            raise RuntimeError("call reset() before step()")
        if before.t >= self.params.T:
            raise RuntimeError(f"the episode ended after T={self.params.T} steps; call reset()")
        bid_offset, ask_offset = self.config.env.decode(action)
        self.state, outcome = replay_step(self.config, self.start, before, float(bid_offset), float(ask_offset))
        info = self._state_info(self.state)
        n = self.start + int(before.t)
        info.update(
            bid=outcome.bid,
            ask=outcome.ask,
            bid_offset=outcome.bid_offset,
            ask_offset=outcome.ask_offset,
            trader_side=self.config.sides[n],
            trader_size=int(self.tape.size[n]),
            fills=outcome.fills,
            sold=outcome.sold,
            bought=outcome.bought,
            spread_captured=outcome.spread_captured,
            mtm_change=outcome.mtm_change,
            inventory_penalty=outcome.inventory_penalty,
        )
        self._totals.add(outcome, int(self.state.inventory))
        info.update(self._totals.info())
        if self._renderer is not None:
            self._renderer.record(before.mid, outcome.bid, outcome.ask, self.state.inventory, outcome.reward)
        obs = self.config.env.observe(self.state)
        return obs, float(outcome.reward), bool(outcome.terminated), False, info

    def _state_info(self, state: MarketState) -> dict[str, Any]:
        n = self.start + int(state.t)
        wealth = float(state.cash) + float(state.inventory) * float(state.mid)
        return {
            "inventory": int(state.inventory),
            "mid": float(state.mid),
            "cash": float(state.cash),
            "mtm_pnl": wealth,
            "pnl": wealth * self.config.currency,
            "tape_step": n,
            "time": self.tape.t0 + n * self.tape.units.dt,
        }

    # Gymnasium 1.2 (what RLlib pins) types a frame as an unbound TypeVar, which no concrete return type overrides.
    def render(self) -> np.ndarray | None:  # type: ignore[override, unused-ignore]
        """With ``render_mode="rgb_array"``: the episode so far as an RGB image (mid, quotes, inventory, rewards)."""
        if self._renderer is None:
            gym.logger.warn("render() needs render_mode='rgb_array' at construction")
            return None
        return self._renderer.render()

    def close(self) -> None:
        """Release the figure of ``render()``."""
        if self._renderer is not None:
            self._renderer.close()
        super().close()
