"""The one in-memory form of temporal action annotations, shared by training and evaluation.

Times are seconds and labels are 0-based class indices, whatever the file format was.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np

from augrgb.core.errors import InputError


@dataclass(frozen=True)
class Segment:
    """One action instance: class index ``label`` (0-based) from ``start`` to ``end`` seconds."""

    label: int
    start: float
    end: float


@dataclass
class VideoAnnotation:
    """The ground truth of one video. ``duration`` is ``None`` where the format does not give it.

    ``ambiguous`` holds THUMOS14's "Ambiguous" intervals (seconds): not actions, not background.
    """

    video_id: str
    duration: float | None
    subset: str
    segments: list[Segment] = field(default_factory=list)
    fps: float | None = None
    ambiguous: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Annotations:
    """Class names (index = label) and the videos, in file order."""

    classes: list[str]
    videos: dict[str, VideoAnnotation]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[VideoAnnotation]:
        return iter(self.videos.values())

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.videos

    def subsets(self) -> list[str]:
        """Subset names in order of first appearance."""
        return list(dict.fromkeys(v.subset for v in self.videos.values()))

    def subset(self, name: str) -> Annotations:
        """The videos of one subset (``training``, ``validation``, ``testing``, ...)."""
        if name not in self.subsets():
            raise InputError(f"subset {name!r}", f"not in the annotations (subsets: {', '.join(self.subsets()) or 'none'})")
        return Annotations(list(self.classes), {k: v for k, v in self.videos.items() if v.subset == name})

    def select(self, video_ids: list[str]) -> Annotations:
        """The given videos, in the given order."""
        missing = [v for v in video_ids if v not in self.videos]
        if missing:
            raise InputError(f"video {missing[0]!r}", f"not in the annotations ({len(missing)} missing)")
        return Annotations(list(self.classes), {v: self.videos[v] for v in video_ids})

    def class_index(self, name: str) -> int:
        """The label index of a class name."""
        try:
            return self.classes.index(name)
        except ValueError:
            raise InputError(f"class {name!r}", f"not among the {len(self.classes)} classes") from None


def num_frames_at(duration: float, fps: float) -> int:
    """Frames of a ``duration``-second video at ``fps``: floor(duration * fps + 1e-6), the frames t = 0.. with
    t/fps < duration; the 1e-6 keeps a product that is whole in decimal but just below it in binary
    (1.16 s * 25 fps = 28.999999999999996) from losing its last frame."""
    return max(0, int(math.floor(duration * fps + 1e-6)))


def label_grid(video: VideoAnnotation, num_classes: int, fps: float, num_frames: int | None = None) -> np.ndarray:
    """Per-frame multi-label targets, shape (T, K), bool.

    The one rule used everywhere: frame t, at time t/fps, is positive for an action when
    start <= t/fps <= end. ``num_frames`` defaults to the frames of the video's duration.
    """
    if fps <= 0 or not math.isfinite(fps):
        raise InputError(f"fps {fps!r}", "must be a positive number")
    if num_frames is None:
        if video.duration is None:
            raise InputError(video.video_id, "duration unknown: pass num_frames to build the label grid")
        num_frames = num_frames_at(video.duration, fps)
    return label_times(video, num_classes, np.arange(num_frames, dtype=np.float64) / fps)


Interval = Literal["closed", "open"]


def label_times(video: VideoAnnotation, num_classes: int, times: np.ndarray, interval: Interval = "closed") -> np.ndarray:
    """Multi-label targets (N, K) bool at sorted ``times`` in seconds (frame times, snippet centres).

    ``interval="closed"`` is the rule of :func:`label_grid`, positive when start <= time <= end;
    ``"open"`` (start < time < end) exists only to reproduce TGM's evaluation labels.
    """
    if interval not in get_args(Interval):
        raise InputError(f"interval {interval!r}", "must be 'closed' or 'open'")
    times = np.asarray(times, dtype=np.float64)
    grid = np.zeros((len(times), num_classes), dtype=bool)
    closed = interval == "closed"
    for seg in video.segments:
        if not 0 <= seg.label < num_classes:
            raise InputError(video.video_id, f"label {seg.label} outside 0..{num_classes - 1}")
        first = np.searchsorted(times, seg.start, side="left" if closed else "right")
        stop = np.searchsorted(times, seg.end, side="right" if closed else "left")
        grid[first:stop, seg.label] = True
    return grid


def carve_validation(
    annotations: Annotations, fraction: float, seed: int, source_subset: str = "training"
) -> tuple[Annotations, Annotations]:
    """Split ``source_subset`` into (train, validation) at random but reproducibly.

    Ids are sorted before shuffling, so the split depends only on the ids, ``fraction`` and
    ``seed``; validation videos get subset ``"validation"``. Never carve from test data.
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"validation fraction {fraction!r}", "must be strictly between 0 and 1")
    ids = sorted(annotations.subset(source_subset).videos)
    if len(ids) < 2:
        raise InputError(f"subset {source_subset!r}", f"has {len(ids)} video(s); need at least 2 to carve a validation split")
    count = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    order = np.random.default_rng(seed).permutation(len(ids))
    chosen = {ids[i] for i in order[:count]}
    train = {k: v for k, v in annotations.videos.items() if v.subset == source_subset and k not in chosen}
    val = {k: replace(v, subset="validation") for k, v in annotations.videos.items() if k in chosen}
    return Annotations(list(annotations.classes), train), Annotations(list(annotations.classes), val)
