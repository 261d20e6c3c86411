"""Judging multi-asset policies exactly (``MODEL.md`` §9.8): the comparison table, the tuned skews and the figures.

* :func:`compare_multi_asset` — every baseline of §9.6 evaluated exactly, as % of the DP optimum, with its exact
  standard deviation (:func:`markdown_table` prints it);
* :func:`tune_multi_asset_skew` — the linear skews of §9.6 (c) tuned over ``(c, s)`` (or ``(c_1 … c_d, s)``) by
  exact evaluation from ``I = 0``: a grid of candidates evaluated in one batched pass, then Nelder–Mead;
* :func:`correlation_sweep` — the value of cross-hedging against the correlation of ``C`` (§9.8's table), with the
  wrong-sign hedges;
* :func:`quotes_figure` and :func:`correlation_figure` — the quotes over ``(I_1, I_2)`` as heatmaps, and the sweep
  as a plot (matplotlib, the ``render`` extra, imported only there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.optimize import minimize

from agents.exact.multi_asset import (
    MultiAssetEvaluation,
    OffsetFunction,
    evaluate_many,
    evaluate_multi_asset,
    grid_inventory,
    solve_multi_asset,
)
from agents.policies.multi_asset import (
    BEGV,
    SKEW_FAMILIES,
    ArticleRulePerAsset,
    ConstantOffset,
    IndependentOptima,
    LinearSkewMultiAsset,
    MultiAssetDP,
    MultiAssetPolicy,
    begv_reason,
    skew_shape,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mm_env.multi_asset import MultiAssetParams

CENTERS = np.linspace(0.0, 1.6, 9)
"""The grid of centers ``c`` the skews' tuning starts from (offsets above ``delta_min``)."""
SLOPES = np.linspace(0.0, 0.32, 9)
"""The grid of slopes ``s`` the skews' tuning starts from."""


def evaluate_policy(params: MultiAssetParams, policy: MultiAssetPolicy) -> MultiAssetEvaluation:
    """The exact mean and standard deviation of a policy: its tables for the DP, else as a function of the grid."""
    if isinstance(policy, MultiAssetDP):
        return evaluate_multi_asset(params, policy.solution.table())
    return evaluate_multi_asset(params, policy.grid_function(params))


# ----------------------------------------------------------------------------------------------------------------
# Tuning the linear skews.


class TunedMultiAssetPolicy(NamedTuple):
    """The best linear skew found and its exact expected return."""

    policy: LinearSkewMultiAsset
    expected_return: float


def skew_candidates(params: MultiAssetParams, family: str, centers: np.ndarray, slopes: np.ndarray) -> OffsetFunction:
    """Many linear skews of one family at once, as one function of the grid for :func:`evaluate_many`.

    Args:
        params: the model.
        family: ``risk``, ``sqrt`` or ``own`` (:data:`agents.policies.multi_asset.SKEW_FAMILIES`).
        centers: ``(B, d)`` centers ``c_i``.
        slopes: ``(B,)`` slopes ``s``.

    Returns:
        ``f(t, inventory)`` with offsets of shape ``(B, *grid, d, 2)``, clipped.
    """
    shape = skew_shape(params, family)
    centers = np.asarray(centers, dtype=np.float64)
    slopes = np.asarray(slopes, dtype=np.float64)
    grid = grid_inventory(params)
    skew = np.einsum("ij,...j->...i", shape, grid)  # (*grid, d), the same at every step
    view = (-1,) + (1,) * (grid.ndim - 1) + (params.d,)
    center, slope = centers.reshape(view), slopes.reshape(view[:-1] + (1,))
    offsets = np.stack([center + slope * skew, center - slope * skew], axis=-1)
    offsets = np.clip(offsets, params.delta_min, params.delta_max)

    def candidates(t: int, inventory: np.ndarray) -> np.ndarray:
        return offsets

    return candidates


