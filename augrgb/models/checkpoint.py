"""Stream checkpoints (what stage 3 and the student need) and training states (what ``--resume`` needs).

Both are dicts of tensors and plain data, written atomically and read with
``torch.load(weights_only=True)``: loading never runs code.

A stream checkpoint holds ``format``, ``hparams`` (``Stream(**hparams)``), ``state_dict``, ``classes``,
``head``, ``modality``, ``features`` (fps, snippet, stride, crop, encoder, weights SHA-256 of the
features it was trained on), ``thresholds`` (per-class probability thresholds chosen on validation
for dense heads, else None) and ``info`` (role, epoch, validation metrics, objective). Loaded, all but the
weights is one typed :class:`StreamCheckpoint` that travels with the stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from augrgb.core.errors import InputError
from augrgb.core.files import payload_sha256, save_atomic
from augrgb.core.grid import SnippetGrid
from augrgb.models.stream import Stream

STREAM_FORMAT = "augrgb.stream/1"
STATE_FORMAT = "augrgb.training-state/1"

DEFAULT_THRESHOLD = 0.5
"""Dense threshold of a class when the checkpoint stores none (and --threshold is not given), and of a class
without a positive validation snippet."""


def load_safe(path: str | Path, expected_format: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of one of our files, checking its ``format`` tag."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for corrupt or unsafe files
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


@dataclass(frozen=True)
class StreamCheckpoint:
    """Everything a stream checkpoint holds but the weights (see module docstring), where it was read from and
    ``sha256``, the hash of its content (:func:`payload_sha256`: equal for equal checkpoints)."""

    path: str
    sha256: str
    hparams: dict[str, Any]
    classes: list[str]
    head: str
    modality: str
    features: dict[str, Any]
    thresholds: list[float] | None
    info: dict[str, Any]

    @property
    def grid(self) -> SnippetGrid:
        """The snippet grid of the features the stream was trained on."""
        return SnippetGrid.of(self.features, source=self.path)

    @property
    def in_dim(self) -> int:
        """Feature channels the stream reads."""
        return int(self.hparams["in_dim"])


def load_stream(path: str | Path) -> tuple[Stream, StreamCheckpoint]:
    """A stream checkpoint as ``(Stream in eval mode on CPU, its StreamCheckpoint)``."""
    data = load_safe(path, STREAM_FORMAT)
    stream = Stream(**data["hparams"])
    try:
        stream.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the stored hyper-parameters ({str(exc).splitlines()[0]})") from None
    stream.eval()
    return stream, StreamCheckpoint(
        path=str(path), sha256=payload_sha256(data), hparams=dict(data["hparams"]),
        classes=list(data.get("classes") or []), head=data.get("head"), modality=data.get("modality"),
        features=dict(data.get("features") or {}), thresholds=data.get("thresholds"), info=dict(data.get("info") or {}))

