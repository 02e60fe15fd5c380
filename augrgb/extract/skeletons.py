"""Readers for skeleton files as datasets ship them, all returning one layout.

Every reader gives float32 joints (T, M, 25, 3) in metres in the NTU RGB+D joint order
(:mod:`augrgb.extract.skeleton_layout`), M = ``max_bodies`` (2 by default); a body absent from a
frame is all zeros. Formats: NTU RGB+D ``.skeleton`` text, PKU-MMD skeleton ``.txt`` (150 floats a
frame) and ``.npy`` arrays (T, M, 25, 3) or (T, 25, 3). Malformed content raises
:class:`~augrgb.core.errors.InputError` naming the file, the line and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augrgb.core.errors import InputError
from augrgb.extract.resample import IndexResampler, as_rate
from augrgb.extract.skeleton_layout import NUM_JOINTS
from augrgb.extract.store import load_npy

KINECT_FPS = 30.0  # NTU RGB+D and PKU-MMD were both recorded with Kinect v2 at 30 frames/s
NTU_BODY_VALUES = 10  # bodyID clippedEdges handLeft(Confidence,State) handRight(Confidence,State) isRestricted leanX leanY trackingState
NTU_JOINT_VALUES = 12  # x y z depthX depthY colorX colorY orientationW/X/Y/Z trackingState
PKU_VALUES = 2 * NUM_JOINTS * 3
MAX_GAP = 5  # frames without a body filled from its neighbours (0.2 s at 25 fps); longer gaps stay zeros


@dataclass(frozen=True)
class Skeleton:
    """Joints (T, M, 25, 3) float32 in metres, where they came from and their frame rate (None if unknown)."""

    joints: np.ndarray
    source: str
    fps: float | None


def body_activity(track: np.ndarray) -> float:
    """How much a body moves and spreads: summed over x, y, z, the std of its joints over the frames it is present.

    ``track`` is (T, V, 3) with absent frames all zero. Static clutter mistaken for a body (small, still)
    scores low; a person scores with their body size plus their motion.
    """
    present = np.abs(track).sum(axis=(1, 2)) > 0
    if not present.any():
        return 0.0
    return float(track[present].reshape(-1, 3).std(axis=0).sum())


def pack_bodies(tracks: list[np.ndarray], max_bodies: int, num_frames: int) -> np.ndarray:
    """Place body tracks (each (T, V, 3), zeros where absent) into ``max_bodies`` slots.

    Tracks go in order of decreasing :func:`body_activity`; each takes the first slot whose frames it does
    not overlap, so a person whose tracking id changed mid-video stays in one slot. Tracks fitting no slot
    (a third body present at the same time as two more active ones) are dropped.
    """
    out = np.zeros((num_frames, max_bodies, NUM_JOINTS, 3), dtype=np.float32)
    occupied = np.zeros((num_frames, max_bodies), dtype=bool)
    for track in sorted(tracks, key=body_activity, reverse=True):
        present = np.abs(track).sum(axis=(1, 2)) > 0
        for slot in range(max_bodies):
            if not (occupied[:, slot] & present).any():
                out[present, slot] = track[present]
                occupied[:, slot] |= present
                break
    return out


class _Lines:
    """Numbered non-blank lines of a text file, parsed into floats with errors naming the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(path, "not a text file (undecodable bytes)") from None
        except OSError as exc:
            raise InputError(path, f"cannot read ({exc.strerror or exc.__class__.__name__})") from None
        numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        self.count = len(numbered)  # non-blank lines: a bound on what the file can declare
        self._lines: Iterator[tuple[int, str]] = iter(numbered)
        self.lineno = 0

    def error(self, reason: str) -> InputError:
        """An error at the current line (``path:line: reason``); before the first line, the file as a whole."""
        return InputError(f"{self.path}:{self.lineno}" if self.lineno else self.path, reason)

    def next_values(self) -> list[str] | None:
        """The tokens of the next non-blank line, or None at the end of the file."""
        for self.lineno, line in self._lines:
            return line.split()
        return None

    def values(self, what: str) -> list[str]:
        tokens = self.next_values()
        if tokens is None:
            raise self.error(f"file ends early: expected {what}" if self.lineno else "empty file")
        return tokens

    def floats(self, what: str, count: int, tokens: list[str] | None = None) -> np.ndarray:
        tokens = self.values(what) if tokens is None else tokens
        if len(tokens) != count:
            raise self.error(f"expected {count} values for {what}, got {len(tokens)}")
        try:
            values = np.asarray(tokens, dtype=np.float64)
        except ValueError as exc:
            raise self.error(f"{what}: {exc}") from None
        if not np.isfinite(values).all():
            raise self.error(f"{what}: non-finite value")
        return values

    def table(self, what: str, count: int, width: int) -> np.ndarray:
        """The next ``count`` lines ("{what} 1", ...) of ``width`` numbers each as a (count, width) array, converted
        in one call; a bad line is reported exactly as :meth:`floats` reports it."""
        rows, numbers = [], []
        for i in range(count):
            tokens = self.values(f"{what} {i + 1}")
            if len(tokens) != width:
                raise self.error(f"expected {width} values for {what} {i + 1}, got {len(tokens)}")
            rows.append(tokens)
            numbers.append(self.lineno)
        try:
            values = np.array(rows, dtype=np.float64)
        except ValueError:
            values = None
        if values is None or not np.isfinite(values).all():  # line by line, to name the first bad one
            last = self.lineno
            values = np.stack([self.floats(f"{what} {i + 1}", width, tokens)
                               for i, (tokens, self.lineno) in enumerate(zip(rows, numbers))])
            self.lineno = last
        return values

    def integer(self, what: str) -> int:
        tokens = self.values(what)
        if len(tokens) != 1:
            raise self.error(f"expected a single integer ({what}), got {len(tokens)} values")
        try:
            value = int(tokens[0])
        except ValueError:
            raise self.error(f"expected an integer ({what}), got {tokens[0]!r}") from None
        if value < 0:
            raise self.error(f"{what} is negative ({value})")
        return value

    def expect_end(self) -> None:
        if self.next_values() is not None:
            raise self.error("unexpected content after the last frame")


