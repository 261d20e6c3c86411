"""Command-line pieces that need only the standard library, for entry points that must start before torch loads."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Callable, Sequence

EXTRAS = {
    "torch": "train",
    "stable_baselines3": "train",
    "tensorboard": "train",
    "tqdm": "train",
    "rich": "train",
    "yaml": "train",
    "matplotlib": "render",
    "pettingzoo": "multiagent",
    "ray": "ray",
    "jax": "jax",
    "optax": "jax",
}
"""The optional packages the commands need, by top-level module, and the extra of ``mm_env`` that installs each."""


def missing_extra(error: ModuleNotFoundError, command: str, extra: str) -> str | None:
    """One line saying which extra to install, when ``error`` is an optional package missing; else ``None``.

    ``extra`` is the command's own (``train``, ``ray``): it installs everything the command needs.
    """
    module = (error.name or "").partition(".")[0]
    if module not in EXTRAS:
        return None
    if EXTRAS[module] == "jax":  # only JAX runs need it, whatever the command's own extra
        return f'{command}: error: no module named {module!r}: JAX runs need pip install -e ".[jax]"'
    first = " (install the PyTorch build for your machine first, see docs/installation.md)" if module == "torch" else ""
    return f'{command}: error: no module named {module!r}: {command} needs pip install "mm_env[{extra}]"{first}'


def run_with_extra(
    run: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None, command: str, extra: str
) -> int:
    """``run(argv)``; on the core install, a missing optional package is one line naming ``extra`` (exit status 2)."""
    try:
        return run(argv)
    except ModuleNotFoundError as error:
        line = missing_extra(error, command, extra)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2


def missing_jax() -> str | None:
    """One line saying how to install JAX, where ``jax`` or ``optax`` is missing (found without importing them)."""
    for module in ("jax", "optax"):
        if importlib.util.find_spec(module) is None:
            return f'--backend jax needs {module}, which is not installed: pip install -e ".[jax]"'
    return None


def positive_integer(text: str) -> int:
    """An argparse type: a positive integer, also written as a float (``1e6``); anything else is a clear error."""
    return int(_number(text, "a positive integer", lambda value: value >= 1 and value == int(value)))


def non_negative_integer(text: str) -> int:
    """An argparse type: an integer ≥ 0, also written as a float; anything else is a clear error."""
    return int(_number(text, "a non-negative integer", lambda value: value >= 0 and value == int(value)))


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0; anything else is a clear error."""
    return _number(text, "a positive number", lambda value: value > 0)


def _number(text: str, what: str, allowed: Callable[[float], bool]) -> float:
    # The one parse of the types above: a float (so that counts may be written 1e6), finite, then the type's test.
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and allowed(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def integer(text: str) -> int:
    """An argparse type: an integer of any sign, also written as a float (``1e6``); its range is checked after."""
    return int(_number(text, "an integer", lambda value: value == int(value)))


def limits_problem(seeds: dict[str, int | None], episodes: dict[str, int | None]) -> str | None:
    """The first seed outside ``[0, 2**32 - 1]`` or episode count outside ``[2, MAX_EPISODES]``, in one line.

    Keys are the options' names (``--seed``); ``None`` values (not given) are skipped. The limits are
    :mod:`mm_env.limits`'s, the same for every command and the Python API.
    """
    from mm_env.limits import check_episodes, check_seed

    try:
        for name, value in seeds.items():
            if value is not None:
                check_seed(value, name)
        for name, value in episodes.items():
            if value is not None:
                check_episodes(value, name, minimum=2)
    except ValueError as error:
        return str(error)
    return None
