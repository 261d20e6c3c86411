"""The episode figure in the article's style: mid, bid and ask; inventory; per-step and cumulative reward.

:func:`episode_figure` draws a finished episode once (for a PNG); :class:`EpisodeRenderer` keeps one figure per
environment and redraws only what changed, for ``render_mode="rgb_array"``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium.error import DependencyNotInstalled

from mm_env.xp import Number

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

# matplotlib is imported inside the functions, so that importing the env does not import it.
HISTORY_KEYS = ("mid", "bid", "ask", "inventory", "reward")
"""What the episode figure records at every step."""

LIVE_FIGSIZE = (8.0, 6.0)
"""Size in inches of the figure ``render()`` draws."""
LIVE_DPI = 80
"""Its resolution: 640 × 480 pixels, a multiple of 16 both ways, as video encoders want."""
# Fixed margins for the live figure, as fractions of it (constrained layout costs more than the frame itself).
# They leave room for tick labels of up to six characters on both sides, and for the title.
_LIVE_MARGINS = {"left": 0.11, "right": 0.89, "bottom": 0.085, "top": 0.93, "hspace": 0.12}


def require_matplotlib() -> None:
    """Raise :class:`gymnasium.error.DependencyNotInstalled` with the install command if matplotlib is missing."""
    # Looked up, not imported: SB3's make_vec_env asks every env for rgb_array, and most never draw a frame.
    if importlib.util.find_spec("matplotlib") is None:
        raise DependencyNotInstalled('render_mode="rgb_array" needs matplotlib: pip install "mm_env[render]"')


class EpisodeArtists:
    """The three panels of the episode figure on ``figure``, with a fixed step axis ``0 … horizon − 1``.

    :meth:`update` puts a history into the artists and rescales the price, inventory and reward axes to round
    numbers around the data. With ``animated=True`` the data artists and the title are left out of ``canvas.draw()``,
    so that a renderer can draw them over a saved background.
    """

    def __init__(self, figure: Figure, horizon: int, *, animated: bool = False) -> None:
        prices, inventory, rewards = figure.subplots(3, 1, sharex=True)
        (self.mid,) = prices.plot([], [], color="black", lw=1.2, label="mid")
        (self.bid,) = prices.plot([], [], color="tab:green", lw=0.8, label="bid")
        (self.ask,) = prices.plot([], [], color="tab:red", lw=0.8, label="ask")
        prices.set_ylabel("price")
        prices.ticklabel_format(axis="y", useOffset=False)  # prices read in full, not as an offset from 1e2
        # Above the panel rather than over the data: the data never hides behind it, and a live frame need not
        # redraw it.
        prices.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, fontsize="small", frameon=False)
        (self.inventory,) = inventory.step([], [], where="post", color="tab:blue")
        inventory.axhline(0.0, color="grey", lw=0.6)
        inventory.set_ylabel("inventory I")
        # One filled step patch rather than a bar per step: it looks the same and draws in one call.
        self.reward = rewards.stairs([], [0.0], fill=True, color="tab:grey", label="per step")
        rewards.set_ylabel("reward per step")
        cumulative = rewards.twinx()
        (self.cumulative,) = cumulative.plot([], [], color="tab:purple", label="cumulative")
        cumulative.set_ylabel("cumulative reward", color="tab:purple")
        rewards.set_xlabel("step t")
        rewards.set_xlim(-0.5, max(horizon, 1) - 0.5)  # the horizon is known: only the y-axes follow the data
        self.title = figure.suptitle("")
        self.axes: tuple[Axes, ...] = (prices, inventory, rewards, cumulative)
        # In drawing order: each panel's data, then the title.
        self.animated: tuple[Artist, ...] = (
            self.mid,
            self.bid,
            self.ask,
            self.inventory,
            self.reward,
            self.cumulative,
            self.title,
        )
        for artist in self.animated:
            artist.set_animated(animated)

    def update(self, history: Mapping[str, Sequence[float] | np.ndarray], title: str = "") -> bool:
        """Show ``history`` (the arrays of :data:`HISTORY_KEYS`); return whether an axis' limits changed."""
        mid, bid, ask, inventory, reward = (np.asarray(history[key], dtype=float) for key in HISTORY_KEYS)
        steps = np.arange(len(reward))
        cumulative = np.cumsum(reward)
        self.mid.set_data(steps, mid)
        self.bid.set_data(steps, bid)
        self.ask.set_data(steps, ask)
        self.inventory.set_data(steps, inventory)
        self.reward.set_data(reward, np.arange(len(reward) + 1) - 0.5)  # centred on the steps, as bars would be
        self.cumulative.set_data(steps, cumulative)
        self.title.set_text(title)
        prices, inventory_axes, rewards, cumulative_axes = self.axes
        # The zero lines (the inventory's axhline, the reward's baseline) are always in view.
        changed = [
            _rescale(prices, mid, bid, ask),
            _rescale(inventory_axes, inventory, np.zeros(1)),
            _rescale(rewards, reward, np.zeros(1)),
            _rescale(cumulative_axes, cumulative),
        ]
        return any(changed)


