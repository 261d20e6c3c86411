"""The goodness-of-fit figure of the fill curve: ``log Λ̂(δ)`` against ``δ`` with the fitted line, pooled and per side.

Drawn on a ``matplotlib.figure.Figure`` of its own (no ``pyplot`` state); matplotlib comes with the ``render``
extra and is imported here only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents.calibration.calibrate import Calibration, FillFit

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["fill_figure", "save_fill_figure"]


def _draw(axis: Axes, fit: FillFit, color: str, label: str) -> None:
    grid = np.linspace(0.0, float(fit.delta[-1]), 50)
    axis.plot(fit.delta, np.log(fit.rate), "o", color=color, label=f"{label}: log Λ̂")
    line = np.log(fit.a.value) - fit.k.value * grid
    axis.plot(grid, line, "-", color=color, label=f"{label}: fit, k = {fit.k.text()}, a = {fit.a.text()}")


def fill_figure(calibration: Calibration) -> Figure:
    """The fill curve's fit: pooled (left) and per side with the fit from the mid before each order (right)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    pooled_axis, side_axis = figure.subplots(1, 2, sharey=True)
    _draw(pooled_axis, calibration.fill, "black", "pooled")
    pooled_axis.set_title(
        f"pooled: largest |log residual| {calibration.fill.largest_log_residual:.2f}, A_raw {calibration.A_raw.text()}"
    )
    diagnostics = calibration.diagnostics
    for fit, color, label in (
        (diagnostics.fill_ask, "tab:red", "ask (buys)"),
        (diagnostics.fill_bid, "tab:blue", "bid (sells)"),
        (diagnostics.fill_order_mid, "tab:grey", "from the mid before each order"),
    ):
        if fit is not None:
            _draw(side_axis, fit, color, label)
    side_axis.set_title("per side, and depths from the mid just before each order")
    for axis in (pooled_axis, side_axis):
        axis.set_xlabel("δ, ticks from the step-start mid")
        axis.legend(fontsize="small")
    pooled_axis.set_ylabel("log Λ̂(δ): per-step frequency of an order reaching δ")
    return figure


def save_fill_figure(calibration: Calibration, path: str | Path) -> Path:
    """Draw :func:`fill_figure` and save it as PNG at ``path`` (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fill_figure(calibration).savefig(path, dpi=110)
    return path
