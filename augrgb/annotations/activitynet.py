"""ActivityNet ground-truth JSON, with or without the ``{"database": ...}`` wrapper."""

from __future__ import annotations

from pathlib import Path

from augrgb.annotations.classes import ClassesArg, parse_float, resolve_classes
from augrgb.annotations.core import Annotations, Segment, VideoAnnotation
from augrgb.annotations.formats import load_json, register_format
from augrgb.core.errors import InputError


@register_format("activitynet")
def read_activitynet_json(path: str | Path, classes: ClassesArg = None) -> Annotations:
    """Read ``{vid: {subset, duration, annotations: [{segment: [s, e], label: name}]}}``.

    Without ``classes`` the class list is the labels in order of first appearance in the file.
    """
    path = Path(path)
    names = resolve_classes(classes)
    index = {name: i for i, name in enumerate(names)} if names is not None else {}
    data = load_json(path)
    database = data.get("database", data) if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise InputError(path, "not an ActivityNet ground truth ({'database': {video: {...}}})")
    videos: dict[str, VideoAnnotation] = {}
    for video_id, entry in database.items():
        where = f"{path}: video {video_id!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("subset"), str):
            raise InputError(where, "entry is not an object with a string 'subset'")
        duration = entry.get("duration")
        duration = None if duration is None else parse_float(duration, where, "duration")
        anns = entry.get("annotations", [])
        if not isinstance(anns, list):
            raise InputError(where, "'annotations' is not a list")
        segments = []
        for i, ann in enumerate(anns):
            spot = f"{where} annotation {i}"
            segment = ann.get("segment") if isinstance(ann, dict) else None
            label = ann.get("label") if isinstance(ann, dict) else None
            if not isinstance(segment, list) or len(segment) != 2 or not isinstance(label, str):
                raise InputError(spot, "is not {'segment': [start, end], 'label': name}")
            if label not in index:
                if names is not None:
                    raise InputError(spot, f"label {label!r} is not in the class list")
                index[label] = len(index)
            segments.append(Segment(index[label], parse_float(segment[0], spot, "start"), parse_float(segment[1], spot, "end")))
        videos[video_id] = VideoAnnotation(video_id, duration, entry["subset"], segments)
    return Annotations(names if names is not None else list(index), videos)
