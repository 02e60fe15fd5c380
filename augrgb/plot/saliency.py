"""Boundary saliency over time: how much each stream's features H change between consecutive snippets
(``boundary_saliency`` of the Action Boundary Saliency loss, normalised by the video's maximum), with the
ground-truth action starts and ends as vertical lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from augrgb.annotations import VideoAnnotation
from augrgb.core.errors import InputError
from augrgb.distill.losses.sequence import boundary_saliency
from augrgb.plot.figure import new_figure, save_png
from augrgb.plot.segments import draw_segments
from augrgb.plot.streams import (
    find_video,
    hidden_features,
    load_checkpoints,
    load_features,
    read_checked_annotations,
    snippet_times,
)


def saliency_curve(features: np.ndarray) -> np.ndarray:
    """``(C, T)`` features of one video -> saliency ``(T-1,)`` in [0, 1]: entry t compares snippets t and t+1."""
    h = torch.from_numpy(np.asarray(features, dtype=np.float32))[None]
    curve, _ = boundary_saliency(h, torch.ones(1, 1, h.shape[-1]))
    return curve[0].numpy()


def saliency_curves(checkpoints: Sequence[str | Path], features: str | Path, video: str, *,
                    labels: Sequence[str] | None = None, annotations: str | Path | None = None,
                    fmt: str = "auto") -> tuple[list[tuple[str, np.ndarray]], np.ndarray, VideoAnnotation, list[str]]:
    """``([(label, curve)], times (s) of the curve points, VideoAnnotation, class names)``; a curve point sits
    midway between the centres of the two snippets it compares."""
    loaded = load_checkpoints(checkpoints, labels)
    ann = read_checked_annotations(annotations, loaded, fmt) if annotations is not None else None
    target = find_video(video, ann, annotations)
    item = load_features(features, loaded, target)
    if item.length < 2:
        raise InputError(f"video {video!r}", "has a single snippet: no saliency to draw")
    centres = snippet_times(item)
    curves = [(ck.label, saliency_curve(hidden_features(ck, item))) for ck in loaded]
    return curves, (centres[1:] + centres[:-1]) / 2, target, list(loaded[0].meta.classes)


def plot_saliency(out: str | Path, checkpoints: Sequence[str | Path], features: str | Path, video: str, *,
                  labels: Sequence[str] | None = None, annotations: str | Path | None = None,
                  fmt: str = "auto") -> Path:
    """Draw each checkpoint's boundary-saliency curve of ``video`` over time into ``out`` (PNG)."""
    curves, times, target, classes = saliency_curves(checkpoints, features, video, labels=labels,
                                                     annotations=annotations, fmt=fmt)
    with_truth = annotations is not None
    rows = len({s.label for s in target.segments})
    fig = new_figure(11, 3.4 + (0.4 + 0.18 * rows if with_truth else 0))
    if with_truth:
        ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=[1, 0.1 + 0.06 * max(rows, 1)])
    else:
        ax, strip = fig.subplots(1, 1), None
    for label, curve in curves:
        ax.plot(times, curve, marker=".", markersize=3, linewidth=1.2, label=label)
    if with_truth:
        starts = sorted({s.start for s in target.segments})
        ends = sorted({s.end for s in target.segments})
        for i, t in enumerate(starts):
            ax.axvline(t, color="0.25", linewidth=0.9, label="ground-truth start" if i == 0 else None)
        for i, t in enumerate(ends):
            ax.axvline(t, color="0.25", linewidth=0.9, linestyle="--", label="ground-truth end" if i == 0 else None)
        draw_segments(strip, target.segments, classes)
        strip.set_xlabel("time (s)")
        strip.set_title("ground truth", loc="left", fontsize=8)
    else:
        ax.set_xlabel("time (s)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("boundary saliency\n(normalised per video)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(f"Boundary saliency of video {video}", fontsize=11)
    return save_png(fig, out)
