"""Tiny student checkpoints and feature stores for the stage-3 tests.

``write_checkpoint`` writes the ``augrgb.stream/1`` dict directly (the format contract stage 3 reads).
``perfect_stream`` is an SS-TCN whose residual layers are switched off (zero 1x1 convs), so its logits
are ``gain * x_c - gain/2`` for input channel c: fed one-hot activity features it is a perfect model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from augrgb.extract.store import FeatureStore
from augrgb.models.stream import Stream

FEATURES = {"fps": 25.0, "snippet": 16, "stride": 16, "crop": "center", "size": 224, "short_side": 256,
            "encoder": "i3d-inceptionv1-kinetics400-rgb", "weights_sha256": "ab" * 32}


def write_checkpoint(path: Path, stream: Stream, classes: list[str], *, features: dict | None = None,
                     thresholds: list[float] | None = None, modality: str = "rgb") -> Path:
    """Save ``stream`` in the stream-checkpoint format."""
    torch.save({"format": "augrgb.stream/1", "hparams": stream.hparams(),
                "state_dict": {k: v.detach().clone() for k, v in stream.state_dict().items()},
                "classes": list(classes), "head": stream.head, "modality": modality,
                "features": dict(FEATURES if features is None else features), "thresholds": thresholds,
                "info": {"role": "student"}}, path)
    return path


def random_stream(num_classes: int = 3, head: str = "sigmoid", in_dim: int = 1024, seed: int = 0, filter: str = "ss-tcn") -> Stream:
    """A small randomly initialised stream in eval mode."""
    torch.manual_seed(seed)
    options = {"layers": 2} if filter == "ss-tcn" else {}
    return Stream(in_dim, num_classes, head, filter=filter, hidden=16, dropout=0.0, filter_options=options).eval()


def perfect_stream(num_classes: int, head: str = "sigmoid", in_dim: int = 1024, gain: float = 40.0) -> Stream:
    """Logit k = gain * (x_k - 0.5): input channel k (K channels, or K + 1 with background last) decides output k."""
    outputs = num_classes + (head == "softmax")
    stream = Stream(in_dim, num_classes, head, hidden=outputs, dropout=0.0, filter_options={"layers": 1}).eval()
    with torch.no_grad():
        for p in stream.parameters():
            p.zero_()
        stream.filter.bottleneck.weight[:, :outputs, 0] = torch.eye(outputs)
        stream.classifier.conv.weight[:, :, 0] = gain * torch.eye(outputs)
        stream.classifier.conv.bias[:] = -gain / 2
    return stream


def activity_features(segments: list[tuple[int, int, int]], snippets: int, num_classes: int, head: str,
                      in_dim: int = 1024) -> np.ndarray:
    """One-hot activity features (T, in_dim): channel c is 1 on snippets first..last of each (c, first, last);
    softmax heads also get the background channel K where no class is active."""
    x = np.zeros((snippets, in_dim), np.float32)
    for c, first, last in segments:
        x[first:last + 1, c] = 1
    if head == "softmax":
        x[:, num_classes] = x[:, :num_classes].max(axis=1) == 0
    return x


def write_store(root: Path, videos: dict[str, np.ndarray], frames: dict[str, int] | None = None,
                attrs: dict | None = None) -> Path:
    """A feature store with RGB features per video and the attributes extraction writes."""
    store = FeatureStore(root)
    for vid, x in videos.items():
        count = (frames or {}).get(vid, len(x) * 16)
        store.write(vid, "rgb", x, {**FEATURES, "frame_count": count, "padded_frames": 0, "precision": "fp32",
                                    "source_fps": 25.0, "flags": [], **(attrs or {})})
    return root


def write_dense_json(path: Path, videos: dict[str, dict], classes: list[str]) -> Path:
    """Ground truth ``{vid: {subset, duration, actions: [[c, start, end]]}}`` with classes.txt beside it."""
    path.write_text(json.dumps(videos))
    (path.parent / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return path
