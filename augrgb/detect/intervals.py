"""From per-snippet class probabilities to action intervals in seconds (registry ``DECODERS``).

Time rule: snippet i covers frames ``[i*stride, i*stride + snippet)`` at ``fps``, so a run of snippets
``first..last`` is the interval ``[first*stride/fps, min(last*stride + snippet, frames)/fps]`` seconds
(the end is clipped at the video's last frame: the padded tail is not video).

- ``sparse`` (softmax head with background): maximal runs of snippets whose argmax is not the
  background are proposals; class = argmax of the class probabilities averaged over the run,
  score = that average (the supplement's rule).
- ``dense`` (sigmoid head): per class, snippets with probability >= its threshold form runs; runs
  of a class closer than ``close_gap`` seconds are joined, runs shorter than ``min_length`` seconds
  dropped; score = the class's mean probability over the (joined) run.
- ``multi-threshold`` (dense heads): the dense rule at several thresholds, overlapping
  proposals of a class reduced by class-wise NMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.core.registry import Registry
from augrgb.detect.nms import class_nms
from augrgb.models.checkpoint import DEFAULT_THRESHOLD

_EPS = 1e-9  # seconds: tolerance when comparing gaps and lengths computed from frame counts

DECODERS: Registry = Registry("interval decoder")


@dataclass(frozen=True)
class Interval:
    """One detected action: class index ``label`` from ``start`` to ``end`` seconds with ``score``."""

    label: int
    start: float
    end: float
    score: float


def runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-d boolean array, as inclusive (first, last) index pairs."""
    padded = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _check_probs(probs: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise InputError("probabilities", f"need a (T >= 1, K) array, got shape {probs.shape}")
    if background is not None and np.shape(background) != (probs.shape[0],):
        raise InputError("background", f"need shape ({probs.shape[0]},), got {np.shape(background)}")
    return probs


def _check_seconds(name: str, value: float) -> float:
    if not value >= 0:
        raise InputError(name, f"must be >= 0 seconds (got {value!r})")
    return float(value)


@DECODERS.register("sparse")
class SparseDecoder:
    """Runs of non-background argmax (softmax head); ``min_length`` seconds drops shorter runs (0: keep all)."""

    needs_background = True

    def __init__(self, min_length: float = 0.0) -> None:
        self.min_length = _check_seconds("min_length", min_length)

    def __call__(self, probs: np.ndarray, grid: SnippetGrid, background: np.ndarray | None = None) -> list[Interval]:
        probs = _check_probs(probs, background)
        if background is None:
            raise InputError("sparse decoder", "needs the background probability (a softmax head)")
        # argmax over [classes..., background]: ties go to the class (lower index), as np.argmax does
        foreground = probs.max(axis=1) >= np.asarray(background, dtype=np.float64)
        out = []
        for first, last in runs(foreground):
            start, end = grid.span(first, last)
            if end - start + _EPS < self.min_length:
                continue
            mean = probs[first:last + 1].mean(axis=0)
            label = int(np.argmax(mean))
            out.append(Interval(label, start, end, float(mean[label])))
        return out


def _class_runs(p: np.ndarray, threshold: float, grid: SnippetGrid, close_gap: float, min_length: float) -> list[tuple[int, int]]:
    """Snippet runs of one class at ``threshold``, joined across gaps <= close_gap s, without runs < min_length s."""
    joined: list[tuple[int, int]] = []
    for first, last in runs(p >= threshold):
        if joined and grid.span(first, last)[0] - grid.span(*joined[-1])[1] <= close_gap + _EPS:
            joined[-1] = (joined[-1][0], last)
        else:
            joined.append((first, last))
    kept = []
    for first, last in joined:
        start, end = grid.span(first, last)
        if end - start + _EPS >= min_length:
            kept.append((first, last))
    return kept


@DECODERS.register("dense")
class DenseDecoder:
    """Per-class thresholds (one value or one per class), gap closing and minimum length in seconds."""

    needs_background = False

    def __init__(self, thresholds: float | Sequence[float] = DEFAULT_THRESHOLD, close_gap: float = 0.0,
                 min_length: float = 0.0) -> None:
        self.thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        if not np.all((self.thresholds > 0) & (self.thresholds <= 1)):
            raise InputError("thresholds", f"must be in (0, 1] (got {self.thresholds.tolist()})")
        self.close_gap = _check_seconds("close_gap", close_gap)
        self.min_length = _check_seconds("min_length", min_length)

    def class_thresholds(self, num_classes: int) -> np.ndarray:
        """The threshold of each of ``num_classes`` classes."""
        if self.thresholds.size == 1:
            return np.full(num_classes, self.thresholds[0])
        if self.thresholds.size != num_classes:
            raise InputError("thresholds", f"{self.thresholds.size} given for {num_classes} classes")
        return self.thresholds

    def __call__(self, probs: np.ndarray, grid: SnippetGrid, background: np.ndarray | None = None) -> list[Interval]:
        probs = _check_probs(probs, background)
        out = []
        for label, threshold in enumerate(self.class_thresholds(probs.shape[1])):
            p = probs[:, label]
            for first, last in _class_runs(p, threshold, grid, self.close_gap, self.min_length):
                out.append(Interval(label, *grid.span(first, last), float(p[first:last + 1].mean())))
        return sorted(out, key=lambda d: (d.start, d.label))


@DECODERS.register("multi-threshold")
class MultiThresholdDecoder:
    """The dense rule at each of ``levels`` (same for every class), then class-wise NMS at ``nms_iou``."""

    needs_background = False

    def __init__(self, levels: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), close_gap: float = 0.0,
                 min_length: float = 0.0, nms_iou: float = 0.5) -> None:
        if not len(levels):
            raise InputError("levels", "give at least one threshold")
        self.levels = [DenseDecoder(level, close_gap, min_length) for level in sorted(set(map(float, levels)))]
        if not 0 < nms_iou <= 1:
            raise InputError("nms_iou", f"must be in (0, 1] (got {nms_iou!r})")
        self.nms_iou = float(nms_iou)

    def __call__(self, probs: np.ndarray, grid: SnippetGrid, background: np.ndarray | None = None) -> list[Interval]:
        proposals = [d for level in self.levels for d in level(probs, grid)]
        if not proposals:
            return []
        keep = class_nms(np.array([[d.start, d.end] for d in proposals]), np.array([d.score for d in proposals]),
                         np.array([d.label for d in proposals]), self.nms_iou)
        return sorted((proposals[i] for i in keep), key=lambda d: (d.start, d.label))
