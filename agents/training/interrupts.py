"""Ctrl-C and SIGTERM in the main job: the first stops a run, later ones wait until its files are complete.

Standard library only, so that ``mm-env-train`` can install its handlers before it imports torch and SB3.

Only signals whose handler already stops the process like Ctrl-C (raising ``KeyboardInterrupt``: Python's own for
SIGINT, :func:`interrupt` for SIGTERM in the main job, or one of the holders below) are taken over; any other handler
(a Ray worker's, say) is left alone. Outside the main thread, where Python cannot handle signals, nothing changes.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOTE = "still saving; stopping as soon as the files are complete"
STOPPING = "already stopping"


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

    def _restore_and_hand_over(self) -> None:
        """Restore the previous handlers; an enclosing :class:`InterruptOnce` learns of a signal this block took."""
        enclosing = {getattr(handler, "__self__", None) for handler in self._previous.values()}
        self._restore()
        if self.received is not None:
            for holder in enclosing:
                if isinstance(holder, InterruptOnce) and holder.received is None:
                    holder.received = self.received


class InterruptOnce(_Holder):
    """Within the block, the first Ctrl-C or SIGTERM raises ``KeyboardInterrupt``; any later one only prints a note.

    So that what the first signal sets going (saving what was learned, recording the run's status) is not itself cut
    short by a second one. :meth:`hold` makes every signal from then on only a note (while a failure is recorded).
    Leaving the block restores the previous handlers; if one of them is an enclosing :class:`InterruptOnce`'s and a
    signal came (or the block held), that one holds from then on too, so that a later signal cannot interrupt what
    the first set going once it goes on outside the inner block. ``keep``: after a signal, leaving the block keeps
    its handlers instead (later signals still only print the note), for a block that ends its process.
    """

    def __init__(self, note: str | None = NOTE, keep: bool = False) -> None:
        super().__init__(note)
        self.keep = keep

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
        if self.received is not None and self.keep:
            self._previous.clear()
            return
        self._restore_and_hand_over()


@contextlib.contextmanager
def command_signals(whole_process: bool) -> Iterator[InterruptOnce]:
    """Ctrl-C and SIGTERM for a command: the first stops it (``KeyboardInterrupt``), every later one only waits.

    SIGTERM (timeout, Docker, Slurm, systemd) stops the command like Ctrl-C. Once a signal has been received, within
    the block or within a block nested in it (a run's :class:`InterruptOnce`), later ones only print a note, whatever
    their order and timing. ``whole_process``: the command is its process (its entry point, not a call from Python),
    which exits when the block ends; after a signal, both are then ignored for the rest of the process: the previous
    handlers (the default for SIGTERM), and Python's own finalization, which puts back the default handler in place
    of any Python function, would let a second signal kill the process on its way out, with that signal's status
    instead of 130. Otherwise (a call from Python, a notebook), or if no signal came, the previous handlers come back.
    Outside the main thread nothing changes.
    """
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    holder = InterruptOnce(note=STOPPING, keep=whole_process)
    try:
        if in_main:
            signal.signal(signal.SIGTERM, interrupt)
        with holder:
            yield holder
    finally:
        if in_main and whole_process and holder.received is not None:
            for number in SIGNALS:  # the holder's handlers stayed until here (keep): no window
                signal.signal(number, signal.SIG_IGN)
        elif in_main:
            signal.signal(signal.SIGTERM, previous)


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


class PolledInterrupts(_Holder):
    """Within the block, Ctrl-C and SIGTERM only set :attr:`received` (the first prints the note), for a poller.

    For a loop that polls it and stops by itself, such as a sweep's trials on Ray Tune, where an exception raised
    inside would leave its workers in a state it cannot clean up.

    Leaving the block restores the previous handlers; if one of them is an enclosing :class:`InterruptOnce`'s and a
    signal came, that one holds from then on too (later signals only print its note).
    """

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._hold(signum)

    def __enter__(self) -> PolledInterrupts:
        super().__enter__()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._restore_and_hand_over()
