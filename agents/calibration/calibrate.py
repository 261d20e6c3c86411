"""Calibrate the model of ``MODEL.md`` §2/§7 on a recorded market (§10.3), every estimate with its standard error.

:func:`calibrate` takes a tape laid on the step grid (:func:`mm_env.data.steps.to_steps`) and returns a
:class:`Calibration`: the estimates of ``π``, ``p_buy``, ``φ``, the size law, ``πA`` and ``k`` (the fill curve),
``A`` (normalised), ``κ``, ``β``, ``σ`` and the optional jump split, each with its Newey–West standard error; the
diagnostics of what the model assumes away; and :meth:`Calibration.model_kwargs`, the keywords of
:func:`mm_env.presets.make_params` (and of ``gym.make("mm_env/MarketMaking-v0", **kwargs)``) for the calibrated
model, with the choices that are the user's, not the data's (``T``, ``I_max``, ``lam``, ``alpha``, ``delta_max``,
``reward``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.calibration.estimators import (
    Estimate,
    delta_method,
    hac_mean,
    newey_west_lag,
    ols_sandwich,
    sandwich,
)
from mm_env.data.steps import SteppedTape, bin_sizes
from mm_env.model.objective import REWARDS
from mm_env.presets import make_params

__all__ = [
    "BETA_RANGE",
    "CLIP",
    "FILL_GRID_STEP",
    "HORIZONS",
    "MAX_FILL_POINTS",
    "MAX_FILL_VALUES",
    "MAX_JUMP_SHARE",
    "MIN_REACHED",
    "Calibration",
    "Diagnostics",
    "FillFit",
    "Impact",
    "JumpSplit",
    "calibrate",
    "fit_fill",
    "fit_impact",
    "split_jumps",
]

FILL_GRID_STEP = 0.5
"""The spacing ``Δ`` of the fill curve's grid, ticks: depths from a mid lie on the half-tick lattice."""
MIN_REACHED = 10
"""``n_min``: a grid point enters the fill fit while at least this many events reach it."""
HORIZONS = (1, 2, 5, 10, 30)
"""The horizons ``H`` (steps) of the impact diagnostic ``κ(H)``."""
CLIP = 4.0
"""``c``: residuals beyond ``c·σ`` are flagged as jumps."""
MAX_JUMP_SHARE = 0.05
"""The jump split is used only if at most this share of steps is flagged."""
MAX_FILL_POINTS = 201
"""The most grid points of one fill fit (``δ`` up to 100 ticks)."""
MAX_FILL_VALUES = 100_000_000
"""The most per-step indicators (steps × grid points) of one fill fit: 800 MB of floats."""
BETA_RANGE = (0.05, 1.5)
"""Where the impact exponent ``β`` is searched."""


def _root(variance: float) -> float:
    """A standard error from a variance: a long-run covariance is positive semi-definite, up to rounding."""
    return math.sqrt(max(float(variance), 0.0))


# ------------------------------------------------------------------------------------------------------ the fill curve


@dataclass(frozen=True)
class FillFit:
    """A fit of ``log Λ̂(δ_j) = log a − k·δ_j`` over the grid ``δ_j = j·Δ`` (``MODEL.md`` §10.3).

    Attributes:
        label: which depths: ``pooled``, ``ask`` (buys, side +1), ``bid`` (sells), or another description.
        delta: the grid ``δ_0 … δ_J``, ticks.
        rate: ``Λ̂(δ_j)``, the per-step frequency of an order reaching ``δ_j``.
        reached: how many events reach each ``δ_j``.
        a: the fitted rate at ``δ = 0`` (``πA`` pooled, ``π·w_s·A`` per side).
        k: the fitted decay, per tick.
        log_residual: ``log Λ̂(δ_j)`` minus the fit.
        a_raw: ``a/π̂`` (pooled only; ``None`` per side), the fill probability at the mid given a visible arrival.
    """

    label: str
    delta: np.ndarray
    rate: np.ndarray
    reached: np.ndarray
    a: Estimate
    k: Estimate
    log_residual: np.ndarray
    a_raw: Estimate | None = None

    @property
    def largest_log_residual(self) -> float:
        """The largest ``|log residual|``: how far the exponential shape misses."""
        return float(np.max(np.abs(self.log_residual)))

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "label": self.label,
            "delta": self.delta.tolist(),
            "rate": self.rate.tolist(),
            "reached": self.reached.tolist(),
            "a": self.a.as_dict(),
            "k": self.k.as_dict(),
            "log_residual": self.log_residual.tolist(),
            "a_raw": None if self.a_raw is None else self.a_raw.as_dict(),
        }


