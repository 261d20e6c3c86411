"""The multi-asset environments' configuration: the model, the spaces, the action map, observations and ``info``.

One configuration serves the single env, the Gymnasium vector env and the SB3 ``VecEnv`` (``MODEL.md`` §9.7):

* **action**: ``2d`` numbers ``(δ_b,1, δ_a,1, δ_b,2, δ_a,2, …)``, shape ``(d, 2)`` flattened row-major. Normalised
  (the default) each lies in ``[-1, 1]`` and maps as the one-asset env's, ``δ = δ_min + (a + 1)·(δ_max − δ_min)/2``,
  then is clipped to ``[δ_min, δ_max]``; raw, the box is ``[δ_min, δ_max]^{2d}``. NaN, infinities and wrong shapes
  raise ``ValueError``.
* **observation** (float32, Markov): ``(I_1/I_max_1, …, I_d/I_max_d, (T − t)/T)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from mm_env.multi_asset.dynamics import MultiAssetOutcome, MultiAssetState, PerAsset, Quotes, column, wealth
from mm_env.multi_asset.params import MultiAssetParams, make_multi_asset_params
from mm_env.spaces import ActionDecoder
from mm_env.xp import NUMPY, SCALAR, ArrayNamespace, Number

STATE_INFO_KEYS = ("inventory", "mid", "cash", "mtm_pnl")
"""The ``info`` entries that describe the state (given at reset and after every step)."""
TRADE_INFO_KEYS = (
    "bid",
    "ask",
    "trader_asset",
    "trader_side",
    "trader_size",
    "fill_side",
    "fill_size",
    "offset",
    "spread_captured",
    "inventory_penalty",
)
"""The entries that describe a step's quotes and trade."""


