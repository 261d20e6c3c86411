"""Ctrl-C and SIGTERM in the main job: the first stops a run, later ones wait until its files are complete.

Standard library only, so that ``mm-env-train`` can install its handlers before it imports torch and SB3.

Only signals whose handler already stops the process like Ctrl-C (raising ``KeyboardInterrupt``: Python's own for
SIGINT, :func:`interrupt` for SIGTERM in the main job, or one of the holders below) are taken over; any other handler
(a Ray worker's, say) is left alone. Outside the main thread, where Python cannot handle signals, nothing changes.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOTE = "still saving; stopping as soon as the files are complete"


def interrupt(signum: int, frame: FrameType | None) -> None:
    """A handler that stops the process like Ctrl-C does, by raising ``KeyboardInterrupt`` (the main job's SIGTERM)."""
    raise KeyboardInterrupt


def _stops_like_ctrl_c(handler: Any) -> bool:
    owner = getattr(handler, "__self__", None)
    return handler is signal.default_int_handler or handler is interrupt or isinstance(owner, (_Holder))


class _Holder:
    """Installs its own handler, within a ``with`` block, for the signals that stop the process like Ctrl-C."""

    def __init__(self, note: str | None = NOTE) -> None:
        self.note = note
        self.received: int | None = None  # the first signal received in the block
        self._noted = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raise NotImplementedError

    def _hold(self, signum: int) -> None:
        if self.received is None:
            self.received = signum
        if not self._noted and self.note is not None:
            self._noted = True
            print(self.note, file=sys.stderr, flush=True)

    def __enter__(self) -> Any:
        self.received, self._noted = None, False
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                handler = signal.getsignal(number)
                if _stops_like_ctrl_c(handler):
                    self._previous[number] = handler
                    signal.signal(number, self._handle)
        return self

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


class InterruptOnce(_Holder):
    """Within the block, the first Ctrl-C or SIGTERM raises ``KeyboardInterrupt``; any later one only prints a note.

    So that what the first signal sets going (saving what was learned, recording the run's status) is not itself cut
    short by a second one. :meth:`hold` makes every signal from then on only a note (while a failure is recorded).
    Leaving the block restores the previous handlers.
    """

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._hold(signum)
            return
        self.received = signum
        raise KeyboardInterrupt

    def hold(self) -> None:
        """From now on, signals only print a note."""
        if self.received is None:
            self.received = -1  # no signal came: held from here on all the same
            self._noted = False

    def __enter__(self) -> InterruptOnce:
        super().__enter__()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._restore()


class DeferredInterrupts(_Holder):
    """Within the block, Ctrl-C and SIGTERM only print a note; after it, the first one takes effect.

    For a save that must not be cut in half (a model and its statistics): on leaving, the previous handlers come
    back and the first signal held is delivered to them again, so the process stops as it would have, only later.
    """

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._hold(signum)

    def __enter__(self) -> DeferredInterrupts:
        super().__enter__()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._restore()
        if self.received is not None and exc_type is None:
            signal.raise_signal(self.received)
