"""Quoting policies for one market maker quoting ``d`` assets (``MODEL.md`` §9.6), and the BEGV closed form.

A policy here maps the step ``t`` and the inventory vector ``I = (I_1 … I_d)`` to ``2d`` offsets: bid and ask per
asset (:meth:`MultiAssetPolicy.offsets`, shape ``(..., d, 2)``). Over the whole grid that is a table
(:meth:`MultiAssetPolicy.table`), which :func:`agents.exact.multi_asset.evaluate_multi_asset` evaluates exactly, or a
function of the grid (:meth:`MultiAssetPolicy.grid_function`, for three assets, where a table is large). On the
environment a policy reads the observation ``(I_1/I_max_1, …, I_d/I_max_d, (T − t)/T)`` and returns the action
``(δ_b,1, δ_a,1, δ_b,2, …)`` (:meth:`MultiAssetPolicy.action`, ``MODEL.md`` §9.7).

The baselines of §9.6:

* :class:`MultiAssetDP` — the exact optimum (:func:`agents.exact.multi_asset.solve_multi_asset`);
* :class:`IndependentOptima` — each asset quotes its own one-asset optimum: no cross-hedging (a);
* :class:`BEGV` — the quadratic approximation of Bergault–Evangelista–Guéant–Vieira (2021), mapped onto the discrete
  model, with the finite-horizon ``A(τ)`` or the ergodic ``A∞`` (b);
* :class:`LinearSkewMultiAsset` — linear skews on ``C·I``, ``C^{½}·I`` or each asset's own inventory (c);
* :class:`ArticleRulePerAsset` — the article's rule on each asset's own inventory (d);
* :class:`ConstantOffset` — one offset on every side (e).

**The BEGV mapping** (§9.6 b; time in steps, ``dt = 1``). Per asset the intensity of a side at ``δ' = 0`` is
``Λ_{i,s} = (π_i/2)·A_i·e^{−k_i·h_i}``, with ``h_i = 0`` under ``spread`` and ``h_i = κ_i·r̄_i/2``,
``r̄_i = E[Q_i²]/E[Q_i]``, under ``mtm`` with linear impact. The second-order expansion of the DP's per-side term gives
``D₊ = diag(k_i·π_i·A_i·e^{−k_i·h_i}·E[Q_i]/e)``, and the running penalty ``λ·C`` per step. ``A(τ)``, ``τ`` the
steps left, solves ``dA/dτ = λ·C − 2·A·D₊·A`` from ``A_T = α·C + 1_mtm·K/2`` (``K = diag(κ_i)``). In
``Ã = D₊^{½}·A·D₊^{½}`` with ``Â = (2λ·D₊^{½}·C·D₊^{½})^{½}`` one step is exactly

    Ã(τ+1) = ½·[Â·sinh Â + cosh Â·2Ã(τ)]·[cosh Â + (Â^{−1}·sinh Â)·2Ã(τ)]^{−1}

(:func:`begv_riccati`); when ``A_T = 0`` this is ``A(τ) = ½·D₊^{−½}·Â·tanh(Â·τ)·D₊^{−½}`` (:func:`begv_tanh`), and
the ergodic limit is ``A∞ = ½·D₊^{−½}·Â·D₊^{−½}`` (:func:`begv_ergodic`). The quotes at step ``t``, ``τ = T − t``:

    δ_b,i = 1/k_i + h_{i,b}(I_i) + 2·(A(τ)·I)_i + r_{i,b}(I_i)·A_ii(τ)
    δ_a,i = 1/k_i + h_{i,a}(I_i) − 2·(A(τ)·I)_i + r_{i,a}(I_i)·A_ii(τ)

with ``r_{i,s}(I_i) = E[Q'²]/E[Q']`` on that side (the size-biased mean executed size) and
``h_{i,s} = 1_mtm·κ_i·r_{i,s}/2``; clipped to ``[δ_min, δ_max]``, ``δ_max`` where ``E[Q'] = 0``. An asset with
``π_i·A_i = 0`` never trades: it leaves the Riccati system and quotes ``δ_max``. BEGV applies under ``spread``, or
``mtm`` with linear impact (``β_i = 1`` or ``κ_i = 0``); elsewhere :func:`begv_reason` says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from agents.exact.dp import side_outcomes
from agents.exact.multi_asset import (
    MultiAssetSolution,
    OffsetFunction,
    grid_inventory,
    grid_shape,
    independent_optima,
    solve_multi_asset,
    table_dtype,
)

if TYPE_CHECKING:
    from mm_env.multi_asset import MultiAssetParams

# ----------------------------------------------------------------------------------------------------------------
# Reading and writing the environment's observations and actions (MODEL.md §9.7).


def decode_observation(observation: np.ndarray, params: MultiAssetParams) -> tuple[np.ndarray, np.ndarray]:
    """The step ``t`` and the inventories ``(..., d)`` behind observations ``(..., d + 1)``.

    The observation is ``(I_1/I_max_1, …, I_d/I_max_d, (T − t)/T)``; both are rounded to the integers they stand for.
    """
    observation = np.asarray(observation, dtype=np.float64)
    if observation.shape[-1:] != (params.d + 1,):
        raise ValueError(f"observation of shape {observation.shape} is invalid: its last axis must have d + 1 entries")
    limits = np.asarray(params.I_max, dtype=np.float64)
    inventory = np.rint(observation[..., :-1] * limits)
    t = params.T - np.rint(observation[..., -1] * params.T)
    return t, inventory


def encode_action(offsets: np.ndarray, params: MultiAssetParams, normalize: bool = False) -> np.ndarray:
    """Offsets ``(..., d, 2)`` as actions ``(..., 2d)``: ``(δ_b,1, δ_a,1, δ_b,2, …)``.

    Raw offsets by default; ``normalize=True`` maps them onto ``[−1, 1]`` as the normalised action space reads them,
    ``a = 2·(δ − δ_min)/(δ_max − δ_min) − 1``.
    """
    offsets = np.clip(np.asarray(offsets, dtype=np.float64), params.delta_min, params.delta_max)
    flat = offsets.reshape(*offsets.shape[:-2], 2 * params.d)
    if normalize:
        flat = 2.0 * (flat - params.delta_min) / (params.delta_max - params.delta_min) - 1.0
    return flat


# ----------------------------------------------------------------------------------------------------------------
# The policy interface.


class MultiAssetPolicy:
    """A multi-asset quoting policy: ``2d`` offsets from the step and the inventory vector."""

    name: str = "policy"

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """Offsets at steps ``t`` (broadcast against ``inventory[..., 0]``) and inventories ``(..., d)``.

        Returns:
            Shape ``(..., d, 2)``: bid then ask per asset, in ``[delta_min, delta_max]``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement offsets()")

    def grid_function(self, params: MultiAssetParams) -> OffsetFunction:
        """The policy as a function of the grid, for :func:`agents.exact.multi_asset.evaluate_multi_asset`."""

        def over_grid(t: int, inventory: np.ndarray) -> np.ndarray:
            return self.offsets(t, inventory, params)

        return over_grid

    def table(self, params: MultiAssetParams) -> np.ndarray:
        """The offsets over the whole grid, shape ``(T, *grid, d, 2)`` (dtype :func:`table_dtype`)."""
        inventory = grid_inventory(params)
        table = np.empty((params.T, *grid_shape(params), params.d, 2), dtype=table_dtype(params))
        for t in range(params.T):
            table[t] = self.offsets(t, inventory, params)
        return table

    def action(self, observation: np.ndarray, params: MultiAssetParams, normalize: bool = False) -> np.ndarray:
        """The actions ``(..., 2d)`` for environment observations ``(..., d + 1)`` (raw offsets by default)."""
        t, inventory = decode_observation(observation, params)
        step = np.clip(t, 0, params.T - 1)  # a terminal observation still gets an action
        return encode_action(self.offsets(step, inventory, params), params, normalize)

    def __repr__(self) -> str:
        return self.name


