"""The episode figure in the article's style: mid, bid and ask; inventory; per-step and cumulative reward."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib is imported inside the functions, so that importing the env does not import it.
HISTORY_KEYS = ("mid", "bid", "ask", "inventory", "reward")


def episode_figure(history: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Plot one episode from its per-step ``history``.

    ``history`` maps ``mid`` (before each step), ``bid``, ``ask``, ``inventory`` (after it) and ``reward`` to lists.
    """
    from matplotlib.figure import Figure

    steps = np.arange(len(history["reward"]))
    figure = Figure(figsize=(9, 7.5), layout="constrained")
    prices, inventory, rewards = figure.subplots(3, 1, sharex=True)
    prices.plot(steps, history["mid"], color="black", lw=1.2, label="mid")
    prices.plot(steps, history["bid"], color="tab:green", lw=0.8, label="bid")
    prices.plot(steps, history["ask"], color="tab:red", lw=0.8, label="ask")
    prices.set_ylabel("price")
    prices.legend(loc="upper left", ncols=3, fontsize="small")
    inventory.step(steps, history["inventory"], where="post", color="tab:blue")
    inventory.axhline(0.0, color="grey", lw=0.6)
    inventory.set_ylabel("inventory I")
    rewards.bar(steps, history["reward"], color="tab:grey", width=1.0, label="per step")
    rewards.set_ylabel("reward per step")
    cumulative = rewards.twinx()
    cumulative.plot(steps, np.cumsum(history["reward"]), color="tab:purple", label="cumulative")
    cumulative.set_ylabel("cumulative reward", color="tab:purple")
    rewards.set_xlabel("step t")
    if title:
        figure.suptitle(title)
    return figure


def figure_to_rgb(figure: Figure) -> np.ndarray:
    """Render a figure to an ``(height, width, 3)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
