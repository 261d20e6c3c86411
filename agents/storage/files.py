"""Writing files safely: atomically (a temporary file, then a rename), staged, and in folders that never overwrite.

A file written here holds either its previous complete version or its new complete version, whatever happens
meanwhile: a second Ctrl-C, SIGTERM, a full disk. Files that may come from elsewhere are read bounded
(:func:`read_data_file`): their size, number of values and depth are limited before they can exhaust anything.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import reprlib
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
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


TEMPORARY_PREFIX = ".mm_env-"
TEMPORARY_SUFFIX = ".tmp"
STAGING_PREFIX = ".mm_env-staging-"
# The names tempfile gives here: this module's prefix, eight characters of tempfile's alphabet, the suffix. Only these
# are ever removed as a dead process's leftovers (:func:`remove_temporaries`); a user's ``.backup.20240101.tmp`` is not.
_TEMPORARY_NAME = re.compile(r"^\.mm_env-.+\.[a-z0-9_]{8}\.tmp$")
_STAGING_NAME = re.compile(r"^\.mm_env-staging-[a-z0-9_]{8}$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, flushed, fsynced, then renamed.

    The final name is only ever written by the rename, so ``path`` is never seen truncated; on any failure or
    interruption (an ``OSError`` such as a full disk, ``KeyboardInterrupt``, ``SystemExit``) once the temporary file
    ``.mm_env-<name>.XXXXXXXX.tmp`` is created, it is removed and ``path`` is left as it was. A process killed
    outright (SIGKILL, a power cut), or interrupted inside ``mkstemp`` between its creating the file and returning its
    name, can leave the temporary file behind: :func:`remove_temporaries` removes it later.
    """
    path = Path(path)
    temporary: str | None = None
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f"{TEMPORARY_PREFIX}{path.name}.", suffix=TEMPORARY_SUFFIX
        )
        with os.fdopen(descriptor, "wb") as file:
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), _FILE_MODE)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def overwrite_in_place(path: Path, data: bytes) -> None:
    """Rewrite the existing file ``path`` with ``data`` in place: the last resort when :func:`atomic_write_bytes` fails.

    For a small record on a full disk: it creates no file, and a few hundred bytes over a file that already holds a
    block need no new space on most file systems. Not atomic (a crash in the middle can leave it torn), hence only a
    fallback. ``OSError`` if ``path`` does not exist or cannot be written.
    """
    descriptor = os.open(path, os.O_WRONLY)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.truncate()
        file.flush()
        os.fsync(file.fileno())


def remove_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files and staging folders that a killed process left in ``folder``; return them.

    Only names of the exact shapes this module creates (``.mm_env-<name>.XXXXXXXX.tmp`` files,
    ``.mm_env-staging-XXXXXXXX`` folders) are removed, and only directly in ``folder``. Call it only for a folder
    no live process writes in (a run whose process is gone): a live writer's temporary file has the same shape.
    """
    removed = []
    with contextlib.suppress(OSError):
        for item in Path(folder).iterdir():
            if item.is_file() and not item.is_symlink() and _TEMPORARY_NAME.match(item.name):
                with contextlib.suppress(OSError):
                    item.unlink()
                    removed.append(item)
            elif item.is_dir() and not item.is_symlink() and _STAGING_NAME.match(item.name):
                shutil.rmtree(item, ignore_errors=True)
                removed.append(item)
    return removed


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
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix=STAGING_PREFIX))
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


# ---------------------------------------------------------------------------------------------------------------------
# Reading files that may come from elsewhere (a run folder is untrusted data): bounded before anything is read


def read_bytes_limited(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing one larger than ``limit`` bytes before reading it.

    Raises ``ValueError`` (one line) for something other than a regular file (a FIFO would block, a device never
    end) or a file larger than ``limit``; at most ``limit + 1`` bytes are ever read, however the file grows
    meanwhile. ``OSError`` if it cannot be opened.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise ValueError("not a regular file")
        if status.st_size > limit:
            raise ValueError(f"{status.st_size:,} bytes, more than the {limit:,} allowed")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"more than the {limit:,} bytes allowed")
    return data


@dataclass(frozen=True)
class DataLimits:
    """How much of a JSON or YAML file from elsewhere is read: checked before parsing (bytes) and after (the rest)."""

    bytes: int
    """The largest file read at all."""
    values: int = 100_000
    """The most values (scalars, lists, mappings, keys) once YAML's aliases are expanded: an alias bomb stops here."""
    depth: int = 32
    """The deepest nesting of lists and mappings."""


def read_data_file(path: Path, limits: DataLimits) -> Any:
    """The plain data in a JSON file or (``.yaml``/``.yml``) a YAML file that may come from elsewhere, bounded.

    The file's size is checked before it is read (:func:`read_bytes_limited`); JSON is parsed by :mod:`json` (which
    also reads ``NaN`` and ``Infinity``), YAML by ``yaml.safe_load``'s loader (plain data only), counting every value
    as aliases expand it, so that a few hundred bytes of nested aliases are refused while composed; then the number
    of values and the depth are checked. Any problem raises ``ValueError`` with a one-line reason (``OSError`` if the
    file cannot be opened).
    """
    path = Path(path)
    return parse_data(read_bytes_limited(path, limits.bytes), limits, yaml_syntax=path.suffix in (".yaml", ".yml"))


def parse_data(data: bytes, limits: DataLimits, yaml_syntax: bool = False) -> Any:
    """The plain data in ``data`` (UTF-8 JSON, or YAML), bounded as :func:`read_data_file` says."""
    if len(data) > limits.bytes:
        raise ValueError(f"{len(data):,} bytes, more than the {limits.bytes:,} allowed")
    try:
        text = data.decode("utf-8")
        value = _parse_yaml(text, limits.values) if yaml_syntax else json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {limits.depth} deep") from None
    except ValueError as error:  # also UnicodeDecodeError, json's errors, integers too long to read
        raise ValueError(" ".join(str(error).split())) from None
    _check_extent(value, limits)
    return value


def _parse_yaml(text: str, max_values: int) -> Any:
    """``yaml.safe_load(text)``, refusing more than ``max_values`` values with aliases expanded (``ValueError``).

    PyYAML comes with the extras that write YAML (``train``); the core install reads no YAML, so it is imported here.
    """
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """``yaml.safe_load``'s loader that knows each node's size with aliases expanded."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            node: Any = super().compose_node(parent, index)
            if not hasattr(node, "expanded_size"):  # an alias returns its anchor's node, already measured
                if isinstance(node, yaml.MappingNode):
                    children = [item for pair in node.value for item in pair]
                else:
                    children = node.value if isinstance(node, yaml.SequenceNode) else []
                node.expanded_size = 1 + sum(getattr(child, "expanded_size", 1) for child in children)
            if node.expanded_size > max_values:
                raise ValueError(f"more than {max_values:,} values (aliases expanded)")
            return node

    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML: {' '.join(str(error).split())}") from None
    finally:
        loader.dispose()


def _check_extent(value: Any, limits: DataLimits) -> None:
    """``ValueError`` if ``value`` holds more than ``limits.values`` values or nests deeper than ``limits.depth``."""
    count, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > limits.values:
            raise ValueError(f"more than {limits.values:,} values")
        if isinstance(item, (dict, list)) and depth >= limits.depth:
            raise ValueError(f"nested more than {limits.depth} deep")
        if isinstance(item, dict):
            count += len(item)  # the keys
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlevel = 40, 40, 3
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4


def shown(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters however large ``value`` is: for values read from a file."""
    return _SHOWN.repr(value)
