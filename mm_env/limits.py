"""The limits every front-end and command checks before any work: seeds, episode counts, simulated steps, options.

Each check raises ``ValueError`` with one line naming the value and the allowed range (the commands turn it into
their one-line error, exit status 2). The figures:

* a seed is an integer in ``[0, 2**32 - 1]``, as NumPy's generators require;
* a Monte Carlo evaluation runs its episodes as one batch of at most :data:`MAX_EPISODES` environments, about
  :data:`BYTES_PER_EPISODE` bytes each (per market maker), so at most about 5 GB;
* and simulates at most :data:`MAX_SIMULATED_STEPS` environment steps (episodes × ``T``) per policy, about a minute
  and a half at the batch's 20 million steps per second.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from numbers import Integral
from typing import Any

MAX_SEED = 2**32 - 1
"""The largest seed (NumPy's generators take seeds in ``[0, 2**32 - 1]`` from every front-end)."""
MAX_EPISODES = 10_000_000
"""The most episodes (environments) of one batch: a Monte Carlo evaluation runs its episodes as one batch."""
BYTES_PER_EPISODE = 500
"""What one environment of a batch evaluation holds, measured (about 400 bytes per market maker): 5 GB at the most."""
MAX_SIMULATED_STEPS = 2_000_000_000
"""The most environment steps (episodes × ``T``) of one policy's Monte Carlo evaluation (``MAX_EPISODES`` episodes of
the default ``T = 200``)."""


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer in ``[0, MAX_SEED]`` (``ValueError`` naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) <= MAX_SEED:
        raise ValueError(f"{_named(name, value)} is invalid: must be an integer in [0, 2**32 - 1]")
    return int(value)


def check_episodes(value: Any, name: str = "episodes", minimum: int = 1) -> int:
    """A number of episodes of one batch: an integer in ``[minimum, MAX_EPISODES]``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not minimum <= int(value) <= MAX_EPISODES:
        raise ValueError(
            f"{_named(name, value)} is invalid: must be in [{minimum}, {MAX_EPISODES:,}]: an integer at least "
            f"{minimum}, and at most {MAX_EPISODES:,} (one batch of about {BYTES_PER_EPISODE} bytes per episode)"
        )
    return int(value)


def simulation_problem(episodes: int, T: int, name: str = "episodes", makers: int = 1) -> str | None:
    """Why ``episodes`` episodes of ``T`` steps (``makers`` market makers each) are too many to simulate, or ``None``.

    The batch holds ``episodes × makers`` market makers' values (at most :data:`MAX_EPISODES`), and the policy steps
    ``episodes × T`` environments (at most :data:`MAX_SIMULATED_STEPS`).
    """
    if episodes * makers > MAX_EPISODES:
        most = MAX_EPISODES // makers
        each = f" ({makers} market makers each)" if makers > 1 else ""
        return f"{_named(name, episodes)} is invalid: must be an integer at most {most:,}{each}"
    if episodes * T > MAX_SIMULATED_STEPS:
        return (
            f"{_named(name, episodes)} is too many for T={T:,}: {episodes * T:,} steps per policy, more than "
            f"{MAX_SIMULATED_STEPS:,}; use fewer episodes or a smaller T"
        )
    return None


def _named(name: str, value: Any) -> str:
    # "--seed -1" for a command's option, "seed=-1" for a keyword.
    return f"{name} {value!r}" if name.startswith("--") else f"{name}={value!r}"


def check_options(options: Any, allowed: Collection[str] | None = ()) -> Mapping[str, Any]:
    """``reset``'s ``options``: ``None`` or a mapping whose keys are among ``allowed`` (returned as a mapping).

    ``allowed=None`` takes any keys (PettingZoo's convention: its API test passes options the env ignores).
    """
    if options is None:
        return {}
    if allowed is None:
        takes = "a dict"
    elif allowed:
        takes = f"a dict with keys among {sorted(allowed)}"
    else:
        takes = "an empty dict (no reset options are taken)"
    if not isinstance(options, Mapping):
        raise ValueError(f"options={options!r} is invalid: must be None or {takes}")
    if allowed is None:
        return options
    unknown = sorted(str(key) for key in options if key not in allowed)
    if unknown:
        raise ValueError(f"options key {unknown[0]!r} is invalid: must be None or {takes}")
    return options


__all__ = [
    "BYTES_PER_EPISODE",
    "MAX_EPISODES",
    "MAX_SEED",
    "MAX_SIMULATED_STEPS",
    "check_episodes",
    "check_options",
    "check_seed",
    "simulation_problem",
]
