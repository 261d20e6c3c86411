"""Model parameters: one frozen, validated dataclass and the named presets.

Field names follow the symbols of the model specification (``T``, ``P0``, ``I_max``, ``pi``, ``A``, ``k``,
``lam``, ``alpha``, ``kappa``, ``sigma``) so that formulas read the same in code and in the docs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

REWARDS = ("spread", "mtm")
MODES = ("standard", "article")
_PROB_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MarketParams:
    """Parameters of the market-making model (see the table in README and ``MODEL.md`` §2-§3, §5).

    Attributes:
        T: steps per episode (integer ≥ 1).
        P0: initial mid price (finite).
        I_max: inventory limit; fills are cut so that ``|I| ≤ I_max`` (integer ≥ 1).
        pi: probability that a trader arrives in a step, in ``[0, 1]``.
        sizes: possible trader sizes, distinct positive integers.
        size_probs: probability of each size (non-negative, summing to 1); ``None`` means uniform.
        A: fill probability at a zero offset, in ``(0, 1]``; a quote at offset ``δ`` fills with
            probability ``A·exp(-k·δ)``.
        k: decay of the fill probability with the offset (> 0).
        lam: running inventory penalty λ (≥ 0); the step reward subtracts ``lam·I'²``.
        alpha: terminal inventory penalty α (≥ 0); the last step also subtracts ``alpha·I_T²``.
        kappa: linear permanent price impact κ per unit traded (≥ 0).
        sigma: standard deviation σ of the exogenous mid noise per step (≥ 0).
        delta_min: smallest quote offset from the mid (≥ 0).
        delta_max: largest quote offset; quoting ``delta_max`` is in effect not quoting (> ``delta_min``).
        reward: ``"spread"`` (spread captured minus penalty) or ``"mtm"`` (mark-to-market P&L minus penalty).
        mode: ``"standard"`` (fills depend on the quotes) or ``"article"`` (the article's model: every arriving
            order fills whatever the quotes, and the spread reward is the full quoted spread times the size).
    """

    T: int = 200
    P0: float = 100.0
    I_max: int = 50
    pi: float = 1.0
    sizes: tuple[int, ...] = tuple(range(1, 10))
    size_probs: tuple[float, ...] | None = None
    A: float = 0.9
    k: float = 2.0
    lam: float = 0.005
    alpha: float = 0.0
    kappa: float = 0.05
    sigma: float = 0.0
    delta_min: float = 0.0
    delta_max: float = 5.0
    reward: str = "spread"
    mode: str = "standard"
    # Derived, exact quantities that the hot path would otherwise recompute every step.
    probs: tuple[float, ...] = field(init=False, repr=False, compare=False)
    size_cdf: tuple[float, ...] = field(init=False, repr=False, compare=False)
    uniform_sizes: bool = field(init=False, repr=False, compare=False)
    consecutive_sizes: bool = field(init=False, repr=False, compare=False)
    """Uniform sizes that run ``s0, s0 + 1, …`` without gaps (a batch then draws them without a table)."""
    article: bool = field(init=False, repr=False, compare=False)
    """Whether this is the article's model (every arriving order fills)."""
    below_half_pi: float = field(init=False, repr=False, compare=False)
    """The largest uniform draw that brings a buyer (``u < pi/2``), see :func:`mm_env.dynamics.sample_draws`."""

    def __post_init__(self) -> None:
        _check_int(self, "T", minimum=1)
        _check_real(self, "P0")
        _check_int(self, "I_max", minimum=1)
        _check_real(self, "pi", low=0.0, high=1.0)
        _check_sizes(self)
        _check_real(self, "A", low=0.0, high=1.0, low_open=True)
        _check_real(self, "k", low=0.0, low_open=True)
        for name in ("lam", "alpha", "kappa", "sigma", "delta_min"):
            _check_real(self, name, low=0.0)
        _check_real(self, "delta_max", low=self.delta_min, low_open=True)
        _check_choice(self, "reward", REWARDS)
        _check_choice(self, "mode", MODES)
        probs = self.size_probs or (1.0 / len(self.sizes),) * len(self.sizes)
        cdf = [min(sum(probs[: i + 1]), 1.0) for i in range(len(probs))]
        cdf[-1] = 1.0
        object.__setattr__(self, "probs", tuple(float(p) for p in probs))
        object.__setattr__(self, "size_cdf", tuple(cdf))
        object.__setattr__(self, "uniform_sizes", self.size_probs is None)
        consecutive = self.sizes == tuple(range(self.sizes[0], self.sizes[0] + len(self.sizes)))
        object.__setattr__(self, "consecutive_sizes", self.uniform_sizes and consecutive)
        object.__setattr__(self, "article", self.mode == "article")
        object.__setattr__(self, "below_half_pi", math.nextafter(0.5 * self.pi, 0.0))

    @property
    def max_size(self) -> int:
        """The largest trader size."""
        return max(self.sizes)

    def replace(self, **changes: Any) -> MarketParams:
        """Return a copy with some fields changed (validated like the constructor)."""
        _check_field_names(changes)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The constructor arguments as plain Python values (for JSON and logging)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}


