"""The named models (presets), the article's four scenarios, and :func:`make_params`: a preset with flat overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mm_env.model.fill import ArticleFill
from mm_env.model.impact import PriceImpact
from mm_env.model.objective import Objective
from mm_env.params import FLAT_NAMES, CompetitionParams, MarketParams


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
"""The article's four scenarios (``MODEL.md`` §5): each one's model and the rule parameters Δ and γ it runs."""

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


def make_competition_params(
    preset: str | MarketParams = "default", num_market_makers: int = 2, tick: float = 0.01, **overrides: Any
) -> CompetitionParams:
    """``M`` market makers on a market preset (:data:`PRESETS`) with flat overrides.

    >>> make_competition_params("mtm", tick=0.05).market.reward
    'mtm'
    """
    unknown = sorted(set(overrides) - set(FLAT_NAMES))
    if unknown:
        allowed = ["preset", "params", "num_market_makers", "tick", *FLAT_NAMES]
        raise ValueError(f"{unknown[0]!r} is not a competition keyword or model parameter; allowed: {allowed}")
    return CompetitionParams(make_params(preset, **overrides), num_market_makers, tick)


__all__ = ["ARTICLE_SCENARIOS", "PRESETS", "ArticleScenario", "make_competition_params", "make_params"]
