"""What every feature figure needs: checkpoints loaded and checked together, a video's features from a
store, and a stream's features H (the temporal filter's output) computed in eval mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augrgb.annotations import Annotations, VideoAnnotation, read_annotations
from augrgb.core.errors import InputError
from augrgb.core.grid import GRID_KEYS, SnippetGrid
from augrgb.core.paths import check_video_id
from augrgb.distill.data import FeatureSource, VideoItem, load_video
from augrgb.models.checkpoint import StreamCheckpoint, load_stream
from augrgb.models.stream import Stream


@dataclass
class Checkpoint:
    """A stream checkpoint ready to run: its figure label, the stream (eval mode, CPU) and its meta."""

    label: str
    stream: Stream
    meta: StreamCheckpoint

    @property
    def modality(self) -> str:
        return str(self.meta.modality)


def default_label(path: str | Path, modality: str) -> str:
    """``run (modality)`` for ``run/best.pt`` or ``run/last.pt``, else ``file stem (modality)``."""
    path = Path(path)
    name = path.parent.name if path.stem in ("best", "last") and path.parent.name else path.stem
    return f"{name} ({modality})"


def load_checkpoints(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[Checkpoint]:
    """Load stream checkpoints that must share classes and snippet grid (they are compared in one figure)."""
    if not paths:
        raise InputError("--checkpoint", "give at least one stream checkpoint")
    if labels and len(labels) != len(paths):
        raise InputError("--label", f"{len(labels)} label(s) for {len(paths)} checkpoint(s)")
    loaded = []
    for i, path in enumerate(paths):
        stream, meta = load_stream(path)
        loaded.append(Checkpoint(labels[i] if labels else default_label(path, meta.modality), stream, meta))
    ref = loaded[0].meta
    for ck in loaded[1:]:
        if ck.meta.classes != ref.classes:
            raise InputError(ck.meta.path, f"{len(ck.meta.classes)} classes differ from the "
                                              f"{len(ref.classes)} of {ref.path}")
        grid, ref_grid = (tuple(m.features.get(k) for k in GRID_KEYS) for m in (ck.meta, ref))
        if grid != ref_grid:
            raise InputError(ck.meta.path, f"trained on snippet grid (fps, snippet, stride) {grid}, "
                                              f"{ref.path} on {ref_grid}")
    return loaded


def read_checked_annotations(path: str | Path, checkpoints: Sequence[Checkpoint], fmt: str = "auto") -> Annotations:
    """Annotations whose class count matches the checkpoints'."""
    annotations = read_annotations(path, fmt)
    classes = checkpoints[0].meta.classes
    if annotations.num_classes != len(classes):
        raise InputError(path, f"{annotations.num_classes} classes, the checkpoint {checkpoints[0].meta.path} "
                               f"has {len(classes)}")
    return annotations


def find_video(video_id: str, annotations: Annotations | None, source: str | Path | None = None) -> VideoAnnotation:
    """The annotated video ``video_id``, or an unannotated stand-in when there are no annotations."""
    check_video_id(video_id)
    if annotations is None:
        return VideoAnnotation(video_id, None, "unknown")
    if video_id not in annotations:
        raise InputError(f"video {video_id!r}", f"not in the annotations {source or ''}".rstrip())
    return annotations.videos[video_id]


def load_features(features: str | Path, checkpoints: Sequence[Checkpoint], video: VideoAnnotation) -> VideoItem:
    """Every modality the checkpoints read, for one video, aligned on the checkpoints' snippet grid."""
    ref = checkpoints[0].meta
    source = FeatureSource(features, ref.grid)
    modalities = list(dict.fromkeys(ck.modality for ck in checkpoints))
    return load_video(source, video, modalities, len(ref.classes), ref.head)


def hidden_features(checkpoint: Checkpoint, item: VideoItem) -> np.ndarray:
    """Features H ``(hidden, T)`` of the stream over the whole video (eval mode, no padding)."""
    x = item.features[checkpoint.modality]
    in_dim = checkpoint.stream.hparams()["in_dim"]
    if x.shape[1] != in_dim:
        raise InputError(item.video_id, f"{checkpoint.modality} features have {x.shape[1]} channels, the checkpoint "
                                        f"{checkpoint.meta.path} reads {in_dim}")
    checkpoint.stream.eval()
    with torch.inference_mode():
        h = checkpoint.stream(torch.from_numpy(x.astype(np.float32)).T[None], torch.ones(1, 1, item.length)).features
    return h[0].float().numpy()


def snippet_times(item: VideoItem) -> np.ndarray:
    """Centre time (s) of each snippet of ``item`` on its feature grid."""
    prov = next(iter(item.provenance.values()))
    return SnippetGrid.of(prov).centres(item.length)
