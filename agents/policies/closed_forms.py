"""The classical closed-form market makers (``MODEL.md`` §7.4), mapped onto the discrete model.

Avellaneda–Stoikov (2008), Cartea–Jaimungal–Penalva (2015, ch. 10.2) and Guéant–Lehalle–Fernandez-Tapia (2013).

**The mapping.** Measure time in steps (``dt = 1``). A step brings a trader on the ask side (it buys, the market
maker sells, ``I → I − Q'``) with probability ``w_a`` and on the bid side with probability ``w_b``
(``w_a = w_b = π/2`` for the default flow; in general ``OrderFlow.side_law``), who accepts a quote at offset ``δ``
with probability ``A·e^{−kδ}``. At most one trader arrives per step, so as ``dt → 0`` this is the
continuous-time problem with per-side fill intensities ``Λ_s·e^{−kδ}``, ``Λ_s = w_s·A`` per step, and the rewards
map one to one: the spread reward pays ``Q'·δ`` per fill, the running penalty ``λ·I'²`` per step is
``φ·∫I² dt`` with ``φ = λ`` per step, and the terminal penalty is ``α·I_T²``. The classical papers maximise
``E[X_T + I_T·S_T − α·I_T² − φ·∫I_u² du]``, which under the spread reward (the mid never enters) is exactly the
expected episode return. Under ``mtm`` with linear permanent impact ``κ`` the wealth change of a step is
``f·Q'·(δ − κ·Q'/2) − (κ/2)·(I'² − I²) + I'·(noise)`` (``MODEL.md`` §4): it telescopes, so a unit fill pays
``δ − κ/2``, the terminal penalty becomes ``α + κ/2``, and ``(κ/2)·I_0²`` is added to the value. Writing
``δ = κ/2 + δ'`` turns the fill probability into ``A·e^{−kκ/2}·e^{−kδ'}``: the same problem in ``δ'`` with
``Λ_s = w_s·A·e^{−kκ/2}``. That is :class:`ContinuousTimeMapping` (``shift = κ/2``; 0 under ``spread``).

**Cartea–Jaimungal** (risk-neutral, running penalty; exact for unit sizes). With ``h(t, q)`` the value beyond
cash and mark-to-market, ``h = (1/k)·ln ω`` linearises the HJB equation: for ``q ∈ {−I_max … I_max}``,
``ω(τ) = exp(𝐀·τ)·z`` with ``τ = T − t`` the steps left, ``z_q = e^{−k·α·q²}`` and the tridiagonal generator
``𝐀[q, q] = −φ·k·q²``, ``𝐀[q, q−1] = Λ_a/e``, ``𝐀[q, q+1] = Λ_b/e`` (the rows at ``±I_max`` lose the term that
would leave the grid). The optimal quotes are ``δ_b(t, q) = 1/k − (h(t, q+1) − h(t, q))`` and
``δ_a(t, q) = 1/k − (h(t, q−1) − h(t, q))`` (plus the shift), no quote (``δ_max``) on the side that would breach
the limit, clipped to ``[δ_min, δ_max]``; step ``t`` uses ``τ = T − t``. ``h(0, 0)`` is the continuous-time
optimal value; the discrete DP converges to it at first order in ``dt`` (``MODEL.md`` §7.4).

*Numerics.* ``ω`` spans many orders of magnitude across ``q`` when penalties are large, and the quotes need every
entry to full *relative* accuracy. ``scipy.linalg.expm`` is accurate in norm only: on small-norm generators its
far off-diagonal entries can be wrong by orders of magnitude. The generator is Metzler (off-diagonal entries
≥ 0), so here ``exp(𝐀) = e^{−s}·exp(𝐀 + s·I)`` with ``𝐀 + s·I ≥ 0``; the Taylor series of a non-negative
matrix (after scaling its norm to ≤ ½, with enough terms to span the band) and the squarings that follow add only
non-negative numbers, which makes every entry accurate to rounding. ``ω`` is then propagated step by step in
log space (``log ω``; a log-sum-exp per row), so no ``T`` overflows (the plain ``exp(𝐀·T)·z`` grows like
``e^{2Λτ/e}``) and no entry of ``ω`` underflows, however wide its range.

**Guéant–Lehalle–Fernandez-Tapia** (the long-horizon closed-form approximation, risk-neutral form). Expanding the
Hamiltonian ``H_s(p) = (Λ_s/(k·e))·e^{−kp}`` to second order and solving the stationary (ergodic) equation for a
quadratic ``h(q) = −θ·q² − c·q`` gives
``δ_b(q) = 1/k + c + θ·(2q + 1)`` and ``δ_a(q) = 1/k − c − θ·(2q − 1)`` with
``θ = sqrt(φ·e / (2k·(Λ_a + Λ_b)))`` and ``c = (Λ_b − Λ_a)/(k·(Λ_a + Λ_b))``. With symmetric flow
(``Λ_a = Λ_b = Λ``, ``c = 0``) this is GLFT's formula
``δ_b = (1/γ)·ln(1 + γ/k) + ((2q + 1)/2)·sqrt((σ²γ/(2kΛ))·(1 + γ/k)^{1 + k/γ})`` in the limit ``γ → 0`` with
``γσ² = 2φ``: ``(1 + γ/k)^{1 + k/γ} → e``, so the slope is ``2θ = sqrt(φ·e/(kΛ))``. Plus the shift, ``δ_max`` at
the limits, clipped. It does not depend on ``t`` or ``α``; it is CJ's quotes far from the horizon, approximately.

**Avellaneda–Stoikov.** AS's reservation price ``r = S − q·γσ²·(T − t)`` and spread
``γσ²·(T − t) + (2/γ)·ln(1 + γ/k)`` come from approximating the value by that of holding ``q`` until ``T``,
``−(γσ²/2)·q²·(T − t)``. In this risk-neutral model the same frozen-inventory value is
``−(φ·(T − t) + α)·q²``, so we use ``γσ² ↔ 2φ`` (the inventory term matches the running penalty), add the
terminal penalty (``α = 0`` gives AS's formulas exactly) and take the risk-neutral limit ``γ → 0`` of the
spread term, ``(1/γ)·ln(1 + γ/k) → 1/k`` (a finite ``gamma`` keeps AS's term instead). With ``c(τ) = φ·τ + α``:
``δ_b = 1/k + c·(2q + 1)``, ``δ_a = 1/k + c·(1 − 2q)`` (plus the shift). For other sizes the same rule prices
the expected fill: ``δ_b = 1/k + c·(2q + E[Q'²]/E[Q']) + (κ/2)·E[Q'²]/E[Q']`` under ``mtm``, likewise ``δ_a``
with ``−2q``, ``Q'`` the size executed at the limit. At the last step (``τ = 1``) these are exactly the DP's
quotes; earlier they ignore that future fills will bring the inventory back, so they over-skew.

**Where they apply** (:meth:`ClosedFormPolicy.applies`, :func:`applicable_baselines`). All three need the
exponential fill law (not ``mode="article"``) and a reward whose expectation maps as above: ``spread``, or ``mtm``
with linear permanent impact, no transient impact, no mean reversion and no informed traders (mean-zero noise and
jumps do not matter to a risk-neutral market maker). CJ and GLFT also need unit sizes (``sizes == (1,)``; the
closed forms move the inventory one unit at a time, and we do not pretend otherwise) and flow without momentum
(their state is ``(t, I)``). AS reads nothing of the flow, so it also applies to momentum and to any sizes.
Elsewhere :meth:`~ClosedFormPolicy.offsets` raises a ``ValueError`` saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agents.policies.base import Policy
from mm_env.model.fill import ExponentialFill
from mm_env.params import MarketParams

_TAYLOR_EXTRA_TERMS = 30
"""Taylor terms beyond the band of the generator: the relative truncation error of every entry of the scaled
exponential is then below ``1.5^31/31! ≈ 1e−29``."""

_CHUNK = 32
"""Steps propagated at once (powers ``exp(𝐀)^j``, ``j ≤ 32``, whose entries stay below ``e^{2Λj/e} ≤ e^{12}``)."""


@dataclass(frozen=True)
class ContinuousTimeMapping:
    """The discrete model read as the continuous-time problem of the closed forms, time in steps (module docs).

    Attributes:
        horizon: ``T``, the number of steps.
        I_max: the inventory limit.
        k: decay of the fill probability with the offset.
        rate_ask: ``Λ_a``, fill intensity per step of an ask at ``δ' = 0``: ``w_ask·A·e^{−k·shift}``.
        rate_bid: ``Λ_b``, the same for the bid.
        phi: running penalty per step, ``λ``.
        alpha: terminal penalty, ``α`` (plus ``κ/2`` under ``mtm``).
        shift: ``κ/2`` under ``mtm`` (what a unit fill pays the mid through impact), else 0: the quotes are
            ``shift + δ'``, and under ``mtm`` the value adds ``shift·I_0²``.
    """

    horizon: int
    I_max: int
    k: float
    rate_ask: float
    rate_bid: float
    phi: float
    alpha: float
    shift: float


def _reward_reason(params: MarketParams) -> str | None:
    """Why the expected reward does not map onto the closed forms' objective (``None`` if it does)."""
    if params.fill.mode != "standard":
        return (
            f"mode={params.fill.mode!r} has no fill law A·exp(−k·δ): every order fills whatever the quotes, so "
            "there is no quoting problem to solve"
        )
    if params.objective.reward != "mtm":
        return None  # the spread reward never reads the mid
    impact, noise, flow = params.impact, params.noise, params.flow
    if impact.transient:
        return "mtm with transient impact puts the transient part of the mid into the state"
    if impact.kappa > 0.0 and impact.impact_exponent != 1.0:
        return "mtm with nonlinear impact: the closed forms need linear (or no) permanent impact"
    if noise.mean_reversion > 0.0:
        return "mtm with mean reversion puts the mid into the state"
    if flow.informed > 0.0 and flow.info_jump > 0.0:
        return "mtm with informed traders (adverse selection) is outside the closed forms"
    return None


