"""Evaluation metrics that reproduce the official protocols, each saying which protocol it is.

- per-frame mAP (dense datasets) and :func:`frame_map_from_scores` for training validation;
- Charades localisation (``Charades_v1_localize.m``);
- event mAP: ActivityNet (``eval_detection.py``), PKU-MMD/TSU (``evaluate.py``), THUMOS14 (``TH14evalDet.m``).

docs/metrics.md describes each protocol and its quirks.
"""

from augrgb.metrics.activitynet import (
    ACTIVITYNET_TIOU,
    activitynet_event_map,
    interpolated_average_precision,
    segment_iou,
)
from augrgb.metrics.charades import (
    CHARADES_POINTS,
    CharadesResult,
    charades_localize_map,
    charades_point_labels,
    charades_scores_from_snippets,
    charades_time_points,
)
from augrgb.metrics.common import EventMapResult
from augrgb.metrics.frame import (
    FrameMapResult,
    frame_average_precision,
    frame_map,
    frame_map_from_scores,
    upsample_scores,
)
from augrgb.metrics.pku_mmd import PKU_MMD_TIOU, PkuMmdResult, pku_average_precision, pku_mmd_event_map
from augrgb.metrics.thumos14 import THUMOS14_TIOU, thumos14_event_map

EVENT_TIOU = {"activitynet": ACTIVITYNET_TIOU, "pku-mmd": PKU_MMD_TIOU, "thumos14": THUMOS14_TIOU}
"""The tIoU thresholds each official event protocol averages over."""

__all__ = [
    "ACTIVITYNET_TIOU",
    "CHARADES_POINTS",
    "EVENT_TIOU",
    "PKU_MMD_TIOU",
    "THUMOS14_TIOU",
    "CharadesResult",
    "EventMapResult",
    "FrameMapResult",
    "PkuMmdResult",
    "activitynet_event_map",
    "charades_localize_map",
    "charades_point_labels",
    "charades_scores_from_snippets",
    "charades_time_points",
    "frame_average_precision",
    "frame_map",
    "frame_map_from_scores",
    "interpolated_average_precision",
    "pku_average_precision",
    "pku_mmd_event_map",
    "segment_iou",
    "thumos14_event_map",
    "upsample_scores",
]
