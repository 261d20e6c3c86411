"""The array namespace: the few array functions that the model's formulas are written against, chosen explicitly.

Every formula of :mod:`mm_env.model` and :mod:`mm_env.dynamics` calls its array functions through a namespace ``xp``
handed to it, never NumPy directly, so that one definition runs on Python numbers (:data:`SCALAR`: one environment,
where NumPy's per-call overhead would dominate the step) and on NumPy arrays (:data:`NUMPY`: a batch), and another
array library plugs in as one more :class:`ArrayNamespace`. A front-end picks its namespace once (the single env
:data:`SCALAR`, the batches :data:`NUMPY`); :func:`namespace_of` finds it from a value, through the array API
standard's ``__array_namespace__`` for arrays.

**Choices on booleans** go through three named helpers: :attr:`ArrayNamespace.pick` (``a`` where ``c``, else ``b``),
:attr:`ArrayNamespace.sign_of` (``+1`` where ``c``, else ``−1``) and :attr:`ArrayNamespace.signed_event`. On Python
numbers they are conditional expressions. On NumPy arrays they are arithmetic on the comparisons
(``[c]·a + [¬c]·b``): ``numpy.where`` branches on every element, and on random draws that branch is mispredicted so
often that one select costs about a tenth of a batched step at 4,096 environments (``benchmarks/bench_env.py
--selects`` measures it). The arithmetic is exact for finite values, except that it gives ``+0.0`` for ``−0.0``;
every value picked this way is finite. :attr:`ArrayNamespace.where` stays for conditions that are nearly always the
same (rare arrivals), where the branch predicts well.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

Number: TypeAlias = float | np.ndarray
"""A Python number (``int`` and ``bool`` included) or an array of them: what the model's functions take and give."""

Unary: TypeAlias = Callable[[Number], Number]
Binary: TypeAlias = Callable[[Number, Number], Number]
Ternary: TypeAlias = Callable[[Number, Number, Number], Number]


@dataclass(frozen=True, eq=False)
class ArrayNamespace:
    """The functions the model's formulas use, with NumPy's names and meanings, for one kind of value.

    A plain record of functions (looked up as instance attributes, the cheapest lookup Python has). The functions
    from ``stack`` on serve batches and competing market makers (:mod:`mm_env.model.makers`), which are arrays
    only: on Python numbers they raise ``TypeError``.
    """

    name: str
    """The namespace's name (``"scalar"``, ``"numpy"``)."""
    is_array: bool
    """Whether values are arrays (then lookups index array tables, see ``OrderFlow.size``)."""
    one: float
    """The unit of a side or a sign: an integer for Python numbers (one environment's inventory stays an ``int``),
    a float for arrays (a batch's sides and inventories are float64 like the rest of its state)."""
    where: Ternary
    pick: Ternary
    """``pick(c, a, b)``: ``a`` where ``c``, else ``b``, for finite ``a`` and ``b`` (see the module's docstring)."""
    sign_of: Unary
    """``sign_of(c)``: ``+one`` where ``c``, else ``−one``."""
    signed_event: Binary
    """``signed_event(u, p)``: ``+one`` where ``u < p/2``, ``−one`` where ``p/2 ≤ u < p``, else ``0`` (never ``−0.0``):
    an event of probability ``p``, up or down with equal odds, from a uniform ``u``."""
    minimum: Binary
    exp: Unary
    floor: Unary
    sign: Unary
    clip: Ternary
    index: Unary
    """Truncates to integer indices."""
    take: Callable[..., Number]
    searchsorted: Callable[[Sequence[float], Number], Number]
    """``searchsorted(bounds, x)``: the index of ``x`` among sorted ``bounds`` (NumPy's ``side="right"``)."""
    stack: Callable[..., Number]
    concatenate: Callable[..., Number]
    as_float32: Unary
    """The values as float32 (observations)."""
    columns_float32: Callable[[Sequence[Number]], Number]
    """``columns_float32(columns)``: equal-length columns side by side, ``(n, d)``, in float32 (observations)."""
    rint: Unary
    sum: Callable[..., Number]
    any: Callable[..., Number]
    min: Callable[..., Number]
    argmax: Callable[..., Number]
    cumsum: Callable[..., Number]
    isfinite: Unary


# Python numbers. Comparisons rather than the builtins min and max, which cost three times as much on two numbers.
def _scalar_where(condition: Number, if_true: Number, if_false: Number) -> Number:
    return if_true if condition else if_false


def _scalar_sign_of(condition: Number) -> Number:
    return 1 if condition else -1


def _scalar_signed_event(u: Number, probability: Number) -> Number:
    return (1 if u < 0.5 * probability else -1) if u < probability else 0


def _scalar_sign(x: Number) -> Number:
    return (x > 0) - (x < 0)


def _scalar_minimum(a: Number, b: Number) -> Number:
    return b if b < a else a


