"""The market model: a frozen composition of components, its flat keyword surface, and competing market makers.

A model is :class:`MarketParams`: the episode and quoting bounds (``T``, ``P0``, ``I_max``, ``delta_min``,
``delta_max``) and five components from :mod:`mm_env.model`, each a small frozen, validated dataclass that documents
its own parameters: the order flow, the fill law, price impact, mid noise and the objective. Every parameter also
has a flat keyword name, the name of its field (``lam``, ``kappa``, ``p_buy``, …, plus ``mode`` for the fill law),
so ``make_params("easy", lam=0.003)``, ``gym.make(..., lam=0.003)`` and ``train.py --env-kwargs lam=0.003`` all
work, and ``params.lam`` reads it back (typed: a type checker knows it is a ``float``). The named models and
:func:`~mm_env.presets.make_params` are in :mod:`mm_env.presets`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, overload

import numpy as np

from mm_env.model.checks import MAX_MAGNITUDE, check_int, check_real, fail
from mm_env.model.fill import FILLS, ArticleFill, ExponentialFill
from mm_env.model.flow import OrderFlow
from mm_env.model.impact import PriceImpact
from mm_env.model.makers import SOLE_MARKET_MAKER, PricePriority, SoleMarketMaker
from mm_env.model.noise import MidNoise
from mm_env.model.objective import REWARDS, Objective
from mm_env.xp import NUMPY, ArrayNamespace

MODES = tuple(FILLS)
EPISODE_FIELDS = ("T", "P0", "I_max", "delta_min", "delta_max")
COMPONENT_FIELDS = ("flow", "fill", "impact", "noise", "objective")
_COMPONENT_TYPES: dict[str, tuple[type, ...]] = {
    "flow": (OrderFlow,),
    "fill": tuple(FILLS.values()),
    "impact": (PriceImpact,),
    "noise": (MidNoise,),
    "objective": (Objective,),
}


_Component = TypeVar("_Component")


def _init_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def _take(cls: type[_Component], flat: dict[str, Any]) -> _Component:
    """A component built from its flat keywords, which are taken out of ``flat``."""
    return cls(**{name: flat.pop(name) for name in _init_fields(cls) if name in flat})


# Which component owns each flat keyword: derived from the components' own fields, so it cannot drift.
FLAT_OWNERS: dict[str, str] = {
    name: component for component, classes in _COMPONENT_TYPES.items() for cls in classes for name in _init_fields(cls)
}
FLAT_NAMES: tuple[str, ...] = (*EPISODE_FIELDS, "mode", *FLAT_OWNERS)
"""Every keyword that names a model parameter (``make_params(lam=...)``, ``gym.make(..., lam=...)``)."""


_Value = TypeVar("_Value")


class FlatRead(Generic[_Value]):
    """A component's parameter read flat from the model: ``params.lam`` is ``params.objective.lam``.

    A typed descriptor, so that a type checker knows ``make_params("easy").lam`` is a ``float``; a plain attribute
    lookup at run time (a ``__getattr__`` hook would slow every attribute access of the class).
    """

    def __init__(self, component: str) -> None:
        self.component = component
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"``{self.component}.{name}``, read flat."

    @overload
    def __get__(self, instance: None, owner: type) -> FlatRead[_Value]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> _Value: ...

    def __get__(self, instance: object, owner: type) -> FlatRead[_Value] | _Value:
        if instance is None:
            return self
        value: _Value = getattr(getattr(instance, self.component), self.name)
        return value


@dataclass(frozen=True)
class MarketParams:
    """A market-making model (``MODEL.md`` §2, §5, §7): the episode, the quoting bounds and the components.

    Attributes:
        T: steps per episode (integer ≥ 1).
        P0: initial mid price (finite).
        I_max: inventory limit; fills are cut so that ``|I| ≤ I_max`` (integer ≥ 1).
        delta_min: smallest quote offset from the mid (≥ 0).
        delta_max: largest quote offset; quoting ``delta_max`` is in effect not quoting (> ``delta_min``).
        flow: who arrives (:class:`~mm_env.model.flow.OrderFlow`: ``pi``, ``sizes``, ``size_probs``, ``p_buy``,
            ``momentum``, ``informed``, ``info_jump``).
        fill: the fill law (:class:`~mm_env.model.fill.ExponentialFill`: ``A``, ``k``; or
            :class:`~mm_env.model.fill.ArticleFill`, the article's model, flat keyword ``mode="article"``).
        impact: price impact (:class:`~mm_env.model.impact.PriceImpact`: ``kappa``, ``impact_exponent``,
            ``transient_kappa``, ``transient_decay``).
        noise: exogenous mid moves (:class:`~mm_env.model.noise.MidNoise`: ``sigma``, ``jump_prob``, ``jump_size``,
            ``mean_reversion``).
        objective: the reward (:class:`~mm_env.model.objective.Objective`: ``reward``, ``lam``, ``alpha``).

    Build one with :func:`mm_env.presets.make_params` (a preset plus flat keyword overrides) or directly from
    components.
    """

    T: int = 200
    P0: float = 100.0
    I_max: int = 50
    delta_min: float = 0.0
    delta_max: float = 5.0
    flow: OrderFlow = field(default_factory=OrderFlow)
    fill: ExponentialFill | ArticleFill = field(default_factory=ExponentialFill)
    impact: PriceImpact = field(default_factory=PriceImpact)
    noise: MidNoise = field(default_factory=MidNoise)
    objective: Objective = field(default_factory=Objective)

    # Every component parameter read flat (unannotated, so not fields of the dataclass); a test holds them equal to
    # FLAT_OWNERS, which is derived from the components' own fields.
    pi = FlatRead[float]("flow")
    sizes = FlatRead[tuple[int, ...]]("flow")
    size_probs = FlatRead[tuple[float, ...] | None]("flow")
    p_buy = FlatRead[float]("flow")
    momentum = FlatRead[float]("flow")
    informed = FlatRead[float]("flow")
    info_jump = FlatRead[float]("flow")
    A = FlatRead[float]("fill")
    k = FlatRead[float]("fill")
    kappa = FlatRead[float]("impact")
    impact_exponent = FlatRead[float]("impact")
    transient_kappa = FlatRead[float]("impact")
    transient_decay = FlatRead[float]("impact")
    sigma = FlatRead[float]("noise")
    jump_prob = FlatRead[float]("noise")
    jump_size = FlatRead[float]("noise")
    mean_reversion = FlatRead[float]("noise")
    reward = FlatRead[str]("objective")
    lam = FlatRead[float]("objective")
    alpha = FlatRead[float]("objective")

    makers: ClassVar[SoleMarketMaker] = SOLE_MARKET_MAKER
    """Who quotes: one market maker (see :mod:`mm_env.model.makers`; competing market makers have another)."""

    def __post_init__(self) -> None:
        check_int(self, "T", minimum=1)
        check_real(self, "P0")
        check_int(self, "I_max", minimum=1)
        check_real(self, "delta_min", low=0.0, high=MAX_MAGNITUDE, high_open=True)  # room for a larger delta_max
        check_real(self, "delta_max", low=self.delta_min, low_open=True)
        for name, classes in _COMPONENT_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, classes):
                allowed = " or ".join(cls.__name__ for cls in classes)
                raise ValueError(f"{name}={value!r} is invalid: must be a {allowed}")

    @property
    def market(self) -> MarketParams:
        """The market the market makers quote in: the model itself (one market maker; a game has a market and more)."""
        return self

    @property
    def mode(self) -> str:
        """The fill law's name: ``standard`` or ``article``."""
        return self.fill.mode

    @property
    def max_size(self) -> int:
        """The largest trader size."""
        return self.flow.max_size

    @property
    def mid_move_scale(self) -> float:
        """A scale for the mid's move in one step: the largest trade's impact, the news and exogenous moves."""
        scale = self.impact.largest_move(self.max_size) + self.flow.info_jump + self.noise.largest_move()
        # 1 where nothing moves the mid (a sum of non-negative terms is 0 only then). Arithmetic rather than a
        # conditional, so that it also holds for parameters traced by JAX (mm_env.jax).
        return scale + (scale == 0.0)

    def replace(self, **changes: Any) -> MarketParams:
        """A copy with some flat keyword parameters changed (validated like the constructor)."""
        return _from_flat(self.as_dict(), changes)

    def as_dict(self) -> dict[str, Any]:
        """Every parameter by its flat keyword name, as plain Python values (for JSON, YAML and logging)."""
        flat: dict[str, Any] = {name: getattr(self, name) for name in EPISODE_FIELDS}
        flat["mode"] = self.fill.mode
        for component in COMPONENT_FIELDS:
            value = getattr(self, component)
            flat.update({name: _plain(getattr(value, name)) for name in _init_fields(type(value))})
        return flat


def _from_flat(base: dict[str, Any], changes: dict[str, Any]) -> MarketParams:
    unknown = [name for name in changes if name not in FLAT_NAMES]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a model parameter; allowed: {list(FLAT_NAMES)}")
    flat = {**base, **changes}
    mode = flat.pop("mode", "standard")
    if not isinstance(mode, str) or mode not in FILLS:
        raise ValueError(f"mode={mode!r} is invalid: must be one of {list(MODES)}")
    flow, fill, impact = _take(OrderFlow, flat), _take(FILLS[mode], flat), _take(PriceImpact, flat)
    noise, objective = _take(MidNoise, flat), _take(Objective, flat)
    for name in flat:
        if name in changes and name not in EPISODE_FIELDS:
            raise ValueError(f"{name!r} does not apply to mode={mode!r} (its fill law has no such parameter)")
    episode = {name: flat[name] for name in EPISODE_FIELDS if name in flat}
    return MarketParams(**episode, flow=flow, fill=fill, impact=impact, noise=noise, objective=objective)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


MAX_TICKS = 10_000_000
"""The most ticks a market maker's offsets may take (the exact game tools search them; 500 at the defaults)."""
MAX_MARKET_MAKERS = 64
"""The largest number of market makers an environment accepts (the matching is quadratic in nothing, but a limit
catches a mistyped count before it allocates)."""


@dataclass(frozen=True)
class CompetitionParams:
    """``M`` market makers competing for one order flow.

    Attributes:
        market: the market they share (:class:`MarketParams`): the mid, the traders, the fill law,
            impact, noise, and the reward and inventory limit that apply to each market maker on its own.
        num_market_makers: ``M``, an integer in ``[1, 64]`` (1 is the one-MM market on a tick grid).
        tick: the tick size (> 0, at most ``delta_max − delta_min``). Offsets are rounded to the nearest multiple of
            the tick within ``[delta_min, delta_max]``, so that undercutting by one tick is well defined.

    A trader goes to the best (lowest) offset on its side among the market makers that can trade there (capacity
    ``> 0``); ties are split uniformly at random. It accepts that quote with the probability of the fill law, and the
    winner executes ``min(Q, its capacity)``; the rest of the order is not routed further.
    """

    market: MarketParams = field(default_factory=MarketParams)
    num_market_makers: int = 2
    tick: float = 0.01
    lowest_tick: int = field(init=False, repr=False, compare=False)
    """The smallest allowed offset in ticks, ``ceil(delta_min / tick)``."""
    highest_tick: int = field(init=False, repr=False, compare=False)
    """The largest allowed offset in ticks, ``floor(delta_max / tick)``."""
    makers: PricePriority = field(init=False, repr=False, compare=False)
    """Who quotes: ``M`` market makers by price priority on the tick grid (the agent axis of the transition)."""

    def __post_init__(self) -> None:
        if not isinstance(self.market, MarketParams):
            fail("market", self.market, "a MarketParams")
        check_int(self, "num_market_makers", 1)
        if self.num_market_makers > MAX_MARKET_MAKERS:
            fail("num_market_makers", self.num_market_makers, f"an integer in [1, {MAX_MARKET_MAKERS}]")
        check_real(self, "tick", low=0.0, low_open=True)
        low, high = self.market.delta_min / self.tick, self.market.delta_max / self.tick
        if not high - low <= MAX_TICKS:  # also an infinite ratio, from a tick near the smallest float
            fail("tick", self.tick, f"at least (delta_max - delta_min) / {MAX_TICKS:,} (at most {MAX_TICKS:,} ticks)")
        # A small tolerance, so that bounds that are multiples of the tick in decimal (5.0 / 0.01, 0.6 / 0.1) stay
        # on the grid, and a width of one tick in decimal (0.6 - 0.5 = 0.1) holds two ticks.
        lowest = math.ceil(low - 1e-9)
        highest = math.floor(high + 1e-9)
        if highest <= lowest:
            fail(
                "tick",
                self.tick,
                f"small enough for two ticks in [delta_min, delta_max] = [{self.market.delta_min}, "
                f"{self.market.delta_max}]",
            )
        object.__setattr__(self, "lowest_tick", lowest)
        object.__setattr__(self, "highest_tick", highest)
        object.__setattr__(self, "makers", PricePriority(self.num_market_makers, self.tick))

    @property
    def agents(self) -> tuple[str, ...]:
        """The market makers' names: ``mm_0``, ``mm_1`` and so on."""
        return tuple(f"mm_{j}" for j in range(self.num_market_makers))

    def to_ticks(self, offsets: Any, xp: ArrayNamespace | None = None) -> np.ndarray:
        """Offsets (any shape) as whole ticks: rounded to the nearest tick, within ``[delta_min, delta_max]``.

        ``xp``: the offsets' array namespace (default: NumPy, any array-like taken as float64).
        """
        if xp is None:
            xp, offsets = NUMPY, np.asarray(offsets, dtype=np.float64)
        return xp.clip(xp.rint(offsets / self.tick), self.lowest_tick, self.highest_tick)  # type: ignore[return-value]

    def on_grid(self, offsets: Any, xp: ArrayNamespace | None = None) -> np.ndarray:
        """Offsets rounded to the tick grid (see :meth:`to_ticks`)."""
        return self.to_ticks(offsets, xp) * self.tick

    def tick_offsets(self) -> np.ndarray:
        """Every allowed offset, from the lowest tick to the highest."""
        return np.arange(self.lowest_tick, self.highest_tick + 1) * self.tick


__all__ = [
    "FLAT_NAMES",
    "FLAT_OWNERS",
    "MAX_MARKET_MAKERS",
    "MAX_TICKS",
    "MODES",
    "REWARDS",
    "CompetitionParams",
    "FlatRead",
    "MarketParams",
]
