"""Command-line helpers shared by ``python -m agents.evaluate`` and the main job (:mod:`agents.train`)."""

from __future__ import annotations

import argparse
import ast
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.arguments import TRAIN_COMMAND
from mm_env.params import MarketParams, make_params

__all__ = [
    "TRAIN_COMMAND",
    "add_env_kwargs_argument",
    "check_writable",
    "new_numbered_folder",
    "parse_key_values",
    "params_from_cli",
]


def parse_key_values(items: Sequence[str] | None, what: str = "--env-kwargs") -> dict[str, Any]:
    """Parse ``key=value`` strings; values are Python literals (``0.002``, ``[1, 2]``, ``True``) or plain strings.

    ``true`` and ``false`` in any case are the booleans too, as in YAML and on most command lines, and a bracketed
    list's items may be plain strings too (``[inventory,time_left]``), as the shell leaves them without quotes.
    """
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} takes key=value pairs; got {item!r}")
        parsed[key] = _value(text)
    return parsed


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
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


def new_numbered_folder(parent: Path, name: str) -> Path:
    """Create and return ``parent/<name>_<n>``, ``n`` one more than any existing one (an earlier one is never reused).

    Safe against another process starting at the same moment: ``mkdir`` either creates the folder or fails.
    """
    pattern = re.compile(rf"^{re.escape(name)}_(\d+)$")
    parent.mkdir(parents=True, exist_ok=True)
    number = max((int(m.group(1)) for p in parent.iterdir() if (m := pattern.match(p.name))), default=0) + 1
    while True:
        folder = parent / f"{name}_{number}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:  # another process took this number
            number += 1


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and check that a file can be written there (``OSError`` if not)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass
