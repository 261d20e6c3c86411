"""One environment configuration for every front-end and for training: the model, the observation, the action map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from mm_env import info
from mm_env.dynamics import MarketState, Number, Outcome
from mm_env.params import FLAT_NAMES, MarketParams
from mm_env.presets import make_params
from mm_env.spaces import ActionDecoder, Observer, action_space, check_features, default_features, observation_space
from mm_env.xp import ArrayNamespace

_DEFAULT_PARAMS = MarketParams()


@dataclass(frozen=True, init=False)
class EnvConfig:
    """Everything that defines an environment besides its seed and its batch size.

    Attributes:
        params: the market model (:class:`~mm_env.params.MarketParams`).
        features: the observation features (see :data:`mm_env.spaces.FEATURES`); ``None`` at construction gives the
            model's default, ``("inventory", "time_left")``, plus ``"last_side"`` when traders react to the last trade
            (then the observation is Markov).
        normalize_actions: ``True`` for the ``[-1, 1]²`` action box, ``False`` for raw offsets in price units.

    Every front-end takes the keywords of :meth:`from_kwargs`, so ``gym.make``, ``gym.make_vec``, the SB3
    ``VecEnv`` and ``train.py --env-kwargs`` accept the same ones.
    """

    params: MarketParams
    features: tuple[str, ...]
    normalize_actions: bool
    STATE_INFO_KEYS: ClassVar[tuple[str, ...]] = info.STATE_INFO_KEYS
    """The ``info`` entries that describe the state (given at reset and after every step)."""
    TRADE_INFO_KEYS: ClassVar[tuple[str, ...]] = info.TRADE_INFO_KEYS
    """The ``info`` entries that describe a step's quotes and trade."""
    observer: Observer = field(init=False, repr=False, compare=False)
    """Computes the observations of these features (``observer(state, params)``; :meth:`observe` is the same)."""
    decoder: ActionDecoder = field(init=False, repr=False, compare=False)
    """Turns actions into offsets (``decoder(actions, batch)``; :meth:`decode` is the same)."""

    # Written out rather than generated: ``features`` may be None here, and is always a tuple once constructed.
    def __init__(
        self,
        params: MarketParams = _DEFAULT_PARAMS,
        features: Sequence[str] | None = None,
        normalize_actions: bool = True,
    ) -> None:
        if not isinstance(params, MarketParams):
            raise ValueError(f"params={params!r} is invalid: must be a MarketParams")
        checked = default_features(params) if features is None else check_features(features)
        if not isinstance(normalize_actions, (bool, np.bool_)):
            raise ValueError(f"normalize_actions={normalize_actions!r} is invalid: must be True or False")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "features", checked)
        object.__setattr__(self, "normalize_actions", bool(normalize_actions))
        object.__setattr__(self, "observer", Observer(checked))
        object.__setattr__(self, "decoder", ActionDecoder(params, bool(normalize_actions)))

    @classmethod
    def from_kwargs(
        cls,
        params: MarketParams | None = None,
        preset: str | None = None,
        observation_features: Sequence[str] | None = None,
        normalize_actions: bool = True,
        **overrides: Any,
    ) -> EnvConfig:
        """The configuration from the front-ends' keywords.

        Args:
            params: a model (a :class:`~mm_env.params.MarketParams`); or
            preset: the name of one in :data:`mm_env.presets.PRESETS` (default ``"default"``), not both.
            observation_features: the observation's features, in order (default: the model's default).
            normalize_actions: ``True`` (default) for the ``[-1, 1]`` action box, ``False`` for raw offsets.
            **overrides: any model parameter by its flat name (``lam=0.002``, ``reward="mtm"``, ``informed=0.2``;
                :data:`mm_env.params.FLAT_NAMES` lists them).
        """
        if params is not None and preset is not None:
            raise ValueError(f"give params or preset={preset!r}, not both")
        if params is not None and not isinstance(params, MarketParams):
            raise ValueError(f"params={params!r} is invalid: must be a MarketParams (or give preset=NAME)")
        unknown = sorted(set(overrides) - set(FLAT_NAMES))
        if unknown:
            allowed = ["params", "preset", "observation_features", "normalize_actions", *FLAT_NAMES]
            raise ValueError(f"{unknown[0]!r} is not an environment keyword or model parameter; allowed: {allowed}")
        model = make_params(params if params is not None else preset or "default", **overrides)
        return cls(model, observation_features, normalize_actions)

    @property
    def observation_space(self) -> spaces.Box:
        """The observation space of one environment."""
        return observation_space(self.features)

    @property
    def action_space(self) -> spaces.Box:
        """The action space of one environment."""
        return action_space(self.params, self.normalize_actions)

    def observe(self, state: MarketState, xp: ArrayNamespace | None = None) -> np.ndarray:
        """The observation of one state ``(d,)`` or of a batch ``(n, d)``, float32 (``xp``: its namespace)."""
        return self.observer(state, self.params, xp)

    def decode(self, actions: object, batch: int | None = None) -> tuple[Number, Number]:
        """The bid and ask offsets of an action (``batch=None``) or of ``batch`` actions (see ``decode_actions``)."""
        return self.decoder(actions, batch)

    def state_info(self, state: MarketState) -> dict[str, Number]:
        """The ``info`` that describes a state (see :func:`mm_env.info.state_info`)."""
        return info.state_info(state, self.params)

    def step_info(
        self, before: MarketState, after: MarketState, bid: Number, ask: Number, outcome: Outcome
    ) -> dict[str, Number]:
        """The ``info`` after a step (see :func:`mm_env.info.step_info`)."""
        return info.step_info(before, after, bid, ask, outcome, self.params)