def _unit_model_reason(params: MarketParams) -> str | None:
    """Why CJ's and GLFT's model does not fit (``None`` if it does): unit sizes, no momentum, a mappable reward."""
    reason = _reward_reason(params)
    if reason is not None:
        return reason
    if tuple(params.flow.sizes) != (1,):
        return f"the closed form is for unit trades, sizes == (1,); got sizes={tuple(params.flow.sizes)}"
    if params.flow.momentum != 0.0:
        return "flow with momentum makes the state (t, I, L); the closed form lives on (t, I)"
    return None


def continuous_time_mapping(params: MarketParams) -> ContinuousTimeMapping:
    """The continuous-time problem (time in steps) that the discrete model ``params`` discretises.

    Raises:
        ValueError: if the reward does not map (``mode="article"``, or ``mtm`` with nonlinear or transient impact,
            mean reversion or informed traders).
    """
    reason = _reward_reason(params)
    if reason is not None:
        raise ValueError(f"no continuous-time mapping: {reason}")
    fill = params.fill
    assert isinstance(fill, ExponentialFill)  # _reward_reason refuses the article's fill law
    mtm = params.objective.reward == "mtm"
    shift = 0.5 * params.impact.kappa if mtm else 0.0
    k = fill.k
    w_ask, w_bid, _, _ = params.flow.side_law(0)
    scale = fill.A * math.exp(-k * shift)
    return ContinuousTimeMapping(
        horizon=params.T,
        I_max=params.I_max,
        k=k,
        rate_ask=w_ask * scale,
        rate_bid=w_bid * scale,
        phi=params.objective.lam,
        alpha=params.objective.alpha + shift,
        shift=shift,
    )