def _rescale(axes: Axes, *data: np.ndarray) -> bool:
    """Fit ``axes``' y-limits to the data, padded by 5% and rounded out to ticks; return whether they changed.

    Round limits change only when the data crosses a tick, so that a live plot seldom needs a full redraw. Empty data
    keeps matplotlib's default ``(0, 1)``.
    """
    values = np.concatenate(data)
    values = values[np.isfinite(values)]
    if values.size == 0:
        limits = (0.0, 1.0)
    else:
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-9:
            low, high = low - 1.0, high + 1.0
        pad = 0.05 * (high - low)
        ticks = axes.yaxis.get_major_locator().tick_values(low - pad, high + pad)
        limits = (float(ticks[0]), float(ticks[-1]))
    if axes.get_ylim() == limits:
        return False
    axes.set_ylim(limits)
    return True


def episode_figure(history: Mapping[str, Sequence[float] | np.ndarray], title: str = "") -> Figure:
    """Plot one episode from its per-step ``history``, with the step axis spanning the episode.

    ``history`` maps ``mid`` (before each step), ``bid``, ``ask``, ``inventory`` (after it) and ``reward`` to lists.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 7.5), layout="constrained")
    EpisodeArtists(figure, horizon=len(history["reward"])).update(history, title)
    return figure


def figure_to_rgb(figure: Figure) -> np.ndarray:
    """Render a figure to an ``(height, width, 3)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class EpisodeRenderer:
    """One environment's episode so far, drawn into the same figure frame after frame.

    The figure is made on the first :meth:`render`. A frame redraws the whole figure only when an axis' limits
    change (as they do when a new episode starts); otherwise it restores the saved axes, ticks and labels and draws
    the data over them (blitting), which is what keeps a frame of a long episode cheap.

    Args:
        horizon: The episode length ``T``, the extent of the step axis.
        figsize: Figure size in inches.
        dpi: Figure resolution.
    """

    def __init__(self, horizon: int, figsize: tuple[float, float] = LIVE_FIGSIZE, dpi: float = LIVE_DPI) -> None:
        self.horizon = horizon
        self.figsize = figsize
        self.dpi = dpi
        self.history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
        self._figure: Figure | None = None
        self._canvas: FigureCanvasAgg | None = None
        self._artists: EpisodeArtists | None = None
        self._background: Any = None

    def clear(self) -> None:
        """Forget the episode: the next frame is that of a new one."""
        for values in self.history.values():
            values.clear()

    def record(self, mid: Number, bid: Number, ask: Number, inventory: Number, reward: Number) -> None:
        """Add one step: the mid before it, the quoted prices, the inventory after it and the reward."""
        for key, value in zip(HISTORY_KEYS, (mid, bid, ask, inventory, reward), strict=True):
            self.history[key].append(float(value))

    def render(self) -> np.ndarray:
        """The episode so far as an ``(height, width, 3)`` uint8 array."""
        if self._artists is None:
            self._build()
        assert self._canvas is not None and self._artists is not None and self._figure is not None
        title = f"t = {len(self.history['reward'])} / {self.horizon}"
        if self._artists.update(self.history, title) or self._background is None:
            self._canvas.draw()  # everything but the animated data and title
            self._background = self._canvas.copy_from_bbox(self._figure.bbox)
        else:
            self._canvas.restore_region(self._background)
        for artist in self._artists.animated:
            self._figure.draw_artist(artist)
        return np.asarray(self._canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        """Release the figure (a later :meth:`render` makes a new one)."""
        self._figure = self._canvas = self._artists = self._background = None

    def _build(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._figure = Figure(figsize=self.figsize, dpi=self.dpi)
        self._figure.subplots_adjust(**_LIVE_MARGINS)
        self._canvas = FigureCanvasAgg(self._figure)
        self._artists = EpisodeArtists(self._figure, self.horizon, animated=True)
        self._background = None