def tune_multi_asset_skew(
    params: MultiAssetParams, family: str, per_asset_center: bool = False, start: TunedMultiAssetPolicy | None = None
) -> TunedMultiAssetPolicy:
    """The best linear skew of a family by exact expected return from ``I = 0`` (``MODEL.md`` §9.6 c).

    One ``c`` for every asset: a grid ``delta_min +`` :data:`CENTERS` × :data:`SLOPES` evaluated in one batched
    pass, then Nelder–Mead from its best point. ``per_asset_center=True`` refines ``(c_1 … c_d, s)`` by
    Nelder–Mead from the best common-``c`` skew (``start``, tuned first if not given).

    Raises:
        ValueError: for an unknown family.
    """
    if family not in SKEW_FAMILIES:
        raise ValueError(f"family={family!r} is invalid: must be one of {list(SKEW_FAMILIES)}")

    def mean_of(centers: np.ndarray, slope: float) -> float:
        function = skew_candidates(params, family, np.asarray(centers)[None], np.array([max(slope, 0.0)]))
        return float(evaluate_many(params, function, second_moment=False)[0][0])

    if per_asset_center:
        base = start if start is not None else tune_multi_asset_skew(params, family)
        x0 = np.append(base.policy.center, base.policy.slope)
        best_x, best = x0, base.expected_return
        simplex_steps = np.full(params.d + 1, 0.05)
        simplex_steps[-1] = 0.01
    else:
        centers = params.delta_min + CENTERS
        centers = centers[centers <= params.delta_max]
        pairs = np.array([(c, s) for c in centers for s in SLOPES])
        grid_centers = np.repeat(pairs[:, :1], params.d, axis=1)
        means = evaluate_many(params, skew_candidates(params, family, grid_centers, pairs[:, 1]), False)[0]
        best_x, best = pairs[int(np.argmax(means))], float(np.max(means))
        x0 = best_x
        simplex_steps = np.array([CENTERS[1] - CENTERS[0], SLOPES[1] - SLOPES[0]])

    def loss(x: np.ndarray) -> float:
        centers = x[:-1] if per_asset_center else np.full(params.d, x[0])
        return -mean_of(np.clip(centers, params.delta_min, params.delta_max), float(x[-1]))

    simplex = np.vstack([x0, x0 + np.diag(simplex_steps)])
    options = {"initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-5, "maxiter": 200}
    result = minimize(loss, x0, method="Nelder-Mead", options=options)
    if -result.fun > best:
        best_x, best = result.x, float(-result.fun)
    center = best_x[:-1] if per_asset_center else float(best_x[0])
    center = np.clip(center, params.delta_min, params.delta_max)
    policy = LinearSkewMultiAsset(params, family, center, max(float(best_x[-1]), 0.0))
    return TunedMultiAssetPolicy(policy, best)


# ----------------------------------------------------------------------------------------------------------------
# The comparison table.


@dataclass(frozen=True)
class MultiAssetRow:
    """One policy's exact figures: its expected return, the % of the DP optimum and the standard deviation."""

    policy: str
    mean: float
    pct_of_dp: float
    sd: float


def baseline_policies(params: MultiAssetParams, tuned: bool = True) -> list[MultiAssetPolicy]:
    """The policies of ``MODEL.md`` §9.8's table, the DP optimum first.

    The DP optimum, the independent one-asset optima, BEGV with ``A(τ)`` and ergodic (where BEGV applies), with
    ``tuned`` the tuned linear skews on ``C·I``, on ``C^{½}·I`` (also with one ``c`` per asset) and on the own
    inventory, the article rule per asset (``Δ = 0.5``, ``γ = 0.1``) and the constant offset 0.5.
    """
    policies: list[MultiAssetPolicy] = [MultiAssetDP(params), IndependentOptima(params)]
    if begv_reason(params) is None:
        policies += [BEGV(params), BEGV(params, ergodic=True)]
    if tuned:
        for family in SKEW_FAMILIES:
            best = tune_multi_asset_skew(params, family)
            policies.append(best.policy)
            if family == "sqrt" and params.d > 1:
                policies.append(tune_multi_asset_skew(params, family, per_asset_center=True, start=best).policy)
    policies += [ArticleRulePerAsset(0.5, 0.1), ConstantOffset(0.5)]
    return policies


def compare_multi_asset(params: MultiAssetParams, policies: Sequence[MultiAssetPolicy]) -> list[MultiAssetRow]:
    """Every policy evaluated exactly, with its % of the DP optimum (solved here if no policy is the DP)."""
    dp = next((policy for policy in policies if isinstance(policy, MultiAssetDP)), None)
    optimum = dp.solution.value if dp is not None else solve_multi_asset(params).value
    rows = []
    for policy in policies:
        evaluation = evaluate_policy(params, policy)
        rows.append(MultiAssetRow(policy.name, evaluation.mean, 100.0 * evaluation.mean / optimum, evaluation.sd))
    return rows


def markdown_table(rows: Sequence[MultiAssetRow]) -> str:
    """The rows as a Markdown table: policy, exact E[return], % of DP, exact sd."""
    lines = ["| policy | exact E[return] | % of DP | sd |", "|---|---:|---:|---:|"]
    lines += [f"| {row.policy} | {row.mean:.4f} | {row.pct_of_dp:.2f} | {row.sd:.2f} |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# The value of cross-hedging against the correlation.

CORRELATIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.95)
"""The correlations of ``MODEL.md`` §9.8's table."""


@dataclass(frozen=True)
class CorrelationRow:
    """The exact values at one correlation ``ρ`` of two assets (``MODEL.md`` §9.8)."""

    correlation: float
    dp: float
    """The optimum's value (the same at ``−ρ``)."""
    independent: float
    """The independent one-asset optima, evaluated exactly at ``ρ`` (flat in ``ρ``: ``MODEL.md`` §9.6 a)."""
    begv: float
    """BEGV with ``A(τ)`` (NaN where BEGV does not apply)."""
    wrong_sign_dp: float
    """The DP optimum of the model at ``−ρ``, evaluated at ``ρ``: a hedge of the wrong sign."""
    wrong_sign_begv: float
    """BEGV built for ``−ρ``, evaluated at ``ρ`` (NaN where BEGV does not apply)."""


def _with_correlation(params: MultiAssetParams, correlation: float) -> MultiAssetParams:
    # With mean_variance, C = Σ/σ̄² follows the noise correlation R; otherwise C's off-diagonal is set directly.
    if params.mean_variance:
        return params.replace(correlation=correlation)
    return params.replace(risk_matrix=correlation)


def correlation_sweep(params: MultiAssetParams, correlations: Sequence[float] = CORRELATIONS) -> list[CorrelationRow]:
    """The exact values against the correlation ``ρ`` of two assets, with the hedges of the wrong sign.

    ``ρ`` is ``C``'s off-diagonal (``risk_matrix=ρ``), or with ``mean_variance`` the noise correlation ``R``'s
    (``correlation=ρ``, and ``C = Σ/σ̄²`` follows). The rest of the model is ``params``.

    Raises:
        ValueError: unless ``d = 2``.
    """
    if params.d != 2:
        raise ValueError(f"d={params.d} is invalid for the correlation sweep: it needs two assets")
    rows = []
    begv_applies = begv_reason(params) is None
    for correlation in correlations:
        model, mirror = _with_correlation(params, correlation), _with_correlation(params, -correlation)
        dp = solve_multi_asset(model).value
        wrong_dp = evaluate_multi_asset(model, solve_multi_asset(mirror).table()).mean
        begv = wrong_begv = float("nan")
        if begv_applies:
            begv = evaluate_multi_asset(model, BEGV(model).grid_function(model)).mean
            wrong_begv = evaluate_multi_asset(model, BEGV(mirror).grid_function(model)).mean
        independent = evaluate_policy(model, IndependentOptima(model)).mean
        rows.append(CorrelationRow(float(correlation), dp, independent, begv, wrong_dp, wrong_begv))
    return rows


def correlation_markdown(rows: Sequence[CorrelationRow]) -> str:
    """The sweep as a Markdown table, one column per correlation (as ``MODEL.md`` §9.8)."""
    lines = [
        "| ρ | " + " | ".join(f"{row.correlation:g}" for row in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for label, field in (
        ("DP (the same at −ρ)", "dp"),
        ("independent one-asset optima", "independent"),
        ("BEGV A(τ)", "begv"),
        ("wrong-sign hedge: the DP optimum for −ρ", "wrong_sign_dp"),
        ("wrong-sign BEGV (built for −ρ)", "wrong_sign_begv"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{getattr(row, field):.4f}" for row in rows) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# Figures.


def quotes_figure(params: MultiAssetParams, policies: Sequence[MultiAssetPolicy], t: int = 0) -> Figure:
    """The policies' quotes at step ``t`` over ``(I_1, I_2)``: one heatmap per side and asset, one row per policy.

    Pass the DP (:class:`~agents.policies.multi_asset.MultiAssetDP`), BEGV and, for a learned agent,
    :class:`~agents.policies.multi_asset.FromObservations`.

    Raises:
        ValueError: unless ``d = 2``, or for ``t`` outside ``[0, T − 1]``.
    """
    from matplotlib.figure import Figure

    if params.d != 2:
        raise ValueError(f"d={params.d} is invalid for the quotes figure: it draws two assets")
    if not 0 <= t < params.T:
        raise ValueError(f"t={t} is invalid: must be in [0, {params.T - 1}]")
    inventory = grid_inventory(params)
    limits = params.I_max
    extent = (-limits[0] - 0.5, limits[0] + 0.5, -limits[1] - 0.5, limits[1] + 0.5)
    top = min(params.delta_max, 2.0 + params.delta_min)
    figure = Figure(figsize=(14, 3.2 * len(policies) + 0.6), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(policies), 4, sharex=True, sharey=True, squeeze=False))
    image = None
    for row, policy in enumerate(policies):
        quotes = policy.offsets(t, inventory, params)  # (N_1, N_2, 2, 2)
        for asset in range(2):
            for side, label in enumerate(("bid", "ask")):
                axis = axes[row, 2 * asset + side]
                image = axis.imshow(
                    quotes[:, :, asset, side].T,
                    origin="lower",
                    extent=extent,
                    vmin=params.delta_min,
                    vmax=top,
                    cmap="viridis",
                    aspect="auto",
                )
                axis.set_title(f"{policy.name}\nasset {asset + 1} {label}", fontsize="small")
                if row == len(policies) - 1:
                    axis.set_xlabel("I_1")
                if side == 0 and asset == 0:
                    axis.set_ylabel("I_2")
    if image is not None:
        figure.colorbar(image, ax=axes, label=f"offset δ at t = {t}", shrink=0.8)
    return figure


def correlation_figure(rows: Sequence[CorrelationRow]) -> Figure:
    """The exact values of :func:`correlation_sweep` against ``ρ``.

    The optimum, the independent optima, BEGV and the hedges of the wrong sign.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axis = figure.subplots()
    x = [row.correlation for row in rows]
    for field, label, style in (
        ("dp", "DP optimum (the same at −ρ)", dict(color="black", lw=2.2)),
        ("independent", "independent one-asset optima", dict(color="tab:grey", ls="--")),
        ("begv", "BEGV A(τ)", dict(color="tab:blue")),
        ("wrong_sign_dp", "wrong sign: the DP optimum for −ρ", dict(color="tab:red")),
        ("wrong_sign_begv", "wrong sign: BEGV built for −ρ", dict(color="tab:orange", ls=":")),
    ):
        values = [getattr(row, field) for row in rows]
        if not all(np.isnan(values)):
            axis.plot(x, values, marker="o", label=label, **style)
    axis.set_xlabel("correlation ρ")
    axis.set_ylabel("exact expected return")
    axis.set_title("the value of cross-hedging against the correlation")
    axis.legend(fontsize="small")
    return figure


__all__ = [
    "CENTERS",
    "CORRELATIONS",
    "SLOPES",
    "CorrelationRow",
    "MultiAssetRow",
    "TunedMultiAssetPolicy",
    "baseline_policies",
    "compare_multi_asset",
    "correlation_figure",
    "correlation_markdown",
    "correlation_sweep",
    "evaluate_policy",
    "markdown_table",
    "quotes_figure",
    "skew_candidates",
    "tune_multi_asset_skew",
]
