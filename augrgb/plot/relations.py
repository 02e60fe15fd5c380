"""Relation matrices of a video: the T x T correlations between a stream's snippet features H
(``relation_matrix`` of the Global Contextual Relations loss), one panel per checkpoint on one colour scale.

The two-stream panel is the relation matrix of the two streams' H concatenated along channels (each
snippet's joint vector, centred and L2-normalised like any other): the snippet similarity a fused
feature would see. A stream whose H has larger magnitudes weighs more in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from augrgb.annotations import VideoAnnotation
from augrgb.core.errors import InputError
from augrgb.distill.losses.sequence import relation_matrix
from augrgb.plot.figure import new_figure, save_png
from augrgb.plot.segments import draw_segments
from augrgb.plot.streams import (
    default_label,
    find_video,
    hidden_features,
    load_checkpoints,
    load_features,
    read_checked_annotations,
    snippet_times,
)


def relation(features: np.ndarray) -> np.ndarray:
    """``(C, T)`` features of one video -> its ``(T, T)`` relation matrix (correlations in [-1, 1])."""
    h = torch.from_numpy(np.asarray(features, dtype=np.float32))[None]
    return relation_matrix(h, torch.ones(1, 1, h.shape[-1]))[0].numpy()


def two_stream_features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The two-stream H of a video: the streams' ``(C_a, T)`` and ``(C_b, T)`` H stacked along channels."""
    return np.concatenate([a, b], axis=0)


def relation_panels(checkpoints: Sequence[str | Path], features: str | Path, video: str, *,
                    labels: Sequence[str] | None = None, two_stream: Sequence[str | Path] | None = None,
                    annotations: str | Path | None = None,
                    fmt: str = "auto") -> tuple[list[tuple[str, np.ndarray]], np.ndarray, VideoAnnotation, list[str]]:
    """``(panels [(title, T x T matrix)], snippet times (s), VideoAnnotation, class names)`` of one video."""
    if two_stream is not None and len(two_stream) != 2:
        raise InputError("--two-stream", f"needs exactly two checkpoints (RGB and teacher), got {len(two_stream)}")
    if labels and len(labels) != len(checkpoints):
        raise InputError("--label", f"{len(labels)} label(s) for {len(checkpoints)} checkpoint(s)")
    extra = list(two_stream or [])
    loaded = load_checkpoints([*checkpoints, *extra])
    for ck, label in zip(loaded, labels or []):
        ck.label = label
    ann = read_checked_annotations(annotations, loaded, fmt) if annotations is not None else None
    target = find_video(video, ann, annotations)
    item = load_features(features, loaded, target)
    hs = [hidden_features(ck, item) for ck in loaded]
    panels = [(ck.label, relation(h)) for ck, h in zip(loaded[:len(checkpoints)], hs)]
    if two_stream is not None:
        names = " + ".join(default_label(p, ck.modality) for p, ck in zip(extra, loaded[len(checkpoints):]))
        panels.append((f"two-stream: {names}", relation(two_stream_features(hs[-2], hs[-1]))))
    return panels, snippet_times(item), target, list(loaded[0].meta.classes)


def plot_relations(out: str | Path, checkpoints: Sequence[str | Path], features: str | Path, video: str, *,
                   labels: Sequence[str] | None = None, two_stream: Sequence[str | Path] | None = None,
                   annotations: str | Path | None = None, fmt: str = "auto") -> Path:
    """Draw the relation matrices of ``video`` side by side (same colour scale [-1, 1]) into ``out`` (PNG)."""
    panels, times, target, classes = relation_panels(checkpoints, features, video, labels=labels,
                                                     two_stream=two_stream, annotations=annotations, fmt=fmt)
    half = (times[1] - times[0]) / 2 if len(times) > 1 else 0.5
    extent = (times[0] - half, times[-1] + half, times[-1] + half, times[0] - half)
    with_truth = annotations is not None
    rows = len({s.label for s in target.segments})
    fig = new_figure(3.6 * len(panels) + 0.8, 4.2 + (0.3 + 0.16 * rows if with_truth else 0))
    grid = fig.add_gridspec(2 if with_truth else 1, len(panels),
                            height_ratios=[1, 0.08 + 0.04 * rows] if with_truth else None)
    image = None
    for col, (title, matrix) in enumerate(panels):
        ax = fig.add_subplot(grid[0, col])
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1, extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("snippet time (s)")
        if col == 0:
            ax.set_ylabel("snippet time (s)")
        if with_truth:
            strip = fig.add_subplot(grid[1, col], sharex=ax)
            draw_segments(strip, target.segments, classes)
            strip.set_xlabel("ground truth (s)")
            ax.set_xlabel("")
            if col:
                strip.set_yticklabels([])
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="correlation between snippets")
    fig.suptitle(f"Relation matrices of video {video} (T = {len(times)} snippets)", fontsize=11)
    return save_png(fig, out)
