"""The THUMOS14 detection protocol (``TH14evalDet.m`` of the 2015 evaluation kit), reproduced.

Per class and video, detections are sorted by confidence (stable). Then, for each ground truth in
file order, the still-free detection with the largest overlap (the first one on ties) becomes a
true positive if overlap > θ (strictly). Free detections overlapping any "Ambiguous" interval are
dropped, the others are false positives. Videos are visited in sorted name order and the kept
detections are ranked by confidence (stable); AP = sum of the precisions at the true positives /
#ground truth (non-interpolated). A class without detections has AP 0. mAP is the mean over the
classes that have ground truth.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from augrgb.annotations import Annotations
from augrgb.core.errors import InputError
from augrgb.metrics.common import EventMapResult, check_tiou, sequential_sum
from augrgb.metrics.detections import Detection

log = logging.getLogger(__name__)

THUMOS14_TIOU = np.array([0.1, 0.2, 0.3, 0.4, 0.5])


def interval_overlap(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(n, m) overlap of intervals as THUMOS14 computes it: endpoints ordered, width / hull, 0 unless width > 0."""
    a = np.sort(np.asarray(first, dtype=np.float64).reshape(-1, 2), axis=1)[:, None, :]
    b = np.sort(np.asarray(second, dtype=np.float64).reshape(-1, 2), axis=1)[None, :, :]
    width = np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0])
    hull = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, width / np.where(width > 0, hull, 1.0), 0.0)


def _video_flags(gt: np.ndarray, ambiguous: np.ndarray, dets: np.ndarray, threshold: float) -> np.ndarray:
    """For confidence-sorted detections of one video and class: 1 = TP, 2 = FP, 0 = dropped (ambiguous)."""
    free = np.ones(len(dets), dtype=bool)
    if len(gt):
        overlap = interval_overlap(gt, dets)
        for row in overlap:
            candidates = np.nonzero(free)[0]
            if len(candidates) == 0:
                break
            best = candidates[np.argmax(row[candidates])]
            if row[best] > threshold:
                free[best] = False
    near_ambiguous = interval_overlap(ambiguous, dets).sum(axis=0) != 0 if len(ambiguous) else np.zeros(len(dets), bool)
    return np.where(~free, 1, np.where(near_ambiguous, 0, 2))


def thumos14_event_map(
    annotations: Annotations, detections: Sequence[Detection], tiou: Sequence[float] | np.ndarray = THUMOS14_TIOU
) -> EventMapResult:
    """THUMOS14 mAP of ``detections`` against ``annotations`` (their ``ambiguous`` intervals included)."""
    thresholds = check_tiou(tiou)
    k = annotations.num_classes
    npos = np.zeros(k, dtype=np.int64)
    for video in annotations:
        for seg in video.segments:
            npos[seg.label] += 1
    classes = [c for c in range(k) if npos[c] > 0]
    if not classes:
        raise InputError("ground truth", "has no action instance")
    if len(classes) < k:
        log.warning("%d class(es) have no ground truth and are left out of the mean", k - len(classes))
    strangers = sorted({d.video_id for d in detections} - set(annotations.videos))
    if strangers:
        log.warning("detections in %d video(s) without ground truth (first: %r) count as false positives, as in the 2015 kit",
                    len(strangers), strangers[0])
    videos = sorted(set(annotations.videos) | {d.video_id for d in detections})
    by_video_class: dict[tuple[str, int], list[Detection]] = {}
    for d in detections:
        by_video_class.setdefault((d.video_id, d.label), []).append(d)
    empty = np.zeros((0, 2))
    ap = np.zeros((len(thresholds), len(classes)))
    for column, c in enumerate(classes):
        for t, threshold in enumerate(thresholds):
            conf_parts, flag_parts = [], []
            for video_id in videos:
                dets = by_video_class.get((video_id, c))
                if not dets:
                    continue
                conf = np.array([d.score for d in dets], dtype=np.float64)
                order = np.argsort(-conf, kind="stable")
                intervals = np.array([[d.start, d.end] for d in dets], dtype=np.float64)[order]
                video = annotations.videos.get(video_id)
                gt = np.array([[s.start, s.end] for s in video.segments if s.label == c]).reshape(-1, 2) if video else empty
                amb = np.array(video.ambiguous, dtype=np.float64).reshape(-1, 2) if video else empty
                flags = _video_flags(gt, amb, intervals, threshold)
                kept = flags > 0
                conf_parts.append(conf[order][kept])
                flag_parts.append(flags[kept])
            if not conf_parts:
                continue
            conf, flags = np.concatenate(conf_parts), np.concatenate(flag_parts)
            ranked = flags[np.argsort(-conf, kind="stable")]
            tp = np.cumsum(ranked == 1)
            precision = tp / np.arange(1, len(ranked) + 1)
            ap[t, column] = sequential_sum(precision[ranked == 1]) / npos[c]
    per_threshold = np.array([sequential_sum(row) / len(classes) for row in ap])
    return EventMapResult("thumos14", thresholds, per_threshold, float(np.mean(per_threshold)), ap, classes)
