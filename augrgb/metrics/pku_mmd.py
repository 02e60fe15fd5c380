"""The PKU-MMD event protocol (``evaluate.py`` of ECHO960/PKU-MMD), also used by TSU, reproduced.

Rows are ``label, start, end, confidence`` in any time unit. A proposal matches, among the ground
truths of its video and label with overlap >= θ, the one with the largest overlap (the later one on
ties), where overlap = (min(ends) - max(starts)) / (max(ends) - min(starts)) (0 if that hull is 0).
Matching is per proposal, so several proposals may match one ground truth; it counts once.
Proposals are sorted by confidence ascending (stable) and removed one by one from the lowest; at
each removal of a matched proposal the precision/recall of the remaining set are computed,
precision is raised to its running maximum, and AP += precision_max * (recall drop). Note that
AP is computed this way, not as the usual interpolated AP: the precision of the set that still
contains the removed proposal is not used (see docs/metrics.md).

mAP_action = sum of AP over labels first_label..num_classes-1 / their count (PKU-MMD master:
num_classes=52, first_label=1, i.e. labels 1..51 over 51; TSU: num_classes=51, first_label=0).
mAP_video = mean of the per-video APs over the videos that have predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from augrgb.core.errors import InputError
from augrgb.metrics.common import check_tiou, json_list, sequential_sum

log = logging.getLogger(__name__)

PKU_MMD_TIOU = np.array([0.1, 0.5])


@dataclass(frozen=True)
class PkuMmdResult:
    """mAP over action labels and over videos, per threshold, with the per-label/per-video APs."""

    tiou: np.ndarray
    mAP_action: np.ndarray
    mAP_video: np.ndarray
    ap_action: np.ndarray
    ap_video: np.ndarray
    labels: list[int]
    videos: list[str]
    protocol: str = "pku-mmd"

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "tiou": self.tiou.tolist(),
            "mAP_action": json_list(self.mAP_action),
            "mAP_video": json_list(self.mAP_video),
        }


def pku_overlap(proposals: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """(n, m) overlap of [start, end] rows: (min end - max start) / (max end - min start); 0 where the hull is 0."""
    p, g = proposals[:, None, :], ground[None, :, :]
    inter = np.minimum(p[..., 1], g[..., 1]) - np.maximum(p[..., 0], g[..., 0])
    hull = np.maximum(p[..., 1], g[..., 1]) - np.minimum(p[..., 0], g[..., 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hull != 0, inter / np.where(hull != 0, hull, 1.0), 0.0)


def _match(props: np.ndarray, ground: np.ndarray, threshold: float) -> np.ndarray:
    """Index of the ground-truth row each proposal matches in one video, or -1."""
    if len(props) == 0 or len(ground) == 0:
        return np.full(len(props), -1)
    overlap = pku_overlap(props[:, 1:3], ground[:, 1:3])
    eligible = (props[:, None, 0] == ground[None, :, 0]) & (overlap >= threshold)
    value = np.where(eligible, overlap, -np.inf)[:, ::-1]
    best = len(ground) - 1 - np.argmax(value, axis=1)  # last index among the maxima
    return np.where(eligible.any(axis=1), best, -1)


def pku_average_precision(confidence: np.ndarray, matched: np.ndarray, num_ground: int) -> float:
    """AP of the official ``ap()``: proposals' confidences, the ground truth each matches (-1: none)."""
    n = len(confidence)
    if n == 0 or num_ground == 0:
        return 0.0
    order = np.argsort(confidence, kind="stable")
    gt = matched[order]
    hit = gt >= 0
    positions = np.nonzero(hit)[0]
    if len(positions) == 0:
        return 0.0
    unique, inverse = np.unique(gt[hit], return_inverse=True)
    last = np.zeros(len(unique), dtype=np.int64)
    np.maximum.at(last, inverse, positions)  # a ground truth stops counting when its last proposal goes
    positive = len(unique) - np.cumsum(np.bincount(last, minlength=n))
    remaining = n - 1 - np.arange(n)
    safe = np.maximum(remaining, 1)
    precision = np.where(remaining > 0, positive / safe, 0.0)[hit]
    recall = np.where(remaining > 0, positive / num_ground, 0.0)[hit]
    best = np.maximum.accumulate(np.concatenate([[len(unique) / n], precision]))[1:]
    previous = np.concatenate([[len(unique) / num_ground], recall[:-1]])
    return float(np.cumsum(best * (previous - recall))[-1])