@dataclass(frozen=True)
class MultiAssetConfig:
    """Everything that defines a multi-asset environment besides its seed and its batch size.

    Attributes:
        params: the model (:class:`~mm_env.multi_asset.params.MultiAssetParams`).
        normalize_actions: ``True`` for the ``[-1, 1]^{2d}`` action box, ``False`` for raw offsets in price units.

    Every front-end takes the keywords of :meth:`from_kwargs`.
    """

    params: MultiAssetParams
    normalize_actions: bool = True
    STATE_INFO_KEYS: ClassVar[tuple[str, ...]] = STATE_INFO_KEYS
    """The ``info`` entries that describe the state (given at reset and after every step)."""
    TRADE_INFO_KEYS: ClassVar[tuple[str, ...]] = TRADE_INFO_KEYS
    """The ``info`` entries that describe a step's quotes and trade."""
    decoder: ActionDecoder = field(init=False, repr=False, compare=False)
    """The one-asset action map, applied to each of the ``2d`` offsets."""

    def __post_init__(self) -> None:
        if not isinstance(self.params, MultiAssetParams):
            raise ValueError(f"params={self.params!r} is invalid: must be a MultiAssetParams")
        if not isinstance(self.normalize_actions, (bool, np.bool_)):
            raise ValueError(f"normalize_actions={self.normalize_actions!r} is invalid: must be True or False")
        object.__setattr__(self, "normalize_actions", bool(self.normalize_actions))
        # Every asset has the book's offset bounds, so the first asset's one-asset model gives the map.
        object.__setattr__(self, "decoder", ActionDecoder(self.params.asset(0), self.normalize_actions))

    @classmethod
    def from_kwargs(
        cls,
        params: MultiAssetParams | None = None,
        preset: str | None = None,
        normalize_actions: bool = True,
        **overrides: Any,
    ) -> MultiAssetConfig:
        """The configuration from the front-ends' keywords.

        Args:
            params: a model (a :class:`~mm_env.multi_asset.params.MultiAssetParams`); or
            preset: the name of one in :data:`mm_env.multi_asset.params.MULTI_ASSET_PRESETS` (default
                ``"two_assets"``), not both.
            normalize_actions: ``True`` (default) for the ``[-1, 1]`` action box, ``False`` for raw offsets.
            **overrides: any model parameter by its keyword (``lam=0.002``, ``risk_matrix=-0.8``, ``sigma=(0.1, 0.2)``;
                :data:`mm_env.multi_asset.params.MULTI_ASSET_NAMES` lists them).
        """
        if params is not None and preset is not None:
            raise ValueError(f"give params or preset={preset!r}, not both")
        if params is None:
            model = make_multi_asset_params(preset or "two_assets", **overrides)
        elif isinstance(params, MultiAssetParams):
            model = params.replace(**overrides) if overrides else params
        else:
            raise ValueError(f"params={params!r} is invalid: must be a MultiAssetParams (or give preset=NAME)")
        return cls(model, normalize_actions)

    @property
    def features(self) -> tuple[str, ...]:
        """The names of the observation's columns, in order."""
        return (*(f"inventory_{i}" for i in range(self.params.d)), "time_left")

    @property
    def observation_space(self) -> spaces.Box:
        """The observation space of one environment, ``(d + 1,)`` float32."""
        d = self.params.d
        low = np.array([-1.0] * d + [0.0], dtype=np.float32)
        return spaces.Box(low, np.ones(d + 1, dtype=np.float32), dtype=np.float32)

    @property
    def action_space(self) -> spaces.Box:
        """The action space of one environment, ``(2d,)``: bid and ask offset of each asset in turn."""
        shape = (2 * self.params.d,)
        if self.normalize_actions:
            return spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32)
        return spaces.Box(self.params.delta_min, self.params.delta_max, shape=shape, dtype=np.float32)

    def observe(self, state: MultiAssetState, xp: ArrayNamespace = NUMPY) -> np.ndarray:
        """The observation of one state, ``(d + 1,)``, or of a batch, ``(n, d + 1)``, float32."""
        params = self.params
        columns = [column(state.inventory, i) / params.I_max[i] for i in range(params.d)]
        columns.append((params.T - state.t) / params.T)
        if np.ndim(state.t) == 0:
            return np.array(columns, dtype=np.float32)
        return xp.columns_float32(columns)  # type: ignore[return-value]  # an array of the namespace

    def decode(self, actions: object, batch: int | None = None) -> np.ndarray:
        """The offsets of one action, ``(d, 2)``, or of ``batch`` actions, ``(batch, d, 2)``, as float64.

        The action must have shape ``(2d,)`` (``(batch, 2d)``), a numeric dtype and finite values; values outside
        the box are clipped to it.
        """
        d = self.params.d
        expected = (2 * d,) if batch is None else (batch, 2 * d)
        array = np.asarray(actions)
        if array.shape != expected:
            raise ValueError(
                f"action must have shape {expected} (bid and ask offset of each of the {d} assets in turn"
                f"{'' if batch is None else ', per environment'}); got shape {array.shape}"
            )
        if array.dtype.kind not in "biuf":
            raise ValueError(f"action must be numeric; got dtype {array.dtype}")
        smallest, largest = float(array.min()), float(array.max())
        if not (math.isfinite(smallest) and math.isfinite(largest)):
            raise ValueError(f"action must be finite; got {array.tolist()!r}")
        offsets = np.asarray(self.decoder.offsets(array.astype(np.float64), NUMPY))
        return offsets.reshape(expected[:-1] + (d, 2))

    def decode_one(self, action: object) -> list[tuple[Number, Number]]:
        """The offsets of one action ``(2d,)`` as ``d`` pairs of Python floats (bid, ask), checked as :meth:`decode`.

        The one-asset env's map on Python numbers (:meth:`mm_env.spaces.ActionDecoder.one`), for the single env.
        """
        d = self.params.d
        array = action if type(action) is np.ndarray else np.asarray(action)
        if array.shape != (2 * d,):
            raise ValueError(
                f"action must have shape {(2 * d,)} (bid and ask offset of each of the {d} assets in turn); "
                f"got shape {array.shape}"
            )
        if array.dtype.kind not in "biuf":
            raise ValueError(f"action must be numeric; got dtype {array.dtype}")
        values = array.tolist()
        if not all(math.isfinite(value) for value in values):
            raise ValueError(f"action must be finite; got {array!r}")
        low, high, scale, shift = self.params.delta_min, self.params.delta_max, self.decoder.scale, self.decoder.shift
        offsets = [SCALAR.clip(scale * value + shift, low, high) for value in values]
        return [(offsets[2 * i], offsets[2 * i + 1]) for i in range(d)]

    def encode(self, offsets: object) -> np.ndarray:
        """The actions (float32, ``(..., 2d)``) that quote the given offsets (``(..., d, 2)``; clipped first)."""
        array = np.clip(np.asarray(offsets, dtype=np.float64), self.params.delta_min, self.params.delta_max)
        actions = (array - self.decoder.shift) / self.decoder.scale
        return actions.reshape(actions.shape[:-2] + (2 * self.params.d,)).astype(np.float32)

    def state_info(self, state: MultiAssetState) -> dict[str, Any]:
        """The ``info`` that describes a state: ``inventory`` and ``mid`` (per asset), ``cash``, ``mtm_pnl``.

        Arrays are read-only views (the step makes new state arrays, so they stay a snapshot).
        """
        return {
            "inventory": _read_only(state.inventory),
            "mid": _read_only(state.mid),
            "cash": state.cash if np.ndim(state.cash) == 0 else _read_only(state.cash),
            "mtm_pnl": wealth(state, self.params),
        }

    def step_info(
        self,
        before: MultiAssetState,
        after: MultiAssetState,
        offsets: Quotes,
        outcome: MultiAssetOutcome,
    ) -> dict[str, Any]:
        """``info`` after a step from ``before``: the new state, the quotes as prices, and the trade.

        Per asset: ``inventory``, ``mid``, ``bid`` and ``ask`` (the quoted prices ``P − δ_b``, ``P + δ_a``). Per
        environment: ``cash``, ``mtm_pnl``, ``trader_asset`` (−1 for none), ``trader_side`` (+1 a buyer, −1 a
        seller, 0 none), ``trader_size``, ``fill_side`` (+1 the market maker sold at its ask, −1 it bought at its
        bid, 0 no trade), ``fill_size``, ``offset`` (the quote the trader met, 0 for none), ``spread_captured`` and
        ``inventory_penalty`` (``λ·I'ᵀC·I'``, plus ``α·I'ᵀC·I'`` at the last step).
        """
        info = self.state_info(after)
        quotes = np.asarray(offsets)
        info["bid"] = np.asarray(before.mid) - quotes[..., 0]
        info["ask"] = np.asarray(before.mid) + quotes[..., 1]
        info["trader_asset"] = outcome.trader_asset
        info["trader_side"] = outcome.trader_side
        info["trader_size"] = outcome.trader_size
        info["fill_side"] = outcome.trader_side * (outcome.executed > 0)
        info["fill_size"] = outcome.executed
        info["offset"] = outcome.offset
        info["spread_captured"] = outcome.spread_captured
        info["inventory_penalty"] = outcome.inventory_penalty
        return info


def _read_only(array: Number | PerAsset) -> np.ndarray:
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view