def make_params(preset: str | MarketParams = "default", **overrides: Any) -> MarketParams:
    """Build parameters from a preset name (or a ``MarketParams``) with keyword overrides.

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


def _check_field_names(changes: Mapping[str, Any]) -> None:
    allowed = [f.name for f in dataclasses.fields(MarketParams) if f.init]
    for name in changes:
        if name not in allowed:
            raise ValueError(f"{name!r} is not a model parameter; allowed: {allowed}")


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{name}={value!r} is invalid: must be {allowed}")


def _check_int(params: MarketParams, name: str, minimum: int) -> None:
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    object.__setattr__(params, name, int(value))


def _check_real(
    params: MarketParams,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
) -> None:
    value = getattr(params, name)
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        lower = "(" if low_open else "["
        _fail(name, value, f"a finite number in {lower}{low}, {high}]")
    object.__setattr__(params, name, float(value))


def _check_choice(params: MarketParams, name: str, allowed: Sequence[str]) -> None:
    value = getattr(params, name)
    if value not in allowed:
        _fail(name, value, f"one of {list(allowed)}")


def _check_sizes(params: MarketParams) -> None:
    for name in ("sizes", "size_probs"):
        value = getattr(params, name)
        if isinstance(value, np.ndarray) and value.ndim == 1:
            object.__setattr__(params, name, value.tolist())
    sizes = params.sizes
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        _fail("sizes", sizes, "a non-empty sequence of distinct positive integers")
    if any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes) or len(set(sizes)) != len(sizes):
        _fail("sizes", sizes, "a non-empty sequence of distinct positive integers")
    object.__setattr__(params, "sizes", tuple(int(s) for s in sizes))
    probs = params.size_probs
    if probs is None:
        return
    valid = isinstance(probs, Sequence) and not isinstance(probs, (str, bytes)) and len(probs) == len(sizes)
    valid = valid and all(
        isinstance(p, Real) and not isinstance(p, bool) and math.isfinite(p) and p >= 0 for p in probs
    )
    if not valid or abs(math.fsum(probs) - 1.0) > _PROB_TOLERANCE:
        _fail(
            "size_probs",
            probs,
            f"None or {len(sizes)} non-negative numbers (one per size) summing to 1",
        )
    object.__setattr__(params, "size_probs", tuple(float(p) for p in probs))


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
    return MarketParams(T=200, P0=100.0, I_max=1800, kappa=kappa, lam=lam, delta_max=200.0, mode="article")


ARTICLE_SCENARIOS: dict[str, ArticleScenario] = {
    "article_low_volatility": ArticleScenario("low volatility", _article_params(0.01, 0.01), 0.5, 0.1),
    "article_high_volatility": ArticleScenario("high volatility", _article_params(0.1, 0.01), 0.5, 0.1),
    "article_low_risk_weight": ArticleScenario("low risk weight", _article_params(0.1, 0.01), 0.5, 0.01),
    "article_low_penalty": ArticleScenario("low penalty", _article_params(0.1, 0.002), 0.5, 0.01),
}

PRESETS: dict[str, MarketParams] = {
    "default": MarketParams(),
    "easy": MarketParams(lam=0.002),
    "mtm": MarketParams(reward="mtm"),
    "article": ARTICLE_SCENARIOS["article_low_volatility"].params,
    **{name: scenario.params for name, scenario in ARTICLE_SCENARIOS.items()},
}
