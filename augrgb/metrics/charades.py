"""The official Charades localisation protocol (``Charades_v1_localize.m``), reproduced exactly.

25 time points per video, t_j = (j/25)·length for j = 0..24; an action is positive at t when
start <= t <= end. Rows are ordered as the ground-truth CSV (video, then point); a frame missing
from the submission scores -inf. Per class the rows are sorted by score, descending, ties kept in
row order (MATLAB's stable sort); AP = sum of the precisions at the positives / #positives
(non-interpolated). mAP is the plain mean over all classes and wAP weights each class by its
number of positive points. A class without positives has AP = 0/0 = NaN in the official script,
which makes mAP and wAP NaN too; this is replicated, with a warning (``num_positives`` tells
which classes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from augrgb.annotations import Annotations, VideoAnnotation
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.metrics.common import json_number
from augrgb.metrics.detections import CHARADES_POINTS
from augrgb.metrics.frame import upsample_scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CharadesResult:
    """Official Charades localisation numbers and the per-class APs (NaN where a class has no positive)."""

    mAP: float
    wAP: float
    ap: np.ndarray
    num_positives: np.ndarray
    protocol: str = "charades-localize"

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "mAP": json_number(self.mAP), "wAP": json_number(self.wAP)}


def charades_time_points(length: float, num_points: int = CHARADES_POINTS) -> np.ndarray:
    """The evaluated instants of a video, computed as the official script does: ((j-1)/25)*length."""
    return (np.arange(num_points) / num_points) * length


def charades_point_labels(video: VideoAnnotation, num_classes: int, num_points: int = CHARADES_POINTS) -> np.ndarray:
    """(num_points, K) bool: class c is positive at t_j when start <= t_j <= end for one of its segments."""
    if video.duration is None:
        raise InputError(video.video_id, "length unknown: Charades points need the video length")
    times = charades_time_points(video.duration, num_points)
    grid = np.zeros((num_points, num_classes), dtype=bool)
    for seg in video.segments:
        grid[:, seg.label] |= (seg.start <= times) & (times <= seg.end)
    return grid


def charades_scores_from_snippets(
    scores: Mapping[str, np.ndarray], annotations: Annotations, grid: SnippetGrid, num_points: int = CHARADES_POINTS
) -> dict[str, np.ndarray]:
    """Snippet scores (T_snippets, K) sampled at each video's Charades points (nearest snippet centre)."""
    out = {}
    for video_id, video_scores in scores.items():
        video = annotations.videos.get(video_id)
        if video is None or video.duration is None:
            raise InputError(f"video {video_id!r}", "has scores but no annotation with a length")
        out[video_id] = upsample_scores(video_scores, grid, charades_time_points(video.duration, num_points))
    return out


def charades_localize_map(
    annotations: Annotations, scores: Mapping[str, np.ndarray], num_points: int = CHARADES_POINTS
) -> CharadesResult:
    """Evaluate (num_points, K) scores per video against every video of ``annotations``, in its order.

    Videos without scores count as all -inf (warning); scores of videos not in the ground truth
    are ignored (warning).
    """
    k = annotations.num_classes
    if len(annotations) == 0:
        raise InputError("ground truth", "has no videos")
    missing = [v for v in annotations.videos if v not in scores]
    extra = [v for v in scores if v not in annotations.videos]
    if missing:
        log.warning("%d ground-truth video(s) have no predictions and score -inf (e.g. %s)", len(missing), missing[0])
    if extra:
        log.warning("ignored predictions for %d video(s) not in the ground truth (e.g. %s)", len(extra), extra[0])
    labels = np.zeros((len(annotations) * num_points, k), dtype=bool)
    test = np.full((len(annotations) * num_points, k), -np.inf)
    for i, video in enumerate(annotations):
        rows = slice(i * num_points, (i + 1) * num_points)
        labels[rows] = charades_point_labels(video, k, num_points)
        if video.video_id in scores:
            video_scores = np.asarray(scores[video.video_id], dtype=np.float64)
            if video_scores.shape != (num_points, k):
                raise InputError(f"video {video.video_id!r}", f"scores of shape {video_scores.shape}, expected ({num_points}, {k})")
            if np.isnan(video_scores).any():
                raise InputError(f"video {video.video_id!r}", "scores contain NaN")
            test[rows] = video_scores
    order = np.argsort(-test, axis=0, kind="stable")
    hits = np.take_along_axis(labels, order, 0)
    tp = np.cumsum(hits, axis=0)
    precision = tp / np.arange(1, len(test) + 1)[:, None]
    npos = labels.sum(axis=0)
    # cumsum adds the precisions in rank order, as the official loop does (adding 0.0 is exact).
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.cumsum(np.where(hits, precision, 0.0), axis=0)[-1] / npos
    if (npos == 0).any():
        log.warning("%d class(es) have no positive point: their AP is NaN, and so are mAP and wAP, as in the official script", int((npos == 0).sum()))
    mean_ap = np.cumsum(ap)[-1] / k
    weighted = np.cumsum(ap * npos)[-1] / npos.sum()
    return CharadesResult(float(mean_ap), float(weighted), ap, npos)
