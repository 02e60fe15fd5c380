"""THUMOS14 / MultiTHUMOS per-class text files: ``<Class>_<subset>.txt`` with lines ``video start end``.

THUMOS14's ``Ambiguous_<subset>.txt`` is kept as each video's ``ambiguous`` intervals.
"""

from __future__ import annotations

from pathlib import Path

from augrgb.annotations.classes import ClassesArg, parse_float, read_class_list, resolve_classes
from augrgb.annotations.core import Annotations, Segment, VideoAnnotation
from augrgb.annotations.formats import register_format
from augrgb.core.errors import InputError

AMBIGUOUS = "Ambiguous"
CLASS_LIST_FILES = ("detclasslist.txt", "class_list.txt", "classes.txt")
SUBSET_NAMES = {"val": "validation", "test": "testing", "train": "training"}


def subset_of_video(video_id: str) -> str:
    """THUMOS names say their subset: ``video_validation_0000051`` / ``video_test_0000004``."""
    for key, name in (("_validation_", "validation"), ("_test_", "testing"), ("_train_", "training")):
        if key in video_id:
            return name
    return "unknown"


@register_format("thumos-txt")
def read_thumos_txt(path: str | Path, subset: str | None = None, classes: ClassesArg = None) -> Annotations:
    """Read a folder of per-class files ``<Class>_<subset>.txt`` (``subset`` e.g. ``test``/``val``).

    With ``subset=None`` the files are ``<Class>.txt`` and each video's subset comes from its name.
    Classes: ``classes``, else ``detclasslist.txt``/``class_list.txt``/``classes.txt`` in the folder,
    else every ``*_<subset>.txt`` file except Ambiguous, sorted.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(folder, "not a folder of per-class annotation files")
    suffix = f"_{subset}.txt" if subset else ".txt"
    names = resolve_classes(classes)
    if names is None:
        found = [folder / f for f in CLASS_LIST_FILES if (folder / f).is_file()]
        if found:
            names = read_class_list(found[0])
        elif subset:
            names = sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}") if p.name != f"{AMBIGUOUS}{suffix}")
        if not names:
            raise InputError(folder, "no class list (detclasslist.txt, class_list.txt or classes.txt) and no per-class files")
    subset_name = SUBSET_NAMES.get(subset, subset) if subset else None
    videos: dict[str, VideoAnnotation] = {}

    def video(video_id: str) -> VideoAnnotation:
        if video_id not in videos:
            videos[video_id] = VideoAnnotation(video_id, None, subset_name or subset_of_video(video_id), [])
        return videos[video_id]

    for label, name in enumerate(names):
        if not name or name != Path(name).name or name in (".", ".."):
            raise InputError(folder, f"class name {name!r} is not a plain file name (refused: its file would be read "
                                     f"from outside {folder})")
        file = folder / f"{name}{suffix}"
        if not file.is_file():
            raise InputError(file, f"missing: class {name!r} has no annotation file")
        for video_id, start, end in _read_rows(file):
            video(video_id).segments.append(Segment(label, start, end))
    ambiguous = folder / f"{AMBIGUOUS}{suffix}"
    if ambiguous.is_file():
        for video_id, start, end in _read_rows(ambiguous):
            video(video_id).ambiguous.append((start, end))
    return Annotations(list(names), videos)


def _read_rows(file: Path) -> list[tuple[str, float, float]]:
    rows = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(file, f"cannot read ({err.__class__.__name__}: {err})") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{file}:{n}"
        if len(parts) != 3:
            raise InputError(where, f"expected 'video start end', got {len(parts)} field(s)")
        rows.append((parts[0], parse_float(parts[1], where, "start"), parse_float(parts[2], where, "end")))
    return rows
