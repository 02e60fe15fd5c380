"""Turning video ids into file names without letting them escape an output folder."""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from pathlib import Path

from augrgb.core.errors import InputError

_BAD_ID = re.compile(r"(^\.{1,2}$)|[/\\\x00]|^\s|\s$")
_BREAKING = {"Cc", "Zl", "Zp"}  # control characters and line/paragraph separators: they break a line of output
MAX_ID_BYTES = 240  # an id plus the longest suffix we add (".tmp.npy", ".json") must stay within NAME_MAX (255)


def printable(text: str) -> str:
    """``text`` safe to print on one line: control characters escaped (``\\n``), undecodable bytes of a file name
    (Python's surrogate escapes) shown as ``\\xNN``."""
    out = []
    for ch in text:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif unicodedata.category(ch) in _BREAKING:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def check_video_id(video_id: str) -> str:
    """Return ``video_id`` if it is a safe single path component, else raise :class:`InputError`.

    Refused, with one line: ids that could escape the output folder, ids with control characters
    (a newline would split report lines), ids whose name is not valid UTF-8 (HDF5 stores them as UTF-8),
    and ids longer than :data:`MAX_ID_BYTES` bytes.
    """
    if not video_id or _BAD_ID.search(video_id) or video_id.startswith(".."):
        raise InputError(printable(video_id) or "<empty id>", "video id is not a plain file name (refused: it could escape the output folder)")
    shown = printable(video_id)
    if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in video_id):
        raise InputError(shown, "video id is not valid UTF-8 (refused: rename the file)")
    if any(unicodedata.category(ch) in _BREAKING for ch in video_id):
        raise InputError(shown, "video id contains control characters such as a newline (refused: rename the file)")
    if len(video_id.encode("utf-8")) > MAX_ID_BYTES:
        raise InputError(shown[:60] + "...", f"video id is {len(video_id.encode('utf-8'))} bytes, more than {MAX_ID_BYTES} (refused: rename the file)")
    return video_id


def path_in(root: str | Path, video_id: str, suffix: str) -> Path:
    """The file ``root/<video_id><suffix>``, refusing ids that would land outside ``root``."""
    root = Path(root).resolve()
    path = (root / f"{check_video_id(video_id)}{suffix}").resolve()
    if path.parent != root:
        raise InputError(video_id, f"video id resolves outside {root} (refused)")
    return path


_SPECIAL = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"))


def unreadable(path: str | Path) -> str | None:
    """Why input ``path`` cannot be read at all (missing, a broken or looping symbolic link, no permission, or not a
    file a decoder can seek in: opening a named pipe would wait forever for a writer), else None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link (its target does not exist)" if os.path.islink(path) else "no such file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"cannot be read ({exc.strerror or exc.__class__.__name__})"
    for is_kind, kind in _SPECIAL:
        if is_kind(info.st_mode):
            return f"not a regular file ({kind})"
    if not stat.S_ISDIR(info.st_mode) and not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None
