"""The multi-asset Gymnasium front-ends: the single env and the natively batched vector env (``MODEL.md`` §9)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mm_env.batch import BatchedModel
from mm_env.limits import check_options
from mm_env.multi_asset.batch import MultiAssetBatch
from mm_env.multi_asset.config import MultiAssetConfig
from mm_env.multi_asset.dynamics import MultiAssetState, initial_state, sample_draws, transition
from mm_env.multi_asset.params import MultiAssetParams
from mm_env.vector_env import BatchVectorEnv
from mm_env.xp import SCALAR


class MultiAssetMarketMakingEnv(gym.Env[np.ndarray, np.ndarray]):
    r"""A market maker quotes ``d`` assets at once and is penalised on the risk of its whole book.

    ## Description

    The one-asset market of :class:`mm_env.env.MarketMakingEnv`, ``d`` times over, with one book (``MODEL.md`` §9).
    At every step the market maker quotes a bid ``P_i − δ_b,i`` and an ask ``P_i + δ_a,i`` in every asset ``i``. At
    most one trader arrives: in asset ``i`` with probability ``pi_i``, buying or selling with equal odds, with a size
    from that asset's size law. Its quote fills with probability ``A_i·exp(−k_i·δ)``, the executed size is cut so
    that ``|I_i| ≤ I_max_i``, and the trade moves that asset's mid by ``kappa_i·Q'^{beta_i}`` in the trader's
    direction; then every mid moves by correlated Gaussian noise (``sigma_i``, correlation ``R``). The inventory
    penalty is the quadratic form ``lam·I'ᵀC·I'`` of the inventory vector, so a long position in one asset is partly
    hedged by a short one in a positively correlated asset (cross-hedging). The default model is the ``two_assets``
    preset of §9.7: two assets with ``C = [[1, 0.8], [0.8, 1]]``. With ``d = 1`` the env is
    :class:`~mm_env.env.MarketMakingEnv`'s, episode for episode on the same seed.

    ## Action Space

    ``Box(-1, 1, (2d,), float32)``: the bid and the ask offset of each asset in turn,
    ``(δ_b,1, δ_a,1, δ_b,2, δ_a,2, …)`` (shape ``(d, 2)`` flattened row-major), each mapped linearly from
    ``[-1, 1]`` onto ``[delta_min, delta_max]`` as in the one-asset env. With ``normalize_actions=False`` the action
    is the raw offsets, ``Box(delta_min, delta_max, (2d,), float32)``. Values outside the box are clipped; NaN,
    infinities and wrong shapes raise ``ValueError``.

    ## Observation Space

    ``Box(float32)`` of shape ``(d + 1,)``:

    | Index | Meaning                                           | Min | Max |
    |-------|---------------------------------------------------|-----|-----|
    | ``i < d`` | inventory of asset ``i``, ``I_i / I_max_i``   | -1  | 1   |
    | ``d``     | fraction of the episode left, ``(T − t) / T`` | 0   | 1   |

    The task is Markov in ``(t, I)``: the optimal policy reads nothing else (``MODEL.md`` §9.5). With ``d = 1`` this
    is the one-asset env's default observation.

    ## Rewards

    ``reward="spread"`` (default): ``Q'·δ_S,i − lam·I'ᵀC·I'``, the spread captured on the fill minus the penalty on
    the inventory vector carried out of the step. ``reward="mtm"``: the change of the wealth ``X + Σ_i I_i·P_i``
    minus the same penalty. The last step also subtracts ``alpha·I_TᵀC·I_T``. ``C`` is ``risk_matrix`` (the
    identity unless given), or ``Σ/σ̄²`` with ``mean_variance=True``: then the penalty is ``lam`` times the
    variance of the next step's mark-to-market P&L, in units of the mean per-asset variance.

    ## Starting State

    No inventory, no cash, the mids at ``P0``; deterministic. The randomness is in the traders and the mids' noise.

    ## Episode End

    The episode terminates (``terminated=True``, never truncated) after ``T`` steps. A ``TimeLimit`` added through
    ``gymnasium.make(..., max_episode_steps=N)`` with ``N < T`` truncates earlier.

    ## Info

    After ``reset``: ``inventory`` and ``mid`` (arrays of ``d``), ``cash``, ``mtm_pnl`` (``X + Σ_i I_i·P_i``).
    After ``step`` also: ``bid`` and ``ask`` (the quoted prices, arrays of ``d``), ``trader_asset`` (the asset the
    trader came to, −1 for none), ``trader_side`` (+1 buy, −1 sell, 0 none), ``trader_size``, ``fill_side`` (+1 the
    market maker sold at its ask, −1 it bought at its bid, 0 no trade), ``fill_size``, ``offset`` (the offset of the
    quote the trader met), ``spread_captured`` and ``inventory_penalty`` (``lam·I'ᵀC·I'``, plus
    ``alpha·I'ᵀC·I'`` at the last step).

    ## Arguments

    ```python
    import gymnasium as gym
    import mm_env

    env = gym.make("mm_env/MultiAssetMarketMaking-v0")                          # two_assets
    env = gym.make("mm_env/MultiAssetMarketMaking-v0", preset="mean_variance")  # a preset ...
    env = gym.make("mm_env/MultiAssetMarketMaking-v0", d=3, pi=1 / 3, risk_matrix=0.5)  # ... and any parameter
    ```

    The keywords are those of :meth:`mm_env.multi_asset.config.MultiAssetConfig.from_kwargs`: ``params`` (a
    :class:`~mm_env.multi_asset.params.MultiAssetParams`) or ``preset`` (``two_assets``, ``mean_variance``),
    ``normalize_actions``, and any model parameter by its keyword (:class:`~mm_env.multi_asset.params.MultiAssetParams`
    documents them): a per-asset parameter takes a number or ``d`` values, ``risk_matrix`` and ``correlation`` a
    number ``c`` (1 on the diagonal, ``c`` off it) or a ``d×d`` matrix. The one-asset model's extensions that are
    out of this model's scope (``p_buy``, ``momentum``, ``informed``, transient impact, jumps, mean reversion, the
    article's mode) are refused. ``env.state`` is the model state
    (:class:`~mm_env.multi_asset.dynamics.MultiAssetState`).

    ## Version History

    * v0: Initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, params: MultiAssetParams | None = None, *, render_mode: str | None = None, **env_kwargs: Any
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r} is invalid: this env does not render")
        self.render_mode = render_mode
        self.config = MultiAssetConfig.from_kwargs(params, **env_kwargs)
        self.params = self.config.params
        self.normalize_actions = self.config.normalize_actions
        self.observation_space = self.config.observation_space
        self.action_space = self.config.action_space
        self.state: MultiAssetState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` re-seeds the random traders (``options``: none are taken)."""
        check_options(options)
        super().reset(seed=seed)
        self.state = initial_state(self.params)
        return self.config.observe(self.state, SCALAR), self.config.state_info(self.state)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Quote the ``2d`` offsets in ``action`` for one step."""
        before, params = self.state, self.params
        if before is None:
            raise RuntimeError("call reset() before step()")
        if before.t >= params.T:
            raise RuntimeError(f"the episode ended after T={params.T} steps; call reset()")
        offsets = self.config.decode_one(action)
        draws = sample_draws(self.np_random, params)
        self.state, outcome = transition(before, offsets, draws, params, SCALAR)
        info = self.config.step_info(before, self.state, offsets, outcome)
        # The scalar dynamics already give a Python float and bool.
        return self.config.observe(self.state, SCALAR), outcome.reward, outcome.terminated, False, info  # type: ignore[return-value]


class MultiAssetMarketMakingVectorEnv(
    BatchedModel[MultiAssetState, MultiAssetParams, MultiAssetConfig], BatchVectorEnv
):
    """``num_envs`` multi-asset environments stepped together as NumPy arrays.

    The model, spaces, rewards and ``info`` keys are those of :class:`MultiAssetMarketMakingEnv` (see its
    docstring); ``info`` holds one array per key (``(num_envs, d)`` for the per-asset entries) with the usual
    ``_key`` masks.

    Autoreset follows :attr:`gymnasium.vector.AutoresetMode.NEXT_STEP`: the ``step`` after an environment's episode
    ends resets it (its action is ignored, its reward is 0 and its trade ``info`` entries are masked out).
    ``reset(options={"reset_mask": mask})`` resets only the environments where ``mask`` is true.

    One ``numpy.random.Generator`` drives the whole batch, so ``reset(seed=s)`` fixes every environment. Random
    draws are taken only for environments that step, so with ``num_envs=1`` the trajectory equals that of the
    single environment reset with the same seed, episode after episode.

    Arguments are those of ``MultiAssetMarketMakingEnv`` plus ``num_envs`` and ``max_episode_steps`` (an optional
    truncation before ``T``), so ``gymnasium.make_vec("mm_env/MultiAssetMarketMaking-v0", num_envs=64)`` builds one.
    """

    def __init__(
        self,
        num_envs: int = 1,
        params: MultiAssetParams | None = None,
        *,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        config = MultiAssetConfig.from_kwargs(params, **env_kwargs)
        self._adopt(MultiAssetBatch(config, num_envs, max_episode_steps), render_mode)
