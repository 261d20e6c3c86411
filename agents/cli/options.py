"""Command-line options shared by the commands: ``key=value`` values, ``--env-kwargs``, and a model from them."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from typing import Any

from mm_env.params import MarketParams
from mm_env.presets import make_params

MAX_VALUE_CHARS = 1_000
"""The longest ``key=value`` value the commands read (a value is a number, a name or a short list)."""
MAX_VALUE_DEPTH = 10
"""The deepest nesting of brackets in a ``key=value`` value."""


def parse_key_values(items: Sequence[str] | None, what: str = "--env-kwargs") -> dict[str, Any]:
    """Parse ``key=value`` strings; values are Python literals (``0.002``, ``[1, 2]``, ``True``) or plain strings.

    ``true`` and ``false`` in any case are the booleans too, as in YAML and on most command lines, and a bracketed
    list's items may be plain strings too (``[inventory,time_left]``), as the shell leaves them without quotes. A
    value longer than :data:`MAX_VALUE_CHARS` or nested deeper than :data:`MAX_VALUE_DEPTH` is refused (``ValueError``
    naming it); text that is no literal stays a string, which the parameter's own check then names.
    """
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} takes key=value pairs; got {_shown(item)}")
        if len(text) > MAX_VALUE_CHARS or _depth(text) > MAX_VALUE_DEPTH:
            raise ValueError(
                f"{what} {key}={_shown(text)} is invalid: a value has at most {MAX_VALUE_CHARS:,} characters and "
                f"{MAX_VALUE_DEPTH} levels of brackets"
            )
        parsed[key] = _value(text)
    return parsed


def _shown(text: str) -> str:
    # A value as an error line shows it: quoted, and cut to 60 characters.
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}… ({len(text):,} characters)"


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # not a literal: {{}}, 1+1+…+1
        pass
    if text.startswith("[") and text.endswith("]") and text[1:-1].strip():
        return [_value(item.strip()) for item in text[1:-1].split(",")]
    return text


def add_env_kwargs_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--env-kwargs key=value ...`` (model parameters, or ``preset=NAME``)."""
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="model parameters, e.g. lam=0.002 reward=mtm (or preset=easy)",
    )


def params_from_cli(
    parser: argparse.ArgumentParser, preset: str, env_kwargs: Sequence[str]
) -> tuple[str, MarketParams]:
    """The preset's name (``--preset``, or ``preset=`` among the keywords) and the parameters built from it.

    Any invalid value becomes a clean ``parser.error`` (exit status 2).
    """
    try:
        overrides = parse_key_values(env_kwargs)
        preset = overrides.pop("preset", preset)
        return preset, make_params(preset, **overrides)
    except ValueError as error:
        parser.error(str(error))
