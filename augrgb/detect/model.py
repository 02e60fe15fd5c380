"""The RGB student of a detection run: a stream checkpoint plus the feature settings it was trained on.

The checkpoint (``augrgb.stream/1``, see ``augrgb.models.checkpoint``) carries everything inference
needs; features made with other settings than the recorded ones are refused, never silently scored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from augrgb.core.errors import InputError
from augrgb.extract.settings import ExtractConfig
from augrgb.models.checkpoint import StreamCheckpoint, load_stream
from augrgb.models.heads import probabilities
from augrgb.models.stream import Stream

log = logging.getLogger(__name__)

FEATURE_KEYS = ("fps", "snippet", "stride", "crop", "size", "short_side", "encoder", "weights_sha256")
"""Feature settings compared between a checkpoint and the features it is given (those it records)."""

REQUIRED_KEYS = ("fps", "snippet", "stride")
"""Without these, snippets cannot be placed in time: such a checkpoint is refused."""


class ProbabilityModel(nn.Module):
    """A stream followed by its head's probabilities: features ``(B, C, T)`` + mask ``(B, 1, T)`` -> ``(B, K', T)``.

    K' = K for sigmoid heads, K + 1 with background last for softmax heads. This is what is exported.
    """

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream.eval()
        self.head = stream.head

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        return probabilities(self.stream(features, mask).logits, self.head)


def _same(expected: Any, found: Any) -> bool:
    if isinstance(expected, (int, float)) and isinstance(found, (int, float)):
        return math.isclose(float(expected), float(found), rel_tol=1e-9, abs_tol=1e-9)
    return str(expected) == str(found)


@dataclass
class Detector:
    """A loaded student checkpoint: the network and what its metadata says (see module docstring)."""

    model: ProbabilityModel
    meta: StreamCheckpoint

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @property
    def head(self) -> str:
        return self.meta.head

    @property
    def features(self) -> dict[str, Any]:
        """The feature settings the model was trained on (fps, snippet, stride, crop, weights SHA-256, ...)."""
        return dict(self.meta.features)

    @property
    def thresholds(self) -> list[float] | None:
        """Per-class probability thresholds chosen on validation (dense heads), or None."""
        return self.meta.thresholds

    @property
    def sha256(self) -> str:
        return self.meta.sha256

    def extract_config(self, **runtime: Any) -> ExtractConfig:
        """How to decode a video for this model: its recorded grid and crop, plus runtime options
        (precision, batch_size, backend, device; ``None`` values are ignored)."""
        grid = {k: self.features[k] for k in ("fps", "snippet", "stride", "crop", "size", "short_side") if k in self.features}
        try:
            return ExtractConfig(**grid, **{k: v for k, v in runtime.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(": ".join(filter(None, (".".join(map(str, e["loc"])), e["msg"]))) for e in exc.errors())
            raise InputError(self.meta.path, f"unusable feature settings or options ({problems})") from None

    def check_features(self, found: Mapping[str, Any], source: str | Path) -> None:
        """Refuse features whose settings differ from the model's (one line naming every difference)."""
        expected = self.features
        problems = []
        for key in FEATURE_KEYS:
            if key not in expected:
                continue
            if key not in found:
                problems.append(f"{key} not recorded (model: {expected[key]!r})")
            elif not _same(expected[key], found[key]):
                problems.append(f"{key} {found[key]!r} (model: {expected[key]!r})")
        if problems:
            raise InputError(source, "features made with other settings than the model was trained on: "
                                     + "; ".join(problems) + f" [model {self.meta.path}]")

    @torch.inference_mode()
    def probabilities(self, features: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Per-snippet probabilities ``(T, K')`` of ``(T, C)`` features (float32 numpy)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.meta.in_dim or not len(features):
            raise InputError("features", f"shape {features.shape}, the model reads (T >= 1, {self.meta.in_dim})")
        model = self.model.to(device)
        x = torch.from_numpy(np.ascontiguousarray(features.T))[None].to(device)
        out = model(x, torch.ones(1, 1, x.shape[-1], device=device))
        return out[0].T.float().cpu().numpy()


def load_detector(path: str | Path) -> Detector:
    """Load a student checkpoint for RGB-only detection, refusing what it cannot serve."""
    stream, meta = load_stream(path)
    if meta.modality != "rgb":
        raise InputError(path, f"is a {meta.modality!r} stream; detection reads RGB only (use the RGB student)")
    features = meta.features
    missing = [k for k in REQUIRED_KEYS if k not in features]
    if missing:
        raise InputError(path, f"does not record the feature {', '.join(missing)} it was trained on")
    if len(meta.classes) != stream.num_classes:
        raise InputError(path, f"lists {len(meta.classes)} class names for {stream.num_classes} classes")
    thresholds = meta.thresholds
    if thresholds is not None and len(thresholds) != stream.num_classes:
        raise InputError(path, f"stores {len(thresholds)} thresholds for {stream.num_classes} classes")
    unchecked = [k for k in ("crop", "weights_sha256") if k not in features]
    if unchecked:
        log.warning("%s: does not record the feature %s; features cannot be checked against it", path, " and ".join(unchecked))
    return Detector(ProbabilityModel(stream), meta)
