"""PKU-MMD / TSU per-video label files: one file per video, lines ``label,start,end,confidence`` in frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augrgb.annotations.classes import ClassesArg, parse_float, parse_label, resolve_classes
from augrgb.annotations.core import Annotations, Segment, VideoAnnotation
from augrgb.annotations.formats import register_format
from augrgb.core.errors import InputError


def read_label_rows(
    path: str | Path, require_confidence: bool = False, first_label: int = 0, num_labels: int | None = None
) -> np.ndarray:
    """The raw rows of one label file as float64 (n, 4): label, start, end, confidence (NaN if absent).

    Fields are separated by commas and/or spaces, as the official scripts accept; blank lines are
    skipped. Labels must be integers from ``first_label`` (``num_labels`` of them when given);
    ``require_confidence`` demands the 4th column.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read ({err.__class__.__name__}: {err})") from None
    rows = []
    for n, line in enumerate(lines, 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        where = f"{path}:{n}"
        expected = "label,start,end,confidence" if require_confidence else "label,start,end[,confidence]"
        if len(parts) not in ((4,) if require_confidence else (3, 4)):
            raise InputError(where, f"expected {expected}, got {len(parts)} field(s)")
        label = parse_label(parts[0], where, first_label, num_labels) + first_label
        values = [parse_float(p, where, what) for p, what in zip(parts[1:], ("start", "end", "confidence"))]
        rows.append([label, *values, *([np.nan] if len(values) == 2 else [])])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


@register_format("label-txt")
def read_label_txt(
    path: str | Path,
    fps: float = 30.0,
    label_base: int = 1,
    classes: ClassesArg = None,
    num_classes: int | None = None,
    subset: str = "testing",
) -> Annotations:
    """Read a folder of per-video label files (``<video>.txt``), frames at ``fps``.

    PKU-MMD: ``fps=30, label_base=1`` (labels 1..51). TSU: ``label_base=0`` (labels 0..50).
    Classes: ``classes``, else ``num_classes`` (or the largest label seen) named by their ids.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(folder, "not a folder of per-video label files")
    if fps <= 0:
        raise InputError(f"fps {fps!r}", "must be positive")
    names = resolve_classes(classes)
    limit = len(names) if names is not None else num_classes
    videos: dict[str, VideoAnnotation] = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".txt"):
        rows = read_label_rows(file, first_label=label_base, num_labels=limit)
        segments = [Segment(int(row[0]) - label_base, row[1] / fps, row[2] / fps) for row in rows]
        videos[file.stem] = VideoAnnotation(file.stem, None, subset, segments, fps)
    if not videos:
        raise InputError(folder, "no .txt label files")
    if names is None:
        count = limit if limit is not None else 1 + max((s.label for v in videos.values() for s in v.segments), default=-1)
        names = [str(i + label_base) for i in range(count)]
    return Annotations(names, videos)