def _scalar_clip(x: Number, low: Number, high: Number) -> Number:
    return low if x < low else (high if x > high else x)


def _scalar_searchsorted(sorted_bounds: Sequence[float], x: Number) -> Number:
    return bisect.bisect_right(sorted_bounds, x)


def _arrays_only(*args: object, **kwargs: object) -> Number:
    raise TypeError("this array function has no Python-number form: batches and competing market makers are arrays")


SCALAR = ArrayNamespace(
    name="scalar",
    is_array=False,
    one=1,
    where=_scalar_where,
    pick=_scalar_where,
    sign_of=_scalar_sign_of,
    signed_event=_scalar_signed_event,
    minimum=_scalar_minimum,
    exp=math.exp,
    floor=math.floor,
    sign=_scalar_sign,
    clip=_scalar_clip,
    index=int,
    take=operator.getitem,
    searchsorted=_scalar_searchsorted,
    stack=_arrays_only,
    concatenate=_arrays_only,
    as_float32=_arrays_only,
    columns_float32=_arrays_only,
    rint=_arrays_only,
    sum=_arrays_only,
    any=_arrays_only,
    min=_arrays_only,
    argmax=_arrays_only,
    cumsum=_arrays_only,
    isfinite=_arrays_only,
)
"""Python numbers: one environment."""


# NumPy arrays: the choices as arithmetic on comparisons (see the module's docstring).
def _numpy_pick(condition: Number, if_true: Number, if_false: Number) -> Number:
    return condition * if_true + ~condition * if_false  # type: ignore[operator]  # a bool array and numbers


def _numpy_sign_of(condition: Number) -> Number:
    return 2.0 * condition - 1.0


def _numpy_signed_event(u: Number, probability: Number) -> Number:
    return 2.0 * (u < 0.5 * probability) - (u < probability)


def _numpy_index(x: Number) -> Number:
    return np.asarray(x).astype(np.intp)


def _numpy_as_float32(x: Number) -> Number:
    return np.asarray(x).astype(np.float32)


def _numpy_columns_float32(columns: Sequence[Number]) -> Number:
    # A new array filled column by column: one pass per column, and no float64 copy of the whole block.
    block = np.empty((len(np.asarray(columns[0])), len(columns)), dtype=np.float32)
    for index, column in enumerate(columns):
        block[:, index] = column
    return block


def _numpy_clip(x: Number, low: Number, high: Number) -> Number:
    # min(max(x, low), high): numpy.clip's value for low <= high, without its Python-level dispatch.
    return np.minimum(np.maximum(x, low), high)


def _numpy_searchsorted(sorted_bounds: Sequence[float], x: Number) -> Number:
    return np.searchsorted(sorted_bounds, x, side="right")


NUMPY = ArrayNamespace(
    name="numpy",
    is_array=True,
    one=1.0,
    where=np.where,
    pick=_numpy_pick,
    sign_of=_numpy_sign_of,
    signed_event=_numpy_signed_event,
    minimum=np.minimum,
    exp=np.exp,
    floor=np.floor,
    sign=np.sign,
    clip=_numpy_clip,
    index=_numpy_index,
    take=np.take,
    searchsorted=_numpy_searchsorted,
    stack=np.stack,
    concatenate=np.concatenate,
    as_float32=_numpy_as_float32,
    columns_float32=_numpy_columns_float32,
    rint=np.rint,
    sum=np.sum,
    any=np.any,
    min=np.min,
    argmax=np.argmax,
    cumsum=np.cumsum,
    isfinite=np.isfinite,
)
"""NumPy arrays: a batch of environments."""

_BY_ARRAY_API: dict[str, ArrayNamespace] = {"numpy": NUMPY}


def register_namespace(array_api_name: str, namespace: ArrayNamespace) -> None:
    """Make :func:`namespace_of` return ``namespace`` for arrays whose ``__array_namespace__()`` has this name."""
    _BY_ARRAY_API[array_api_name] = namespace


def namespace_of(value: object) -> ArrayNamespace:
    """The namespace for a value: :data:`SCALAR` for a Python number, else the one registered for its array library.

    NumPy's arrays and scalars are NumPy's (a NumPy ``float64`` is also a Python ``float``, a subclass: the scalar
    namespace); other arrays are recognised by the array API standard's ``__array_namespace__``. ``ValueError``
    for anything else.
    """
    if isinstance(value, (int, float)):
        return SCALAR
    if isinstance(value, (np.ndarray, np.generic)):  # NumPy 1.26 arrays have no __array_namespace__
        return NUMPY
    array_api = getattr(value, "__array_namespace__", None)
    if array_api is not None:
        name = array_api().__name__
        if name in _BY_ARRAY_API:
            return _BY_ARRAY_API[name]
        raise ValueError(f"no array namespace is registered for {name} arrays; register one with register_namespace")
    raise ValueError(f"{type(value).__name__} is neither a Python number nor an array with __array_namespace__")
