"""Files: atomic, durable writes (a temporary file in the same folder, fsynced, then ``os.replace`` and an fsync of
the folder, so a crash or kill leaves either the old file or the whole new one) and content hashes of what
PyTorch files hold (equal for equal content, whatever the file's random serialization id).

Temporary names start with a dot and end in ``.tmp`` (``.<name>.<random>.tmp``), so no reader that globs
``*.h5``, ``*.png`` or ``*.pt`` ever sees one; :func:`sweep_temporaries` removes those a killed process left.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from augrgb.core.errors import InputError

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


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    with replacing(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 of a state dict's names, dtypes, shapes and values, in key order.

    This identifies the weights themselves: ``torch.save`` writes a random serialization id into every
    file, so two fetches (or a ``.ckpt`` and its converted ``.pt``) of the same weights differ as files.
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def payload_sha256(payload: object) -> str:
    """Hex SHA-256 of a checkpoint's content: tensors by dtype, shape and values, dicts by sorted key, plain values
    by their JSON text. Like :func:`state_sha256`, it names what was saved, not the file (which holds a random id)."""
    digest = hashlib.sha256()

    def add(obj: object) -> None:
        if isinstance(obj, torch.Tensor):
            tensor = obj.detach().cpu().contiguous()
            digest.update(f"T|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            digest.update(f"D{len(obj)}|".encode())
            for key in sorted(obj, key=str):
                add(str(key))
                add(obj[key])
        elif isinstance(obj, (list, tuple)):
            digest.update(f"L{len(obj)}|".encode())
            for item in obj:
                add(item)
        else:
            digest.update(f"V{json.dumps(obj)}|".encode())

    add(payload)
    return digest.hexdigest()


def checkpoint_sha256(path: str | Path) -> str:
    """:func:`payload_sha256` of a PyTorch checkpoint file, read with ``weights_only=True``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise InputError(path, f"not a readable weights-only checkpoint ({str(exc).splitlines()[0][:200]})") from None
    return payload_sha256(payload)