def fit_fill(
    depth: np.ndarray, delta_fit_max: float, label: str = "pooled", visible: np.ndarray | None = None
) -> FillFit:
    """Fit the fill curve to per-step depths (``MODEL.md`` §10.3, the hftbacktest method).

    ``depth`` has shape ``(N, c)``: ``D_{n,s}`` per step and side (``−inf`` where none). The indicators are
    ``y_n(δ) = Σ_s 1[D_{n,s} ≥ δ]`` and ``Λ̂(δ)`` their mean over the steps. The grid ``δ_j = j·Δ`` runs while at least
    :data:`MIN_REACHED` events reach ``δ_j`` and ``δ_j ≤ delta_fit_max``; OLS of ``log Λ̂`` on ``(1, −δ)`` gives
    ``log a`` and ``k``, and their standard errors come from the delta method on the HAC covariance of the per-step
    vectors ``(y_n(δ_0), …, y_n(δ_J))`` (with ``h_n``, the step's visible arrival, where ``visible`` is given, for
    ``a_raw = a/π̂``). Fewer than three grid points raise ``ValueError``.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 1:
        depth = depth[:, None]
    finite = depth[np.isfinite(depth)]
    # Every grid point up to the tenth deepest event is reached by at least n_min events, and none beyond it.
    ordered = np.sort(finite)
    deepest = min(float(ordered[-MIN_REACHED]) if len(ordered) >= MIN_REACHED else -1.0, delta_fit_max)
    points = max(math.floor(deepest / FILL_GRID_STEP), -1) + 1
    if points < 3:
        raise ValueError(
            f"the {label} fill curve has {points} grid points with at least {MIN_REACHED} orders reaching them "
            f"(δ ≤ {delta_fit_max:g}): 3 are needed; too few orders reach beyond the touch"
        )
    if points > MAX_FILL_POINTS or depth.shape[0] * points > MAX_FILL_VALUES:
        raise ValueError(
            f"the {label} fill curve needs {depth.shape[0]:,} steps × {points:,} grid points: at most "
            f"{MAX_FILL_POINTS} points and {MAX_FILL_VALUES:,} values are allowed; use a smaller delta_fit_max or a "
            "larger dt"
        )
    candidates = FILL_GRID_STEP * np.arange(points)
    reached = (len(ordered) - np.searchsorted(ordered, candidates, side="left")).astype(np.float64)
    grid = candidates
    y = np.zeros((depth.shape[0], points))
    for column in range(depth.shape[1]):
        y += depth[:, column, None] >= grid[None, :]
    columns = y if visible is None else np.column_stack([y, np.asarray(visible, dtype=np.float64)])
    means, covariance = hac_mean(columns)
    rate = means[:points]
    design = np.column_stack([np.ones(points), -grid])
    weights = np.linalg.solve(design.T @ design, design.T)  # (2, J+1): the OLS coefficients are weights @ log Λ̂
    log_a, k = weights @ np.log(rate)
    gradient = np.zeros((2, columns.shape[1]))
    gradient[:, :points] = weights / rate
    cov = delta_method(gradient, covariance)
    a = math.exp(log_a)
    a_raw = None
    if visible is not None:
        pi = float(means[points])
        raw_gradient = np.append(gradient[0, :points], -1.0 / pi)  # of log(a/π̂)
        raw_se = _root(float(delta_method(raw_gradient, covariance)[0, 0]))
        a_raw = Estimate(a / pi, a / pi * raw_se)
    return FillFit(
        label=label,
        delta=grid,
        rate=rate,
        reached=reached[:points],
        a=Estimate(a, a * _root(cov[0, 0])),
        k=Estimate(float(k), _root(cov[1, 1])),
        log_residual=np.log(rate) - (log_a - k * grid),
        a_raw=a_raw,
    )


# ------------------------------------------------------------------------------------------------------------ impact


@dataclass(frozen=True)
class Impact:
    """The impact fit ``ΔP_n ≈ κ·S_n·Q_n^β`` (``MODEL.md`` §10.3).

    Attributes:
        kappa: ``κ̂`` (ticks per lot^β).
        beta: ``β̂`` (``se`` 0 where fixed).
        beta_fixed: whether ``β`` was fixed rather than fitted.
        residual: ``e_n = ΔP_n − κ̂·x_n(β̂)``.
        parameters: how many parameters the fit has (2, or 1 with ``β`` fixed).
    """

    kappa: Estimate
    beta: Estimate
    beta_fixed: bool
    residual: np.ndarray
    parameters: int


def _regressor(side: np.ndarray, size: np.ndarray, beta: float) -> np.ndarray:
    safe = np.where(size > 0, size, 1).astype(np.float64)
    return np.where(side != 0, side * safe**beta, 0.0)


def _profile(change: np.ndarray, side: np.ndarray, size: np.ndarray, beta: float) -> tuple[float, float]:
    """``κ(β)`` and the residual sum of squares at ``β``."""
    x = _regressor(side, size, beta)
    kappa = float(x @ change / (x @ x))
    residual = change - kappa * x
    return kappa, float(residual @ residual)


def fit_impact(change: np.ndarray, side: np.ndarray, size: np.ndarray, beta: float | None = None) -> Impact:
    """Profile least squares of the mid's change on ``x_n(β) = S_n·Q_n^β``, without intercept (``MODEL.md`` §10.3).

    For each ``β``, ``κ(β) = Σ x·ΔP / Σ x²``; ``β`` minimises the residual sum of squares over
    :data:`BETA_RANGE` (a grid of step 0.05, then golden section), unless it is given (fixed). Where every trade has
    the same size, ``β`` is not identified and is fixed at 1. The standard errors are the sandwich with the gradient
    ``(x_n(β), κ·x_n(β)·ln Q_n)``.
    """
    change = np.asarray(change, dtype=np.float64)
    traded = side != 0
    if not traded.any():
        raise ValueError("no step has a trade: impact cannot be measured")
    fixed = beta is not None or bool(np.all(size[traded] == size[traded][0]))
    if not fixed:
        low, high = BETA_RANGE
        grid = np.round(np.arange(low, high + 1e-9, 0.05), 10)
        losses = [_profile(change, side, size, b)[1] for b in grid]
        best = int(np.argmin(losses))
        a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        golden = (math.sqrt(5.0) - 1.0) / 2.0
        c, d = b - golden * (b - a), a + golden * (b - a)
        fc, fd = _profile(change, side, size, c)[1], _profile(change, side, size, d)[1]
        while b - a > 1e-7:
            if fc < fd:
                b, d, fd = d, c, fc
                c = b - golden * (b - a)
                fc = _profile(change, side, size, c)[1]
            else:
                a, c, fc = c, d, fd
                d = a + golden * (b - a)
                fd = _profile(change, side, size, d)[1]
        candidates = [(losses[best], float(grid[best])), (min(fc, fd), (a + b) / 2.0)]
        beta_hat = min(candidates)[1]
    else:
        beta_hat = 1.0 if beta is None else float(beta)
    kappa, _ = _profile(change, side, size, beta_hat)
    x = _regressor(side, size, beta_hat)
    residual = change - kappa * x
    if fixed:
        cov = sandwich(x[:, None], residual)
        return Impact(Estimate(kappa, _root(cov[0, 0])), Estimate(beta_hat, 0.0), True, residual, 1)
    log_size = np.log(np.where(size > 0, size, 1).astype(np.float64))
    gradient = np.column_stack([x, kappa * x * log_size])
    cov = sandwich(gradient, residual)
    return Impact(Estimate(kappa, _root(cov[0, 0])), Estimate(beta_hat, _root(cov[1, 1])), False, residual, 2)


# ------------------------------------------------------------------------------------------------------------ jumps


@dataclass(frozen=True)
class JumpSplit:
    """The residuals split into Gaussian noise and rare jumps by iterated ``c·σ`` clipping (``MODEL.md`` §10.3).

    Attributes:
        sigma: ``σ`` of the unflagged residuals, corrected for the truncation.
        jump_prob: ``π̂_J``, the share of flagged steps.
        jump_size: ``Ĵ_n``, the mean ``|e_n|`` over the flagged steps (``NaN`` without any).
        flagged: how many steps are flagged.
        used: whether the model takes the split (``σ > 0`` and at most :data:`MAX_JUMP_SHARE` flagged).
    """

    sigma: Estimate
    jump_prob: Estimate
    jump_size: Estimate
    flagged: int
    used: bool


def _truncated_variance(c: float) -> float:
    """``τ = 1 − 2cφ(c)/(2Φ(c) − 1)``: the variance of a standard normal truncated at ``±c``."""
    density = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    mass = math.erf(c / math.sqrt(2.0))  # 2Φ(c) − 1
    return 1.0 - 2.0 * c * density / mass


def split_jumps(residual: np.ndarray, c: float = CLIP) -> JumpSplit:
    """Flag residuals beyond ``c·σ`` until the flagged set stops changing; ``σ`` from the rest (``MODEL.md`` §10.3)."""
    e = np.asarray(residual, dtype=np.float64)
    n = len(e)
    tau = _truncated_variance(c)
    sigma = math.sqrt(float(np.mean(e * e)))
    flagged = np.abs(e) > c * sigma
    for _ in range(1000):
        kept = ~flagged
        sigma = math.sqrt(float(np.mean(e[kept] ** 2)) / tau) if kept.any() else 0.0
        new = np.abs(e) > c * sigma
        if np.array_equal(new, flagged):
            break
        flagged = new
    kept = (~flagged).astype(np.float64)
    # σ² = mean(e²·1[kept]) / mean(1[kept]) / τ: the delta method on the two means.
    means, cov = hac_mean(np.column_stack([e * e * kept, kept]))
    if sigma > 0.0:
        gradient = np.array([1.0 / means[1], -means[0] / means[1] ** 2]) / tau
        sigma_se = _root(float(delta_method(gradient, cov)[0, 0])) / (2.0 * sigma)
    else:
        sigma_se = 0.0
    share, share_cov = hac_mean(flagged.astype(np.float64))
    count = int(flagged.sum())
    if count:
        sizes = np.abs(e[flagged])
        size_se = float(np.std(sizes, ddof=1)) / math.sqrt(count) if count > 1 else math.nan
        jump_size = Estimate(float(sizes.mean()), size_se)
    else:
        jump_size = Estimate(math.nan, math.nan)
    used = sigma > 0.0 and count <= MAX_JUMP_SHARE * n
    return JumpSplit(
        Estimate(sigma, sigma_se), Estimate(float(share[0]), _root(share_cov[0, 0])), jump_size, count, used
    )


# ------------------------------------------------------------------------------------------------------ diagnostics


@dataclass(frozen=True)
class Diagnostics:
    """What the model assumes away, measured on the tape (``MODEL.md`` §10.3): always reported.

    Attributes:
        trade_after_trade: ``P(trade | trade in the previous step)``; the model says it equals ``trade_after_none``.
        trade_after_none: ``P(trade | no trade in the previous step)``.
        several_orders_steps: steps holding several market orders.
        both_sides_steps: steps holding market orders on both sides.
        fill_ask: the fill fit of the buys alone (side +1, the ask), or ``None`` with fewer than three grid points.
        fill_bid: the fill fit of the sells alone.
        ask_share: ``a_ask/(a_ask + a_bid)`` (against ``p_buy``), ``NaN`` without both per-side fits.
        k_mle: the cross-check ``1/mean(D)`` over the steps' depths ≥ 0.
        kappa_by_horizon: ``κ(H)`` for the horizons of :data:`HORIZONS` that fit in the tape.
        same_side_share: in event time, the share of consecutive market orders on the same side.
        same_side_independent: that share for independent sides, ``p_buy² + (1 − p_buy)²``.
        fill_order_mid: the fill fit with depths from the mid just before each order, or ``None``.
        deepest_from_step_mid: the deepest reach of any order from its step-start mid, ticks.
        deepest_from_order_mid: the same from the mid just before it.
        quiet_mid_share: the share of steps with ``ΔP = 0``.
        small_order_share: the share of market orders below ``lot/2`` (rounded up to one lot).
        volume: the real volume ``Σ q`` of the market orders, base units.
        binned_volume: their binned volume ``Σ bin(q)·lot``, base units.
        market_orders: how many market orders the steps hold.
    """

    trade_after_trade: float
    trade_after_none: float
    several_orders_steps: int
    both_sides_steps: int
    fill_ask: FillFit | None
    fill_bid: FillFit | None
    ask_share: float
    k_mle: Estimate
    kappa_by_horizon: dict[int, Estimate]
    same_side_share: float
    same_side_independent: float
    fill_order_mid: FillFit | None
    deepest_from_step_mid: float
    deepest_from_order_mid: float
    quiet_mid_share: float
    small_order_share: float
    volume: float
    binned_volume: float
    market_orders: int


# ------------------------------------------------------------------------------------------------------ calibration


@dataclass(frozen=True)
class Calibration:
    """A calibrated model with every estimate's standard error and the diagnostics (``MODEL.md`` §10.3).

    Attributes:
        N: the steps calibrated on.
        trade_steps: the steps with a trade.
        dt: seconds per step.
        tick: quote currency per tick.
        lot: base units per lot.
        delta_fit_max: the deepest grid point the fill fit may use, ticks.
        pi_visible: ``π̂``, the share of steps with a trade.
        p_buy: ``p̂_buy``, the intercept of the side regression.
        momentum: ``φ̂``, its slope.
        sizes: the distinct binned sizes ``Q_n`` (lots).
        size_probs: their frequencies over the trade steps.
        mean_size: the mean ``Q_n`` over the trade steps.
        fill: the pooled fill fit (``a = πA``, ``a_raw = A_raw``).
        pi: the model's ``π`` after the normalisation of ``A``.
        A: the model's ``A`` after the normalisation.
        normalisation: which case of the normalisation applied, in words.
        impact: the impact fit.
        sigma_total: ``σ_total``, the RMS of the impact residuals (degrees of freedom corrected).
        jumps: the jump split.
        diagnostics: the diagnostics.
        choices: the user's choices, not calibrated: ``T``, ``I_max``, ``lam``, ``alpha``, ``delta_max``, ``reward``.
        notes: what was clipped or fixed to build a valid model.
    """

    N: int
    trade_steps: int
    dt: float
    tick: float
    lot: float
    delta_fit_max: float
    pi_visible: Estimate
    p_buy: Estimate
    momentum: Estimate
    sizes: tuple[int, ...]
    size_probs: tuple[Estimate, ...]
    mean_size: Estimate
    fill: FillFit
    pi: Estimate
    A: Estimate
    normalisation: str
    impact: Impact
    sigma_total: Estimate
    jumps: JumpSplit
    diagnostics: Diagnostics
    choices: dict[str, Any]
    notes: tuple[str, ...] = field(default=())

    @property
    def k(self) -> Estimate:
        """The pooled ``k̂``."""
        return self.fill.k

    @property
    def pi_A(self) -> Estimate:
        """``(πA)^``, the fitted rate at the mid."""
        return self.fill.a

    @property
    def A_raw(self) -> Estimate:
        """``A_raw = (πA)^/π̂``."""
        assert self.fill.a_raw is not None  # the pooled fit measures it
        return self.fill.a_raw

    def model_kwargs(self) -> dict[str, Any]:
        """The calibrated model as :func:`mm_env.presets.make_params` keywords (plain JSON values).

        From the data: ``pi``, ``A``, ``k``, ``p_buy``, ``momentum``, ``sizes``, ``size_probs``, ``kappa``,
        ``impact_exponent``, ``sigma``, ``jump_prob``, ``jump_size`` (clipped into the model's ranges, see
        ``notes``); fixed: ``informed``, ``transient_kappa`` and
        ``mean_reversion`` 0, ``delta_min = 0``; the user's: ``T``, ``I_max``, ``lam``, ``alpha``, ``delta_max``,
        ``reward``.
        """
        p_buy = min(max(self.p_buy.value, 0.0), 1.0)
        bound = min(2.0 * min(p_buy, 1.0 - p_buy), 1.0)
        kwargs: dict[str, Any] = {
            "pi": self.pi.value,
            "A": self.A.value,
            "k": self.k.value,
            "p_buy": p_buy,
            "momentum": min(max(self.momentum.value, -bound), bound),
            "sizes": list(self.sizes),
            "size_probs": [estimate.value for estimate in self.size_probs],
            "kappa": max(self.impact.kappa.value, 0.0),
            "impact_exponent": min(max(self.impact.beta.value, 1e-6), 1.0),
            "sigma": self.jumps.sigma.value if self.jumps.used else self.sigma_total.value,
            "jump_prob": self.jumps.jump_prob.value if self.jumps.used else 0.0,
            "jump_size": self.jumps.jump_size.value if self.jumps.used else 0.0,
            "informed": 0.0,
            "transient_kappa": 0.0,
            "mean_reversion": 0.0,
            "delta_min": 0.0,
        }
        kwargs.update(self.choices)
        return {name: _plain(value) for name, value in kwargs.items()}

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`~agents.calibration.calibrate.Calibration.model_kwargs` as a JSON object to ``path``.

        The file's keywords build the model: ``gym.make("mm_env/MarketMaking-v0", **json.load(file))``.
        """
        path = Path(path)
        path.write_text(json.dumps(self.model_kwargs(), indent=2) + "\n")
        return path

    def as_dict(self) -> dict[str, Any]:
        """Every estimate with its standard error, the diagnostics and the model's keywords, as plain values."""
        d = self.diagnostics
        return {
            "N": self.N,
            "trade_steps": self.trade_steps,
            "units": {"dt": self.dt, "tick": self.tick, "lot": self.lot},
            "delta_fit_max": self.delta_fit_max,
            "pi_visible": self.pi_visible.as_dict(),
            "p_buy": self.p_buy.as_dict(),
            "momentum": self.momentum.as_dict(),
            "sizes": list(self.sizes),
            "size_probs": [estimate.as_dict() for estimate in self.size_probs],
            "mean_size": self.mean_size.as_dict(),
            "pi_A": self.pi_A.as_dict(),
            "k": self.k.as_dict(),
            "A_raw": self.A_raw.as_dict(),
            "pi": self.pi.as_dict(),
            "A": self.A.as_dict(),
            "normalisation": self.normalisation,
            "kappa": self.impact.kappa.as_dict(),
            "impact_exponent": self.impact.beta.as_dict(),
            "impact_exponent_fixed": self.impact.beta_fixed,
            "sigma_total": self.sigma_total.as_dict(),
            "jumps": {
                "sigma": self.jumps.sigma.as_dict(),
                "jump_prob": self.jumps.jump_prob.as_dict(),
                "jump_size": self.jumps.jump_size.as_dict(),
                "flagged": self.jumps.flagged,
                "used": self.jumps.used,
            },
            "fill": self.fill.as_dict(),
            "diagnostics": {
                "trade_after_trade": d.trade_after_trade,
                "trade_after_none": d.trade_after_none,
                "several_orders_steps": d.several_orders_steps,
                "both_sides_steps": d.both_sides_steps,
                "fill_ask": None if d.fill_ask is None else d.fill_ask.as_dict(),
                "fill_bid": None if d.fill_bid is None else d.fill_bid.as_dict(),
                "ask_share": d.ask_share,
                "k_mle": d.k_mle.as_dict(),
                "kappa_by_horizon": {str(h): e.as_dict() for h, e in d.kappa_by_horizon.items()},
                "same_side_share": d.same_side_share,
                "same_side_independent": d.same_side_independent,
                "fill_order_mid": None if d.fill_order_mid is None else d.fill_order_mid.as_dict(),
                "deepest_from_step_mid": d.deepest_from_step_mid,
                "deepest_from_order_mid": d.deepest_from_order_mid,
                "quiet_mid_share": d.quiet_mid_share,
                "small_order_share": d.small_order_share,
                "volume": d.volume,
                "binned_volume": d.binned_volume,
                "market_orders": d.market_orders,
            },
            "choices": dict(self.choices),
            "notes": list(self.notes),
            "model_kwargs": self.model_kwargs(),
        }

    def report(self) -> list[str]:
        """The estimates ± SE, the normalisation, the diagnostics and the user's choices, as lines of text."""
        d = self.diagnostics
        fill = self.fill
        lines = [
            f"calibrated on {self.N} steps of {self.dt:g} s ({self.trade_steps} with a trade); tick {self.tick:g}, "
            f"lot {self.lot:g}; fill grid 0 … {fill.delta[-1]:g} ticks (delta_fit_max {self.delta_fit_max:g})",
            "",
            "estimates ± SE (Newey–West):",
            f"  pi (visible)     {self.pi_visible.text()}",
            f"  p_buy            {self.p_buy.text()}",
            f"  momentum (phi)   {self.momentum.text()}",
            f"  sizes            {len(self.sizes)} values, mean {self.mean_size.text()} lots, "
            + ", ".join(f"P(Q={q}) = {p.text(2)}" for q, p in list(zip(self.sizes, self.size_probs, strict=True))[:5])
            + (" …" if len(self.sizes) > 5 else ""),
            f"  k                {self.k.text()} per tick",
            f"  pi*A             {self.pi_A.text()}",
            f"  A_raw            {self.A_raw.text()}",
            f"  A (model)        {self.A.text()}; pi (model) {self.pi.text()}: {self.normalisation}",
            f"  kappa            {self.impact.kappa.text()} ticks/lot^beta",
            f"  beta             {self.impact.beta.text()}" + (" (fixed)" if self.impact.beta_fixed else ""),
            f"  sigma_total      {self.sigma_total.text()} ticks/step",
            f"  jump split       sigma {self.jumps.sigma.text()}, jump_prob {self.jumps.jump_prob.text()}, "
            f"jump_size {self.jumps.jump_size.text()} ({self.jumps.flagged} steps flagged): "
            + ("used" if self.jumps.used else "not used, the model takes sigma_total and no jumps"),
            "",
            "diagnostics:",
            f"  P(trade | trade last step) {d.trade_after_trade:.3f} against P(trade | none) {d.trade_after_none:.3f}",
            f"  {d.several_orders_steps} of the {self.trade_steps} steps with a trade hold several market orders, "
            f"{d.both_sides_steps} both sides",
            f"  fill curve: Lambda(0) {fill.rate[0]:.4f}, Lambda(0.5) {fill.rate[1]:.4f}, Lambda(1) "
            f"{fill.rate[2]:.4f}; largest |log residual| {fill.largest_log_residual:.2f}",
            "  per side: "
            + "; ".join(
                f"{fit.label} k {fit.k.text()}, a {fit.a.text()}" if fit is not None else f"{name}: too few orders"
                for name, fit in (("ask", d.fill_ask), ("bid", d.fill_bid))
            )
            + f"; a_ask/(a_ask + a_bid) {d.ask_share:.3f} against p_buy {self.p_buy.value:.3f}",
            f"  k by maximum likelihood (1/mean depth) {d.k_mle.text()}",
            "  k with depths from the mid just before each order "
            + (d.fill_order_mid.k.text() if d.fill_order_mid is not None else "(too few orders)"),
            f"  deepest reach {d.deepest_from_step_mid:g} ticks from the step-start mid, "
            f"{d.deepest_from_order_mid:g} from the mid just before the order",
            "  kappa(H): " + ", ".join(f"H={h}: {e.text()}" for h, e in d.kappa_by_horizon.items()),
            f"  consecutive market orders on the same side {d.same_side_share:.2f} "
            f"(independent sides: {d.same_side_independent:.2f})",
            f"  steps with no mid change {d.quiet_mid_share:.3f}",
            f"  {d.market_orders} market orders, {d.small_order_share:.0%} below lot/2 (rounded up to one lot): "
            f"binned volume {d.binned_volume:.6g} against {d.volume:.6g} real ("
            f"{(d.binned_volume / d.volume - 1.0) if d.volume > 0 else 0.0:+.1%})",
            "",
            "chosen, not calibrated: " + ", ".join(f"{name}={value}" for name, value in self.choices.items()),
        ]
        lines += [f"note: {note}" for note in self.notes]
        return lines


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _mean_estimate(x: np.ndarray) -> Estimate:
    mean, cov = hac_mean(np.asarray(x, dtype=np.float64))
    return Estimate(float(mean[0]), _root(float(cov[0, 0])))