def _clip(offsets: np.ndarray, params: MultiAssetParams) -> np.ndarray:
    return np.clip(offsets, params.delta_min, params.delta_max)


def _inventory(inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
    inventory = np.asarray(inventory, dtype=np.float64)
    if inventory.shape[-1:] != (params.d,):
        raise ValueError(f"inventory of shape {inventory.shape} is invalid: its last axis must have d={params.d}")
    return inventory


def _steps(t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
    """Integer steps in ``[0, T − 1]``, shaped like ``inventory[..., 0]``."""
    step = np.broadcast_to(np.asarray(t), inventory.shape[:-1])
    if np.any((step < 0) | (step >= params.T)):
        raise ValueError(f"t={t!r} is invalid: every step must be in [0, {params.T - 1}]")
    return np.rint(step).astype(np.intp)


def _indices(inventory: np.ndarray, params: MultiAssetParams) -> list[np.ndarray]:
    """Per asset, the grid index ``I_i + I_max_i`` of each inventory (checked against the limits)."""
    indices = []
    for i, limit in enumerate(params.I_max):
        index = np.rint(inventory[..., i]).astype(np.intp) + int(limit)
        if np.any((index < 0) | (index > 2 * int(limit))):
            raise ValueError(f"inventory of asset {i} lies outside [−I_max, I_max] with I_max={limit}")
        indices.append(index)
    return indices


# ----------------------------------------------------------------------------------------------------------------
# The exact optimum and the independent one-asset optima.


class MultiAssetDP(MultiAssetPolicy):
    """The exact optimum: table look-ups in :func:`agents.exact.multi_asset.solve_multi_asset`'s tables."""

    name = "DP optimum"

    def __init__(self, params: MultiAssetParams, solution: MultiAssetSolution | None = None) -> None:
        self.solution = solution if solution is not None else solve_multi_asset(params)

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """The optimal offsets."""
        inventory = _inventory(inventory, params)
        index = (_steps(t, inventory, params), *_indices(inventory, params))
        return np.stack([self.solution.bid[index], self.solution.ask[index]], axis=-1).astype(np.float64)

    def table(self, params: MultiAssetParams) -> np.ndarray:
        """The DP's own tables."""
        return self.solution.table()


class IndependentOptima(MultiAssetPolicy):
    """Each asset quotes the one-asset optimum of "asset ``i`` alone" on its own inventory (``MODEL.md`` §9.6 a).

    Asset ``i`` alone has the penalties ``λ·C_ii`` and ``α·C_ii``
    (:func:`agents.exact.multi_asset.independent_optima`). It is the optimum when ``C`` is diagonal, and the
    benchmark without cross-hedging otherwise.
    """

    name = "independent one-asset optima"

    def __init__(self, params: MultiAssetParams) -> None:
        self.optima = independent_optima(params)

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """Each asset's one-asset optimal offsets at its own inventory."""
        inventory = _inventory(inventory, params)
        step = _steps(t, inventory, params)
        quotes = [
            np.stack([solution.bid[step, index], solution.ask[step, index]], axis=-1)
            for solution, index in zip(self.optima, _indices(inventory, params), strict=True)
        ]
        return np.stack(quotes, axis=-2)


# ----------------------------------------------------------------------------------------------------------------
# BEGV (MODEL.md §9.6 b).


def begv_reason(params: MultiAssetParams) -> str | None:
    """Why the BEGV closed form does not apply to ``params`` (one sentence), or ``None`` when it does.

    It applies under the ``spread`` reward, and under ``mtm`` where the impact is linear (``β_i = 1``) or absent
    (``κ_i = 0``) in every asset: then a fill's impact telescopes into the quotes and the terminal penalty.
    """
    if params.reward != "mtm":
        return None
    for i in range(params.d):
        if params.kappa[i] > 0.0 and params.beta[i] != 1.0:
            return (
                f"mtm with nonlinear impact in asset {i} (beta={params.beta[i]}, kappa={params.kappa[i]}): the "
                "closed form needs linear (beta = 1) or no (kappa = 0) permanent impact"
            )
    return None


def _check_begv(params: MultiAssetParams) -> None:
    reason = begv_reason(params)
    if reason is not None:
        raise ValueError(f"BEGV does not apply: {reason}")


def active_assets(params: MultiAssetParams) -> tuple[int, ...]:
    """The assets that trade (``π_i·A_i > 0``): the others leave the Riccati system and quote ``δ_max``."""
    return tuple(i for i in range(params.d) if params.pi[i] * params.A[i] > 0.0)


def _size_moments(params: MultiAssetParams, i: int) -> tuple[float, float]:
    sizes = np.asarray(params.sizes[i], dtype=np.float64)
    probs = np.asarray(params.size_probs[i], dtype=np.float64)
    return float(sizes @ probs), float(sizes**2 @ probs)


def begv_liquidity(params: MultiAssetParams) -> np.ndarray:
    """The diagonal of ``D₊``, ``k_i·π_i·A_i·e^{−k_i·h_i}·E[Q_i]/e`` for every asset (0 for an inert one).

    Raises:
        ValueError: where BEGV does not apply (:func:`begv_reason`).
    """
    _check_begv(params)
    mtm = params.reward == "mtm"
    diagonal = np.zeros(params.d)
    for i in range(params.d):
        mean, square = _size_moments(params, i)
        shift = 0.5 * params.kappa[i] * square / mean if mtm else 0.0  # h_i = κ_i·r̄_i/2
        k = params.k[i]
        diagonal[i] = k * params.pi[i] * params.A[i] * math.exp(-k * shift) * mean / math.e
    return diagonal


def begv_terminal(params: MultiAssetParams) -> np.ndarray:
    """``A_T = α·C + 1_mtm·K/2``, ``K = diag(κ_i)``: the quadratic value at the horizon, ``d × d``."""
    terminal = params.alpha * np.asarray(params.C, dtype=np.float64)
    if params.reward == "mtm":
        terminal = terminal + 0.5 * np.diag(np.asarray(params.kappa, dtype=np.float64))
    return terminal


def _symmetric_function(matrix: np.ndarray, function: np.ufunc | object) -> np.ndarray:
    """``f(M)`` of a symmetric matrix by its eigendecomposition (``function`` maps the eigenvalues)."""
    eigenvalues, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * function(eigenvalues)) @ vectors.T  # type: ignore[operator]


def _sinhc(x: np.ndarray) -> np.ndarray:
    """``sinh(x)/x``, 1 at 0 (the entire function ``Σ x^{2n}/(2n + 1)!``)."""
    small = np.abs(x) < 1e-4
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 + x**2 / 6.0, np.sinh(safe) / safe)


