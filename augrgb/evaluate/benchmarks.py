"""Evaluate prediction files against ground-truth files with an official protocol (what ``augrgb evaluate`` runs)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import get_args

import numpy as np

from augrgb.annotations import (
    label_grid,
    label_times,
    num_frames_at,
    read_annotations,
    read_charades_csv,
    read_class_ids,
    read_thumos_txt,
)
from augrgb.annotations.charades import subset_from_file_name
from augrgb.annotations.classes import ClassesArg
from augrgb.annotations.thumos_txt import CLASS_LIST_FILES
from augrgb.core.errors import InputError
from augrgb.detect.probabilities import check_same_classes, read_probabilities
from augrgb.metrics import (
    ACTIVITYNET_TIOU,
    PKU_MMD_TIOU,
    THUMOS14_TIOU,
    CharadesResult,
    EventMapResult,
    FrameMapResult,
    PkuMmdResult,
    activitynet_event_map,
    charades_localize_map,
    frame_map,
    pku_mmd_event_map,
    thumos14_event_map,
)
from augrgb.metrics.common import check_tiou
from augrgb.metrics.detections import (
    read_activitynet_results,
    read_charades_submission,
    read_label_dir,
    read_thumos14_detections,
)
from augrgb.metrics.frame import FrameAverage, FrameRule

log = logging.getLogger(__name__)


def evaluate_charades(gt_csv: str | Path, submission: str | Path, classes: ClassesArg = None) -> CharadesResult:
    """Official Charades localisation mAP/wAP of a submission file against every video of a Charades CSV."""
    gt_csv = Path(gt_csv)
    annotations = read_charades_csv(gt_csv, classes=classes, subset=subset_from_file_name(gt_csv.name) or "testing")
    return charades_localize_map(annotations, read_charades_submission(submission, annotations.num_classes))


def evaluate_activitynet(
    gt: str | Path,
    results: str | Path,
    tiou: Sequence[float] | np.ndarray = ACTIVITYNET_TIOU,
    subset: str | None = None,
    classes: ClassesArg = None,
) -> EventMapResult:
    """ActivityNet mAP of a results JSON against an ActivityNet (or dense-detection) ground-truth JSON."""
    tiou = check_tiou(tiou)
    annotations = read_annotations(gt, classes=classes)
    return activitynet_event_map(annotations, read_activitynet_results(results, annotations.classes), tiou, subset)


def evaluate_pku_mmd(
    gt_dir: str | Path,
    pred_dir: str | Path,
    num_classes: int,
    first_label: int = 0,
    tiou: Sequence[float] | np.ndarray = PKU_MMD_TIOU,
) -> PkuMmdResult:
    """PKU-MMD/TSU mAP_action and mAP_video of a folder of per-video prediction files (same names as the ground truth)."""
    tiou = check_tiou(tiou)
    ground_truth = read_label_dir(gt_dir, require_confidence=False, num_labels=num_classes)
    predictions = read_label_dir(pred_dir, require_confidence=True, num_labels=num_classes)
    if not predictions:
        raise InputError(pred_dir, "no .txt prediction files")
    return pku_mmd_event_map(ground_truth, predictions, num_classes, first_label, tiou)


def evaluate_thumos14(
    gt_dir: str | Path,
    detections: str | Path,
    subset: str = "test",
    tiou: Sequence[float] | np.ndarray = THUMOS14_TIOU,
    classes: str | Path | None = None,
) -> EventMapResult:
    """THUMOS14 mAP of a detection file (``video start end class_id score``) against ``<Class>_<subset>.txt`` files.

    The class list (``classes`` or ``detclasslist.txt`` in ``gt_dir``) must number the classes,
    since detection files name classes by those ids.
    """
    tiou = check_tiou(tiou)
    gt_dir = Path(gt_dir)
    class_file = Path(classes) if classes else next((gt_dir / f for f in CLASS_LIST_FILES if (gt_dir / f).is_file()), None)
    if class_file is None:
        raise InputError(gt_dir, "no numbered class list (detclasslist.txt); pass --classes")
    annotations = read_thumos_txt(gt_dir, subset=subset, classes=class_file)
    return thumos14_event_map(annotations, read_thumos14_detections(detections, read_class_ids(class_file)), tiou)


def evaluate_frame_map(
    gt: str | Path,
    pred: str | Path,
    classes: ClassesArg = None,
    subset: str | None = None,
    average: FrameAverage = "present",
    label_base: int | None = None,
    frame_rule: FrameRule = "closed",
) -> FrameMapResult:
    """Per-frame mAP of saved per-frame probabilities (``augrgb detect``'s ``probabilities/`` folder or one file).

    ``label_base`` is the id of the first class in a ground truth that numbers its classes (dense
    JSON, label txt): 1 reads MultiTHUMOS's ``multithumos.json`` as shipped; ``None`` keeps the
    reader's default.

    ``frame_rule="closed"`` (augrgb's rule, the one training uses): each video's labels come from
    :func:`label_grid` at the probabilities' fps over the frames of the annotated duration (or of the
    predictions, when the duration is unknown); predictions shorter than that repeat their last
    frame, longer ones are cut (warned beyond one second). ``frame_rule="open"`` reproduces TGM's
    labels: every predicted frame, frame t at t/fps with fps = predicted frames / annotated duration,
    positive when start < t/fps < end (the duration is then required).

    Predicted videos not in the ground truth (or its ``subset``) are skipped with a warning;
    ground-truth videos without predictions are left out (warned), as per-frame mAP is over the
    evaluated frames.
    """
    if frame_rule not in get_args(FrameRule):
        raise InputError(f"frame rule {frame_rule!r}", "must be 'closed' or 'open'")
    options = {"label_base": label_base} if label_base is not None else {}
    annotations = read_annotations(gt, classes=classes, **options)
    if subset is not None:
        annotations = annotations.subset(subset)
    videos = read_probabilities(pred)
    pred_classes = check_same_classes(videos)
    if pred_classes != annotations.classes:
        if len(pred_classes) != annotations.num_classes:
            raise InputError(pred, f"probabilities over {len(pred_classes)} classes, ground truth has {annotations.num_classes}")
        log.warning("%s: class names differ from the ground truth's; matching classes by index", pred)
    scores, labels = [], []
    for video_id, video in videos.items():
        truth = annotations.videos.get(video_id)
        if truth is None:
            log.warning("video %r: probabilities but no ground truth; skipped", video_id)
            continue
        if frame_rule == "open":
            if truth.duration is None or truth.duration <= 0:
                raise InputError(f"video {video_id!r}", "the open frame rule needs a positive annotated duration (fps = frames / duration)")
            rate = len(video.frames) / truth.duration
            scores.append(video.frames)
            labels.append(label_times(truth, annotations.num_classes, np.arange(len(video.frames)) / rate, "open"))
            continue
        count = num_frames_at(truth.duration, video.fps) if truth.duration is not None else len(video.frames)
        if abs(count - len(video.frames)) > video.fps:
            log.warning("video %r: %d predicted frames, %d in the annotated duration", video_id, len(video.frames), count)
        if count == 0:
            continue
        index = np.minimum(np.arange(count), len(video.frames) - 1)
        scores.append(video.frames[index])
        labels.append(label_grid(truth, annotations.num_classes, video.fps, count))
    missing = [v for v in annotations.videos if v not in videos]
    if missing:
        log.warning("%d ground-truth video(s) have no probabilities (first: %r); not evaluated", len(missing), missing[0])
    if not scores:
        raise InputError(pred, "no predicted video is in the ground truth")
    return replace(frame_map(scores, labels, average), frame_rule=frame_rule)
