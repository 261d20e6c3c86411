"""Figures: the policy figure (offsets against inventory, the DP value heatmap) and the episode figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from agents.exact.dp import DPSolution, exact_solution, inventory_grid
from agents.policies.base import Policy
from agents.policies.tabular import DPPolicy
from mm_env.dynamics import initial_state
from mm_env.opponents import JointPolicy
from mm_env.params import CompetitionParams, MarketParams
from mm_env.render import episode_figure, figure_to_rgb

__all__ = ["episode_figure", "figure_to_rgb", "game_quotes_figure", "policy_figure", "save_figure"]


def policy_figure(
    policies: Sequence[Policy],
    params: MarketParams,
    t: int = 0,
    solution: DPSolution | None = None,
    value_map: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Bid and ask offsets against inventory at step ``t`` for each policy, and the DP value over ``(t, I)``.

    With adaptive traders the offsets are those after a step without a trade (``L = 0``). Where the model has no
    exact optimum, or with ``value_map=False``, the figure has the offsets only. ``figsize`` (inches) overrides the
    default size; a figure narrower than 7 inches puts two policies per legend row.
    """
    if not 0 <= t < params.T:
        raise ValueError(f"t={t} is invalid: must be in [0, {params.T - 1}]")
    dp = next((p for p in policies if isinstance(p, DPPolicy)), None)
    solution = solution or (dp.solution if dp is not None else exact_solution(params))
    if not value_map:
        solution = None
    levels = inventory_grid(params)
    if figsize is None:
        figsize = (13, 5.8) if solution is not None else (7.5, 5.8)
    figure = Figure(figsize=figsize, dpi=100, layout="constrained")
    if solution is not None:
        offsets_axis, value_axis = figure.subplots(1, 2, width_ratios=[1.2, 1])
    else:
        offsets_axis = figure.subplots()
    colors = iter(["black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"])
    for policy in policies:
        bid, ask = (table[t] if table.ndim == 2 else table[t, :, 1] for table in policy.tables(params))
        color = next(colors, "grey")
        width = 2.2 if isinstance(policy, DPPolicy) else 1.2
        offsets_axis.plot(levels, bid, color=color, lw=width, label=policy.name)
        offsets_axis.plot(levels, ask, color=color, lw=width, ls="--")
    offsets_axis.set_xlabel("inventory I")
    offsets_axis.set_ylabel("offset from the mid δ")
    offsets_axis.set_ylim(params.delta_min, min(params.delta_max, 3.0))
    offsets_axis.set_title(f"quotes at t = {t}: bid solid, ask dashed")
    figure.legend(loc="outside lower center", ncols=min(len(policies), 4 if figsize[0] >= 7 else 2), fontsize="small")
    if solution is None:
        return figure
    value = solution.value if solution.value.ndim == 2 else solution.value[..., 1]
    image = value_axis.imshow(
        value.T,
        origin="lower",
        aspect="auto",
        extent=(0, params.T, levels[0] - 0.5, levels[-1] + 0.5),
        cmap="viridis",
    )
    figure.colorbar(image, ax=value_axis, label="V(t, I)")
    value_axis.set_xlabel("step t")
    value_axis.set_ylabel("inventory I")
    value_axis.set_title(f"DP value function (V(0, 0) = {solution.expected_return:.2f})")
    return figure


def save_figure(figure: Figure, path: Path | str) -> Path:
    """Save a figure as PNG (creating the folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def thumbnail_policy_figure(policies: Sequence[Policy], params: MarketParams) -> np.ndarray:
    """The offsets panel of :func:`policy_figure` as an RGB image legible at TensorBoard's default image size.

    480 × 340 pixels with large type: TensorBoard shows an image in a card about 320 pixels wide, where the full
    figure's small print is unreadable.
    """
    import matplotlib

    with matplotlib.rc_context({"font.size": 12}):
        return figure_to_rgb(policy_figure(policies, params, value_map=False, figsize=(4.8, 3.4)))


def figure_rgb(figure: Figure) -> np.ndarray:
    """The figure as an RGB array (for TensorBoard images)."""
    return figure_to_rgb(figure)


def game_quotes_figure(named: Sequence[tuple[JointPolicy, str]], params: CompetitionParams, t: int = 0) -> Figure:
    """``mm_0``'s bid and ask offsets against its own inventory at step ``t`` (the others holding none).

    ``named`` are joint policies of competing market makers (:mod:`agents.policies.joint`,
    :mod:`agents.policies.opponents`, :class:`agents.policies.learned.LearnedJointPolicy`) with their names.
    """
    market = params.market
    levels = np.arange(-market.I_max, market.I_max + 1, dtype=np.float64)
    state = initial_state(params, len(levels))
    inventory = np.zeros((len(levels), params.num_market_makers))
    inventory[:, 0] = levels
    state = state._replace(t=np.full(len(levels), float(t)), inventory=inventory)
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    axis = figure.subplots()
    colors = iter(["black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])
    for policy, name in named:
        bid, ask = policy.quote(state, params)
        color = next(colors, "grey")
        axis.plot(levels, params.on_grid(bid)[:, 0], color=color, lw=1.6, label=name)
        axis.plot(levels, params.on_grid(ask)[:, 0], color=color, lw=1.6, ls="--")
    axis.set_xlabel("own inventory I_1 (the other market maker holds none)")
    axis.set_ylabel("offset from the mid δ")
    axis.set_ylim(market.delta_min, min(market.delta_max, 3.0))
    axis.set_title(f"quotes of the first market maker at t = {t} (solid: bid, dashed: ask)")
    axis.legend(fontsize="small")
    return figure
