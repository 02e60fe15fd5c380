"""The output folder of ``augrgb detect`` and the formats written into it.

```
DIR/detections.json        ActivityNet results of every video of the run (times in seconds)
DIR/detections.csv         video,label,start,end,score (class names, seconds)
DIR/txt/<video>.txt        label,start,end,score per video, frames at the source video's fps (PKU-MMD/TSU)
DIR/probabilities/<video>.h5  per-frame and per-snippet probabilities (augrgb.detect.probabilities)
DIR/plots/<video>.png      timeline plot (--plot)
DIR/videos/<video>.json    per-video record, written last: a video is done when it exists
DIR/failed.txt             source: reason, one line per video that failed in the last run
```
Every file is written atomically; run-level files are rebuilt from the records after each run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augrgb.core.errors import InputError
from augrgb.core.files import write_text_atomic
from augrgb.core.paths import path_in
from augrgb.metrics.detections import Detection, write_activitynet_results, write_label_txt

RECORD_FORMAT = "augrgb.detect-record/1"


class OutputDir:
    """Paths of one detection output folder (video ids that would escape it are refused)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(self.root, "exists and is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)

    def _in(self, folder: str, video_id: str, suffix: str) -> Path:
        (self.root / folder).mkdir(exist_ok=True)
        return path_in(self.root / folder, video_id, suffix)

    def record(self, video_id: str) -> Path:
        return self._in("videos", video_id, ".json")

    def txt(self, video_id: str) -> Path:
        return self._in("txt", video_id, ".txt")

    def probabilities(self, video_id: str) -> Path:
        return self._in("probabilities", video_id, ".h5")

    def plot(self, video_id: str) -> Path:
        return self._in("plots", video_id, ".png")

    @property
    def results_json(self) -> Path:
        return self.root / "detections.json"

    @property
    def results_csv(self) -> Path:
        return self.root / "detections.csv"

    @property
    def failures(self) -> Path:
        return self.root / "failed.txt"

    def read_record(self, video_id: str) -> dict[str, Any] | None:
        """The record of a finished video, or None (missing or unreadable records mean "not done")."""
        path = self.record(video_id)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None

    def write_record(self, video_id: str, record: dict[str, Any]) -> Path:
        return write_text_atomic(self.record(video_id), json.dumps({"format": RECORD_FORMAT, **record}, indent=1) + "\n")


def detections_of(record: dict[str, Any], classes: Sequence[str]) -> list[Detection]:
    """The detections stored in a record (``[class name, start, end, score]`` rows)."""
    index = {name: i for i, name in enumerate(classes)}
    return [Detection(record["video_id"], index[name], start, end, score) for name, start, end, score in record["detections"]]


def write_txt(path: Path, detections: Sequence[Detection], fps: float, label_base: int = 0) -> Path:
    """PKU-MMD/TSU per-video file: ``label,start,end,score`` with frames ``floor(seconds * fps + 0.5)``.

    Written even when empty: the PKU-MMD protocol skips ground-truth videos without a prediction file.
    """
    rows = np.array([[d.label + label_base, math.floor(d.start * fps + 0.5), math.floor(d.end * fps + 0.5), d.score] for d in detections],
                    dtype=np.float64).reshape(-1, 4)
    return write_label_txt(path, rows)


def write_csv(path: Path, detections: Sequence[Detection], classes: Sequence[str]) -> Path:
    """``video,label,start,end,score`` with class names and seconds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video", "label", "start", "end", "score"])
    for d in detections:
        writer.writerow([d.video_id, classes[d.label], repr(d.start), repr(d.end), repr(d.score)])
    return write_text_atomic(path, buffer.getvalue())


def write_run_outputs(out: OutputDir, detections: Sequence[Detection], classes: Sequence[str]) -> None:
    """The run-level files: ActivityNet JSON and CSV of all given detections."""
    write_activitynet_results(out.results_json, detections, classes)
    write_csv(out.results_csv, detections, classes)
