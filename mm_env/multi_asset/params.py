"""The multi-asset market model (``MODEL.md`` §9.1, §9.3, §9.4, §9.7): its parameters, validation and presets.

One market maker quotes ``d`` assets and is penalised by ``λ·I'ᵀC·I'`` on its inventory vector. Each asset is a
one-asset market of §2 (its own order flow, fill law, price impact and mid noise, built from the one-asset components
of :mod:`mm_env.model`, which check its values); the book adds the risk matrix ``C``, the noise correlation ``R`` and
the option ``mean_variance`` (``C = Σ/σ̄²``). :func:`make_multi_asset_params` builds a model from a preset of
:data:`MULTI_ASSET_PRESETS` and keyword overrides; a per-asset keyword takes a number (every asset) or a sequence of
``d`` values, ``risk_matrix`` and ``correlation`` a number ``c`` (1 on the diagonal, ``c`` off it) or a ``d×d``
matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from typing import Any

import numpy as np

from mm_env.model.checks import MAX_MAGNITUDE, check_choice, check_int, check_real, fail
from mm_env.model.fill import ExponentialFill
from mm_env.model.flow import OrderFlow
from mm_env.model.impact import PriceImpact
from mm_env.model.noise import MidNoise
from mm_env.model.objective import REWARDS, Objective
from mm_env.params import FLAT_NAMES, MarketParams

MAX_ASSETS = 64
"""The most assets a model may have (the exact DP stops far below; a limit catches a mistyped ``d``)."""
ARRIVAL_TOLERANCE = 1e-12
"""How far above 1 the arrival probabilities ``Σ_i π_i`` may sum (rounding), ``MODEL.md`` §9.1."""
PSD_TOLERANCE = 1e-12
"""A matrix is positive semidefinite when its smallest eigenvalue is at least ``−PSD_TOLERANCE·max|M_ij|``."""
PIVOT_TOLERANCE = 1e-12
"""A Cholesky pivot at most this is zero: its column of the noise factor is zero (a singular ``R``, §9.2)."""

PER_ASSET_REALS = ("pi", "A", "k", "kappa", "beta", "sigma", "P0")
"""The per-asset real parameters: a number (every asset) or ``d`` numbers."""
PER_ASSET_NAMES = ("pi", "I_max", "sizes", "size_probs", "A", "k", "kappa", "beta", "sigma", "P0")
"""Every per-asset parameter."""
MATRIX_NAMES = ("risk_matrix", "correlation")
"""The ``d×d`` parameters: a number ``c`` (1 on the diagonal, ``c`` off it) or a matrix."""

_OUT_OF_SCOPE: dict[str, str] = {
    "p_buy": "asymmetric flow",
    "momentum": "adaptive (momentum or contrarian) traders",
    "informed": "informed traders",
    "info_jump": "informed traders",
    "transient_kappa": "transient impact",
    "transient_decay": "transient impact",
    "jump_prob": "mid jumps",
    "jump_size": "mid jumps",
    "mean_reversion": "mean reversion",
    "mode": "the article's mode, where every order fills",
}
"""The one-asset keywords that the multi-asset model has no place for (``MODEL.md`` §9.4), with what they are."""
_RENAMED = {"impact_exponent": "beta"}
"""One-asset keywords whose multi-asset parameter has another name."""


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def _is_number(value: Any) -> bool:
    return isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _per_asset(name: str, value: Any, d: int) -> tuple[Any, ...]:
    """A number for every asset, or a sequence of ``d`` values, as a tuple of ``d`` values (checked later)."""
    if _is_sequence(value):
        values = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
        if len(values) != d:
            fail(name, value, f"a number or a sequence of d={d} values (one per asset); got {len(values)}")
        return values
    return (value,) * d


def _per_asset_law(name: str, value: Any, d: int) -> tuple[Any, ...]:
    """``sizes`` or ``size_probs``: one law for every asset (a flat sequence), or ``d`` of them (nested)."""
    if name == "size_probs" and value is None:
        return (None,) * d
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not _is_sequence(value):
        described = "None, " if name == "size_probs" else ""
        fail(name, value, f"{described}a sequence (one law for every asset) or a sequence of d={d} sequences")
    if len(value) > 0 and all(item is None or _is_sequence(item) for item in value):  # one law per asset
        if len(value) != d:
            fail(name, value, f"one law for every asset, or a sequence of d={d} laws (one per asset); got {len(value)}")
        return tuple(item.tolist() if isinstance(item, np.ndarray) else item for item in value)
    return (value,) * d


def _square(name: str, value: Any, d: int) -> np.ndarray:
    """A number ``c`` (1 on the diagonal, ``c`` off it) or a ``d×d`` matrix of finite numbers, as a float array."""
    if _is_number(value):
        if not math.isfinite(float(value)) or abs(float(value)) > MAX_MAGNITUDE:
            fail(name, value, "a finite number c (1 on the diagonal, c off it) or a d×d matrix")
        matrix = np.full((d, d), float(value))
        np.fill_diagonal(matrix, 1.0)
        return matrix
    rows = value.tolist() if isinstance(value, np.ndarray) else value
    shaped = _is_sequence(rows) and len(rows) == d and all(_is_sequence(row) and len(row) == d for row in rows)
    if not shaped or not all(_is_number(entry) for row in rows for entry in row):
        fail(name, value, f"a number c (1 on the diagonal, c off it) or a {d}×{d} matrix of numbers")
    matrix = np.array(rows, dtype=np.float64)
    if not np.isfinite(matrix).all() or np.abs(matrix).max() > MAX_MAGNITUDE:
        fail(name, value, f"a {d}×{d} matrix of finite numbers of magnitude at most 1e9")
    return matrix


def _check_psd(name: str, value: Any, matrix: np.ndarray) -> np.ndarray:
    """Symmetric (to rounding, then made exactly so) and positive semidefinite, or ``ValueError`` naming ``name``."""
    d = len(matrix)
    scale = float(np.abs(matrix).max())
    if not np.all(np.abs(matrix - matrix.T) <= PSD_TOLERANCE * scale):
        fail(name, value, "a symmetric matrix")
    matrix = 0.5 * (matrix + matrix.T)
    smallest = float(np.linalg.eigvalsh(matrix)[0]) if scale > 0.0 else 0.0
    if smallest < -PSD_TOLERANCE * scale:
        number = f"; a number c must be in [{-1.0 / (d - 1):.6g}, 1]" if _is_number(value) and d > 1 else ""
        fail(name, value, f"positive semidefinite (its smallest eigenvalue is {smallest:.6g}){number}")
    return matrix


def noise_factor(correlation: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor ``L_R`` of a correlation matrix, with a zero column wherever the pivot is ≤ 1e−12.

    ``MODEL.md`` §9.2: the same recursion as Cholesky's, so that ``L_R·L_Rᵀ = R`` also for a singular ``R`` (whose
    zero pivots would divide by zero).
    """
    d = len(correlation)
    factor = np.zeros((d, d))
    for j in range(d):
        pivot = correlation[j, j] - float(np.dot(factor[j, :j], factor[j, :j]))
        if pivot <= PIVOT_TOLERANCE:
            continue
        factor[j, j] = math.sqrt(pivot)
        for i in range(j + 1, d):
            factor[i, j] = (correlation[i, j] - float(np.dot(factor[i, :j], factor[j, :j]))) / factor[j, j]
    return factor


