"""Validation shared by the model's frozen dataclasses.

Every invalid value raises ``ValueError`` naming the field, the value and what is allowed; valid values are
normalised in place (``int``, ``float``, tuples).

Every real number of a model and every trader size is also bounded in magnitude by :data:`MAX_MAGNITUDE`, the
integers ``T`` and ``I_max`` by :data:`MAX_INTEGER`, and the number of trader sizes by :data:`MAX_SIZES`, so that no
value the dynamics, the exact DP or an evaluation forms can overflow a float: the largest, a return's second moment,
is about ``(T·λ·I_max²)² ≤ (1e15·1e9·1e30)² = 1e108``, far below ``1e308``. (Memory and time are bounded elsewhere.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

PROB_TOLERANCE = 1e-9
MAX_MAGNITUDE = 1e9
"""The largest magnitude of any real number of a model (prices, offsets, rates) and of a trader size."""
MAX_INTEGER = 10**15
"""The largest integer of a model (``T``, ``I_max``; below 2**53, so that floats hold them exactly)."""
MAX_SIZES = 1_000
"""The most distinct trader sizes a model may have."""


def fail(name: str, value: Any, allowed: str) -> None:
    """Raise the standard error for an invalid value."""
    raise ValueError(f"{name}={value!r} is invalid: must be {allowed}")


def check_int(owner: Any, name: str, minimum: int) -> None:
    """An integer field ``>= minimum`` (bools are not integers here)."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, Integral) or not minimum <= int(value) <= MAX_INTEGER:
        fail(name, value, f"an integer in [{minimum}, 1e15]")
    object.__setattr__(owner, name, int(value))


def check_real(
    owner: Any,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A finite real field in the interval ``[low, high]`` (either end may be open), within ±:data:`MAX_MAGNITUDE`."""
    low, high = max(low, -MAX_MAGNITUDE), min(high, MAX_MAGNITUDE)
    value = getattr(owner, name)
    ok = isinstance(value, Real) and not isinstance(value, bool)
    try:
        ok = ok and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        ok = False
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        fail(name, value, "a finite number" + _range_text(low, high, low_open, high_open))
    object.__setattr__(owner, name, float(value))


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f" in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"


def _bound(value: float) -> str:
    return f"{value:.0e}".replace("e+0", "e") if abs(value) == MAX_MAGNITUDE else f"{value}"


def check_choice(owner: Any, name: str, allowed: Sequence[str]) -> None:
    """A string field with one of the ``allowed`` values."""
    value = getattr(owner, name)
    if not isinstance(value, str) or value not in allowed:
        fail(name, value, f"one of {list(allowed)}")


def check_sizes(owner: Any) -> None:
    """``sizes`` (distinct positive integers) and ``size_probs`` (``None`` or one probability per size)."""
    for name in ("sizes", "size_probs"):
        value = getattr(owner, name)
        if isinstance(value, np.ndarray) and value.ndim == 1:
            object.__setattr__(owner, name, value.tolist())
    sizes = owner.sizes
    described = (
        f"a non-empty sequence of at most {MAX_SIZES:,} distinct positive integers (at most {_bound(MAX_MAGNITUDE)})"
    )
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not 1 <= len(sizes) <= MAX_SIZES:
        fail("sizes", sizes, described)
    if any(isinstance(s, bool) or not isinstance(s, Integral) or not 1 <= int(s) <= MAX_MAGNITUDE for s in sizes):
        fail("sizes", sizes, described)
    if len(set(sizes)) != len(sizes):
        fail("sizes", sizes, described)
    object.__setattr__(owner, "sizes", tuple(int(s) for s in sizes))
    probs = owner.size_probs
    if probs is None:
        return
    valid = isinstance(probs, Sequence) and not isinstance(probs, (str, bytes)) and len(probs) == len(sizes)
    valid = valid and all(
        isinstance(p, Real) and not isinstance(p, bool) and math.isfinite(p) and float(p) >= 0 for p in probs
    )
    if not valid or abs(math.fsum(probs) - 1.0) > PROB_TOLERANCE:
        fail("size_probs", probs, f"None or {len(sizes)} non-negative numbers (one per size) summing to 1")
    object.__setattr__(owner, "size_probs", tuple(float(p) for p in probs))
