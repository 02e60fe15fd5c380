"""A timeline PNG per video: ground truth (when known) above the detections, over per-frame probabilities
(when known: ``augrgb plot timeline`` draws from a results JSON alone)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from augrgb.annotations import Segment
from augrgb.core.files import replacing
from augrgb.metrics.detections import Detection

MAX_CLASSES = 20  # rows of the plot; more would be unreadable


def shown_classes(probs: np.ndarray | None, detections: Sequence[Detection], truth: Sequence[Segment] | None,
                  limit: int = MAX_CLASSES) -> list[int]:
    """Classes to draw: those detected or in the ground truth, then the most probable others, at most ``limit``.
    Without probabilities, only the named classes (ranked by their best detection score)."""
    named = {d.label for d in detections} | {s.label for s in truth or ()}
    if probs is None:
        best = {c: max((d.score for d in detections if d.label == c), default=0.0) for c in named}
        return sorted(sorted(named, key=lambda c: -best[c])[:limit])
    peak = probs.max(axis=0) if len(probs) else np.zeros(probs.shape[1])
    by_peak = sorted(range(probs.shape[1]), key=lambda c: -peak[c])
    chosen = sorted(named, key=lambda c: -peak[c])[:limit]
    for c in by_peak:
        if len(chosen) >= min(limit, max(len(named), 5)):
            break
        if c not in chosen:
            chosen.append(c)
    return sorted(chosen)


def plot_timeline(path: str | Path, video_id: str, classes: Sequence[str], probs: np.ndarray | None, fps: float | None,
                  detections: Sequence[Detection], truth: Sequence[Segment] | None = None,
                  duration: float | None = None, dpi: int = 100, title: str | None = None) -> Path:
    """Draw the timeline of one video and save it atomically. ``probs``: per-frame class probabilities (N, K)
    at ``fps`` (the video lasts N / fps s), or None for no probability panel (then give ``duration``)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    rows = shown_classes(probs, detections, truth)
    row_of = {c: i for i, c in enumerate(rows)}
    if probs is not None:
        duration = len(probs) / fps
    elif duration is None:
        raise ValueError("plot_timeline needs the duration when there are no probabilities")
    colours = colormaps["tab20"]
    panels = (["ground truth"] if truth is not None else []) + ["detections"] + (["probabilities"] if probs is not None else [])
    height = max(1.2, 0.22 * len(rows) + 0.6)
    fig = Figure(figsize=(12, height * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    axes = axes[:, 0]
    bars = {"ground truth": [(s.label, s.start, s.end, 1.0) for s in truth or ()],
            "detections": [(d.label, d.start, d.end, d.score) for d in detections]}
    for ax, name in zip(axes, panels):
        ax.set_title(name, loc="left", fontsize=9)
        ax.set_yticks(range(len(rows)), [classes[c] for c in rows], fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        if name == "probabilities":
            image = probs[:, rows].T if rows else np.zeros((1, len(probs)))
            ax.imshow(image, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                      extent=(0, duration, len(rows) - 0.5, -0.5))
            continue
        for label, start, end, score in bars[name]:
            if label in row_of:
                ax.broken_barh([(start, max(end - start, 1e-3))], (row_of[label] - 0.4, 0.8),
                               color=colours(label % 20), alpha=0.35 + 0.65 * float(np.clip(score, 0, 1)))
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlim(0, duration)
    axes[-1].set_xlabel("seconds")
    fig.suptitle(title or video_id, fontsize=10)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)