def _rows(matrix: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(x) for x in row) for row in matrix)


def _read_only(rows: Sequence[Sequence[float]]) -> np.ndarray:
    array = np.array(rows, dtype=np.float64)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class MultiAssetParams:
    """A multi-asset market-making model (``MODEL.md`` §9): one market maker quoting ``d`` assets.

    The defaults are the one-asset defaults of ``MODEL.md`` §3 with ``d = 1``; the presets of
    :data:`MULTI_ASSET_PRESETS` differ from them as §9.7 says. At construction every per-asset parameter takes a
    number (every asset) or a sequence of ``d`` values, and is then held resolved, as a tuple of ``d`` values.

    Attributes:
        d: the number of assets (an integer in ``[1, 64]``).
        T: steps per episode (integer ≥ 1).
        lam: running penalty λ ≥ 0: every step subtracts ``λ·I'ᵀC·I'`` on the inventory vector carried out of it.
        alpha: terminal penalty α ≥ 0: the last step also subtracts ``α·I_TᵀC·I_T``.
        reward: ``"spread"`` (the spread captured on the fill) or ``"mtm"`` (the change of the wealth
            ``X + Σ_i I_i·P_i``), minus the penalty.
        delta_min: smallest quote offset (≥ 0), common to the ``2d`` quotes.
        delta_max: largest quote offset (> ``delta_min``); quoting it is in effect not quoting.
        pi: per asset, the probability ``π_i`` that a trader arrives in asset ``i`` in a step; ``Σ_i π_i ≤ 1`` (at
            most one trader per step, §9.2).
        I_max: per asset, the inventory limit ``|I_i| ≤ I_max_i`` (integers ≥ 1).
        sizes: per asset, the possible trader sizes (distinct positive integers). At construction, one sequence of
            integers is every asset's; a sequence of ``d`` sequences gives each asset its own.
        size_probs: per asset, the probability of each size (resolved: uniform where ``None`` was given). At
            construction ``None``, one sequence for every asset, or ``d`` entries (each ``None`` or a sequence).
        A: per asset, the fill probability at a zero offset, in ``(0, 1]``.
        k: per asset, the decay ``k_i > 0`` of the fill probability ``A_i·exp(−k_i·δ)``.
        kappa: per asset, the permanent impact ``κ_i ≥ 0``: a trade of ``Q'`` units moves its asset's mid by
            ``κ_i·Q'^{β_i}`` in the trader's direction (no cross-impact).
        beta: per asset, the impact exponent ``β_i`` in ``(0, 1]`` (§7.2; 1 is linear).
        sigma: per asset, the standard deviation ``σ_i ≥ 0`` of the mid's Gaussian move per step.
        P0: per asset, the initial mid.
        correlation: ``R``, the correlation of the mids' noise: symmetric positive semidefinite with a unit
            diagonal (a number ``c`` at construction: 1 on the diagonal, ``c`` off it; default the identity).
        risk_matrix: ``C``, the matrix of the penalty, symmetric positive semidefinite. Resolved: the identity by
            default, ``Σ/σ̄²`` with ``mean_variance``; at construction ``None`` (that default), a number ``c`` or a
            matrix.
        mean_variance: ``True`` sets ``C = Σ/σ̄²`` with ``Σ = diag(σ)·R·diag(σ)`` and ``σ̄² = tr Σ / d`` (§9.3):
            the penalty is then λ times the variance of the next step's mark-to-market P&L, in units of the mean
            per-asset variance. It needs some ``σ_i > 0`` and excludes an explicit ``risk_matrix``.

    Each invalid value raises ``ValueError`` naming the parameter, its value and the rule. Build one with
    :func:`make_multi_asset_params`, change one with :meth:`replace`.
    """

    d: int = 1
    T: int = 200
    lam: float = 0.005
    alpha: float = 0.0
    reward: str = "spread"
    delta_min: float = 0.0
    delta_max: float = 5.0
    # Given as a number (every asset) or d values, held as d values: the defaults apply to every asset.
    pi: tuple[float, ...] = 1.0  # type: ignore[assignment]
    I_max: tuple[int, ...] = 50  # type: ignore[assignment]
    sizes: tuple[tuple[int, ...], ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9)  # type: ignore[assignment]
    size_probs: tuple[tuple[float, ...], ...] = None  # type: ignore[assignment]
    A: tuple[float, ...] = 0.9  # type: ignore[assignment]
    k: tuple[float, ...] = 2.0  # type: ignore[assignment]
    kappa: tuple[float, ...] = 0.05  # type: ignore[assignment]
    beta: tuple[float, ...] = 1.0  # type: ignore[assignment]
    sigma: tuple[float, ...] = 0.0  # type: ignore[assignment]
    P0: tuple[float, ...] = 100.0  # type: ignore[assignment]
    # Given as a number c (1 on the diagonal, c off it) or a d×d matrix; C as None for its default.
    correlation: tuple[tuple[float, ...], ...] = 0.0  # type: ignore[assignment]
    risk_matrix: tuple[tuple[float, ...], ...] = None  # type: ignore[assignment]
    mean_variance: bool = False
    flows: tuple[OrderFlow, ...] = field(init=False, repr=False, compare=False)
    """Per asset, its order flow (:class:`~mm_env.model.flow.OrderFlow`: ``π_i`` and the size law)."""
    fills: tuple[ExponentialFill, ...] = field(init=False, repr=False, compare=False)
    """Per asset, its fill law (:class:`~mm_env.model.fill.ExponentialFill`: ``A_i``, ``k_i``)."""
    impacts: tuple[PriceImpact, ...] = field(init=False, repr=False, compare=False)
    """Per asset, its permanent impact (:class:`~mm_env.model.impact.PriceImpact`: ``κ_i``, ``β_i``)."""
    arrival_bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """``(Π_0, …, Π_d)``: ``Π_0 = 0``, ``Π_i = Π_{i−1} + π_i`` summed in this order (§9.2's draw rule)."""
    noise_factor: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)
    """``L_R``, the lower Cholesky factor of ``R`` (zero columns at zero pivots): the noise is ``σ_j·(L_R·ε)_j``."""
    draws_normal: bool = field(init=False, repr=False, compare=False)
    """Whether a step draws ``d`` standard normals (some ``σ_i > 0``)."""

    def __post_init__(self) -> None:
        check_int(self, "d", 1)
        if self.d > MAX_ASSETS:
            fail("d", self.d, f"an integer in [1, {MAX_ASSETS}]")
        check_int(self, "T", 1)
        check_real(self, "lam", low=0.0)
        check_real(self, "alpha", low=0.0)
        check_choice(self, "reward", REWARDS)
        check_real(self, "delta_min", low=0.0)
        check_real(self, "delta_max", low=self.delta_min, low_open=True)
        if not isinstance(self.mean_variance, (bool, np.bool_)):
            fail("mean_variance", self.mean_variance, "True or False")
        object.__setattr__(self, "mean_variance", bool(self.mean_variance))
        self._resolve_assets()
        self._resolve_matrices()

    def _resolve_assets(self) -> None:
        """Each asset's values, checked by the one-asset components; then ``Σ_i π_i ≤ 1``."""
        d = self.d
        values = {name: _per_asset(name, getattr(self, name), d) for name in (*PER_ASSET_REALS, "I_max")}
        laws = {name: _per_asset_law(name, getattr(self, name), d) for name in ("sizes", "size_probs")}
        assets = [self._asset_alone(i, {**values, **laws}) for i in range(d)]
        flows = [asset.flow for asset in assets]
        fills = [asset.fill for asset in assets if isinstance(asset.fill, ExponentialFill)]  # every one is
        impacts = [asset.impact for asset in assets]
        pi = tuple(flow.pi for flow in flows)
        bounds = [0.0]
        for probability in pi:  # summed in this order: the draw rule of §9.2 reads these bounds
            bounds.append(bounds[-1] + probability)
        if bounds[-1] > 1.0 + ARRIVAL_TOLERANCE:
            fail(
                "pi",
                self.pi,
                f"at most 1 in sum over the assets (at most one trader per step); the sum is {bounds[-1]}",
            )
        resolved: dict[str, tuple[Any, ...]] = {
            "pi": pi,
            "I_max": tuple(asset.I_max for asset in assets),
            "sizes": tuple(flow.sizes for flow in flows),
            "size_probs": tuple(flow.probs for flow in flows),
            "A": tuple(fill.A for fill in fills),
            "k": tuple(fill.k for fill in fills),
            "kappa": tuple(impact.kappa for impact in impacts),
            "beta": tuple(impact.impact_exponent for impact in impacts),
            "sigma": tuple(asset.sigma for asset in assets),
            "P0": tuple(asset.P0 for asset in assets),
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)
        # The flows the dynamics use keep ``size_probs=None`` for a uniform law, as the one-asset model does, so that
        # one seed draws the same sizes in both models (a uniform law samples by floor(u·m), not by its CDF).
        flows = [OrderFlow(pi=flow.pi, sizes=flow.sizes) if len(set(flow.probs)) == 1 else flow for flow in flows]
        object.__setattr__(self, "flows", tuple(flows))
        object.__setattr__(self, "fills", tuple(fills))
        object.__setattr__(self, "impacts", tuple(impacts))
        object.__setattr__(self, "arrival_bounds", tuple(bounds))

    def _asset_alone(self, i: int, values: dict[str, tuple[Any, ...]]) -> MarketParams:
        """Asset ``i``'s values as a one-asset model, checked by its components (errors under our names)."""
        try:
            return MarketParams(
                T=self.T,
                P0=values["P0"][i],
                I_max=values["I_max"][i],
                flow=OrderFlow(pi=values["pi"][i], sizes=values["sizes"][i], size_probs=values["size_probs"][i]),
                fill=ExponentialFill(A=values["A"][i], k=values["k"][i]),
                impact=PriceImpact(kappa=values["kappa"][i], impact_exponent=values["beta"][i]),
                noise=MidNoise(sigma=values["sigma"][i]),
            )
        except ValueError as error:
            message = str(error)
            for old, new in _RENAMED.items():
                if message.startswith(f"{old}="):
                    message = new + message[len(old) :]
            name = message.split("=", 1)[0]
            if self.d > 1 and name in PER_ASSET_NAMES:
                given = getattr(self, name)
                of = f" of {name}={_given(given)!r}" if _is_sequence(given) else ""
                message = f"{message} (asset {i}{of})"
            raise ValueError(message) from None

    def _resolve_matrices(self) -> None:
        """``R`` (unit diagonal, PSD), its noise factor, and ``C`` (given, the identity, or ``Σ/σ̄²``)."""
        d = self.d
        given_r = self.correlation
        correlation = _check_psd("correlation", given_r, _square("correlation", given_r, d))
        if not np.all(np.abs(np.diag(correlation) - 1.0) <= PSD_TOLERANCE):
            fail("correlation", given_r, "a correlation matrix: 1 on the diagonal")
        np.fill_diagonal(correlation, 1.0)
        given_c = self.risk_matrix
        if self.mean_variance:
            if given_c is not None:
                fail("risk_matrix", given_c, "None with mean_variance=True (which sets it to Σ/σ̄²)")
            if not any(s > 0.0 for s in self.sigma):
                fail("mean_variance", True, f"False when every sigma is 0 (sigma={self.sigma}): Σ/σ̄² needs noise")
            sigma = np.array(self.sigma)
            covariance = sigma[:, None] * correlation * sigma[None, :]
            risk = covariance / (float(np.sum(sigma * sigma)) / d)
        elif given_c is None:
            risk = np.eye(d)
        else:
            risk = _check_psd("risk_matrix", given_c, _square("risk_matrix", given_c, d))
            if np.any(np.diag(risk) < 0.0):
                fail("risk_matrix", given_c, "positive semidefinite: a non-negative diagonal")
        object.__setattr__(self, "correlation", _rows(correlation))
        object.__setattr__(self, "risk_matrix", _rows(risk))
        object.__setattr__(self, "noise_factor", _rows(noise_factor(correlation)))
        object.__setattr__(self, "draws_normal", any(s > 0.0 for s in self.sigma))

    @property
    def C(self) -> np.ndarray:
        """The risk matrix ``C`` of the penalty ``λ·I'ᵀC·I'``, a read-only float64 ``(d, d)`` array."""
        return _read_only(self.risk_matrix)

    @property
    def R(self) -> np.ndarray:
        """The noise correlation ``R``, a read-only float64 ``(d, d)`` array."""
        return _read_only(self.correlation)

    @property
    def Sigma(self) -> np.ndarray:
        """The covariance of the mids' noise per step, ``Σ = diag(σ)·R·diag(σ)``, a read-only ``(d, d)`` array."""
        sigma = np.array(self.sigma)
        covariance = sigma[:, None] * np.array(self.correlation) * sigma[None, :]
        covariance.flags.writeable = False
        return covariance

    @property
    def max_size(self) -> tuple[int, ...]:
        """Per asset, the largest trader size."""
        return tuple(max(sizes) for sizes in self.sizes)

    def asset(self, i: int) -> MarketParams:
        """The one-asset model of asset ``i`` alone (``MODEL.md`` §9.6 a), a :class:`~mm_env.params.MarketParams`.

        Its flow, size law, fill law, impact, noise, ``I_max`` and ``P0`` are asset ``i``'s; ``T``, the reward and
        the offset bounds are the book's; its penalties are ``λ·C_ii`` and ``α·C_ii``. A uniform size law is given
        as ``size_probs=None``, as the one-asset presets give it.
        """
        if isinstance(i, bool) or not isinstance(i, Integral) or not 0 <= int(i) < self.d:
            raise ValueError(f"i={i!r} is invalid: must be an asset index in [0, {self.d - 1}]")
        i = int(i)
        weight = self.risk_matrix[i][i]
        return MarketParams(
            T=self.T,
            P0=self.P0[i],
            I_max=self.I_max[i],
            delta_min=self.delta_min,
            delta_max=self.delta_max,
            flow=self.flows[i],
            fill=self.fills[i],
            impact=self.impacts[i],
            noise=MidNoise(sigma=self.sigma[i]),
            objective=Objective(reward=self.reward, lam=self.lam * weight, alpha=self.alpha * weight),
        )

    def replace(self, **changes: Any) -> MultiAssetParams:
        """A copy with some parameters changed, by their keyword names (validated like the constructor).

        Changing ``d`` keeps the parameters that are the same for every asset (and a ``risk_matrix`` or
        ``correlation`` of the form "1 on the diagonal, ``c`` off it"); the others must be given anew.
        ``mean_variance=True`` recomputes ``C`` unless a ``risk_matrix`` is given (which it refuses); new ``sizes``
        without ``size_probs`` are uniform.
        """
        _check_names(changes)
        base = self.as_dict()
        if "d" in changes and changes["d"] != self.d:
            base = _uniform_form(base)
        if changes.get("mean_variance") and "risk_matrix" not in changes:
            base["risk_matrix"] = None
        if "sizes" in changes and "size_probs" not in changes:
            base["size_probs"] = None  # new sizes: uniform, unless their probabilities are given too
        return MultiAssetParams(**{**base, **changes})

    def as_dict(self) -> dict[str, Any]:
        """Every parameter by its keyword name, as plain Python values (JSON-able: what a run folder records).

        ``make_multi_asset_params(**params.as_dict())`` rebuilds equal parameters. With ``mean_variance`` the
        ``risk_matrix`` is recorded as ``None`` (it follows from ``sigma`` and ``correlation``).
        """
        plain = {name: _plain(getattr(self, name)) for name in MULTI_ASSET_NAMES}
        if self.mean_variance:
            plain["risk_matrix"] = None
        return plain