class _Reduced:
    """BEGV's matrices on the active assets: ``D₊^{½}``, ``Â²`` and the one-step map's functions of ``Â``."""

    def __init__(self, params: MultiAssetParams) -> None:
        self.active = list(active_assets(params))
        liquidity = begv_liquidity(params)[self.active]
        self.root = np.sqrt(liquidity)  # D₊^{½} (diagonal)
        risk = np.asarray(params.C, dtype=np.float64)[np.ix_(self.active, self.active)]
        squared = 2.0 * params.lam * self.root[:, None] * risk * self.root[None, :]  # Â² = 2λ·D^{½}CD^{½}
        eigenvalues, self.vectors = np.linalg.eigh(0.5 * (squared + squared.T))
        self.frequencies = np.sqrt(np.maximum(eigenvalues, 0.0))  # the eigenvalues of Â

    def of_hat(self, function: object) -> np.ndarray:
        """``f(Â)`` for a function of the eigenvalues of ``Â``."""
        return (self.vectors * function(self.frequencies)) @ self.vectors.T  # type: ignore[operator]

    def expand(self, reduced: np.ndarray, d: int) -> np.ndarray:
        """``A`` on the active assets as a full ``d × d`` matrix (zero rows and columns for the inert ones)."""
        full = np.zeros((*reduced.shape[:-2], d, d))
        rows, columns = np.asarray(self.active, dtype=np.intp)[:, None], np.asarray(self.active, dtype=np.intp)[None]
        full[..., rows, columns] = reduced
        return full

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """``A = D₊^{−½}·Ã·D₊^{−½}``."""
        return scaled / self.root[:, None] / self.root[None, :]


