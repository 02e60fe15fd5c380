"""Writing files atomically and durably: a temporary file in the same folder, fsynced, then ``os.replace``
and an fsync of the folder, so a crash or kill leaves either the old file or the whole new one.

Temporary names start with a dot and end in ``.tmp`` (``.<name>.<random>.tmp``), so no reader that
globs ``*.h5``, ``*.png`` or ``*.pt`` ever sees one; :func:`sweep_temporaries` removes those a killed
process left behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"
_NAME_BYTES = 120  # longer names are shortened in temporary names, so any legal name gets a legal temporary one


def temp_prefix(name: str) -> str:
    """The start of the temporary names for final name ``name``: ``.<name>.`` (hashed when long)."""
    if len(name.encode("utf-8", "surrogateescape")) > _NAME_BYTES:
        name = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f".{name}."


def temp_file(path: Path) -> Path:
    """Create an empty temporary file beside ``path`` (in its folder, created if missing) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def fsync_file(path: str | Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | Path) -> None:
    """Flush ``folder``'s entries (a rename into it) to the disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Make the finished temporary file ``tmp`` durable and rename it over ``path``."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see either the old file or the whole new one."""
    path = Path(path)
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (HDF5, PNG, torch.save).

    When the block succeeds the file is made durable and renamed over ``path``; otherwise it is
    removed and ``path`` is left as it was. The temporary name ends in ``.tmp``, not in ``path``'s
    suffix: writers that choose a format by suffix must be told the format.
    """
    path = Path(path)
    tmp = temp_file(path)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_temporary(path: Path) -> bool:
    """True for a name :func:`temp_file` makes."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def sweep_temporaries(folder: str | Path, stale: Callable[[Path], bool] = lambda _: True) -> list[Path]:
    """Remove the temporary files in ``folder`` (not recursive) that ``stale`` says nobody is writing any more."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.iterdir():
        if is_temporary(tmp) and tmp.is_file() and stale(tmp):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
