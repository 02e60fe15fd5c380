"""The dense-detection JSON of Charades/MultiTHUMOS/TSU repositories and of our synthetic benchmark.

``{video: {"subset": ..., "duration": ..., "actions": [[class, start, end], ...]}}``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from augrgb.annotations.classes import ClassesArg, parse_float, parse_label, read_class_list, resolve_classes
from augrgb.annotations.core import Annotations, Segment, VideoAnnotation
from augrgb.annotations.formats import load_json, register_format
from augrgb.core.errors import InputError
from augrgb.core.files import write_text_atomic

CLASSES_FILE = "classes.txt"


@register_format("dense-json")
def read_dense_json(
    path: str | Path,
    classes: ClassesArg = None,
    label_base: int = 0,
    time_unit: Literal["seconds", "frames"] = "seconds",
    fps: float | None = None,
    num_classes: int | None = None,
) -> Annotations:
    """Read the dense-detection JSON.

    ``label_base``: 1 for MultiTHUMOS, 0 otherwise. ``time_unit="frames"`` (TSU) divides
    ``duration`` and action times by the video's ``"fps"`` entry or else by ``fps``.
    Classes: ``classes``, else ``classes.txt`` beside the file, else ``num_classes`` (or the
    largest class id seen) named by their ids.
    """
    path = Path(path)
    if time_unit not in ("seconds", "frames"):
        raise InputError(f"time_unit {time_unit!r}", "must be 'seconds' or 'frames'")
    names = resolve_classes(classes)
    if names is None and (path.parent / CLASSES_FILE).is_file():
        names = read_class_list(path.parent / CLASSES_FILE)
    limit = len(names) if names is not None else num_classes
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "top level is not an object {video: {...}}")
    videos: dict[str, VideoAnnotation] = {}
    for video_id, entry in data.items():
        where = f"{path}: video {video_id!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("subset"), str):
            raise InputError(where, "entry is not an object with a string 'subset'")
        video_fps = parse_float(entry["fps"], where, "fps") if "fps" in entry else fps
        if time_unit == "frames" and (video_fps is None or video_fps <= 0):
            raise InputError(where, "times are in frames but no positive fps is given (option fps= or an 'fps' entry)")
        scale = 1.0 / video_fps if time_unit == "frames" else 1.0
        duration = entry.get("duration")
        duration = None if duration is None else parse_float(duration, where, "duration") * scale
        actions = entry.get("actions", [])
        if not isinstance(actions, list):
            raise InputError(where, "'actions' is not a list")
        segments = []
        for i, action in enumerate(actions):
            spot = f"{where} action {i}"
            if not isinstance(action, list) or len(action) != 3:
                raise InputError(spot, f"{action!r} is not [class, start, end]")
            label = parse_label(action[0], spot, label_base, limit)
            segments.append(Segment(label, parse_float(action[1], spot, "start") * scale, parse_float(action[2], spot, "end") * scale))
        videos[video_id] = VideoAnnotation(video_id, duration, entry["subset"], segments, video_fps)
    if names is None:
        count = limit if limit is not None else 1 + max((s.label for v in videos.values() for s in v.segments), default=-1)
        names = [str(i + label_base) for i in range(count)]
    return Annotations(names, videos)


def write_dense_json(annotations: Annotations, path: str | Path) -> Path:
    """Write the dense-detection JSON (seconds, 0-based classes) and ``classes.txt`` beside it."""
    path = Path(path)
    data = {
        v.video_id: {
            "subset": v.subset,
            "duration": v.duration,
            "actions": [[s.label, s.start, s.end] for s in v.segments],
            **({"fps": v.fps} if v.fps is not None else {}),
        }
        for v in annotations
    }
    write_text_atomic(path.parent / CLASSES_FILE, "".join(f"{name}\n" for name in annotations.classes))
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")