def begv_riccati(params: MultiAssetParams) -> np.ndarray:
    """``A(τ)`` for ``τ = 0 … T`` steps left, shape ``(T + 1, d, d)``, by the exact one-step map (module docs).

    The map solves the Riccati equation ``dA/dτ = λ·C − 2·A·D₊·A`` from ``A(0) = A_T`` exactly, one step at a time
    (so it never overflows, where ``cosh(Â·τ)`` would), for any ``A_T`` and a singular ``Â`` alike.

    Raises:
        ValueError: where BEGV does not apply (:func:`begv_reason`).
    """
    reduced = _Reduced(params)
    n = len(reduced.active)
    result = np.zeros((params.T + 1, n, n))
    if n:
        cosh = reduced.of_hat(np.cosh)
        hat_sinh = reduced.of_hat(lambda x: x * np.sinh(x))
        sinhc = reduced.of_hat(_sinhc)
        terminal = begv_terminal(params)[np.ix_(reduced.active, reduced.active)]
        scaled = reduced.root[:, None] * terminal * reduced.root[None, :]  # Ã(0)
        result[0] = terminal
        for tau in range(1, params.T + 1):
            numerator = hat_sinh + cosh @ (2.0 * scaled)
            denominator = cosh + sinhc @ (2.0 * scaled)
            scaled = 0.5 * np.linalg.solve(denominator.T, numerator.T).T  # ½·numerator·denominator⁻¹
            scaled = 0.5 * (scaled + scaled.T)
            result[tau] = reduced.unscale(scaled)
    return reduced.expand(result, params.d)


