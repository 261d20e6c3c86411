"""A jittable box space in the form gymnax and JaxMARL use.

It has their ``low``, ``high``, ``shape``, ``dtype``, ``sample`` and ``contains``, so their wrappers and training code
read the spaces of :mod:`mm_env.jax`'s environments as their own.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces


class Box:
    """Values within ``[low, high]`` element by element, of one shape and dtype."""

    def __init__(self, low: Any, high: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> None:
        self.low = jnp.broadcast_to(jnp.asarray(low, dtype=dtype), shape)
        self.high = jnp.broadcast_to(jnp.asarray(high, dtype=dtype), shape)
        self.shape = tuple(shape)
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, dtype={self.dtype.name})"

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniform draw from the box."""
        return jax.random.uniform(key, self.shape, self.dtype, self.low, self.high)

    def contains(self, x: jax.Array) -> jax.Array:
        """Whether ``x`` lies within the box (a boolean array of shape ``()``; jittable)."""
        x = jnp.asarray(x)
        return jnp.all((x >= self.low) & (x <= self.high)) & (x.shape == self.shape)

    @classmethod
    def from_gymnasium(cls, space: spaces.Box) -> Box:
        """The same box as a Gymnasium one (the NumPy environments' spaces)."""
        return cls(np.asarray(space.low), np.asarray(space.high), space.shape, space.dtype)

    def to_gymnasium(self) -> spaces.Box:
        """The same box as a Gymnasium one (for code that expects Gymnasium's spaces)."""
        return spaces.Box(np.asarray(self.low), np.asarray(self.high), self.shape, np.dtype(self.dtype.name))
