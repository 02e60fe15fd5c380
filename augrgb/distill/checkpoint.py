"""Stream checkpoints (what stage 3 and the student need) and training states (what ``--resume`` needs).

Both are dicts of tensors and plain data, written atomically and read with
``torch.load(weights_only=True)``: loading never runs code.

A stream checkpoint holds ``format``, ``hparams`` (``Stream(**hparams)``), ``state_dict``, ``classes``,
``head``, ``modality``, ``features`` (fps, snippet, stride, crop, encoder, weights SHA-256 of the
features it was trained on), ``thresholds`` (per-class probability thresholds chosen on validation
for dense heads, else None) and ``info`` (role, epoch, validation metrics, objective).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from augrgb.atomic import replacing
from augrgb.distill.stream import Stream
from augrgb.errors import InputError
from augrgb.extract.weights import payload_sha256

STREAM_FORMAT = "augrgb.stream/1"
STATE_FORMAT = "augrgb.training-state/1"


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    with replacing(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_safe(path: str | Path, expected_format: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of one of our files, checking its ``format`` tag."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise InputError(path, f"not a readable checkpoint ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(path, f"not an {expected_format} file (found {found!r})")
    return data


def stream_payload(stream: Stream, *, classes: Sequence[str], modality: str, features: Mapping[str, Any],
                   thresholds: Sequence[float] | None = None, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a stream checkpoint holds (see module docstring), weights copied to the CPU."""
    state = {k: v.detach().cpu().clone() for k, v in stream.state_dict().items()}
    return {
        "format": STREAM_FORMAT, "hparams": stream.hparams(), "state_dict": state, "classes": list(classes),
        "head": stream.head, "modality": modality, "features": dict(features),
        "thresholds": None if thresholds is None else [float(t) for t in thresholds], "info": dict(info or {}),
    }


def save_stream(path: str | Path, stream: Stream, *, classes: Sequence[str], modality: str,
                features: Mapping[str, Any], thresholds: Sequence[float] | None = None,
                info: Mapping[str, Any] | None = None) -> Path:
    """Write a stream checkpoint (see module docstring)."""
    return save_atomic(stream_payload(stream, classes=classes, modality=modality, features=features,
                                      thresholds=thresholds, info=info), path)


def load_stream(path: str | Path) -> tuple[Stream, dict[str, Any]]:
    """A stream checkpoint as ``(Stream in eval mode on CPU, meta)``; meta is everything but the
    weights, plus ``path`` and ``sha256`` of its content (:func:`payload_sha256`: equal for equal checkpoints)."""
    data = load_safe(path, STREAM_FORMAT)
    stream = Stream(**data["hparams"])
    try:
        stream.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the stored hyper-parameters ({str(exc).splitlines()[0]})") from None
    stream.eval()
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    meta["path"], meta["sha256"] = str(path), payload_sha256(data)
    return stream, meta