def begv_tanh(params: MultiAssetParams) -> np.ndarray:
    """BEGV's closed form ``A(τ) = ½·D₊^{−½}·Â·tanh(Â·τ)·D₊^{−½}``, ``τ = 0 … T``: shape ``(T + 1, d, d)``.

    It holds only when ``A_T = 0`` (``spread`` with ``α = 0``); :func:`begv_riccati` holds always.

    Raises:
        ValueError: where BEGV does not apply, or ``A_T ≠ 0``.
    """
    if np.any(begv_terminal(params) != 0.0):
        raise ValueError("the tanh formula needs A_T = 0 (the spread reward with alpha = 0): use begv_riccati")
    reduced = _Reduced(params)
    steps = np.arange(params.T + 1, dtype=np.float64)
    scaled = np.stack([reduced.of_hat(lambda x, tau=tau: 0.5 * x * np.tanh(x * tau)) for tau in steps])
    return reduced.expand(reduced.unscale(scaled), params.d)


def begv_ergodic(params: MultiAssetParams) -> np.ndarray:
    """The ergodic limit ``A∞ = ½·D₊^{−½}·Â·D₊^{−½}`` (whatever ``A_T``), ``d × d``.

    Raises:
        ValueError: where BEGV does not apply (:func:`begv_reason`).
    """
    reduced = _Reduced(params)
    return reduced.expand(reduced.unscale(reduced.of_hat(lambda x: 0.5 * x)), params.d)


def _side_ratios(params: MultiAssetParams, i: int) -> tuple[np.ndarray, np.ndarray]:
    """``E[Q']`` and ``r_{i,s} = E[Q'²]/E[Q']`` per side (bid, ask) and level of asset ``i``: ``(2, N_i)`` each."""
    one = params.asset(i)
    executed = side_outcomes(one).executed  # (ask, bid) × levels × sizes
    probs = np.asarray(one.flow.probs, dtype=np.float64)
    first, second = executed @ probs, executed**2 @ probs
    ratio = np.divide(second, first, out=np.zeros_like(first), where=first > 0.0)
    return first[::-1], ratio[::-1]  # bid first


