"""Observation features and action decoding shared by the single, vector and SB3 front-ends.

Like :mod:`mm_env.dynamics`, the feature and decoding formulas go through an array namespace (:mod:`mm_env.xp`), so
one definition serves a single environment (Python numbers) and a batch (arrays), and they write nothing in place.
Checking actions (shape, type, finite values) is the NumPy front-ends' job, before the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from gymnasium import spaces

from mm_env.dynamics import MarketState, Number
from mm_env.params import MarketParams
from mm_env.xp import NUMPY, SCALAR, ArrayNamespace, namespace_of


class Feature(NamedTuple):
    """One observation feature: its bounds and its formula."""

    low: float
    high: float
    value: Callable[[MarketState, MarketParams, ArrayNamespace], Number]
    description: str


def _inventory(state: MarketState, params: MarketParams, xp: ArrayNamespace) -> Number:
    return state.inventory / params.I_max


def _time_left(state: MarketState, params: MarketParams, xp: ArrayNamespace) -> Number:
    return (params.T - state.t) / params.T


def _mid_change(state: MarketState, params: MarketParams, xp: ArrayNamespace) -> Number:
    # Bounded like every other feature: exact within [-1, 1] without noise, clipped beyond a 4σ or jump move.
    return xp.clip(state.mid_change / params.mid_move_scale, -1.0, 1.0)


def _last_fill(state: MarketState, params: MarketParams, xp: ArrayNamespace) -> Number:
    return -state.traded / params.max_size


def _last_side(state: MarketState, params: MarketParams, xp: ArrayNamespace) -> Number:
    return xp.sign(state.traded)


FEATURES: dict[str, Feature] = {
    "inventory": Feature(-1.0, 1.0, _inventory, "inventory I / I_max"),
    "time_left": Feature(0.0, 1.0, _time_left, "fraction of the episode left, (T − t) / T"),
    "mid_change": Feature(
        -1.0, 1.0, _mid_change, "mid change P_t − P_{t−1} over the last step / its scale, clipped to ±1"
    ),
    "last_fill": Feature(
        -1.0, 1.0, _last_fill, "the market maker's signed fill in the last step (+ bought, − sold) / max size"
    ),
    "last_side": Feature(
        -1.0, 1.0, _last_side, "the side L of the last step's trade (+1 a trader bought, −1 sold, 0 no trade)"
    ),
}
"""The observation features by name: each one's bounds, how it is computed from the state, and its meaning."""
DEFAULT_FEATURES = ("inventory", "time_left")
"""The default observation of a model without adaptive traders."""


def default_features(params: MarketParams) -> tuple[str, ...]:
    """The default observation: Markov for every model with an exact optimum (it carries ``L`` with momentum)."""
    return (*DEFAULT_FEATURES, "last_side") if params.flow.momentum != 0.0 else DEFAULT_FEATURES


def check_features(features: Sequence[str]) -> tuple[str, ...]:
    """Validate a list of feature names and return it as a tuple."""
    if isinstance(features, str) or not isinstance(features, Sequence) or len(features) == 0:
        raise ValueError(f"observation_features={features!r} is invalid: must be a non-empty list of {list(FEATURES)}")
    for name in features:
        if not isinstance(name, str) or name not in FEATURES:
            raise ValueError(f"observation feature {name!r} is unknown; allowed: {list(FEATURES)}")
    if len(set(features)) != len(features):
        raise ValueError(f"observation_features={list(features)!r} is invalid: a feature is listed twice")
    return tuple(features)


