"""Class-wise non-maximum suppression of temporal intervals, in plain numpy (no compiled ops)."""

from __future__ import annotations

import numpy as np

from augrgb.core.errors import InputError
from augrgb.metrics.activitynet import segment_iou


def nms(segments: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the kept (n, 2) ``[start, end]`` segments, best score first.

    Greedy: take the best remaining segment, drop every other whose tIoU with it exceeds ``iou``,
    repeat. Equal scores keep input order (stable sort).
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(segments):
        raise InputError("nms", f"{len(segments)} segments but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        best, order = order[0], order[1:]
        kept.append(best)
        if order.size:
            overlap = np.nan_to_num(segment_iou(segments[best], segments[order]), nan=0.0)
            order = order[overlap <= iou]
    return np.array(kept, dtype=np.int64)


def class_nms(segments: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """:func:`nms` within each class separately; kept indices sorted by score (best first, stable)."""
    labels = np.asarray(labels)
    kept = [np.flatnonzero(labels == c)[nms(np.asarray(segments)[labels == c], np.asarray(scores)[labels == c], iou)]
            for c in np.unique(labels)]
    if not kept:
        return np.zeros(0, dtype=np.int64)
    kept = np.sort(np.concatenate(kept))
    return kept[np.argsort(-np.asarray(scores, dtype=np.float64)[kept], kind="stable")]
