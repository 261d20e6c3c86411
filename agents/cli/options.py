"""Command-line options shared by the commands: ``key=value`` values, ``--env-kwargs``, and a model from them.

``--env-kwargs`` also reads a file of keywords: an item ``@PATH`` is a JSON (or YAML) object of keywords, such as the
calibrated model that ``python -m agents.cli.calibrate --out model.json`` writes; ``key=value`` items after it
override its entries.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.storage.files import DataLimits, read_data_file
from mm_env.params import MarketParams
from mm_env.presets import make_params

MAX_VALUE_CHARS = 1_000
"""The longest ``key=value`` value the commands read (a value is a number, a name or a short list)."""
MAX_VALUE_DEPTH = 10
"""The deepest nesting of brackets in a ``key=value`` value."""
KEYWORDS_FILE_LIMITS = DataLimits(bytes=10_000_000)
"""How much of an ``@PATH`` file of keywords is read (a calibrated size law is at most a few thousand values)."""


def parse_key_values(items: Sequence[str] | None, what: str = "--env-kwargs") -> dict[str, Any]:
    """Parse ``key=value`` strings (and ``@PATH`` files of them); values are Python literals or plain strings.

    Values look like ``0.002``, ``[1, 2]`` or ``True``; an item ``@PATH`` adds the keywords of a JSON or YAML object
    (:func:`keywords_file`), and later items override earlier ones. ``true`` and ``false`` in any case are the
    booleans too, as in YAML and on most command lines, and a bracketed list's items may be plain strings too
    (``[inventory,time_left]``), as the shell leaves them without quotes. A value longer than :data:`MAX_VALUE_CHARS`
    or nested deeper than :data:`MAX_VALUE_DEPTH` is refused (``ValueError`` naming it); text that is no literal stays
    a string, which the parameter's own check then names.
    """
    parsed: dict[str, Any] = {}
    for item in items or ():
        if item.startswith("@"):
            parsed.update(keywords_file(item[1:], what))
            continue
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


def keywords_file(path: str, what: str = "--env-kwargs") -> dict[str, Any]:
    """The keywords in a JSON or YAML file holding one object (``@PATH`` among ``key=value`` items).

    ``ValueError`` in one line naming the file when it cannot be read, is too large, or holds no object of keywords.
    """
    try:
        data = read_data_file(Path(path), KEYWORDS_FILE_LIMITS)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ValueError(f"{what} @{path}: cannot read the keywords: {reason}") from None
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ValueError(f"{what} @{path}: must hold one object of keywords (a JSON object), not {type(data).__name__}")
    return data


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
        help="model parameters, e.g. lam=0.002 reward=mtm (or preset=easy); @model.json reads a file of them",
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