def _inventory_levels(params: MarketParams) -> np.ndarray:
    return np.arange(-params.I_max, params.I_max + 1, dtype=np.float64)


def _state_index(t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
    """Validated integer steps and inventory indices ``I + I_max``, broadcast together.

    Steps are capped to ``[0, T − 1]``, so that terminal states still get a quote.
    """
    t, inventory = np.broadcast_arrays(np.asarray(t), np.asarray(inventory))
    index = np.rint(inventory).astype(np.intp) + params.I_max
    if index.size and (index.min() < 0 or index.max() > 2 * params.I_max):
        raise ValueError(f"inventories must lie in [−I_max, I_max] = [{-params.I_max}, {params.I_max}]")
    step = np.clip(np.rint(t).astype(np.intp), 0, params.T - 1)
    return step, index


# ----------------------------------------------------------------------------------------------------------------
# Cartea–Jaimungal: the matrix exponential, entrywise accurate, propagated in log space.


def cartea_jaimungal_generator(mapping: ContinuousTimeMapping) -> np.ndarray:
    """The tridiagonal generator ``𝐀`` over ``q = −I_max … I_max`` (index ``q + I_max``), per step.

    ``𝐀[q, q] = −φ·k·q²``, ``𝐀[q, q−1] = Λ_a/e`` (an ask fill, ``q → q − 1``), ``𝐀[q, q+1] = Λ_b/e``.
    """
    levels = np.arange(-mapping.I_max, mapping.I_max + 1, dtype=np.float64)
    n = len(levels)
    generator = np.diag(-mapping.phi * mapping.k * levels**2)
    generator[np.arange(1, n), np.arange(n - 1)] = mapping.rate_ask / math.e
    generator[np.arange(n - 1), np.arange(1, n)] = mapping.rate_bid / math.e
    return generator


def metzler_expm(generator: np.ndarray) -> np.ndarray:
    """``exp(generator)`` for a banded Metzler matrix (off-diagonal entries ≥ 0), every entry to relative accuracy.

    ``exp(𝐀) = e^{−s}·exp(𝐀 + s·I)`` with ``s = max(−diag 𝐀, 0)``, so that ``B = 𝐀 + s·I ≥ 0``; ``B`` is scaled by
    ``2^{−m}`` to norm ≤ ½, its Taylor series is summed to ``n + 30`` terms (``n`` the size, so the whole band is
    covered and each entry's tail is below ``1e−29`` of it), and the result is squared ``m`` times. Only
    non-negative numbers are ever added, so there is no cancellation, unlike a Padé approximant.

    Args:
        generator: a square Metzler matrix.

    Returns:
        The matrix exponential, entrywise non-negative.
    """
    generator = np.asarray(generator, dtype=np.float64)
    n = generator.shape[0]
    offdiagonal = generator - np.diag(np.diag(generator))
    if np.any(offdiagonal < 0.0):
        raise ValueError("metzler_expm needs off-diagonal entries ≥ 0")
    shift = max(float(-np.diag(generator).min()), 0.0)
    positive = generator + shift * np.eye(n)
    norm = float(positive.sum(axis=1).max())
    squarings = max(0, math.ceil(math.log2(2.0 * norm))) if norm > 0.5 else 0
    scaled = positive / 2.0**squarings
    term = np.eye(n)
    total = np.eye(n)
    for j in range(1, n + _TAYLOR_EXTRA_TERMS + 1):
        term = (term @ scaled) / j
        total += term
    total *= math.exp(-shift / 2.0**squarings)
    for _ in range(squarings):
        total = total @ total
    return total


def _log_matvec(log_matrices: np.ndarray, log_vector: np.ndarray) -> np.ndarray:
    """``log(M_j @ exp(v))`` for a stack of matrices given by their logs, ``(K, n, n)`` and ``(n,)`` → ``(K, n)``."""
    terms = log_matrices + log_vector
    peak = terms.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return peak[..., 0] + np.log(np.exp(terms - peak).sum(axis=-1))


def cartea_jaimungal_log_omega(mapping: ContinuousTimeMapping) -> np.ndarray:
    """``log ω(τ)`` for ``τ = 0 … T`` steps left: shape ``(T + 1, 2·I_max + 1)``.

    ``ω(τ) = exp(𝐀·τ)·z`` with ``z_q = e^{−k·α·q²}``, propagated ``exp(𝐀)^j`` at a time in log space.
    """
    levels = np.arange(-mapping.I_max, mapping.I_max + 1, dtype=np.float64)
    step = metzler_expm(cartea_jaimungal_generator(mapping))
    powers = [step]
    for _ in range(1, min(_CHUNK, max(mapping.horizon, 1))):
        powers.append(powers[-1] @ step)
    with np.errstate(divide="ignore"):
        log_powers = np.log(np.stack(powers))
    log_omega = np.empty((mapping.horizon + 1, len(levels)))
    log_omega[0] = -mapping.k * mapping.alpha * levels**2
    done = 0
    while done < mapping.horizon:
        count = min(len(powers), mapping.horizon - done)
        log_omega[done + 1 : done + 1 + count] = _log_matvec(log_powers[:count], log_omega[done])
        done += count
    return log_omega


def cartea_jaimungal_value_table(params: MarketParams) -> np.ndarray:
    """CJ's continuous-time optimal value ``h[t, I + I_max]`` at the steps ``t = 0 … T`` (model units).

    The value of the episode from step ``t`` with inventory ``I``, comparable with ``solve_dp(params).value``
    (under ``mtm`` it includes the ``(κ/2)·I²`` carried in, see the module docs).

    Raises:
        ValueError: where the closed form does not apply (see :class:`CarteaJaimungal`).
    """
    CarteaJaimungal.check(params)
    mapping = continuous_time_mapping(params)
    log_omega = cartea_jaimungal_log_omega(mapping)[::-1]  # row t holds τ = T − t
    return log_omega / mapping.k + mapping.shift * _inventory_levels(params) ** 2


def cartea_jaimungal_value(params: MarketParams, inventory: int = 0) -> float:
    """CJ's continuous-time optimal value ``h(0, I_0)`` in the model's units (``MODEL.md`` §7.4).

    With the mapping of the module docs this is the limit as ``dt → 0`` of the DP's ``expected_return`` (for
    ``I_0 = 0``).

    Args:
        params: a model to which the closed form applies (unit sizes, see :class:`CarteaJaimungal`).
        inventory: the initial inventory ``I_0``.

    Raises:
        ValueError: where the closed form does not apply, or ``|inventory| > I_max``.
    """
    if abs(inventory) > params.I_max:
        raise ValueError(f"inventory={inventory} lies outside [−I_max, I_max] with I_max={params.I_max}")
    return float(cartea_jaimungal_value_table(params)[0, params.I_max + int(inventory)])


# ----------------------------------------------------------------------------------------------------------------
# The policies.


class ClosedFormPolicy(Policy):
    """A closed-form policy that applies to some models only.

    :meth:`applies` says where; elsewhere :meth:`offsets` raises a ``ValueError`` with the reason.
    """

    @classmethod
    def reason(cls, params: MarketParams) -> str | None:
        """Why the closed form does not apply to ``params``, or ``None`` if it does."""
        raise NotImplementedError

    @classmethod
    def applies(cls, params: MarketParams) -> bool:
        """Whether the closed form applies to ``params``."""
        return cls.reason(params) is None

    @classmethod
    def check(cls, params: MarketParams) -> None:
        """Raise a ``ValueError`` saying why if the closed form does not apply to ``params``."""
        reason = cls.reason(params)
        if reason is not None:
            raise ValueError(f"{cls.__name__} does not apply: {reason}")


class AvellanedaStoikov(ClosedFormPolicy):
    """Avellaneda–Stoikov (2008) in the risk-neutral limit with ``γσ² ↔ 2φ`` (module docs).

    ``δ_b = s + 1/k + c(τ)·(2I + 1)``, ``δ_a = s + 1/k + c(τ)·(1 − 2I)`` with ``c(τ) = λ·(T − t) + α`` (and the
    ``mtm`` shift ``s``), generalised to any size law through the expected executed size; clipped to
    ``[δ_min, δ_max]``, ``δ_max`` on a side that cannot trade at the limit.

    Args:
        gamma: AS's risk aversion in the spread term ``(1/γ)·ln(1 + γ/k)``; 0 (the default) is the risk-neutral
            limit ``1/k``, the optimal spread term of this model.
    """

    def __init__(self, gamma: float = 0.0) -> None:
        if not (gamma >= 0.0 and math.isfinite(gamma)):
            raise ValueError(f"gamma={gamma!r} is invalid: must be finite and ≥ 0")
        self.gamma = float(gamma)
        self.name = "Avellaneda–Stoikov" + (f" γ={self.gamma:.3g}" if self.gamma > 0.0 else "")

    @classmethod
    def reason(cls, params: MarketParams) -> str | None:
        """Why AS does not apply: only a reward that does not map (AS reads neither the flow nor the sizes)."""
        return _reward_reason(params)

    def spread_term(self, k: float) -> float:
        """AS's ``(1/γ)·ln(1 + γ/k)``, or its limit ``1/k`` as ``γ → 0``."""
        return math.log1p(self.gamma / k) / self.gamma if self.gamma > 0.0 else 1.0 / k

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """AS's offsets at steps ``t`` and inventories ``I`` (broadcast together)."""
        self.check(params)
        mapping = continuous_time_mapping(params)
        step, index = _state_index(t, inventory, params)
        levels = _inventory_levels(params)
        # Executed sizes on each side at each level (capped by the capacity) and their first two moments.
        sizes = np.asarray(params.flow.sizes, dtype=np.float64)[None, :]
        probs = np.asarray(params.flow.probs, dtype=np.float64)
        sold = np.minimum(sizes, params.I_max + levels[:, None])
        bought = np.minimum(sizes, params.I_max - levels[:, None])
        bounds = (params.delta_min, params.delta_max)
        carry = mapping.phi * (params.T - step) + mapping.alpha  # c(τ) with τ = T − t
        quotes = []
        for executed, direction in ((bought, 1.0), (sold, -1.0)):
            first, second = executed @ probs, executed**2 @ probs
            ratio = np.divide(second, first, out=np.zeros_like(first), where=first > 0.0)
            # (κ/2)·E[Q'²]/E[Q'] is the mtm shift per unit (κ/2 for unit sizes): the impact a fill pays.
            quote = self.spread_term(mapping.k) + mapping.shift * ratio[index]
            quote = quote + carry * (2.0 * direction * levels[index] + ratio[index])
            quotes.append(np.where(first[index] > 0.0, np.clip(quote, *bounds), params.delta_max))
        return quotes[0], quotes[1]


class CarteaJaimungal(ClosedFormPolicy):
    """Cartea–Jaimungal–Penalva (2015, ch. 10.2): the exact continuous-time optimum for unit sizes (module docs).

    ``δ_b(t, I) = 1/k − (h(t, I+1) − h(t, I))``, ``δ_a(t, I) = 1/k − (h(t, I−1) − h(t, I))`` with
    ``h = (1/k)·ln(exp(𝐀·(T − t))·z)``; ``δ_max`` at the limits, clipped to ``[δ_min, δ_max]``. The ``log ω``
    table of the last model seen is cached.
    """

    name = "Cartea–Jaimungal"

    def __init__(self) -> None:
        self._cache: tuple[MarketParams, np.ndarray, np.ndarray] | None = None

    @classmethod
    def reason(cls, params: MarketParams) -> str | None:
        """Why CJ does not apply: non-unit sizes, momentum, or a reward that does not map."""
        return _unit_model_reason(params)

    def quote_tables(self, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """The bid and ask offsets over the grid, each of shape ``(T, 2·I_max + 1)`` (cached)."""
        if self._cache is not None and self._cache[0] == params:
            return self._cache[1], self._cache[2]
        self.check(params)
        mapping = continuous_time_mapping(params)
        log_omega = cartea_jaimungal_log_omega(mapping)[:0:-1]  # row t holds τ = T − t, t = 0 … T − 1
        bid = np.full(log_omega.shape, params.delta_max)
        ask = np.full(log_omega.shape, params.delta_max)
        # δ_b(q) = 1/k − (h(q+1) − h(q)) = (1 + ln ω_q − ln ω_{q+1})/k; δ_a likewise with q − 1.
        bid[:, :-1] = (1.0 + log_omega[:, :-1] - log_omega[:, 1:]) / mapping.k
        ask[:, 1:] = (1.0 + log_omega[:, 1:] - log_omega[:, :-1]) / mapping.k
        bounds = (params.delta_min, params.delta_max)
        bid[:, :-1] = np.clip(bid[:, :-1] + mapping.shift, *bounds)
        ask[:, 1:] = np.clip(ask[:, 1:] + mapping.shift, *bounds)
        self._cache = (params, bid, ask)
        return bid, ask

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """CJ's offsets at steps ``t`` and inventories ``I`` (broadcast together)."""
        bid, ask = self.quote_tables(params)
        step, index = _state_index(t, inventory, params)
        return bid[step, index], ask[step, index]


class GueantLehalleFernandezTapia(ClosedFormPolicy):
    """Guéant–Lehalle–Fernandez-Tapia (2013): the asymptotic closed-form quotes, risk-neutral form (module docs).

    ``δ_b = 1/k + c + θ·(2I + 1)``, ``δ_a = 1/k − c − θ·(2I − 1)`` with ``θ = sqrt(φ·e/(2k·(Λ_a + Λ_b)))``,
    ``c = (Λ_b − Λ_a)/(k·(Λ_a + Λ_b))`` (0 for symmetric flow); time-independent, ``δ_max`` at the limits,
    clipped to ``[δ_min, δ_max]``.
    """

    name = "Guéant–Lehalle–Fernandez-Tapia"

    @classmethod
    def reason(cls, params: MarketParams) -> str | None:
        """Why GLFT does not apply: non-unit sizes, momentum, or a reward that does not map."""
        return _unit_model_reason(params)

    @staticmethod
    def coefficients(mapping: ContinuousTimeMapping) -> tuple[float, float]:
        """``(θ, c)``: the curvature and the slope of the asymptotic quadratic value ``h(q) = −θ·q² − c·q``."""
        total = mapping.rate_ask + mapping.rate_bid
        if total <= 0.0:  # nothing ever fills: the quotes do not matter
            return (math.inf if mapping.phi > 0.0 else 0.0), 0.0
        theta = math.sqrt(mapping.phi * math.e / (2.0 * mapping.k * total))
        return theta, (mapping.rate_bid - mapping.rate_ask) / (mapping.k * total)

    def offsets(self, t: np.ndarray, inventory: np.ndarray, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """GLFT's offsets at inventories ``I`` (the same at every step ``t``)."""
        self.check(params)
        mapping = continuous_time_mapping(params)
        _, index = _state_index(t, inventory, params)
        theta, slope = self.coefficients(mapping)
        level = _inventory_levels(params)[index]
        bounds = (params.delta_min, params.delta_max)
        with np.errstate(invalid="ignore"):  # θ = ∞ only when nothing fills
            bid = np.clip(mapping.shift + 1.0 / mapping.k + slope + theta * (2.0 * level + 1.0), *bounds)
            ask = np.clip(mapping.shift + 1.0 / mapping.k - slope - theta * (2.0 * level - 1.0), *bounds)
        bid = np.where(level < params.I_max, bid, params.delta_max)
        ask = np.where(level > -params.I_max, ask, params.delta_max)
        return bid, ask


BASELINES: tuple[type[ClosedFormPolicy], ...] = (AvellanedaStoikov, CarteaJaimungal, GueantLehalleFernandezTapia)
"""The closed-form baselines, in the order of a comparison table."""


def applicable_baselines(params: MarketParams) -> list[ClosedFormPolicy]:
    """One instance (default arguments) of each closed-form baseline that applies to ``params``."""
    return [policy() for policy in BASELINES if policy.applies(params)]


__all__ = [
    "BASELINES",
    "AvellanedaStoikov",
    "CarteaJaimungal",
    "ClosedFormPolicy",
    "ContinuousTimeMapping",
    "GueantLehalleFernandezTapia",
    "applicable_baselines",
    "cartea_jaimungal_generator",
    "cartea_jaimungal_log_omega",
    "cartea_jaimungal_value",
    "cartea_jaimungal_value_table",
    "continuous_time_mapping",
    "metzler_expm",
]
