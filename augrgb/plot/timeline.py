"""Ground truth vs detected intervals of one video, per class, drawn by ``augrgb.detect.plot.plot_timeline``
(the one timeline drawing of the project) from an ``augrgb detect`` output folder or any ActivityNet results JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augrgb.annotations import Annotations, read_annotations
from augrgb.core.errors import InputError
from augrgb.core.paths import path_in
from augrgb.detect.plot import plot_timeline
from augrgb.detect.probabilities import VideoProbabilities, read_probabilities_file
from augrgb.metrics.detections import Detection, read_activitynet_results
from augrgb.plot.figure import DPI
from augrgb.plot.streams import find_video

RESULTS_JSON = "detections.json"  # name of the results file in an ``augrgb detect`` output folder


def read_video_detections(detections: str | Path, annotations: Annotations, video: str) -> tuple[list[Detection], VideoProbabilities | None]:
    """The detections of ``video`` (labels are the annotations' class names) and, from a detect output folder,
    its saved per-frame probabilities when present."""
    source = Path(detections)
    probs = None
    if source.is_dir():
        results = source / RESULTS_JSON
        if not results.is_file():
            raise InputError(source, f"no {RESULTS_JSON}: not an `augrgb detect` output folder")
        saved = path_in(source / "probabilities", video, ".h5")
        if saved.is_file():
            probs = read_probabilities_file(saved)
            if probs.classes != annotations.classes:
                raise InputError(saved, f"{len(probs.classes)} classes differ from the annotations' {annotations.num_classes}")
    elif source.is_file():
        results = source
    else:
        raise InputError(source, "detections not found (give an `augrgb detect` output folder or a results JSON)")
    found = [d for d in read_activitynet_results(results, annotations.classes) if d.video_id == video]
    return found, probs


def plot_detection_timeline(out: str | Path, detections: str | Path, annotations: str | Path, video: str, *,
                            fmt: str = "auto") -> Path:
    """Draw ground truth, detections (bar opacity = score) and, when saved, per-frame probabilities of ``video``."""
    ann = read_annotations(annotations, fmt)
    target = find_video(video, ann, annotations)
    found, probs = read_video_detections(detections, ann, video)
    ends = [s.end for s in target.segments] + [d.end for d in found]
    duration = target.duration or max(ends, default=1.0)
    return plot_timeline(out, video, ann.classes, None if probs is None else np.asarray(probs.frames),
                         None if probs is None else probs.fps, found, target.segments, duration=duration, dpi=DPI,
                         title=f"video {video}: ground truth vs {len(found)} detection(s) (bar opacity = score)")