def read_ntu_skeleton(path: str | Path, max_bodies: int = 2) -> Skeleton:
    """Read an NTU RGB+D ``.skeleton`` file; a body is followed across frames by its tracking id.

    More distinct bodies than ``max_bodies`` are reduced with :func:`pack_bodies` (most active first).
    """
    lines = _Lines(Path(path))
    num_frames = lines.integer("frame count")
    if num_frames > lines.count - 1:  # every frame has at least its body-count line; checked before allocating
        raise lines.error(f"declares {num_frames} frames but the file has only {lines.count - 1} more lines")
    tracks: dict[tuple[str, int], np.ndarray] = {}
    for t in range(num_frames):
        num_bodies = lines.integer(f"body count of frame {t + 1}")
        seen: dict[str, int] = {}
        for b in range(num_bodies):
            body_line = lines.values(f"body {b + 1} of frame {t + 1}")
            if len(body_line) != NTU_BODY_VALUES:
                raise lines.error(f"expected {NTU_BODY_VALUES} values for the body info line, got {len(body_line)}")
            body_id = body_line[0]
            num_joints = lines.integer("joint count")
            if num_joints != NUM_JOINTS:
                raise lines.error(f"expected {NUM_JOINTS} joints, got {num_joints}")
            xyz = lines.table("joint", NUM_JOINTS, NTU_JOINT_VALUES)[:, :3]
            # The same id twice in one frame (rare Kinect glitch): keep both as separate tracks.
            key = (body_id, seen.get(body_id, 0))
            seen[body_id] = key[1] + 1
            tracks.setdefault(key, np.zeros((num_frames, NUM_JOINTS, 3), dtype=np.float32))[t] = xyz
    lines.expect_end()
    return Skeleton(pack_bodies(list(tracks.values()), max_bodies, num_frames), str(path), KINECT_FPS)


def read_pku_skeleton(path: str | Path, max_bodies: int = 2) -> Skeleton:
    """Read a PKU-MMD skeleton ``.txt``: one line of 150 floats per frame (2 bodies x 25 joints x xyz)."""
    lines = _Lines(Path(path))
    frames = [lines.floats("frame 1", PKU_VALUES)]
    while (tokens := lines.next_values()) is not None:
        frames.append(lines.floats(f"frame {len(frames) + 1}", PKU_VALUES, tokens))
    joints = np.array(frames, dtype=np.float32).reshape(len(frames), 2, NUM_JOINTS, 3)
    return Skeleton(fit_bodies(joints, max_bodies), str(path), KINECT_FPS)


