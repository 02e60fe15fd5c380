"""ActivityNet detection mAP (``Evaluation/eval_detection.py``), reproduced step for step.

Per class, predictions are ranked by score over all videos (numpy's default argsort, reversed, on
the scores in file order: the official tie order). Each prediction takes, in decreasing tIoU
order, the first ground truth of its video that is still unmatched; it is a true positive if that
tIoU >= θ, else a false positive (also when its video has no ground truth of the class). AP is the
VOC-2011 interpolated AP (monotone precision envelope summed over recall steps); mAP is the mean
over the classes of the ground truth, in order of first appearance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from augrgb.annotations import Annotations
from augrgb.core.errors import InputError
from augrgb.metrics.common import EventMapResult, check_tiou
from augrgb.metrics.detections import Detection

log = logging.getLogger(__name__)

ACTIVITYNET_TIOU = np.linspace(0.5, 0.95, 10)
"""The official default thresholds, 0.5:0.05:0.95, computed exactly as the official script does."""


def segment_iou(segment: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """tIoU of one [start, end] with (m, 2) candidates: clipped intersection / (both lengths - intersection)."""
    inter = (np.minimum(segment[1], candidates[:, 1]) - np.maximum(segment[0], candidates[:, 0])).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (segment[1] - segment[0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 AP: precision made monotone from the right, summed over the recall steps."""
    mprec = np.hstack([[0.0], precision, [0.0]])
    mrec = np.hstack([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _class_ap(
    gt_video: np.ndarray, gt_seg: np.ndarray, pred_video: np.ndarray, pred_seg: np.ndarray, scores: np.ndarray, tiou: np.ndarray
) -> np.ndarray:
    """AP at each threshold for one class; video ids are small ints, arrays in file order."""
    ap = np.zeros(len(tiou))
    if len(scores) == 0:
        return ap
    gt_of_video = {v: np.nonzero(gt_video == v)[0] for v in np.unique(gt_video)}
    locked = np.zeros((len(tiou), len(gt_video)), dtype=bool)
    tp = np.zeros((len(tiou), len(scores)))
    fp = np.zeros((len(tiou), len(scores)))
    for rank, p in enumerate(np.argsort(scores)[::-1]):
        gts = gt_of_video.get(pred_video[p])
        if gts is None:
            fp[:, rank] = 1
            continue
        ious = segment_iou(pred_seg[p], gt_seg[gts])
        by_iou = np.argsort(ious)[::-1]
        candidates = gts[by_iou]
        # Walk the ground truth by decreasing tIoU: stop at the first below θ, skip matched ones.
        reachable = ~np.logical_or.accumulate(ious[by_iou][None, :] < tiou[:, None], axis=1)
        free = reachable & ~locked[:, candidates]
        hit = free.any(axis=1)
        rows = np.nonzero(hit)[0]
        locked[rows, candidates[free.argmax(axis=1)[rows]]] = True
        tp[hit, rank] = 1
        fp[~hit, rank] = 1
    tp_cum, fp_cum = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    recall = tp_cum / float(len(gt_video))
    precision = tp_cum / (tp_cum + fp_cum)
    for t in range(len(tiou)):
        ap[t] = interpolated_average_precision(precision[t], recall[t])
    return ap


def activitynet_event_map(
    annotations: Annotations,
    detections: Sequence[Detection],
    tiou: Sequence[float] | np.ndarray = ACTIVITYNET_TIOU,
    subset: str | None = None,
) -> EventMapResult:
    """ActivityNet mAP of ``detections`` against the videos of ``subset`` (default: all videos).

    Detections of classes without ground truth are ignored (warning); detections in videos outside
    the evaluated ground truth count as false positives, as in the official script (warning).
    """
    thresholds = check_tiou(tiou)
    if subset is None and len(annotations.subsets()) > 1:
        log.warning("ground truth has subsets %s and none was chosen: evaluating all of them", annotations.subsets())
    gt = annotations.subset(subset) if subset is not None else annotations
    video_index: dict[str, int] = {v: i for i, v in enumerate(gt.videos)}
    rows: dict[int, list[tuple[int, float, float]]] = {}
    for video in gt:
        for seg in video.segments:
            rows.setdefault(seg.label, []).append((video_index[video.video_id], seg.start, seg.end))
    if not rows:
        raise InputError("ground truth", "has no action instance" + (f" in subset {subset!r}" if subset else ""))
    classes = list(rows)  # order of first appearance, as the official activity_index
    preds: dict[int, list[Detection]] = {c: [] for c in classes}
    dropped = outside = 0
    for d in detections:
        if d.label not in preds:
            dropped += 1
            continue
        preds[d.label].append(d)
        if d.video_id not in video_index:
            outside += 1
    if dropped:
        log.warning("ignored %d detection(s) of classes without ground truth", dropped)
    if outside:
        log.warning("%d detection(s) are in videos outside the evaluated ground truth; they count as false positives", outside)
    ap = np.zeros((len(thresholds), len(classes)))
    for column, c in enumerate(classes):
        gt_rows = np.asarray(rows[c], dtype=np.float64)
        dets = preds[c]
        pred_video = np.array([video_index.get(d.video_id, -1) for d in dets], dtype=np.int64)
        pred_seg = np.array([[d.start, d.end] for d in dets], dtype=np.float64).reshape(-1, 2)
        scores = np.array([d.score for d in dets], dtype=np.float64)
        ap[:, column] = _class_ap(gt_rows[:, 0].astype(np.int64), gt_rows[:, 1:], pred_video, pred_seg, scores, thresholds)
    per_threshold = ap.mean(axis=1)
    return EventMapResult("activitynet", thresholds, per_threshold, float(per_threshold.mean()), ap, classes)
