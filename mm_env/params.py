"""The market model: a frozen composition of components, its flat keyword surface, and the named presets.

A model is :class:`MarketParams`: the episode and quoting bounds (``T``, ``P0``, ``I_max``, ``delta_min``,
``delta_max``) and five components from :mod:`mm_env.model`, each a small frozen, validated dataclass that documents
its own parameters: the order flow, the fill law, price impact, mid noise and the objective. Every parameter also
has a flat keyword name, the name of its field (``lam``, ``kappa``, ``p_buy``, …, plus ``mode`` for the fill law),
so ``make_params("easy", lam=0.003)``, ``gym.make(..., lam=0.003)`` and ``train.py --env-kwargs lam=0.003`` all
work, and ``params.lam`` reads it back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mm_env.model.checks import check_int, check_real
from mm_env.model.fill import FILLS, ArticleFill, ExponentialFill
from mm_env.model.flow import OrderFlow
from mm_env.model.impact import PriceImpact
from mm_env.model.noise import MidNoise
from mm_env.model.objective import REWARDS, Objective

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

    Build one with :func:`make_params` (a preset plus flat keyword overrides) or directly from components.
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

    def __post_init__(self) -> None:
        check_int(self, "T", minimum=1)
        check_real(self, "P0")
        check_int(self, "I_max", minimum=1)
        check_real(self, "delta_min", low=0.0)
        check_real(self, "delta_max", low=self.delta_min, low_open=True)
        for name, classes in _COMPONENT_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, classes):
                allowed = " or ".join(cls.__name__ for cls in classes)
                raise ValueError(f"{name}={value!r} is invalid: must be a {allowed}")

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
        return scale if scale > 0.0 else 1.0

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


def _flat_read(component: str, name: str) -> property:
    return property(lambda self: getattr(getattr(self, component), name), doc=f"``{component}.{name}``, read flat.")


# Flat reads (params.lam, params.kappa, …) as plain properties: a __getattr__ hook would slow every attribute access
# of the class, and the step reads the model's attributes many times.
for _name, _component in FLAT_OWNERS.items():
    setattr(MarketParams, _name, _flat_read(_component, _name))


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


def make_params(preset: str | MarketParams = "default", **overrides: Any) -> MarketParams:
    """Build a model from a preset name (or a ``MarketParams``) with flat keyword overrides.

    >>> make_params("easy", T=100).lam
    0.002
    """
    if isinstance(preset, MarketParams):
        base = preset
    elif isinstance(preset, str) and preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ValueError(f"preset={preset!r} is not a known preset; allowed: {sorted(PRESETS)}")
    return base.replace(**overrides) if overrides else base


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ArticleScenario:
    """One of the article's four scenarios: the model parameters and the article rule's (Δ, γ)."""

    title: str
    params: MarketParams
    spread_base: float
    gamma: float


def _article_params(kappa: float, lam: float) -> MarketParams:
    # The article has no inventory limit: with T·max(size) = 1800 the limit can never bind, and offsets up to 200
    # cover the article rule's widest quote (0.5 + 0.1·1800), so the reproduction is exact.
    return MarketParams(
        I_max=1800, delta_max=200.0, fill=ArticleFill(), impact=PriceImpact(kappa=kappa), objective=Objective(lam=lam)
    )


ARTICLE_SCENARIOS: dict[str, ArticleScenario] = {
    "article_low_volatility": ArticleScenario("low volatility", _article_params(0.01, 0.01), 0.5, 0.1),
    "article_high_volatility": ArticleScenario("high volatility", _article_params(0.1, 0.01), 0.5, 0.1),
    "article_low_risk_weight": ArticleScenario("low risk weight", _article_params(0.1, 0.01), 0.5, 0.01),
    "article_low_penalty": ArticleScenario("low penalty", _article_params(0.1, 0.002), 0.5, 0.01),
}

_DEFAULT = MarketParams()

PRESETS: dict[str, MarketParams] = {
    "default": _DEFAULT,
    "easy": _DEFAULT.replace(lam=0.002),
    "mtm": _DEFAULT.replace(reward="mtm"),
    # §7.1: a fifth of the traders know the next jump of ±0.5; under mtm the optimal quotes widen to pay for it.
    "informed": _DEFAULT.replace(reward="mtm", informed=0.2, info_jump=0.5),
    # §7.1: trend-following flow, a buy makes the next buy more likely. The value depends on the last trade's side L;
    # the optimal quotes do not (L changes who comes next, not what a fill is worth).
    "momentum": _DEFAULT.replace(momentum=0.6),
    # §7.2: the square-root law, as strong as the linear default at the largest size (0.15·√9 = 0.05·9).
    "sqrt_impact": _DEFAULT.replace(reward="mtm", kappa=0.15, impact_exponent=0.5, alpha=0.01),
    # §7.2: half of the impact decays (90% stays each step); under mtm no exact optimum exists.
    "transient": _DEFAULT.replace(reward="mtm", kappa=0.025, transient_kappa=0.025, transient_decay=0.9),
    # §7.4: Cartea–Jaimungal's problem (Λ = 1, k = 2, φ = 0.002, α = 0.01, horizon 5) with dt = 0.01.
    "cartea_jaimungal": _DEFAULT.replace(
        T=500, I_max=5, sizes=(1,), A=1.0, k=2.0, pi=0.02, lam=0.002 * 0.01, alpha=0.01, kappa=0.0
    ),
    "article": ARTICLE_SCENARIOS["article_low_volatility"].params,
    **{name: scenario.params for name, scenario in ARTICLE_SCENARIOS.items()},
}
"""The named models. ``default``, ``easy`` and ``mtm`` are those of ``MODEL.md`` §3; ``informed``, ``momentum``,
``sqrt_impact`` and ``transient`` each show one extension of §7; ``cartea_jaimungal`` is §7.4's continuous-time
problem in discrete steps; ``article`` and the four scenarios are the article's model of §5."""

__all__ = [
    "ARTICLE_SCENARIOS",
    "FLAT_NAMES",
    "MODES",
    "PRESETS",
    "REWARDS",
    "ArticleScenario",
    "MarketParams",
    "make_params",
]
