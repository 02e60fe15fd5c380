"""Per-frame class probabilities of a video, and the HDF5 file they are saved in.

Frame t of a video (at the model's fps, t = 0 .. frames-1) takes the probabilities of the snippet
whose centre frame ``i*stride + (snippet-1)/2`` is nearest (the earlier on a tie): with
stride = snippet that is snippet ``t // stride``, the one covering the frame.

File layout (one file per video, ``<video_id>.h5``): dataset ``frames`` (N, K) float32, the class
probabilities per frame (no background column); dataset ``snippets`` (T, K') float32, the head's
output per snippet (softmax heads: background last); attributes ``video_id``, ``fps``,
``snippet``, ``stride``, ``frames``, ``head``, ``classes`` (JSON list), ``model_sha256`` and the
source video.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from augrgb.core.errors import InputError
from augrgb.core.files import replacing
from augrgb.core.grid import SnippetGrid
from augrgb.metrics.frame import upsample_scores


def frame_probabilities(snippet_probs: np.ndarray, grid: SnippetGrid) -> np.ndarray:
    """``(T, K')`` snippet probabilities -> ``(grid.frames, K')`` per-frame probabilities (module rule)."""
    return upsample_scores(snippet_probs, grid, np.arange(grid.frames) / grid.fps).astype(np.float32)


@dataclass
class VideoProbabilities:
    """One video's saved probabilities (see module docstring)."""

    video_id: str
    frames: np.ndarray
    snippets: np.ndarray
    fps: float
    classes: list[str]
    head: str
    attrs: dict[str, Any] = field(default_factory=dict)


def write_probabilities(path: str | Path, video: VideoProbabilities) -> Path:
    """Write one video's probabilities atomically."""
    attrs = {**video.attrs, "video_id": video.video_id, "fps": video.fps, "head": video.head,
             "classes": json.dumps(video.classes)}
    with replacing(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("frames", data=np.asarray(video.frames, np.float32), compression="gzip")
            h5.create_dataset("snippets", data=np.asarray(video.snippets, np.float32), compression="gzip")
            for key, value in attrs.items():
                h5.attrs[key] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else value
    return Path(path)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_probabilities_file(path: str | Path) -> VideoProbabilities:
    """One probabilities file, checked (shapes, attributes, finite values)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            if "frames" not in h5 or "snippets" not in h5:
                raise InputError(path, "not a probabilities file (needs datasets 'frames' and 'snippets')")
            frames, snippets = h5["frames"][()], h5["snippets"][()]
            attrs = {k: _plain(v) for k, v in h5.attrs.items()}
    except OSError as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc})") from None
    try:
        classes = json.loads(attrs.pop("classes"))
        video = VideoProbabilities(str(attrs.pop("video_id")), frames, snippets, float(attrs.pop("fps")), classes,
                                   str(attrs.pop("head")), attrs)
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(path, f"probabilities file lacks a valid attribute ({exc})") from None
    if frames.ndim != 2 or frames.shape[1] != len(classes) or not np.isfinite(frames).all():
        raise InputError(path, f"'frames' must be finite (N, {len(classes)}), got shape {frames.shape}")
    return video


def read_probabilities(path: str | Path) -> dict[str, VideoProbabilities]:
    """A probabilities file, or every ``*.h5`` in a folder of them: video id -> probabilities."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.h5"))
        if not files:
            raise InputError(path, "no .h5 probabilities files in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise InputError(path, "no such file or folder")
    videos: dict[str, VideoProbabilities] = {}
    for file in files:
        video = read_probabilities_file(file)
        if video.video_id in videos:
            raise InputError(file, f"video {video.video_id!r} appears in more than one file")
        videos[video.video_id] = video
    return videos


def check_same_classes(videos: Mapping[str, VideoProbabilities]) -> list[str]:
    """The class list every file shares (files of different models are refused)."""
    first = next(iter(videos.values()))
    for video in videos.values():
        if video.classes != first.classes:
            raise InputError(video.video_id, f"probabilities over other classes than video {first.video_id!r}'s")
    return first.classes
