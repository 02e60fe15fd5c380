"""Turning video ids into file names without letting them escape an output folder."""

from __future__ import annotations

import re
from pathlib import Path

from augrgb.core.errors import InputError

_BAD_ID = re.compile(r"(^\.{1,2}$)|[/\\\x00]|^\s|\s$")


def check_video_id(video_id: str) -> str:
    """Return ``video_id`` if it is a safe single path component, else raise :class:`InputError`."""
    if not video_id or _BAD_ID.search(video_id) or video_id.startswith(".."):
        raise InputError(video_id or "<empty id>", "video id is not a plain file name (refused: it could escape the output folder)")
    return video_id


def path_in(root: str | Path, video_id: str, suffix: str) -> Path:
    """The file ``root/<video_id><suffix>``, refusing ids that would land outside ``root``."""
    root = Path(root).resolve()
    path = (root / f"{check_video_id(video_id)}{suffix}").resolve()
    if path.parent != root:
        raise InputError(video_id, f"video id resolves outside {root} (refused)")
    return path
