"""Command-line pieces that need only the standard library, for entry points that must start before torch loads."""

from __future__ import annotations

import argparse
import math

TRAIN_COMMAND = "mm-env-train"  # the main job's console script (``python train.py`` in a checkout runs the same)


def positive_integer(text: str) -> int:
    """An argparse type: a positive integer, also written as a float (``1e6``); anything else is a clear error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(value)
