"""Detections and the prediction file formats the official evaluations read.

ActivityNet results JSON, THUMOS14 detection text, PKU-MMD/TSU per-video ``label,start,end,score``
files, and Charades localisation submissions (25 score rows per video).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augrgb.annotations.classes import parse_float
from augrgb.annotations.formats import load_json
from augrgb.annotations.label_txt import read_label_rows
from augrgb.core.errors import InputError
from augrgb.core.files import write_text_atomic

log = logging.getLogger(__name__)

CHARADES_POINTS = 25
"""Time points per video in the Charades localisation protocol."""


@dataclass(frozen=True)
class Detection:
    """One detected action instance: class index ``label`` from ``start`` to ``end`` with ``score``."""

    video_id: str
    label: int
    start: float
    end: float
    score: float


def read_activitynet_results(path: str | Path, classes: Sequence[str]) -> list[Detection]:
    """Read ``{"results": {vid: [{"label": name, "score": s, "segment": [t0, t1]}]}}`` in file order.

    Labels not in ``classes`` are dropped with a warning (the official script would crash).
    """
    data = load_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise InputError(path, "no 'results' object: not an ActivityNet results file")
    index = {name: i for i, name in enumerate(classes)}
    detections: list[Detection] = []
    unknown: dict[str, int] = {}
    for video_id, items in results.items():
        if not isinstance(items, list):
            raise InputError(f"{path}: video {video_id!r}", "results are not a list")
        for i, item in enumerate(items):
            where = f"{path}: video {video_id!r} result {i}"
            segment = item.get("segment") if isinstance(item, dict) else None
            if not isinstance(segment, list) or len(segment) != 2 or "label" not in item or "score" not in item:
                raise InputError(where, "is not {'label': name, 'score': s, 'segment': [start, end]}")
            label = str(item["label"])
            if label not in index:
                unknown[label] = unknown.get(label, 0) + 1
                continue
            start, end = (parse_float(t, where, what) for t, what in zip(segment, ("start", "end")))
            detections.append(Detection(video_id, index[label], start, end, parse_float(item["score"], where, "score")))
    if unknown:
        shown = ", ".join(f"{k!r} ({v})" for k, v in list(unknown.items())[:5])
        log.warning("%s: ignored %d prediction(s) whose label is not a ground-truth class: %s", path, sum(unknown.values()), shown)
    return detections


def write_activitynet_results(path: str | Path, detections: Sequence[Detection], classes: Sequence[str]) -> Path:
    """Write detections as an ActivityNet results JSON (atomically)."""
    results: dict[str, list[dict]] = {}
    for d in detections:
        results.setdefault(d.video_id, []).append({"label": classes[d.label], "score": d.score, "segment": [d.start, d.end]})
    payload = {"version": "augrgb", "results": results, "external_data": {"used": False}}
    return write_text_atomic(path, json.dumps(payload) + "\n")


def read_thumos14_detections(path: str | Path, class_ids: Mapping[int, int]) -> list[Detection]:
    """Read a THUMOS14 detection file: lines ``video start end class_id score``, in file order.

    ``class_ids`` maps the dataset's class ids (``detclasslist.txt``) to label indices; other ids are
    skipped with a warning. As in the 2015 kit (``TH14evalDet.m``), every ``.mp4`` in a video name is
    removed and nothing else: ``.mpeg`` names (stripped by the 2014 kit) stay as written and so match
    no ground-truth video.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read ({err.__class__.__name__}: {err})") from None
    detections, skipped = [], 0
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{n}"
        if len(parts) != 5:
            raise InputError(where, f"expected 'video start end class_id score', got {len(parts)} field(s)")
        class_id = parse_float(parts[3], where, "class id")
        if class_id != int(class_id):
            raise InputError(where, f"class id {parts[3]!r} is not an integer")
        if int(class_id) not in class_ids:
            skipped += 1
            continue
        video_id = parts[0].replace(".mp4", "")
        start, end, score = (parse_float(p, where, w) for p, w in zip(parts[1:3] + parts[4:], ("start", "end", "score")))
        detections.append(Detection(video_id, class_ids[int(class_id)], start, end, score))
    if skipped:
        log.warning("%s: ignored %d detection(s) whose class id is not a detection class", path, skipped)
    return detections


def read_label_dir(folder: str | Path, require_confidence: bool, num_labels: int | None = None) -> dict[str, np.ndarray]:
    """Every ``*.txt`` of a PKU-MMD/TSU-style folder: file name -> (n, 4) raw rows (labels 0..num_labels-1), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder of per-video label files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".txt")
    return {p.name: read_label_rows(p, require_confidence, num_labels=num_labels) for p in files}


def write_label_txt(path: str | Path, rows: np.ndarray) -> Path:
    """Write (n, 4) rows ``label,start,end,score`` as a PKU-MMD/TSU per-video file (atomically)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    text = "".join(f"{int(r[0])},{r[1]!r},{r[2]!r},{r[3]!r}\n" for r in rows.tolist())
    return write_text_atomic(path, text)


def read_charades_submission(
    path: str | Path, num_classes: int, num_points: int = CHARADES_POINTS
) -> dict[str, np.ndarray]:
    """Read a Charades localisation submission: lines ``id framenr score_1 .. score_K``.

    Returns video id -> (num_points, K) scores, ``-inf`` where a frame is missing. As in the
    official script, frame numbers are 1-based, and if the smallest is 0 all are shifted by one;
    frames outside 1..num_points are ignored with a warning. Duplicated frames and NaN are errors.
    """
    path = Path(path)
    rows: list[tuple[str, int, list[float], str]] = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as err:
        raise InputError(path, f"cannot read ({err.__class__.__name__}: {err})") from None
    with handle:
        for n, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{path}:{n}"
            if len(parts) != num_classes + 2:
                raise InputError(where, f"expected 'id framenr' and {num_classes} scores, got {len(parts) - 2} score(s)")
            frame = parse_float(parts[1], where, "frame number")
            if frame != int(frame):
                raise InputError(where, f"frame number {parts[1]!r} is not an integer")
            try:
                scores = [float(p) for p in parts[2:]]
            except ValueError:
                raise InputError(where, "a score is not a number") from None
            if any(math.isnan(s) for s in scores):
                raise InputError(where, "a score is NaN")
            rows.append((parts[0], int(frame), scores, where))
    shift = 1 if rows and min(r[1] for r in rows) == 0 else 0
    if shift:
        log.warning("%s: frame numbers start at 0; adding 1 to all of them, as the official script does", path)
    out: dict[str, np.ndarray] = {}
    seen: set[tuple[str, int]] = set()
    outside = 0
    for video_id, frame, scores, where in rows:
        frame += shift
        if (video_id, frame) in seen:
            raise InputError(where, f"frame {frame} of video {video_id} appears twice")
        seen.add((video_id, frame))
        if not 1 <= frame <= num_points:
            outside += 1
            continue
        grid = out.setdefault(video_id, np.full((num_points, num_classes), -np.inf))
        grid[frame - 1] = scores
    if outside:
        log.warning("%s: ignored %d line(s) with frame numbers outside 1..%d", path, outside, num_points)
    return out


def write_charades_submission(path: str | Path, scores: Mapping[str, np.ndarray]) -> Path:
    """Write (num_points, K) scores per video as a Charades localisation submission (frames 1-based)."""
    lines = []
    for video_id, grid in scores.items():
        for frame, row in enumerate(np.asarray(grid, dtype=np.float64).tolist(), 1):
            lines.append(f"{video_id} {frame} {' '.join(repr(v) for v in row)}\n")
    return write_text_atomic(path, "".join(lines))