def observation_space(features: Sequence[str]) -> spaces.Box:
    """The single-environment observation space for these features (float32)."""
    low = np.array([FEATURES[f].low for f in features], dtype=np.float32)
    high = np.array([FEATURES[f].high for f in features], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


class Observer:
    """Computes the observations of one environment (shape ``(d,)``) or a batch (``(n, d)``), float32."""

    def __init__(self, features: Sequence[str]) -> None:
        self.features = check_features(features)
        self._values = tuple(FEATURES[name].value for name in self.features)

    def __call__(self, state: MarketState, params: MarketParams, xp: ArrayNamespace | None = None) -> np.ndarray:
        """The observations of ``state``: :meth:`one` or :meth:`batch`, by its namespace (default: its values')."""
        xp = namespace_of(state.t) if xp is None else xp
        return self.batch(state, params, xp) if xp.is_array else self.one(state, params)

    def one(self, state: MarketState, params: MarketParams) -> np.ndarray:
        """The observation of one environment's state (Python numbers), shape ``(d,)``."""
        values = []  # a loop, not a list comprehension: no extra frame on one env's hot path
        for value in self._values:
            values.append(value(state, params, SCALAR))
        return np.array(values, np.float32)

    def batch(self, state: MarketState, params: MarketParams, xp: ArrayNamespace = NUMPY) -> np.ndarray:
        """The observations of a batch's state (arrays of length ``n``), shape ``(n, d)``."""
        observations = xp.columns_float32([value(state, params, xp) for value in self._values])
        return observations  # type: ignore[return-value]  # an array of the namespace


def action_space(params: MarketParams, normalize: bool) -> spaces.Box:
    """The single-environment action space: ``[-1, 1]²`` when normalised, else the raw offsets."""
    if normalize:
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    return spaces.Box(params.delta_min, params.delta_max, shape=(2,), dtype=np.float32)


def _action_map(params: MarketParams, normalize: bool) -> tuple[float, float]:
    # offset = scale · action + shift
    if not normalize:
        return 1.0, 0.0
    half_range = 0.5 * (params.delta_max - params.delta_min)
    return half_range, params.delta_min + half_range


def encode_offsets(offsets: np.ndarray, params: MarketParams, normalize: bool) -> np.ndarray:
    """The actions (float32, same shape) that quote the given ``(..., 2)`` bid and ask offsets.

    The inverse of :func:`decode_actions` up to float32 rounding; offsets are clipped to the bounds first.
    """
    scale, shift = _action_map(params, normalize)
    clipped = np.clip(np.asarray(offsets, dtype=np.float64), params.delta_min, params.delta_max)
    return ((clipped - shift) / scale).astype(np.float32)


class ActionDecoder:
    """Turns actions into ``(bid_offset, ask_offset)`` for one model and action map (see :func:`decode_actions`).

    The map's constants are worked out once, at construction, rather than at every step.
    """

    def __init__(self, params: MarketParams, normalize: bool) -> None:
        self.scale, self.shift = _action_map(params, normalize)
        self.low, self.high = params.delta_min, params.delta_max
        self.normalize = normalize

    def __call__(self, actions: object, batch: int | None = None) -> tuple[Number, Number]:
        """The offsets of one action (``batch=None``: two Python floats) or of ``batch`` of them (two arrays)."""
        return self.one(actions) if batch is None else self.batch(actions, batch)

    def one(self, action: object) -> tuple[Number, Number]:
        """The offsets of one action of shape ``(2,)``, as two Python floats."""
        array = _checked(action, (2,))
        bid, ask = array.tolist()
        if not (math.isfinite(bid) and math.isfinite(ask)):
            raise ValueError(f"action must be finite; got {array!r}")
        # Clipping after the affine map keeps the offsets within bounds exactly; :meth:`offsets` applies the same
        # floating-point operations, so the two agree to the last bit.
        lo, hi, scale, shift, clip = self.low, self.high, self.scale, self.shift, SCALAR.clip
        return clip(scale * bid + shift, lo, hi), clip(scale * ask + shift, lo, hi)

    def batch(self, actions: object, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """The offsets of ``batch`` actions of shape ``(batch, 2)``, as two float64 arrays (checked first)."""
        array = _checked(actions, (batch, 2))
        # Two reductions find NaN and infinities (a NaN or an infinite extreme), cheaper than a mask of the batch.
        smallest, largest = float(array.min()), float(array.max())
        if not (math.isfinite(smallest) and math.isfinite(largest)):
            bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
            raise ValueError(f"action must be finite; environments {bad.tolist()} got {array[bad].tolist()}")
        # The map is increasing and rounds monotonically: the extremes map to the extremes (as Python floats, which
        # overflow to ±inf without a warning), so they tell whether any offset needs the clip.
        if self.normalize:
            smallest, largest = self.scale * smallest + self.shift, self.scale * largest + self.shift
        within = self.low <= smallest and largest <= self.high
        offsets = np.asarray(self.offsets(array.T.astype(np.float64), NUMPY, within))  # rows: contiguous data
        return offsets[0], offsets[1]

    def offsets(self, actions: Number, xp: ArrayNamespace, within_bounds: bool = False) -> Number:
        """The offsets of finite actions of any shape, within ``[delta_min, delta_max]``: the map, then a clip.

        A normalised action beyond ±2 maps beyond the bounds, where the clip puts it; bringing it to ±2 first
        changes nothing, and spares a huge finite action an overflow in the map. ``within_bounds``: the caller
        knows every offset falls within the bounds (checked on the extremes), so no clip can change one.
        """
        if self.normalize:
            actions = self.scale * (actions if within_bounds else xp.clip(actions, -2.0, 2.0)) + self.shift
        return actions if within_bounds else xp.clip(actions, self.low, self.high)


def _checked(actions: object, expected: tuple[int, ...]) -> np.ndarray:
    """``actions`` as an array, if it has the expected shape and a numeric dtype (else ``ValueError``)."""
    array = actions if type(actions) is np.ndarray else np.asarray(actions)
    if array.shape != expected:
        raise ValueError(
            f"action must have shape {expected} (bid offset, ask offset per environment); got shape {array.shape}"
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"action must be numeric; got dtype {array.dtype}")
    return array


def decode_actions(
    actions: object, params: MarketParams, normalize: bool, batch: int | None = None
) -> tuple[Number, Number]:
    """Turn actions into ``(bid_offset, ask_offset)``, checking shape and finiteness and clipping to the bounds.

    ``batch=None`` decodes one action of shape ``(2,)`` into two Python floats; otherwise ``actions`` must have shape
    ``(batch, 2)`` and two float64 arrays come back. Normalised actions map ``-1 → delta_min`` and
    ``+1 → delta_max`` linearly. Values outside the box are clipped; NaN, infinities and wrong shapes raise
    ``ValueError``. A front-end that decodes at every step keeps an :class:`ActionDecoder` instead.
    """
    return ActionDecoder(params, normalize)(actions, batch)
