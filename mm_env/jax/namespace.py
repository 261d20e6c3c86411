"""The array namespace of JAX: the model's formulas on ``jax.numpy``.

The formulas of :mod:`mm_env.model`, :mod:`mm_env.dynamics` and :mod:`mm_env.spaces` run on it, so that the one
transition runs under ``jax.jit`` and ``jax.vmap``.

The choices on booleans are ``jnp.where`` here: under XLA a select is branch-free, so the arithmetic form that NumPy
needs (see :mod:`mm_env.xp`) would only add work. Values keep JAX's dtype: float32 unless the caller turned on
64-bit mode (``jax.enable_x64``); the library never turns it on itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from mm_env.xp import ArrayNamespace, register_namespace

# The model's functions are typed for Python numbers and NumPy arrays; JAX's arrays pass through them untyped.
_jnp: Any = jnp


def _sign_of(condition: Any) -> Any:
    return jnp.where(condition, 1.0, -1.0)


def _signed_event(u: Any, probability: Any) -> Any:
    return jnp.where(u < probability, jnp.where(u < 0.5 * probability, 1.0, -1.0), 0.0)


def _clip(x: Any, low: Any, high: Any) -> Any:
    # min(max(x, low), high), as the other namespaces: the same value for low <= high, NaN kept.
    return jnp.minimum(jnp.maximum(x, low), high)


def _index(x: Any) -> Any:
    return jnp.asarray(x).astype(jnp.int32)


def _searchsorted(sorted_bounds: Sequence[float], x: Any) -> Any:
    return jnp.searchsorted(jnp.asarray(sorted_bounds), x, side="right")


def _as_float32(x: Any) -> Any:
    return jnp.asarray(x).astype(jnp.float32)


def _columns_float32(columns: Sequence[Any]) -> Any:
    # Columns of shape (n,) give (n, d); columns of one environment (shape ()) give its observation (d,).
    return jnp.stack([jnp.asarray(column, dtype=jnp.float32) for column in columns], axis=-1)


JAX = ArrayNamespace(
    name="jax",
    is_array=True,
    one=1.0,
    where=_jnp.where,
    pick=_jnp.where,
    sign_of=_sign_of,
    signed_event=_signed_event,
    minimum=_jnp.minimum,
    exp=_jnp.exp,
    floor=_jnp.floor,
    sign=_jnp.sign,
    clip=_clip,
    index=_index,
    take=_jnp.take,
    searchsorted=_searchsorted,
    stack=_jnp.stack,
    concatenate=_jnp.concatenate,
    as_float32=_as_float32,
    columns_float32=_columns_float32,
    rint=_jnp.rint,
    sum=_jnp.sum,
    any=_jnp.any,
    min=_jnp.min,
    argmax=_jnp.argmax,
    cumsum=_jnp.cumsum,
    isfinite=_jnp.isfinite,
)
"""JAX arrays (``jax.numpy``): one environment or a batch, traced under ``jit`` and ``vmap``."""

register_namespace("jax.numpy", JAX)
