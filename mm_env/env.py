"""The single-environment Gymnasium front-end."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mm_env.config import EnvConfig
from mm_env.dynamics import MarketState, initial_state, sample_draws, transition
from mm_env.info import state_info, step_info
from mm_env.limits import check_options
from mm_env.params import MarketParams
from mm_env.render import EpisodeRenderer, require_matplotlib
from mm_env.xp import SCALAR


class MarketMakingEnv(gym.Env[np.ndarray, np.ndarray]):
    r"""A market maker quotes a bid and an ask around the mid and is paid for the spread it captures.

    ## Description

    At every step the market maker (MM) quotes ``bid = P − δ_b`` and ``ask = P + δ_a`` around the mid ``P``.
    With probability ``pi`` a trader arrives, buys or sells, and brings a size ``Q``. The quote on the trader's side
    fills with probability ``A·exp(−k·δ)``: quoting tighter trades more often but earns less per unit. The executed
    size is cut so that the inventory stays within ``[−I_max, I_max]``, and every executed unit moves the mid in the
    trader's direction (price impact). The MM is penalised by ``lam·I²`` on the inventory it carries, so it must skew
    its quotes to shed risk. The default model is that of ``MODEL.md`` §2; §7's extensions (asymmetric, adaptive and
    informed traders, power-law and transient impact, jumps and mean reversion) are keyword arguments away, and
    ``preset="article"`` (or a scenario preset) is the original article's model of §5, where every order fills.

    ## Action Space

    ``Box(-1, 1, (2,), float32)``: the bid and the ask offsets, mapped linearly from ``[-1, 1]`` onto
    ``[delta_min, delta_max]`` (defaults 0 and 5, in price units, so ``-1`` quotes at the mid and ``+1`` is in effect
    not quoting). With ``normalize_actions=False`` the action is the raw offsets,
    ``Box(delta_min, delta_max, (2,), float32)``. Values outside the box are clipped; NaN, infinities and wrong
    shapes raise ``ValueError``.

    ## Observation Space

    ``Box(float32)`` with one entry per name in ``observation_features``, in that order:

    | Name (``observation_features``) | Meaning                                              | Min   | Max  |
    |---------------------------------|------------------------------------------------------|-------|------|
    | ``inventory`` (default)         | inventory ``I / I_max``                              | -1    | 1    |
    | ``time_left`` (default)         | fraction of the episode left, ``(T − t) / T``        | 0     | 1    |
    | ``last_side`` (default with ``momentum ≠ 0``) | side ``L`` of the last trade (+1 a trader bought) | -1 | 1 |
    | ``mid_change``                  | ``P_t − P_{t−1}`` over its scale, clipped            | -1    | 1    |
    | ``last_fill``                   | the MM's signed fill in the last step / max size     | -1    | 1    |

    ``mid_change`` is scaled by the largest move one step can make without noise (impact of the largest trade, the
    informed jump, the mid jump) plus ``4σ``. ``last_fill`` counts what the MM bought as positive (its inventory
    change), unlike ``info["fill_side"]``, which gives the side of the MM's quote that traded (+1 its ask: it sold).

    The default observation makes the task Markov whenever the model has an exact optimum: the optimal policy
    depends on ``(t, I)``, or ``(t, I, L)`` when traders react to the last trade.

    ## Rewards

    ``reward="spread"`` (default): ``Q'·δ_S − lam·I'²``, the spread captured on the fill (size times the distance of
    the fill from the mid) minus the penalty on the inventory carried out of the step. ``reward="mtm"``: the change
    of mark-to-market wealth ``X + I·P`` minus the same penalty. The last step also subtracts ``alpha·I_T²``.
    In article mode the spread reward is the article's ``(ask − bid)·Q − lam·I'²``.

    ## Starting State

    No inventory, no cash, the mid at ``P0``; deterministic. The randomness is in the traders and the mid's noise.

    ## Episode End

    The episode terminates (``terminated=True``, never truncated) after ``T`` steps. A ``TimeLimit`` added through
    ``gymnasium.make(..., max_episode_steps=N)`` with ``N < T`` truncates earlier.

    ## Info

    After ``reset``: ``inventory``, ``mid``, ``cash``, ``mtm_pnl`` (``X + I·P``, the P&L since the start).
    After ``step`` also: ``bid`` and ``ask`` (quoted prices), ``trader_side`` (+1 buy, −1 sell, 0 none),
    ``trader_size``, ``fill_side`` (+1 the MM sold at its ask, −1 it bought at its bid, 0 no trade), ``fill_size``,
    ``spread_captured`` and ``inventory_penalty`` (the two parts of the spread reward).

    ## Arguments

    ```python
    import gymnasium as gym
    import mm_env

    env = gym.make("mm_env/MarketMaking-v0")                        # the default model
    env = gym.make("mm_env/MarketMaking-v0", preset="informed")     # a preset (mm_env.PRESETS) ...
    env = gym.make("mm_env/MarketMaking-v0", lam=0.002, momentum=0.5, reward="mtm")  # ... and any parameter
    ```

    The keywords are those of :meth:`mm_env.config.EnvConfig.from_kwargs`: ``params`` (a
    :class:`~mm_env.params.MarketParams`) or ``preset``, ``observation_features``, ``normalize_actions``, and any
    model parameter by its flat name, documented once in its component (:mod:`mm_env.model`); ``render_mode`` may be
    ``"rgb_array"`` (it needs matplotlib: ``pip install "mm_env[render]"``). ``env.state`` is the model state
    (:class:`~mm_env.dynamics.MarketState`), which the baseline policies of ``agents`` quote from.

    ## Version History

    * v0: Initial version.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self, params: MarketParams | None = None, *, render_mode: str | None = None, **env_kwargs: Any
    ) -> None:
        self.config = EnvConfig.from_kwargs(params, **env_kwargs)
        self.params = self.config.params
        self.features = self.config.features
        self.normalize_actions = self.config.normalize_actions
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is invalid: allowed {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.observation_space = self.config.observation_space
        self.action_space = self.config.action_space
        self.state: MarketState | None = None
        # Bound once: the step calls them every time, and each attribute lookup is a measurable share of it.
        self._decode = self.config.decoder.one
        self._observe = self.config.observer.one
        self._renderer: EpisodeRenderer | None = None
        if render_mode == "rgb_array":
            require_matplotlib()  # fail here, not at the first frame
            self._renderer = EpisodeRenderer(self.params.T)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` re-seeds the random traders (``options``: none are taken)."""
        check_options(options)
        super().reset(seed=seed)
        self.state = initial_state(self.params)
        if self._renderer is not None:
            self._renderer.clear()
        return self._observe(self.state, self.params), state_info(self.state, self.params)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Quote the offsets in ``action`` for one step."""
        before, params = self.state, self.params
        if before is None:
            raise RuntimeError("call reset() before step()")
        if before.t >= params.T:
            raise RuntimeError(f"the episode ended after T={params.T} steps; call reset()")
        bid, ask = self._decode(action)
        draws = sample_draws(self.np_random, params)
        self.state, outcome = transition(before, bid, ask, draws, params, SCALAR)
        info = step_info(before, self.state, bid, ask, outcome, params)
        obs = self._observe(self.state, params)
        if self._renderer is not None:
            self._renderer.record(before.mid, info["bid"], info["ask"], self.state.inventory, outcome.reward)
        # The scalar dynamics already give a Python float and bool.
        return obs, outcome.reward, outcome.terminated, False, info  # type: ignore[return-value]

    # Gymnasium 1.2 (what RLlib pins) types a frame as an unbound TypeVar, which no concrete return type overrides.
    def render(self) -> np.ndarray | None:  # type: ignore[override, unused-ignore]
        """With ``render_mode="rgb_array"``: the episode so far as an ``(480, 640, 3)`` uint8 image.

        The article-style figure of :mod:`mm_env.render`, made on the first call and updated by later ones.
        """
        if self._renderer is None:
            gym.logger.warn("render() needs render_mode='rgb_array' at construction")
            return None
        return self._renderer.render()

    def close(self) -> None:
        """Release the figure of ``render()``."""
        if self._renderer is not None:
            self._renderer.close()
        super().close()
