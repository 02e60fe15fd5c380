"""The registry of annotation formats and the one entry point, :func:`read_annotations`."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from augrgb.annotations.core import Annotations
from augrgb.core.errors import InputError

AnnotationReader = Callable[..., Annotations]
_FORMATS: dict[str, AnnotationReader] = {}


def register_format(name: str) -> Callable[[AnnotationReader], AnnotationReader]:
    """Decorator adding a reader ``reader(path, **options) -> Annotations`` under ``name``."""

    def add(reader: AnnotationReader) -> AnnotationReader:
        if name in _FORMATS:
            raise ValueError(f"annotation format {name!r} registered twice")
        _FORMATS[name] = reader
        return reader

    return add


def annotation_formats() -> list[str]:
    """Names accepted by ``read_annotations(fmt=...)``."""
    return sorted(_FORMATS)


def load_json(path: str | Path) -> Any:
    """Parse a JSON file, turning every failure into a one-line :class:`InputError`."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}", f"not valid JSON ({err.msg}, column {err.colno})") from None
    except RecursionError:
        raise InputError(path, "JSON nested too deeply to be annotations") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read ({err.__class__.__name__}: {err})") from None


def detect_format(path: str | Path) -> str:
    """Guess the format: ``.csv`` is Charades; JSON by its structure; folders by their file names."""
    path = Path(path)
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        thumos_like = any(n.startswith("Ambiguous_") or n.endswith(("_test.txt", "_val.txt")) for n in names)
        return "thumos-txt" if thumos_like or {"detclasslist.txt", "class_list.txt"} & names else "label-txt"
    if path.suffix.lower() == ".csv":
        return "charades"
    if path.suffix.lower() == ".json":
        data = load_json(path)
        if isinstance(data, dict) and "database" in data:
            return "activitynet"
        first = next(iter(data.values()), None) if isinstance(data, dict) else None
        if isinstance(first, dict) and "annotations" in first:
            return "activitynet"
        if isinstance(first, dict) and "actions" in first:
            return "dense-json"
        raise InputError(path, "JSON is neither ActivityNet ('annotations') nor dense-detection ('actions') ground truth")
    if not path.exists():
        raise InputError(path, "no such file or folder")
    raise InputError(path, "cannot tell the annotation format from the name; pass fmt=")


def read_annotations(path: str | Path, fmt: str = "auto", **options: Any) -> Annotations:
    """Read ground truth in any registered format (see :func:`annotation_formats`) into :class:`Annotations`.

    An option the format's reader does not take (``label_base`` for a Charades CSV) is an
    :class:`InputError` naming the file, not a ``TypeError``.
    """
    name = detect_format(path) if fmt == "auto" else fmt
    if name not in _FORMATS:
        raise InputError(f"format {fmt!r}", f"unknown annotation format (known: {', '.join(annotation_formats())})")
    reader = _FORMATS[name]
    taken = list(inspect.signature(reader).parameters)[1:]
    unknown = [key for key in options if key not in taken]
    if unknown:
        raise InputError(path, f"the {name} format takes no option {unknown[0]!r} (its options: {', '.join(taken)})")
    annotations = reader(path, **options)
    check_times(annotations, path)
    return annotations


def check_times(annotations: Annotations, path: str | Path) -> None:
    """Refuse times no video can have: negative or reversed segments, non-finite or negative durations and rates."""
    for video in annotations:
        where = f"{path}: video {video.video_id!r}"
        if video.fps is not None and not (math.isfinite(video.fps) and video.fps > 0):
            raise InputError(where, f"fps {video.fps!r} must be a positive finite number")
        if video.duration is not None and not (math.isfinite(video.duration) and video.duration >= 0):
            raise InputError(where, f"duration {video.duration!r} must be a finite number >= 0")
        for seg in [*((s.start, s.end) for s in video.segments), *video.ambiguous]:
            start, end = seg
            if not (math.isfinite(start) and math.isfinite(end)):
                raise InputError(where, f"segment {start}..{end} s is not finite")
            if start < 0:
                raise InputError(where, f"segment {start}..{end} s starts before 0")
            if end < start:
                raise InputError(where, f"segment {start}..{end} s ends before it starts")
