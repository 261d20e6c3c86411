"""One array idiom for one environment and for a batch: ``xp`` is NumPy, or :data:`scalar` for Python numbers.

The model's formulas are written once, against the handful of functions below, and run unchanged on NumPy arrays
(a batch of environments) and on Python floats (one environment, where NumPy's per-call overhead would dominate
the step). :func:`namespace` picks the namespace from a value; the transition picks it once per step and hands it
to every component.

Choices made on random draws are written as arithmetic on comparisons (``2·one·[u < p] − one`` for a side,
``[c]·a + [not c]·b`` for a pick between finite values, :func:`signed_event`) rather than with ``where``: NumPy's
select branches on every element, and on random draws that branch is mispredicted so often that one select costs
about a tenth of a batched step. ``where`` stays where the condition is nearly always the same.
"""

from __future__ import annotations

import bisect
import math
import operator
from types import SimpleNamespace
from typing import Any

import numpy as np

Number = Any
"""A Python number or a NumPy array of them: the model's functions accept either."""


def _where(condition: Any, if_true: Any, if_false: Any) -> Any:
    return if_true if condition else if_false


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


# Comparisons rather than the builtins min and max: on two numbers those cost about 90 ns, three times as much.
def _minimum(a: float, b: float) -> float:
    return b if b < a else a


def _clip(x: float, low: float, high: float) -> float:
    return low if x < low else (high if x > high else x)


def _searchsorted(sorted_bounds: Any, x: float) -> int:
    return bisect.bisect_right(sorted_bounds, x)


def _array_index(x: np.ndarray) -> np.ndarray:
    return x.astype(np.intp)


def _array_searchsorted(sorted_bounds: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_bounds, x, side="right")


scalar = SimpleNamespace(
    where=_where,
    minimum=_minimum,
    exp=math.exp,
    floor=math.floor,
    sign=_sign,
    clip=_clip,
    index=int,
    take=operator.getitem,
    searchsorted=_searchsorted,
    is_array=False,
    one=1,
)
"""The scalar namespace: the same names as NumPy's, on Python numbers. ``one`` is the unit of a side or a sign: an
integer here, so that one environment's inventory stays a Python ``int``."""

array = SimpleNamespace(
    where=np.where,
    minimum=np.minimum,
    exp=np.exp,
    floor=np.floor,
    sign=np.sign,
    clip=np.clip,
    index=_array_index,
    take=np.take,
    searchsorted=_array_searchsorted,
    is_array=True,
    one=1.0,
)
"""The array namespace: NumPy's functions (``index`` truncates to integer indices); ``one`` is a float, so that a
batch's sides and inventories are float64 arrays like the rest of its state."""


def signed_event(u: Any, probability: float, xp: SimpleNamespace) -> Any:
    """+1 where ``u < probability/2``, −1 where ``probability/2 ≤ u < probability``, else 0, from uniforms ``u``.

    An event that happens with ``probability``, up or down with equal odds (an informed trader's news, a mid jump).
    Arithmetic rather than nested selects (see the module's docstring); never −0.0.
    """
    return 2 * xp.one * (u < 0.5 * probability) - (u < probability)


def namespace(value: Any) -> SimpleNamespace:
    """:data:`array` for a NumPy array, :data:`scalar` for a Python number."""
    return array if isinstance(value, np.ndarray) else scalar
