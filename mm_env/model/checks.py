"""Validation shared by the model's frozen dataclasses.

Every invalid value raises ``ValueError`` naming the field, the value and what is allowed; valid values are
normalised in place (``int``, ``float``, tuples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

PROB_TOLERANCE = 1e-9


def fail(name: str, value: Any, allowed: str) -> None:
    """Raise the standard error for an invalid value."""
    raise ValueError(f"{name}={value!r} is invalid: must be {allowed}")


def check_int(owner: Any, name: str, minimum: int) -> None:
    """An integer field ``>= minimum`` (bools are not integers here)."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        fail(name, value, f"an integer >= {minimum}")
    object.__setattr__(owner, name, int(value))


def check_real(
    owner: Any,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A finite real field in the interval ``[low, high]`` (either end may be open)."""
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
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" {'>' if low_open else '>='} {low}"
    if math.isinf(low):
        return f" {'<' if high_open else '<='} {high}"
    return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


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
    described = "a non-empty sequence of distinct positive integers"
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        fail("sizes", sizes, described)
    if any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes) or len(set(sizes)) != len(sizes):
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
