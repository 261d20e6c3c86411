"""The JAX backend: the model of :mod:`mm_env` under ``jax.jit`` and ``jax.vmap``, as gymnax and JaxMARL envs.

Nothing here is a second copy of the dynamics: the array namespace :data:`JAX` runs the one transition of
:mod:`mm_env.dynamics` on ``jax.numpy``, the model's parameters are pytrees (:mod:`mm_env.jax.pytrees`), and the
environments adapt it as the NumPy front-ends do:

- :class:`MarketMakingEnv`: one market maker, gymnax 1.0's interface (``reset(key, params)``,
  ``step(key, state, action, params)``, auto-reset); :class:`LegacyStepWrapper` for gymnax's older 5-tuple step.
- :class:`CompetingMarketMakersEnv`: competing market makers, JaxMARL's ``MultiAgentEnv`` interface.

It needs JAX (``pip install -e ".[jax]"``, the CPU wheels; for a GPU install the JAX build for your CUDA first). The
core package never imports it.
"""

from __future__ import annotations

try:
    import jax  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised without JAX
    raise ImportError('mm_env.jax needs JAX: pip install -e ".[jax]" (or pip install jax)') from error

from mm_env.jax.core import initial_state, sample_draws
from mm_env.jax.env import MarketMakingEnv
from mm_env.jax.multi_agent import CompetingMarketMakersEnv
from mm_env.jax.namespace import JAX
from mm_env.jax.pytrees import LEAVES, stack_params
from mm_env.jax.spaces import Box
from mm_env.jax.wrappers import LegacyStepWrapper

__all__ = [
    "JAX",
    "LEAVES",
    "Box",
    "CompetingMarketMakersEnv",
    "LegacyStepWrapper",
    "MarketMakingEnv",
    "initial_state",
    "sample_draws",
    "stack_params",
]