def pku_mmd_event_map(
    ground_truth: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    num_classes: int,
    first_label: int = 0,
    tiou: Sequence[float] | np.ndarray = PKU_MMD_TIOU,
) -> PkuMmdResult:
    """PKU-MMD mAP_action and mAP_video of per-video (n, 4) rows ``label, start, end, confidence``.

    Videos are those with predictions, in mapping order (the official script lists the prediction
    folder); a ground-truth video without predictions is left out, as officially (warning);
    predictions of a video without ground truth are ignored (warning; officially a crash).
    """
    thresholds = check_tiou(tiou)
    if not 0 <= first_label < num_classes:
        raise InputError("--first-label", f"{first_label} must be within 0..num_classes-1 ({num_classes - 1})")
    videos = [v for v in predictions if v in ground_truth]
    skipped = [v for v in predictions if v not in ground_truth]
    unpredicted = [v for v in ground_truth if v not in predictions]
    if skipped:
        log.warning("ignored predictions of %d video(s) without ground truth (e.g. %s)", len(skipped), skipped[0])
    if unpredicted:
        log.warning("%d ground-truth video(s) have no prediction file and are left out, as in the official script (e.g. %s)", len(unpredicted), unpredicted[0])
    if not videos:
        raise InputError("predictions", "no video has both predictions and ground truth")
    props = [_checked(predictions[v], f"predictions of {v!r}", num_classes, True) for v in videos]
    grounds = [_checked(ground_truth[v], f"ground truth of {v!r}", num_classes, False) for v in videos]
    labels = list(range(first_label, num_classes))
    ap_action = np.zeros((len(thresholds), len(labels)))
    ap_video = np.zeros((len(thresholds), len(videos)))
    offsets = np.cumsum([0] + [len(g) for g in grounds])
    all_props = np.concatenate(props)
    all_ground_labels = np.concatenate([g[:, 0] for g in grounds])
    for t, threshold in enumerate(thresholds):
        matches = [_match(p, g, threshold) for p, g in zip(props, grounds)]
        for i, m in enumerate(matches):
            ap_video[t, i] = pku_average_precision(props[i][:, 3], m, len(grounds[i]))
        global_match = np.concatenate([np.where(m >= 0, m + offsets[i], -1) for i, m in enumerate(matches)])
        for j, label in enumerate(labels):
            mine = all_props[:, 0] == label
            ap_action[t, j] = pku_average_precision(all_props[mine, 3], global_match[mine], int((all_ground_labels == label).sum()))
    return PkuMmdResult(
        thresholds,
        np.array([sequential_sum(row) / len(labels) for row in ap_action]),
        np.array([sequential_sum(row) / len(videos) for row in ap_video]),
        ap_action,
        ap_video,
        labels,
        videos,
    )


def _checked(rows: np.ndarray, what: str, num_classes: int, need_confidence: bool) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    bad = np.nonzero((rows[:, 0] < 0) | (rows[:, 0] >= num_classes) | (rows[:, 0] != np.floor(rows[:, 0])))[0]
    if len(bad):
        raise InputError(f"{what} row {bad[0] + 1}", f"label {rows[bad[0], 0]:g} outside 0..{num_classes - 1} (--num-classes)")
    columns = 4 if need_confidence else 3
    bad = np.nonzero(~np.isfinite(rows[:, 1:columns]).all(axis=1))[0]
    if len(bad):
        raise InputError(f"{what} row {bad[0] + 1}", "start, end" + (" or confidence" if need_confidence else "") + " is not a finite number")
    return rows