class BEGV(MultiAssetPolicy):
    """The BEGV closed form mapped onto the discrete model (module docs), with ``A(τ)`` or, ``ergodic=True``, ``A∞``.

    The quotes are those of the model it is built for (``params``); they may be evaluated in another model on the
    same grid (a hedge built for the wrong sign of the correlation, for example).

    Raises:
        ValueError: on construction where BEGV does not apply (:func:`begv_reason`).
    """

    def __init__(self, params: MultiAssetParams, ergodic: bool = False) -> None:
        self.ergodic = bool(ergodic)
        self.name = "BEGV ergodic, A∞" if self.ergodic else "BEGV, A(τ)"
        matrices = begv_ergodic(params)[None] if self.ergodic else begv_riccati(params)
        self.matrices = matrices  # A(τ) at τ = 0 … T, or A∞ alone
        self.active = active_assets(params)
        self.sides = [_side_ratios(params, i) for i in range(params.d)]
        self.params = params

    def matrix(self, t: int) -> np.ndarray:
        """The matrix the quotes of step ``t`` use: ``A(T − t)``, or ``A∞``."""
        return self.matrices[0] if self.ergodic else self.matrices[self.params.T - int(t)]

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """BEGV's offsets: ``1/k_i + h_{i,s} ± 2·(A·I)_i + r_{i,s}·A_ii``, clipped; ``δ_max`` where nothing trades."""
        own = self.params
        inventory = _inventory(inventory, own)
        step = _steps(t, inventory, own)
        matrices = self.matrices[np.zeros_like(step) if self.ergodic else own.T - step]  # (..., d, d)
        skew = 2.0 * np.einsum("...ij,...j->...i", matrices, inventory)
        diagonal = np.diagonal(matrices, axis1=-2, axis2=-1)
        mtm = own.reward == "mtm"
        quotes = np.full((*inventory.shape, 2), own.delta_max)
        for i, index in zip(range(own.d), _indices(inventory, own), strict=True):
            if i not in self.active:
                continue
            mean, ratio = self.sides[i][0][:, index], self.sides[i][1][:, index]  # (2, ...) bid, ask
            shift = 0.5 * own.kappa[i] * ratio if mtm else 0.0
            base = 1.0 / own.k[i] + shift + ratio * diagonal[..., i]
            quote = base + np.stack([skew[..., i], -skew[..., i]])
            quotes[..., i, :] = np.moveaxis(np.where(mean > 0.0, _clip(quote, own), own.delta_max), 0, -1)
        return _clip(quotes, params)


class FromObservations(MultiAssetPolicy):
    """A policy that acts on the environment's observations (a learned agent): its offsets over the grid.

    ``act`` maps a batch of observations ``(n, d + 1)`` (float32, ``MODEL.md`` §9.7) to actions ``(n, 2d)``,
    raw offsets or, with ``normalized=True``, actions in ``[−1, 1]`` that the environment maps onto
    ``[delta_min, delta_max]``. Its offsets at ``(t, I)`` are its actions on the observation of that state, so it can
    be evaluated exactly and drawn next to the optimum.
    """

    def __init__(
        self, act: Callable[[np.ndarray], np.ndarray], name: str = "learned", normalized: bool = False
    ) -> None:
        self.act, self.name, self.normalized = act, name, bool(normalized)

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """The actions on the observations of the states ``(t, I)``, as offsets ``(..., d, 2)``."""
        inventory = _inventory(inventory, params)
        step = _steps(t, inventory, params)
        limits = np.asarray(params.I_max, dtype=np.float64)
        observation = np.concatenate(
            [inventory / limits, ((params.T - step) / params.T)[..., None]], axis=-1, dtype=np.float32
        )
        flat = observation.reshape(-1, params.d + 1)
        actions = np.asarray(self.act(flat), dtype=np.float64).reshape(*inventory.shape[:-1], params.d, 2)
        if self.normalized:
            actions = params.delta_min + (actions + 1.0) * (params.delta_max - params.delta_min) / 2.0
        return _clip(actions, params)


# ----------------------------------------------------------------------------------------------------------------
# The heuristics (MODEL.md §9.6 c–e).

SKEW_FAMILIES = ("risk", "sqrt", "own")
"""The linear skews' shapes: ``G = s·C`` (``risk``), ``s·C^{½}`` (``sqrt``) and ``s·diag(C)`` (``own``)."""