def _try_fill(depth: np.ndarray, delta_fit_max: float, label: str) -> FillFit | None:
    try:
        return fit_fill(depth, delta_fit_max, label)
    except ValueError:
        return None


def _horizon_impact(mid: np.ndarray, x: np.ndarray, horizon: int) -> Estimate:
    """``κ(H)``: OLS through the origin of ``P_{n+H} − P_n`` on ``x_n``, Newey–West lag at least ``H``."""
    n = len(mid) - horizon
    change = mid[horizon:] - mid[:-horizon]
    regressor = x[:n]
    beta, cov = ols_sandwich(regressor, change, lag=max(newey_west_lag(n), horizon))
    return Estimate(float(beta[0]), _root(cov[0, 0]))


def calibrate(
    stepped: SteppedTape,
    delta_fit_max: float | None = None,
    *,
    T: int = 200,
    I_max: int = 50,
    lam: float = 0.005,
    alpha: float = 0.0,
    delta_max: float = 5.0,
    reward: str = "spread",
    impact_exponent: float | None = None,
) -> Calibration:
    """Calibrate the model on a tape laid on the step grid (``MODEL.md`` §10.3).

    Args:
        stepped: the tape on the step grid (:func:`mm_env.data.steps.to_steps`).
        delta_fit_max: the deepest grid point of the fill fit, ticks (default: ``delta_max``).
        T: the model's episode length, steps (the user's choice).
        I_max: its inventory limit, lots (the user's choice).
        lam: its running inventory penalty (the user's choice; one reading is ``γσ²/2``).
        alpha: its terminal inventory penalty (the user's choice).
        delta_max: its largest quote offset, ticks (the user's choice).
        reward: ``spread`` or ``mtm`` (the user's choice).
        impact_exponent: fix ``β`` at this value instead of fitting it (``None``: fit it).

    Raises ``ValueError`` when the tape cannot give a model: no trade, fewer than three points on the fill curve, or
    a fill curve that does not decay (``k ≤ 0``).
    """
    if reward not in REWARDS:
        raise ValueError(f"reward={reward!r} is invalid: must be one of {list(REWARDS)}")
    choices: dict[str, Any] = {
        "T": T,
        "I_max": I_max,
        "lam": lam,
        "alpha": alpha,
        "delta_max": delta_max,
        "reward": reward,
    }
    make_params(**choices)  # the user's choices are checked by the model itself (ValueError naming the field)
    if delta_fit_max is None:
        delta_fit_max = delta_max
    if not (isinstance(delta_fit_max, (int, float)) and math.isfinite(delta_fit_max) and delta_fit_max >= 1.0):
        raise ValueError(f"delta_fit_max={delta_fit_max!r} is invalid: must be a finite number of ticks >= 1")
    if impact_exponent is not None and not 0.0 < impact_exponent <= 1.5:
        raise ValueError(f"impact_exponent={impact_exponent!r} is invalid: must be None or in (0, 1.5]")
    units = stepped.units
    N = stepped.N
    h = stepped.has_trade.astype(np.float64)
    trade = stepped.has_trade
    n_trade = int(trade.sum())
    if n_trade < 2:
        raise ValueError(f"the tape has {n_trade} steps with a trade: at least 2 are needed to calibrate")
    notes: list[str] = []

    pi_visible = _mean_estimate(h)

    # The side law: OLS of 1[S = +1] on (1, L/2) over the trade steps.
    buys = (stepped.side[trade] == 1).astype(np.float64)
    last = stepped.last_side[trade].astype(np.float64) / 2.0
    design = np.column_stack([np.ones(n_trade), last])
    if np.all(last == 0.0):  # no trade ever follows a trade: φ is not measured
        p = _mean_estimate(buys)
        p_buy, momentum = p, Estimate(0.0, math.nan)
        notes.append("no trade step follows another: momentum is not measured and is set to 0")
    else:
        coefficients, cov = ols_sandwich(design, buys)
        p_buy = Estimate(float(coefficients[0]), _root(cov[0, 0]))
        momentum = Estimate(float(coefficients[1]), _root(cov[1, 1]))

    # The size law over the trade steps.
    sizes = stepped.size[trade]
    values = tuple(int(q) for q in np.unique(sizes))
    indicators = (sizes[:, None] == np.asarray(values)[None, :]).astype(np.float64)
    means, cov = hac_mean(indicators)
    size_probs = tuple(Estimate(float(means[i]), _root(cov[i, i])) for i in range(len(values)))
    mean_size = _mean_estimate(sizes.astype(np.float64))

    # The fill curve, pooled, with A_raw; the normalisation of A.
    fill = fit_fill(stepped.depth, delta_fit_max, "pooled", visible=h)
    if fill.k.value <= 0.0:
        raise ValueError(f"the fill curve does not decay (k = {fill.k.value:.3g} ≤ 0): no model fits it")
    a_raw = fill.a_raw
    assert a_raw is not None
    if fill.a.value > 1.0:
        pi, A = Estimate(1.0, 0.0), Estimate(1.0, 0.0)
        normalisation = "(pi*A)^ > 1: pi = A = 1 (flagged: the model cannot fill near the mid as often; shorten dt)"
        notes.append(normalisation)
    elif a_raw.value > 1.0:
        pi, A = fill.a, Estimate(1.0, 0.0)
        normalisation = "A_raw > 1: A = 1 and pi = (pi*A)^"
    else:
        pi, A = pi_visible, a_raw
        normalisation = "A_raw <= 1: pi = pi (visible) and A = A_raw"

    # Impact, noise and jumps.
    change = np.diff(stepped.mid)
    impact = fit_impact(change, stepped.side, stepped.size, impact_exponent)
    if impact.beta_fixed and impact_exponent is None:
        notes.append("every trade has the same size: beta is not identified and is fixed at 1")
    if impact.kappa.value < 0.0:
        notes.append(f"kappa = {impact.kappa.value:.3g} < 0 is set to 0 in the model")
    if impact.beta.value > 1.0:
        notes.append(f"beta = {impact.beta.value:.3g} > 1 is clipped to 1 in the model")
    residual = impact.residual
    variance = float(residual @ residual) / (N - impact.parameters)
    sigma = math.sqrt(variance)
    mean_square, square_cov = hac_mean(residual * residual)
    variance_se = _root(float(square_cov[0, 0]))  # the HAC standard error of the mean of e²
    sigma_total = Estimate(sigma, variance_se / (2.0 * sigma) if sigma > 0.0 else 0.0)
    jumps = split_jumps(residual)
    p_clipped = min(max(p_buy.value, 0.0), 1.0)
    if p_clipped != p_buy.value:
        notes.append(f"p_buy = {p_buy.value:.3g} is clipped to {p_clipped:g}")
    bound = min(2.0 * min(p_clipped, 1.0 - p_clipped), 1.0)
    if abs(momentum.value) > bound:
        notes.append(f"momentum = {momentum.value:.3g} is clipped to ±{bound:.3g} (p_buy ± momentum/2 in [0, 1])")

    diagnostics = _diagnostics(stepped, float(delta_fit_max), p_buy.value, impact)
    return Calibration(
        N=N,
        trade_steps=n_trade,
        dt=units.dt,
        tick=units.tick,
        lot=units.lot,
        delta_fit_max=float(delta_fit_max),
        pi_visible=pi_visible,
        p_buy=p_buy,
        momentum=momentum,
        sizes=values,
        size_probs=size_probs,
        mean_size=mean_size,
        fill=fill,
        pi=pi,
        A=A,
        normalisation=normalisation,
        impact=impact,
        sigma_total=sigma_total,
        jumps=jumps,
        diagnostics=diagnostics,
        choices=choices,
        notes=tuple(notes),
    )


