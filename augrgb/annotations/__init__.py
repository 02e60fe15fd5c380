"""Annotation readers (Charades, dense JSON, THUMOS/MultiTHUMOS, PKU-MMD/TSU, ActivityNet) into one form.

Everything downstream sees :class:`Annotations`: class names and videos whose segments are in
seconds with 0-based labels, plus :func:`label_grid`, the one frame-labelling rule.
"""

from augrgb.annotations.classes import read_class_ids, read_class_list
from augrgb.annotations.core import (
    Annotations,
    Segment,
    VideoAnnotation,
    carve_validation,
    label_grid,
    label_times,
    num_frames_at,
)
from augrgb.annotations.formats import annotation_formats, detect_format, read_annotations, register_format
from augrgb.annotations.activitynet import read_activitynet_json
from augrgb.annotations.charades import read_charades_csv
from augrgb.annotations.dense_json import read_dense_json, write_dense_json
from augrgb.annotations.label_txt import read_label_rows, read_label_txt
from augrgb.annotations.thumos_txt import read_thumos_txt

__all__ = [
    "Annotations",
    "Segment",
    "VideoAnnotation",
    "annotation_formats",
    "carve_validation",
    "detect_format",
    "label_grid",
    "label_times",
    "num_frames_at",
    "read_activitynet_json",
    "read_annotations",
    "read_charades_csv",
    "read_class_ids",
    "read_class_list",
    "read_dense_json",
    "read_label_rows",
    "read_label_txt",
    "read_thumos_txt",
    "register_format",
    "write_dense_json",
]