def read_npy_skeleton(path: str | Path, max_bodies: int = 2) -> Skeleton:
    """Read a ``.npy`` array (T, M, 25, 3) or (T, 25, 3) (one body) of joint positions in metres."""
    path = Path(path)
    array = load_npy(path)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[2:] != (NUM_JOINTS, 3):
        raise InputError(path, f"expected shape (T, M, {NUM_JOINTS}, 3) or (T, {NUM_JOINTS}, 3), got {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(path, f"expected a numeric array, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InputError(path, "contains NaN or infinite values")
    return Skeleton(fit_bodies(array, max_bodies), str(path), None)


def fit_bodies(joints: np.ndarray, max_bodies: int) -> np.ndarray:
    """(T, M, V, 3) to exactly ``max_bodies`` bodies: pad with absent (zero) bodies, or pack the most active."""
    num_frames, num_bodies = joints.shape[:2]
    if num_bodies > max_bodies:
        return pack_bodies([joints[:, b] for b in range(num_bodies)], max_bodies, num_frames)
    pad = np.zeros((num_frames, max_bodies - num_bodies, *joints.shape[2:]), dtype=np.float32)
    return np.concatenate([joints.astype(np.float32), pad], axis=1)


def fill_gaps(joints: np.ndarray, present: np.ndarray, max_gap: int = MAX_GAP) -> np.ndarray:
    """Fill runs of absent frames in (T, V, 3) joints: runs of at most ``max_gap`` frames are linearly
    interpolated between the neighbouring detections (held at the sequence ends); longer runs are zeros."""
    out = np.where(present[:, None, None], joints, 0.0).astype(np.float32)
    num_frames = len(present)
    t = 0
    while t < num_frames:
        if present[t]:
            t += 1
            continue
        end = t
        while end < num_frames and not present[end]:
            end += 1
        if end - t <= max_gap and (t > 0 or end < num_frames):
            before, after = (out[t - 1] if t > 0 else out[end]), (out[end] if end < num_frames else out[t - 1])
            weight = (np.arange(t, end) - (t - 1))[:, None, None] / (end - t + 1)
            out[t:end] = (1 - weight) * before + weight * after
        t = end
    return out


def person_present(joints: np.ndarray) -> np.ndarray:
    """(T,) bool: frames of (T, M, V, 3) joints where at least one body is present (not all zero)."""
    return np.abs(joints).sum(axis=(1, 2, 3)) > 0


def fill_body_gaps(joints: np.ndarray, max_gap: int = MAX_GAP) -> np.ndarray:
    """Apply :func:`fill_gaps` to every body slot of (T, M, V, 3) joints that is present at all."""
    out = joints.astype(np.float32, copy=True)
    for slot in range(joints.shape[1]):
        present = np.abs(joints[:, slot]).sum(axis=(1, 2)) > 0
        if present.any() and not present.all():
            out[:, slot] = fill_gaps(joints[:, slot], present, max_gap)
    return out


def resample_frames(joints: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Resample a frame sequence from ``source_fps`` to ``target_fps`` by the video decoder's frame-index rule
    (output frame k is source frame floor(k * S / T); ceil(n * T / S) frames)."""
    resampler = IndexResampler(as_rate(source_fps), as_rate(target_fps))
    indices = [resampler.source_index(k) for k in range(resampler.output_count(len(joints)))]
    return joints[np.asarray(indices, dtype=np.int64)]


def looks_like_pku(path: str | Path) -> bool:
    """True when the first non-blank line of ``path`` holds 150 numbers (a PKU-MMD skeleton, not a list of files)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                tokens = line.split()
                if tokens:
                    if len(tokens) != PKU_VALUES:
                        return False
                    np.asarray(tokens, dtype=np.float64)
                    return True
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return False


READERS: dict[str, Callable[..., Skeleton]] = {
    ".skeleton": read_ntu_skeleton,
    ".txt": read_pku_skeleton,
    ".npy": read_npy_skeleton,
}


def read_skeleton(path: str | Path, max_bodies: int = 2) -> Skeleton:
    """Read any supported skeleton file, choosing the reader by extension."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(path, f"unknown skeleton format '{path.suffix}' (expected one of {', '.join(READERS)})")
    if not path.is_file():
        raise InputError(path, "no such file")
    return reader(path, max_bodies=max_bodies)
