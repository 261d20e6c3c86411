"""The model's parameters as JAX pytrees: the numbers of a model are leaves, its structure is static.

Registering :class:`~mm_env.params.MarketParams` and its components lets a model be an argument of a jitted
function (gymnax's ``step(key, state, action, params)``), be ``vmap``-ped over (a batch of λ × κ cells), and be
stacked with :func:`stack_params`. The **leaves** are the numbers that enter the formulas only: ``P0``,
``delta_min``, ``delta_max``, ``p_buy``, ``info_jump``, ``A``, ``k``, ``kappa``, ``transient_decay`` and ``lam``
(:data:`LEAVES`). Every other parameter decides the model's structure — the draws a step takes (``sigma``,
``jump_prob``, ``informed``), shapes (``T``, ``I_max``, the sizes) or a branch of the formulas (``pi < 1``,
``momentum``, ``impact_exponent``, ``alpha``, ``reward``, the fill law) — and is static: two models that differ there
are two different programs to JAX, and cannot be stacked. A game (:class:`~mm_env.params.CompetitionParams`) is
static as a whole: its tick grid is worked out from the market's offset bounds when it is built.

A model is validated when it is built (:func:`mm_env.presets.make_params`); rebuilding it from leaves (what JAX does
inside ``jit`` and ``vmap``) does not validate again, since the leaves may be traced values.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from mm_env.model.fill import ArticleFill, ExponentialFill
from mm_env.model.flow import OrderFlow
from mm_env.model.impact import PriceImpact
from mm_env.model.noise import MidNoise
from mm_env.model.objective import Objective
from mm_env.params import CompetitionParams, MarketParams

LEAVES: dict[type, tuple[str, ...]] = {
    MarketParams: ("P0", "delta_min", "delta_max", "flow", "fill", "impact", "noise", "objective"),
    OrderFlow: ("p_buy", "info_jump"),
    ExponentialFill: ("A", "k"),
    ArticleFill: (),
    PriceImpact: ("kappa", "transient_decay"),
    MidNoise: (),
    Objective: ("lam",),
    CompetitionParams: (),
}
"""The fields of each class that are pytree children (numbers, or the components of a model); the rest is static."""

_Params = TypeVar("_Params")


def _flatten(names: tuple[str, ...]) -> Any:
    def flatten(value: Any) -> tuple[tuple[Any, ...], Any]:
        # The static part is a copy with the children blanked: hashable and equal for equal structures.
        skeleton = copy.copy(value)
        for name in names:
            object.__setattr__(skeleton, name, None)
        return tuple(getattr(value, name) for name in names), skeleton

    return flatten


def _unflatten(names: tuple[str, ...]) -> Any:
    def unflatten(skeleton: Any, children: Sequence[Any]) -> Any:
        value = copy.copy(skeleton)
        for name, child in zip(names, children, strict=True):
            object.__setattr__(value, name, child)
        return value

    return unflatten


def _register() -> None:
    for cls, names in LEAVES.items():
        jax.tree_util.register_pytree_node(cls, _flatten(names), _unflatten(names))


def stack_params(models: Sequence[_Params]) -> _Params:
    """Models of one structure stacked into one model whose leaves have a leading axis, to ``vmap`` over.

    ``ValueError`` if the list is empty or two models differ in a static parameter (see the module's docstring).
    """
    if len(models) == 0:
        raise ValueError("stack_params needs at least one model")
    first: Any = jax.tree_util.tree_structure(models[0])
    for index, model in enumerate(models[1:], start=1):
        if jax.tree_util.tree_structure(model) != first:
            raise ValueError(
                f"models[{index}] differs from models[0] in a static parameter; only {_leaf_names()} may differ"
            )
    stacked: _Params = jax.tree_util.tree_map(lambda *values: jnp.stack(values), *models)
    return stacked


def _leaf_names() -> list[str]:
    return [name for names in LEAVES.values() for name in names if name not in LEAVES[MarketParams][3:]]


_register()
