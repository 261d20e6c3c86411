"""Standard errors for estimates from time series (``MODEL.md`` §10.3): Newey–West, the delta method, the sandwich.

Observations from a recorded market are not independent (trades cluster), so every standard error here comes from a
Newey–West (Bartlett) long-run covariance with the lag ``ℓ = ⌊4·(n/100)^{2/9}⌋`` (:func:`newey_west_lag`).

* :func:`hac_mean`: the mean of per-observation vectors and the covariance of that mean, ``Ω/n``;
* :func:`delta_method`: the covariance of smooth functions of estimates, ``G·V·Gᵀ``;
* :func:`ols_sandwich`: least squares with the sandwich covariance ``H⁻¹·S·H⁻¹/n``;
* :func:`sandwich`: the same for any estimator given its per-observation gradient and residuals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Estimate",
    "delta_method",
    "hac_mean",
    "long_run_covariance",
    "newey_west_lag",
    "ols_sandwich",
    "sandwich",
]


@dataclass(frozen=True)
class Estimate:
    """An estimate with its standard error.

    Attributes:
        value: the estimate.
        se: its standard error (``NaN`` where it cannot be measured, e.g. a single observation).
    """

    value: float
    se: float

    def z(self, truth: float) -> float:
        """``(value − truth)/se``: how many standard errors the estimate lies from ``truth``."""
        return (self.value - truth) / self.se

    def text(self, digits: int = 3) -> str:
        """``value ± se`` with ``digits`` significant digits for the value."""
        return f"{_significant(self.value, digits)} ± {_significant(self.se, 2)}"

    def as_dict(self) -> dict[str, float]:
        """``{"value": …, "se": …}``."""
        return {"value": self.value, "se": self.se}


def _significant(value: float, digits: int) -> str:
    if value == 0.0:
        return f"{0.0:.{digits - 1}f}"
    if not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def newey_west_lag(n: int) -> int:
    """The Newey–West lag ``⌊4·(n/100)^{2/9}⌋`` for ``n`` observations (0 for ``n ≤ 0``)."""
    return math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)) if n > 0 else 0


def long_run_covariance(u: ArrayLike, lag: int | None = None, demean: bool = True) -> np.ndarray:
    """The Newey–West (Bartlett) long-run covariance of the rows of ``u`` (shape ``(n, p)``, or ``(n,)``).

    ``Ω = Γ_0 + Σ_{j=1..ℓ} (1 − j/(ℓ + 1))·(Γ_j + Γ_jᵀ)`` with ``Γ_j = (1/n)·Σ_t u_t·u_{t−j}ᵀ``, the rows first
    centred on their mean where ``demean`` (for a mean; a regression's scores are used as they are). ``ℓ`` defaults
    to :func:`newey_west_lag` of ``n`` and is at most ``n − 1``. Returns a ``(p, p)`` array.
    """
    rows = np.asarray(u, dtype=np.float64)
    if rows.ndim == 1:
        rows = rows[:, None]
    n = rows.shape[0]
    if n == 0:
        return np.full((rows.shape[1], rows.shape[1]), np.nan)
    if demean:
        rows = rows - rows.mean(axis=0)
    lag = newey_west_lag(n) if lag is None else lag
    lag = min(lag, n - 1)
    omega = rows.T @ rows / n
    for j in range(1, lag + 1):
        gamma = rows[j:].T @ rows[:-j] / n
        omega += (1.0 - j / (lag + 1.0)) * (gamma + gamma.T)
    return omega


def hac_mean(x: ArrayLike, lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the rows of ``x`` (shape ``(n, p)`` or ``(n,)``) and its HAC covariance ``Ω/n``."""
    rows = np.asarray(x, dtype=np.float64)
    if rows.ndim == 1:
        rows = rows[:, None]
    n = rows.shape[0]
    return rows.mean(axis=0), long_run_covariance(rows, lag) / n


def delta_method(gradient: ArrayLike, covariance: ArrayLike) -> np.ndarray:
    """The covariance ``G·V·Gᵀ`` of smooth functions of estimates with covariance ``V``; ``G`` is their Jacobian."""
    g = np.atleast_2d(np.asarray(gradient, dtype=np.float64))
    return g @ np.asarray(covariance, dtype=np.float64) @ g.T


def sandwich(gradient: ArrayLike, residual: ArrayLike, lag: int | None = None) -> np.ndarray:
    """The sandwich covariance ``H⁻¹·S·H⁻¹/n`` of a least-squares estimate.

    ``gradient`` (shape ``(n, p)``) holds each observation's gradient of the fitted value with respect to the
    parameters (the regressors of a linear model), ``residual`` the residuals ``e_n``; ``H`` is the mean of
    ``g_n·g_nᵀ`` and ``S`` the long-run covariance of ``g_n·e_n``.
    """
    g = np.asarray(gradient, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    n = g.shape[0]
    h_inverse = np.linalg.inv(g.T @ g / n)
    s = long_run_covariance(g * np.asarray(residual, dtype=np.float64)[:, None], lag, demean=False)
    return h_inverse @ s @ h_inverse / n


def ols_sandwich(x: ArrayLike, y: ArrayLike, lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of ``y`` on the columns of ``x`` (no intercept is added) and its sandwich covariance."""
    design = np.asarray(x, dtype=np.float64)
    if design.ndim == 1:
        design = design[:, None]
    target = np.asarray(y, dtype=np.float64)
    beta = np.linalg.solve(design.T @ design, design.T @ target)
    return beta, sandwich(design, target - design @ beta, lag)