MULTI_ASSET_NAMES: tuple[str, ...] = tuple(f.name for f in fields(MultiAssetParams) if f.init)
"""Every keyword that names a multi-asset model parameter."""


def _plain(value: Any) -> Any:
    """Tuples (of tuples) as lists (of lists)."""
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


def _given(value: Any) -> Any:
    """A value as the user gave it, for a message (NumPy arrays as lists)."""
    return value.tolist() if isinstance(value, np.ndarray) else value


def _uniform_form(flat: dict[str, Any]) -> dict[str, Any]:
    """The parameters with each value that is the same for every asset as one value (to change ``d``)."""
    compact = dict(flat)
    for name in PER_ASSET_NAMES:
        values = flat[name]
        if all(value == values[0] for value in values):
            compact[name] = values[0]
    for name in MATRIX_NAMES:
        matrix = flat[name]
        if matrix is None:
            continue
        off = {x for i, row in enumerate(matrix) for j, x in enumerate(row) if i != j}
        if all(row[i] == 1.0 for i, row in enumerate(matrix)) and len(off) <= 1:
            compact[name] = off.pop() if off else 0.0
    return compact


def _check_names(overrides: dict[str, Any]) -> None:
    """Refuse a keyword that is not a multi-asset parameter, saying why (out of scope, renamed, or unknown)."""
    for name in overrides:
        if name in MULTI_ASSET_NAMES:
            continue
        if name in _OUT_OF_SCOPE:
            raise ValueError(
                f"{name!r} is not a multi-asset parameter: {_OUT_OF_SCOPE[name]} is out of the multi-asset model's "
                "scope (MODEL.md §9.4); the one-asset model (mm_env.make_params) has it"
            )
        if name in _RENAMED:
            raise ValueError(
                f"{name!r} is not a multi-asset parameter: the multi-asset model calls it {_RENAMED[name]!r}"
            )
        scope = " (a one-asset parameter)" if name in FLAT_NAMES else ""
        raise ValueError(f"{name!r} is not a multi-asset parameter{scope}; allowed: {list(MULTI_ASSET_NAMES)}")