def skew_shape(params: MultiAssetParams, family: str) -> np.ndarray:
    """The skew matrix of a family for ``s = 1``: ``C``, ``C^{½}`` (principal root) or ``diag(C)``."""
    risk = np.asarray(params.C, dtype=np.float64)
    if family == "risk":
        return risk
    if family == "sqrt":
        return _symmetric_function(risk, lambda x: np.sqrt(np.maximum(x, 0.0)))
    if family == "own":
        return np.diag(np.diag(risk))
    raise ValueError(f"family={family!r} is invalid: must be one of {list(SKEW_FAMILIES)}")


class LinearSkewMultiAsset(MultiAssetPolicy):
    """A linear skew on the inventory vector: ``δ_b,i = c_i + (G·I)_i``, ``δ_a,i = c_i − (G·I)_i``, clipped.

    ``G = s·C``, ``s·C^{½}`` or ``s·diag(C)`` (``family`` ``risk``, ``sqrt`` or ``own``, :func:`skew_shape`);
    ``center`` is one ``c`` for every asset or one per asset. With ``d = 1`` all three are the one-asset skew
    ``c ± s·I``.
    """

    def __init__(
        self, params: MultiAssetParams, family: str, center: float | Sequence[float] | np.ndarray, slope: float
    ) -> None:
        self.family = family
        self.skew = float(slope) * skew_shape(params, family)
        centers = np.broadcast_to(np.asarray(center, dtype=np.float64), (params.d,))
        if np.asarray(center).ndim > 1 or (np.ndim(center) == 1 and len(np.asarray(center)) != params.d):
            raise ValueError(f"center={center!r} is invalid: must be a number or {params.d} numbers")
        self.center = centers.copy()
        self.slope = float(slope)
        label = {"risk": "C·I", "sqrt": "C^½·I", "own": "own inventory"}[family]
        shown = "/".join(f"{c:.3g}" for c in self.center) if np.ptp(self.center) > 0 else f"{self.center[0]:.3g}"
        self.name = f"linear skew on {label} c={shown}, s={self.slope:.3g}"

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """The skew's offsets (the same at every step)."""
        inventory = _inventory(inventory, params)
        skew = np.einsum("ij,...j->...i", self.skew, inventory)
        return _clip(np.stack([self.center + skew, self.center - skew], axis=-1), params)


class ArticleRulePerAsset(MultiAssetPolicy):
    """The article's rule on each asset's own inventory: ``δ_b,i = Δ + max(γ·I_i, 0)``, ``δ_a,i = Δ + max(−γ·I_i, 0)``.

    The consistent sign of ``MODEL.md`` §1 (a long market maker widens its bid); clipped to the offset range.
    """

    def __init__(self, spread_base: float = 0.5, gamma: float = 0.1) -> None:
        self.spread_base, self.gamma = float(spread_base), float(gamma)
        self.name = f"article rule per asset Δ={self.spread_base:.3g}, γ={self.gamma:.3g}"

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """The rule's offsets (the same at every step)."""
        skew = self.gamma * _inventory(inventory, params)
        quotes = np.stack([np.maximum(skew, 0.0), np.maximum(-skew, 0.0)], axis=-1)
        return _clip(self.spread_base + quotes, params)


class ConstantOffset(MultiAssetPolicy):
    """The same offset on every side of every asset."""

    def __init__(self, offset: float = 0.5) -> None:
        self.offset = float(offset)
        self.name = f"constant offset {self.offset:.3g}"

    def offsets(self, t: np.ndarray | int, inventory: np.ndarray, params: MultiAssetParams) -> np.ndarray:
        """A constant offset everywhere."""
        inventory = _inventory(inventory, params)
        return _clip(np.full((*inventory.shape, 2), self.offset), params)


__all__ = [
    "BEGV",
    "SKEW_FAMILIES",
    "ArticleRulePerAsset",
    "ConstantOffset",
    "FromObservations",
    "IndependentOptima",
    "LinearSkewMultiAsset",
    "MultiAssetDP",
    "MultiAssetPolicy",
    "active_assets",
    "begv_ergodic",
    "begv_liquidity",
    "begv_reason",
    "begv_riccati",
    "begv_tanh",
    "begv_terminal",
    "decode_observation",
    "encode_action",
    "skew_shape",
]
