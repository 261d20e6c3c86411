"""Helpers shared by the mm_env test modules (imported as ``helpers``)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from mm_env.dynamics import Draws, MarketState
from mm_env.params import MarketParams
from mm_env.presets import make_params

ENV_ID = "mm_env/MarketMaking-v0"
ARTICLE_ENV_ID = "mm_env/ArticleMarketMaker-v0"
# The main job on a tiny budget: a few seconds, every stage (periodic evaluations, final comparison, files).
TINY_TRAIN = [
    "--timesteps",
    "2048",
    "--n-envs",
    "4",
    "--hyperparams",
    "n_steps=256",
    "batch_size=256",
    "n_epochs=2",
    "--eval-freq",
    "1024",
    "--eval-episodes",
    "50",
    "--final-episodes",
    "200",
    "--no-progress-bar",
]
ALL_FEATURES = ("inventory", "time_left", "mid_change", "last_fill")
STATE_KEYS = {"inventory", "mid", "cash", "mtm_pnl"}
TRADE_KEYS = {
    "bid",
    "ask",
    "trader_side",
    "trader_size",
    "fill_side",
    "fill_size",
    "spread_captured",
    "inventory_penalty",
}


def scalar_state(t=0, inventory=0, mid=100.0, cash=0.0, mid_change=0.0, traded=0, transient=0.0) -> MarketState:
    """A hand-built single-environment state."""
    return MarketState(t, inventory, mid, cash, mid_change, traded, transient)


def trader_draws(
    side: int, size: int, fill: float, noise: float = 0.0, params: MarketParams | None = None, last_side: int = 0
) -> Draws:
    """Raw draws that bring an uninformed trader on ``side`` (+1 buys, −1 sells, 0 none) wanting ``size``.

    Each uniform is the middle of the interval that gives the event under ``params`` (default: the default model),
    computed here from MODEL.md's rules: arrival ``u < π``, buy ``u < π·(p_buy + φ/2·L)``, sizes by inverse CDF.
    """
    params = params or make_params()
    flow = params.flow
    buy = flow.pi * (flow.p_buy + 0.5 * flow.momentum * last_side)
    u_side = {1: 0.5 * buy, -1: 0.5 * (buy + flow.pi), 0: 0.5 * (flow.pi + 1.0)}[side]
    if side == 0 and flow.pi >= 1.0:
        raise ValueError("a trader always arrives when pi = 1")
    u_size = 0.0
    if side != 0:
        index = flow.sizes.index(size)
        low = sum(flow.probs[:index])
        u_size = low + 0.5 * flow.probs[index]
    return Draws(u_side, u_size, fill, noise)


class StubRng:
    """A stand-in for ``numpy.random.Generator`` that returns fixed uniforms (and zero normals).

    ``random()`` returns the given uniforms in turn; ``random(shape)`` fills an array with them in C order.
    """

    def __init__(self, uniforms: Sequence[float], normal: float = 0.0) -> None:
        self.uniforms = list(uniforms)
        self.normal = normal
        self.position = 0

    def _next(self) -> float:
        value = self.uniforms[self.position % len(self.uniforms)]
        self.position += 1
        return value

    def random(self, size=None):
        if size is None:
            return self._next()
        out = np.empty(size)
        for index in np.ndindex(out.shape):
            out[index] = self._next()
        return out

    def standard_normal(self, size=None):
        if size is None:
            return self.normal
        return np.full(size, self.normal)


def random_actions(seed: int, n: int, shape=(2,), low: float = -1.2, high: float = 1.2) -> np.ndarray:
    """Reproducible actions, partly outside the [-1, 1] box to exercise clipping."""
    return np.random.default_rng(seed).uniform(low, high, size=(n, *shape)).astype(np.float32)


def trader_of(draws: Draws, params: MarketParams, last_side: int = 0) -> tuple[int, int]:
    """The (side, size) MODEL.md §2/§7.1 gives raw scalar draws, derived here without the code under test.

    Uninformed traders only (``informed = 0``): a trader arrives when ``u_side < π`` and buys when
    ``u_side < π·(p_buy + φ/2·L)``; its size is the first size whose cumulative probability exceeds ``u_size``.
    """
    flow = params.flow
    if not draws.side < flow.pi:
        return 0, 0
    side = 1 if draws.side < flow.pi * (flow.p_buy + 0.5 * flow.momentum * last_side) else -1
    cumulative = 0.0
    for size, prob in zip(flow.sizes, flow.probs, strict=True):
        cumulative += prob
        if draws.size < cumulative:
            return side, size
    return side, flow.sizes[-1]


def run_command(main: Callable[[list[str]], int], *args: str) -> subprocess.CompletedProcess:
    """A command's ``main(argv)`` in this process, as a shell would see it: its exit status, stdout and stderr.

    In-process runs spare each call the imports of a fresh interpreter (torch, SB3: seconds); the end-to-end tests
    that need a real process (signals, a fresh install) start one.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exit:  # argparse's errors and --help
            status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    return subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())


ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def sigint_raises() -> Iterator[None]:
    """Within the block, SIGINT raises ``KeyboardInterrupt`` here and in the processes started meanwhile.

    Tests started as a background job of a non-interactive shell inherit SIGINT ignored, and an ignored signal stays
    ignored across ``exec``: a Ctrl-C test would then see nothing happen. A handler is reset to the default by
    ``exec``, so installing Python's own one here gives every child Python's Ctrl-C too, with no ``preexec_fn``
    (which must not run in a process that has JAX's threads).
    """
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def start_in_background(command: Sequence[str]) -> subprocess.Popen:
    """A command in the background from the repository root, as from a shell, but with SIGINT raising
    KeyboardInterrupt (a background child of a non-interactive shell would ignore it) and unbuffered output, so that
    it can be followed line by line."""
    return subprocess.Popen(
        list(command),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
