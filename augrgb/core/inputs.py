"""The inputs of a batch command (``augrgb extract``, ``augrgb detect``): files, folders and list files
expanded to paths, the video id each is stored under, one check that ids are valid and unique, and
the outcome every input gets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from augrgb.core.errors import InputError
from augrgb.core.paths import check_video_id

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}


def is_video_file(path: Path) -> bool:
    """True for a file name with a video suffix (what folders are searched for by default)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def collect_inputs(inputs: Sequence[str | Path], folders_are_items: bool = False,
                   accepts: Callable[[Path], bool] = is_video_file) -> list[Path]:
    """Expand input files, folders (recursively, the files ``accepts`` takes) and list files (one path per line).

    A ``.txt``/``.lst``/``.list`` file is a list file unless ``accepts`` takes it as an input itself.
    With ``folders_are_items`` a folder is itself one input (a folder of flow images).
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir() and not folders_are_items:
            # what the name says is an input is one, even if it cannot be read (a broken link, a folder or a named
            # pipe named like a video): it is reported and recorded, never silently skipped
            found.extend(sorted(p for p in item.rglob("*") if accepts(p)))
        elif item.suffix.lower() in (".txt", ".lst", ".list") and item.is_file() and not accepts(item):
            try:
                text = item.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(item, f"list file is not UTF-8 text (byte {exc.start})") from None
            for line in text.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    path = Path(line)
                    found.append(path if path.is_absolute() else item.parent / path)
        else:
            found.append(item)
    return found


def video_id_of(path: Path, strip_suffix: str | None = None) -> str:
    """The id a video is stored under: its file name without the extension (a folder's name), minus
    ``strip_suffix`` where the name ends with it (``_rgb``: NTU's ``S001..._rgb.avi`` -> ``S001...``)."""
    name = path.name if path.is_dir() else path.stem
    if strip_suffix and name.endswith(strip_suffix):
        name = name[: -len(strip_suffix)]
    return name


def claim_id(video_id: str, path: Path, seen: dict[str, Path]) -> str | None:
    """Why ``video_id`` of input ``path`` cannot be used (not a valid id, or one an earlier input took), else None
    after recording it in ``seen`` (id -> path, in input order). Whether the input is readable is the caller's
    check: only inputs it will read have to be."""
    try:
        check_video_id(video_id)
        if video_id in seen:
            raise InputError(path, f"video id '{video_id}' already used by {seen[video_id]}")
    except InputError as exc:
        return exc.reason
    seen[video_id] = path
    return None


def error_reason(exc: Exception) -> str:
    """One line for an unexpected error on one input (``OSError: ...``), so the batch can go on."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {first}"


@dataclass
class InputResult:
    """Outcome of one input: ``status`` is done, skipped or failed (with ``reason``), or a command's own."""

    video_id: str
    source: str
    status: str
    reason: str | None = None
    traceback: str | None = None  # of an unexpected error, for the output's error log