_TWO_ASSETS = MultiAssetParams(d=2, I_max=20, pi=0.5, sizes=tuple(range(1, 6)), risk_matrix=0.8)  # type: ignore[arg-type]

MULTI_ASSET_PRESETS: dict[str, MultiAssetParams] = {
    "two_assets": _TWO_ASSETS,
    "mean_variance": _TWO_ASSETS.replace(
        reward="mtm", sigma=(0.1, 0.2), correlation=0.8, mean_variance=True, risk_matrix=None
    ),
}
"""The named multi-asset models of ``MODEL.md`` §9.7. ``two_assets`` (the default): two assets with ``I_max = 20``,
``π = 0.5``, sizes uniform on 1–5 and ``C = [[1, 0.8], [0.8, 1]]``, the rest as §3. ``mean_variance``: the same under
``mtm`` with ``σ = (0.1, 0.2)``, ``R = [[1, 0.8], [0.8, 1]]`` and ``C = Σ/σ̄² = [[0.4, 0.64], [0.64, 1.6]]``."""


def make_multi_asset_params(preset: str = "two_assets", **overrides: Any) -> MultiAssetParams:
    """A multi-asset model: a preset of :data:`MULTI_ASSET_PRESETS` with keyword overrides.

    A per-asset keyword takes a number (every asset) or ``d`` values; ``risk_matrix`` and ``correlation`` a number
    ``c`` (1 on the diagonal, ``c`` off it) or a ``d×d`` matrix. Keywords of the one-asset model that are out of the
    multi-asset model's scope (``p_buy``, ``momentum``, ``informed``, transient impact, jumps, mean reversion,
    ``mode``: ``MODEL.md`` §9.4) and unknown keywords raise ``ValueError`` saying why.

    >>> make_multi_asset_params("two_assets", lam=0.01).C.tolist()
    [[1.0, 0.8], [0.8, 1.0]]
    """
    if not isinstance(preset, str) or preset not in MULTI_ASSET_PRESETS:
        raise ValueError(f"preset={preset!r} is not a known multi-asset preset; allowed: {sorted(MULTI_ASSET_PRESETS)}")
    base = MULTI_ASSET_PRESETS[preset]
    _check_names(overrides)
    return base.replace(**overrides) if overrides else base


__all__ = [
    "MAX_ASSETS",
    "MULTI_ASSET_NAMES",
    "MULTI_ASSET_PRESETS",
    "MultiAssetParams",
    "make_multi_asset_params",
    "noise_factor",
]