def _diagnostics(stepped: SteppedTape, limit: float, p_buy: float, impact: Impact) -> Diagnostics:
    trade = stepped.has_trade
    before, after = trade[:-1], trade[1:]
    after_trade = float(after[before].mean()) if before.any() else math.nan
    after_none = float(after[~before].mean()) if (~before).any() else math.nan
    per_step = stepped.orders_per_step
    both = int(np.all(np.isfinite(stepped.depth), axis=1).sum())
    fill_ask = _try_fill(stepped.depth[:, :1], limit, "ask")
    fill_bid = _try_fill(stepped.depth[:, 1:], limit, "bid")
    ask_share = (
        fill_ask.a.value / (fill_ask.a.value + fill_bid.a.value)
        if fill_ask is not None and fill_bid is not None
        else math.nan
    )
    depths = stepped.depth[np.isfinite(stepped.depth) & (stepped.depth >= 0.0)]
    if len(depths) > 1 and depths.mean() > 0.0:
        mean = _mean_estimate(depths)
        k_mle = Estimate(1.0 / mean.value, mean.se / mean.value**2)
    else:
        k_mle = Estimate(math.nan, math.nan)
    x = _regressor(stepped.side, stepped.size, impact.beta.value)
    horizons = {h: _horizon_impact(stepped.mid, x, h) for h in HORIZONS if stepped.N - h >= 10}
    orders = stepped.orders
    sides = orders.side
    same = float(np.mean(sides[1:] == sides[:-1])) if len(sides) > 1 else math.nan
    order_step = stepped.order_step
    tick = stepped.units.tick
    reach_step = orders.side * (orders.worst_price / tick - stepped.mid[order_step])
    reach_order = orders.side * (orders.worst_price / tick - stepped.order_mid)
    order_depth = np.full((stepped.N, 2), -np.inf)
    for column, s in enumerate((1, -1)):
        on_side = (sides == s) & np.isfinite(reach_order)
        np.maximum.at(order_depth[:, column], order_step[on_side], reach_order[on_side])
    lot = stepped.units.lot
    return Diagnostics(
        trade_after_trade=after_trade,
        trade_after_none=after_none,
        several_orders_steps=int((per_step > 1).sum()),
        both_sides_steps=both,
        fill_ask=fill_ask,
        fill_bid=fill_bid,
        ask_share=ask_share,
        k_mle=k_mle,
        kappa_by_horizon=horizons,
        same_side_share=same,
        same_side_independent=p_buy**2 + (1.0 - p_buy) ** 2,
        fill_order_mid=_try_fill(order_depth, limit, "from the mid before each order"),
        deepest_from_step_mid=float(np.max(reach_step)) if len(reach_step) else math.nan,
        deepest_from_order_mid=float(np.nanmax(reach_order)) if len(reach_order) else math.nan,
        quiet_mid_share=float(np.mean(np.diff(stepped.mid) == 0.0)),
        small_order_share=float(np.mean(orders.size < lot / 2.0)) if len(orders) else math.nan,
        volume=float(orders.size.sum()),
        binned_volume=float(bin_sizes(orders.size, lot).sum() * lot),
        market_orders=len(orders),
    )
