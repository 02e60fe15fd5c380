"""The snippet grid shared by every modality and stage: snippet i covers frames [i*stride, i*stride + snippet).

Snippets are added until the last frame is covered, so a video of N frames has
``1 + ceil(max(N - snippet, 0) / stride)`` snippets; the tail (and a video shorter than one
snippet) is padded by repeating the last frame, and the number of padded frames is reported.
:class:`SnippetGrid` places snippets in time (labels, upsampling to frames, intervals).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augrgb.core.errors import InputError

GRID_KEYS = ("fps", "snippet", "stride")
"""The attributes of features and checkpoints that fix their snippet grid."""


def num_snippets(num_frames: int, snippet: int, stride: int) -> int:
    """How many snippets cover ``num_frames`` frames (0 for an empty video)."""
    if num_frames <= 0:
        return 0
    return 1 + math.ceil(max(num_frames - snippet, 0) / stride)


def snippet_frame_indices(num_frames: int, snippet: int = 16, stride: int = 16) -> np.ndarray:
    """(S, snippet) frame indices of every snippet on the grid, past-the-end indices clamped to the last frame
    (the padding :func:`iter_snippets` applies to a stream)."""
    if num_frames < 1:
        raise ValueError("a sequence needs at least one frame to be cut into snippets")
    if not 1 <= stride <= snippet:
        raise ValueError(f"need 1 <= stride <= snippet (got stride {stride}, snippet {snippet}): frames would be skipped")
    starts = np.arange(num_snippets(num_frames, snippet, stride))[:, None] * stride
    return np.minimum(starts + np.arange(snippet)[None, :], num_frames - 1)


def snippet_centers(count: int, snippet: int, stride: int, fps: float) -> np.ndarray:
    """Time (s) of each snippet's middle frame, ``(i*stride + (snippet - 1)/2) / fps``.

    Frame t is at time t/fps (the label rule), so a snippet's frames span
    [i*stride/fps, (i*stride + snippet - 1)/fps] and this is their midpoint. Training labels
    and evaluation upsampling both use it.
    """
    return (np.arange(count) * stride + (snippet - 1) / 2.0) / fps


@dataclass(frozen=True)
class SnippetGrid:
    """Where snippets sit in a video at ``fps``: snippet i covers frames ``[i*stride, i*stride + snippet)``;
    ``frames``, the video's length when known, clips the padded tail of the last snippet."""

    fps: float
    snippet: int = 16
    stride: int = 16
    frames: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0 and self.snippet >= 1 and 1 <= self.stride <= self.snippet
                and (self.frames is None or self.frames >= 1)):
            raise InputError("snippet grid", f"needs finite fps > 0, 1 <= stride <= snippet, frames >= 1 (got {self})")

    @classmethod
    def of(cls, attrs: Mapping[str, Any], frames: int | None = None, source: str | Path = "snippet grid") -> SnippetGrid:
        """The grid named by the :data:`GRID_KEYS` of feature or checkpoint attributes; one missing, not a number or
        impossible is an :class:`InputError` naming ``source`` (where the attributes come from), never a KeyError."""
        values = []
        for key, kind in zip(GRID_KEYS, (float, int, int)):
            if key not in attrs:
                raise InputError(source, f"no '{key}' attribute (a snippet grid needs {', '.join(GRID_KEYS)})")
            try:
                values.append(kind(attrs[key]))
            except (TypeError, ValueError, OverflowError):
                raise InputError(source, f"'{key}' attribute {attrs[key]!r} is not a number") from None
        try:
            return cls(*values, frames)
        except InputError as exc:
            raise InputError(source, exc.reason) from None

    def attrs(self) -> dict[str, Any]:
        """``{fps, snippet, stride}``: the grid as feature attributes."""
        return {"fps": self.fps, "snippet": self.snippet, "stride": self.stride}

    def centres(self, count: int) -> np.ndarray:
        """Time (s) of each of ``count`` snippets' middle frame (:func:`snippet_centers`)."""
        return snippet_centers(count, self.snippet, self.stride, self.fps)

    def span(self, first: int, last: int) -> tuple[float, float]:
        """Seconds covered by snippets ``first..last`` (inclusive), the end clipped to the video when its length
        is known."""
        end = last * self.stride + self.snippet
        return first * self.stride / self.fps, (end if self.frames is None else min(end, self.frames)) / self.fps


@dataclass
class Snippet:
    """``frames`` (snippet, ...) starting at video frame ``start``; the last ``padded`` are repeats."""

    index: int
    start: int
    frames: np.ndarray
    padded: int


def iter_snippets(frames: Iterable[np.ndarray], snippet: int = 16, stride: int = 16) -> Iterator[Snippet]:
    """Stream snippets from a frame stream, holding at most ``snippet`` frames in memory."""
    if not 1 <= stride <= snippet:
        raise ValueError(f"need 1 <= stride <= snippet (got stride {stride}, snippet {snippet}): frames would be skipped")
    window: deque[np.ndarray] = deque(maxlen=snippet)
    seen = 0
    next_start = 0
    index = 0
    for frame in frames:
        window.append(frame)
        seen += 1
        if seen == next_start + snippet:
            yield Snippet(index, next_start, np.stack(window), 0)
            index += 1
            next_start += stride
    # Tail: the frames after the last complete snippet that no snippet covered yet.
    if seen and num_snippets(seen, snippet, stride) > index:
        have = seen - next_start
        real = list(window)[-have:] if have > 0 else []
        pad = snippet - len(real)
        yield Snippet(index, next_start, np.stack(real + [real[-1]] * pad), pad)
