"""Per-frame mAP for dense (multi-label) datasets: Charades, MultiTHUMOS, TSU.

AP per class over all frames of all videos, non-interpolated: the mean, over the positive frames,
of the precision at the score of that frame. Frames with equal scores form one threshold: each
positive among them gets the precision after the whole group (scikit-learn's
``average_precision_score``), so the value does not depend on frame order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from augrgb.annotations import Annotations, label_grid, num_frames_at
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.metrics.common import json_list, json_number

log = logging.getLogger(__name__)

FrameAverage = Literal["present", "nonzero", "all"]
FrameRule = Literal["closed", "open"]
_TIE_SECONDS = 1e-9  # two distances closer than this (x max(1, time)) are a tie: rounding, not a real difference
_CHUNK_ELEMENTS = 1 << 21  # classes x frames sorted at once: bounds memory to ~100 MB


@dataclass(frozen=True)
class FrameMapResult:
    """Per-frame mAP with the per-class APs (NaN for classes without a positive frame) and the frame rule of its labels."""

    mAP: float
    ap: np.ndarray
    num_positives: np.ndarray
    average: FrameAverage
    protocol: str = "per-frame"
    frame_rule: FrameRule = "closed"

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "average": self.average,
            "frame_rule": self.frame_rule,
            "mAP": json_number(self.mAP),
            "ap": json_list(self.ap),
            "num_positives": self.num_positives.tolist(),
        }


def frame_average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AP per class of (N, K) scores against (N, K) binary labels; NaN where a class has no positive."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise InputError("scores", f"shape {scores.shape} does not match labels {labels.shape} (need (N, K))")
    if np.isnan(scores).any():
        raise InputError("scores", "contain NaN")
    n, k = scores.shape
    ap = np.full(k, np.nan)
    if n == 0:
        return ap
    step = max(1, _CHUNK_ELEMENTS // n)
    for c0 in range(0, k, step):
        ap[c0 : c0 + step] = _rows_ap(np.ascontiguousarray(scores[:, c0 : c0 + step].T), np.ascontiguousarray(labels[:, c0 : c0 + step].T))
    return ap


def _rows_ap(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AP of each row of (C, N): mean over positives of the precision at the end of their tie group."""
    n = scores.shape[1]
    order = np.argsort(scores, axis=1)[:, ::-1]
    s = np.take_along_axis(scores, order, 1)
    y = np.take_along_axis(labels, order, 1)
    tp = np.cumsum(y, axis=1)
    rank = np.arange(n)
    is_end = np.ones(s.shape, dtype=bool)
    is_end[:, :-1] = s[:, :-1] != s[:, 1:]
    last_of_group = np.minimum.accumulate(np.where(is_end, rank, n - 1)[:, ::-1], axis=1)[:, ::-1]
    precision = np.take_along_axis(tp, last_of_group, 1) / (last_of_group + 1)
    npos = tp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(npos > 0, np.where(y, precision, 0.0).sum(axis=1) / npos, np.nan)


def frame_map(
    scores: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    average: FrameAverage = "present",
) -> FrameMapResult:
    """Per-frame mAP of scores (N, K) or per-video (T_i, K) arrays against binary labels of the same shapes.

    ``average="present"`` (default): mean AP over classes with at least one positive frame.
    ``average="nonzero"``: the legacy "sum of AP / number of classes with non-zero AP" of the
    PDAN/MS-TCT scripts, which score classes without positives as AP 0.
    ``average="all"``: mean over all K classes, a class without positive frames counting AP 0, as
    TGM and super-events report (the mean of their APMeter's per-class values).
    """
    if average not in get_args(FrameAverage):
        raise InputError(f"average {average!r}", "must be 'present', 'nonzero' or 'all'")
    if not isinstance(scores, np.ndarray):
        scores = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores]) if len(scores) else np.zeros((0, 0))
        labels = np.concatenate([np.asarray(y) for y in labels]) if len(labels) else np.zeros((0, 0), bool)
    ap = frame_average_precision(scores, labels)
    npos = np.asarray(labels).astype(bool).sum(axis=0)
    if not (npos > 0).any():
        raise InputError("labels", "no class has a positive frame: per-frame mAP is undefined")
    filled = np.nan_to_num(ap, nan=0.0)
    if average == "present":
        kept = ap[npos > 0]
    elif average == "nonzero":
        kept = filled[filled != 0]
    else:
        kept = filled
        if (npos == 0).any():
            log.warning("%d of %d classes have no positive frame and count as AP 0 in the mean (average='all')",
                        int((npos == 0).sum()), len(npos))
    return FrameMapResult(float(np.mean(kept)), ap, npos, average)


def upsample_scores(scores: np.ndarray, grid: SnippetGrid, times: np.ndarray) -> np.ndarray:
    """Scores (T_snippets, K) at the given times (s): each time takes the snippet with the nearest centre.

    Halfway between two centres the earlier snippet wins; times before the first centre take the
    first snippet and times after the last centre the last one. Distances equal up to floating-point
    rounding (within ``_TIE_SECONDS`` relative to the time) count as halfway: frame times and centres are
    ratios (frame 15 at 25 fps is 0.6 s, halfway between 0.28 and 0.92 s) whose differences round either way.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(scores) == 0:
        raise InputError("scores", f"need a (T_snippets >= 1, K) array, got shape {scores.shape}")
    centres = grid.centres(len(scores))
    times = np.asarray(times, dtype=np.float64)
    after = np.searchsorted(centres, times, side="left").clip(0, len(centres) - 1)
    before = (after - 1).clip(0)
    tolerance = _TIE_SECONDS * np.maximum(1.0, np.abs(times))
    take_before = (times - centres[before]) <= (centres[after] - times) + tolerance
    return scores[np.where(take_before, before, after)]


def frame_map_from_scores(
    scores: Mapping[str, np.ndarray],
    annotations: Annotations,
    grid: SnippetGrid,
    fps: float | None = None,
    average: FrameAverage = "present",
) -> FrameMapResult:
    """Per-frame mAP of per-video snippet scores (T_snippets, K) at the ground-truth resolution.

    Each video's label grid has frames t = 0.. at ``fps`` (default: the video's annotated fps,
    else ``grid.fps``) up to its duration, labelled by :func:`label_grid`; every frame takes
    the score of the nearest snippet centre (:func:`upsample_scores`). Logits or probabilities
    give the same AP (AP depends only on the order of scores). Only the videos in ``scores``
    are evaluated; each must be in ``annotations`` with a known duration.
    """
    all_scores, all_labels = [], []
    k = annotations.num_classes
    for video_id, video_scores in scores.items():
        video = annotations.videos.get(video_id)
        if video is None:
            raise InputError(f"video {video_id!r}", "has scores but no annotation")
        if video.duration is None:
            raise InputError(f"video {video_id!r}", "duration unknown: cannot build its frame grid")
        video_scores = np.asarray(video_scores, dtype=np.float64)
        if video_scores.ndim != 2 or video_scores.shape[1] != k:
            raise InputError(f"video {video_id!r}", f"scores of shape {video_scores.shape}, expected (T_snippets, {k})")
        rate = fps or video.fps or grid.fps
        count = num_frames_at(video.duration, rate)
        if count == 0:
            log.warning("video %r: no frame within its %.3f s at %g fps; skipped", video_id, video.duration, rate)
            continue
        all_scores.append(upsample_scores(video_scores, grid, np.arange(count) / rate))
        all_labels.append(label_grid(video, k, rate, count))
    if not all_scores:
        raise InputError("scores", "no video to evaluate")
    return frame_map(np.concatenate(all_scores), np.concatenate(all_labels), average)
