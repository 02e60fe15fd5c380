"""Charades CSV: ``id, ..., actions, length`` with actions ``c092 11.90 21.20;c147 0.00 12.60``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from augrgb.annotations.classes import ClassesArg, parse_float, resolve_classes
from augrgb.annotations.core import Annotations, Segment, VideoAnnotation
from augrgb.annotations.formats import register_format
from augrgb.core.errors import InputError

CHARADES_NUM_CLASSES = 157
_CLASS_ID = re.compile(r"^c(\d+)$")


def subset_from_file_name(name: str) -> str | None:
    """``Charades_v1_train.csv`` -> ``training``, ``Charades_v1_test.csv`` -> ``testing``."""
    lower = name.lower()
    if "train" in lower:
        return "training"
    if "test" in lower:
        return "testing"
    return None


@register_format("charades")
def read_charades_csv(path: str | Path, classes: ClassesArg = None, subset: str | None = None) -> Annotations:
    """Read a Charades CSV. ``subset`` defaults from the file name (train/test).

    ``classes``: ``Charades_v1_classes.txt`` or names; without it the 157 ids ``c000``..``c156``.
    A class ``cNNN`` is label NNN, as in the official evaluation.
    """
    path = Path(path)
    names = resolve_classes(classes) or [f"c{i:03d}" for i in range(CHARADES_NUM_CLASSES)]
    subset = subset or subset_from_file_name(path.name)
    if subset is None:
        raise InputError(path, "cannot tell the subset from the file name (no 'train'/'test' in it); pass subset=")
    videos: dict[str, VideoAnnotation] = {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"id", "actions", "length"} - set(reader.fieldnames or [])
            if missing:
                raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                video_id = (row["id"] or "").strip()
                if not video_id:
                    raise InputError(where, "empty video id")
                if video_id in videos:
                    raise InputError(where, f"video {video_id} appears twice")
                length = parse_float(row["length"], where, "length")
                if length < 0:
                    raise InputError(where, f"negative length {length}")
                segments = [_parse_action(item, where, len(names)) for item in (row["actions"] or "").split(";") if item.strip()]
                videos[video_id] = VideoAnnotation(video_id, length, subset, segments)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"cannot read CSV ({err.__class__.__name__}: {err})") from None
    return Annotations(names, videos)


def _parse_action(item: str, where: str, num_classes: int) -> Segment:
    parts = item.split()
    if len(parts) != 3 or not _CLASS_ID.match(parts[0]):
        raise InputError(where, f"action {item.strip()!r} is not 'cNNN start end'")
    label = int(_CLASS_ID.match(parts[0]).group(1))
    if label >= num_classes:
        raise InputError(where, f"class {parts[0]} outside c000..c{num_classes - 1:03d}")
    return Segment(label, parse_float(parts[1], where, "start"), parse_float(parts[2], where, "end"))
