"""Exclusive locks between processes, for writers that share a folder (several ``augrgb extract`` jobs on
one store, two trainings pointed at one ``--out``).

We use ``fcntl.flock`` on a lock file rather than a lock library: the kernel releases the lock when
its holder exits, kill -9 included, so there are no stale locks to clean up and no timeouts to guess;
it works on local disks and on NFSv4 (Linux maps it to byte-range locks there). Lock files are left in
place: removing one while another process waits on it would let two holders in.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from augrgb.core.errors import InputError


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold the exclusive lock on ``path`` (created if missing) for the block, waiting for other holders."""
    fd = _open(Path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def try_lock(path: str | Path) -> int | None:
    """Take the exclusive lock on ``path`` without waiting: its open descriptor (close it to release), or None if held."""
    fd = _open(Path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


class FolderLock:
    """The lock that makes one process the only writer of an output folder (a training run's ``--out``).

    Taking it fails at once, with one line naming the folder and the process holding it, when another
    process has it; it is released on :meth:`release` or when the process ends, however it ends.
    """

    NAME = ".augrgb.lock"

    def __init__(self, folder: str | Path, what: str = "output folder") -> None:
        self.folder, self.what, self.fd = Path(folder), what, None

    def acquire(self) -> FolderLock:
        """Take the lock or raise :class:`InputError` naming the process that holds it."""
        path = self.folder / self.NAME
        fd = try_lock(path)
        if fd is None:
            holder = path.read_text(errors="replace").strip() or "another process"
            raise InputError(self.folder, f"{self.what} is in use by {holder}; wait for it to finish or choose another folder")
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {os.uname().nodename}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
