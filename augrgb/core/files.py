"""Files: atomic writes (a temporary file in the same folder, then ``os.replace``) and content hashes of
what PyTorch files hold (equal for equal content, whatever the file's random serialization id)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from augrgb.core.errors import InputError


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (HDF5, PNG, torch.save).

    When the block succeeds the file is renamed over ``path``; otherwise it is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
