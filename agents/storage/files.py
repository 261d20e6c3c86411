"""Writing files safely: atomically (a temporary file, then a rename), staged, and in folders that never overwrite.

A file written here holds either its previous complete version or its new complete version, whatever happens
meanwhile: a second Ctrl-C, SIGTERM, a full disk.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _file_mode() -> int:
    # mkstemp creates files readable by their owner only; a run's files get the usual permissions instead.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()  # read once at import, before any thread could race on the process-wide umask


def _fsync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder's entry is on disk (POSIX; elsewhere there is nothing to do).
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, flushed, fsynced, then renamed.

    The final name is only ever written by the rename, so ``path`` is never seen truncated; on any failure or
    interruption the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), _FILE_MODE)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (NaN allowed, as Python's json reads it back)."""
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=True))


def write_figure(figure: Any, path: Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG to ``path`` atomically (creating the folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return path


@contextlib.contextmanager
def staged_files(folder: Path) -> Iterator[Path]:
    """A scratch folder inside ``folder``; when the block succeeds, each file in it is moved into ``folder`` atomically.

    For writers that write plain files themselves (such as :func:`agents.evaluation.report.write_report`): they write
    into the scratch folder, and each file is fsynced and renamed over its final name only once the writer has
    finished, so no file of ``folder`` is ever seen half-written. On failure the scratch folder is removed and
    ``folder`` is unchanged.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
    try:
        yield scratch
        for item in sorted(scratch.iterdir()):
            if item.is_file():
                with open(item, "rb+") as file:
                    os.fsync(file.fileno())
                os.replace(item, folder / item.name)
        _fsync_folder(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def writable_problem(folder: Path) -> str | None:
    """Create ``folder`` if needed and write (then remove) a file there; a one-line problem, or ``None`` if fine."""
    try:
        check_writable(Path(folder))
    except OSError as error:
        return f"{folder}: cannot write there ({error.strerror or error})"
    return None


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
