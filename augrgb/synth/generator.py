"""The benchmark generator: one random-but-seeded video at a time, and whole benchmark folders on disk.

Layout written by :func:`generate`::

    OUT/videos/<id>.mp4        25 fps RGB video (H.264 yuv420p)
    OUT/skeletons/<id>.npy     (T, 2, 25, 3) float32 metres, camera space, NTU joint order
    OUT/annotations.json       {id: {"subset", "duration", "actions": [[class, start_s, end_s], ...]}}
    OUT/classes.txt            class i on line i (0-based)
    OUT/synth.json             the settings (a rerun resumes, a mismatch is refused) and, once complete, a digest
                               of every file above: the same digest means the same benchmark, byte for byte
    OUT/preview.png            with ``augrgb synth --preview`` (:mod:`augrgb.synth.preview`): a contact sheet of frames
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from augrgb.core.errors import InputError
from augrgb.core.paths import check_video_id, path_in
from augrgb.synth.actions import class_names
from augrgb.synth.camera import FRAMING, Camera, sample_camera
from augrgb.synth.choreography import compose
from augrgb.synth.kinect import sensor_skeleton
from augrgb.synth.render import FrameRenderer, sample_appearance
from augrgb.synth.scene import build_scene, margin_for
from augrgb.synth.schedule import MODES, Timeline, sample_timeline
from augrgb.synth.skeleton import BodyPoints, BodyShape, forward_kinematics
from augrgb.synth.video import write_mp4

FPS = 25
MIN_SECONDS = 2.0


@dataclass(frozen=True)
class Settings:
    """Everything that determines a benchmark's content."""

    videos: int
    seconds: float
    mode: str = "dense"
    size: int = 224
    seed: int = 0
    test_fraction: float = 0.2
    framing: tuple[float, float] = FRAMING

    def check(self) -> "Settings":
        """Refuse impossible settings with a one-line error naming the option."""
        if self.videos < 1:
            raise InputError("--videos", f"must be at least 1, got {self.videos}")
        if not (self.seconds >= MIN_SECONDS and np.isfinite(self.seconds)):
            raise InputError("--seconds", f"must be a number of at least {MIN_SECONDS}, got {self.seconds}")
        if self.mode not in MODES:
            raise InputError("--mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.size < 32 or self.size % 2:
            raise InputError("--size", f"must be an even number of pixels >= 32 (yuv420p), got {self.size}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise InputError("--test-fraction", f"must be in [0, 1), got {self.test_fraction}")
        low, high = self.framing
        if not 0.1 <= low <= high <= 1.0:
            raise InputError("--framing", f"must be LOW,HIGH with 0.1 <= LOW <= HIGH <= 1, got {low:g},{high:g}")
        return self


def video_id(index: int) -> str:
    """The id (and file stem) of video ``index``."""
    return check_video_id(f"synth_{index:05d}")


@dataclass(frozen=True)
class SynthVideo:
    """One generated video: its timeline, actor, camera, skeleton as a sensor gives it, and its renderer."""

    video_id: str
    timeline: Timeline
    shape: BodyShape
    camera: Camera
    body: BodyPoints           # true world joints (T, 25, 3), floor at y = 0
    skeleton: np.ndarray       # (T, 2, 25, 3) float32, camera space, sensor noise and dropped frames
    renderer: FrameRenderer

    @property
    def frames(self) -> int:
        return self.timeline.frames

    @property
    def duration(self) -> float:
        return self.timeline.frames / self.timeline.fps

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` (RGB uint8, size x size x 3)."""
        return self.renderer.render(t)

    def iter_frames(self) -> Iterator[np.ndarray]:
        return (self.renderer.render(t) for t in range(self.frames))

    def actions(self) -> list[list[float]]:
        """Ground truth ``[[class_index, start_s, end_s], ...]``; an action covers frames start*fps..end*fps."""
        names = class_names()
        fps = self.timeline.fps
        return [[names.index(p.name), round(p.start / fps, 3), round(p.end / fps, 3)] for p in self.timeline.actions]


def video_streams(seed: int, index: int) -> list[np.random.Generator]:
    """Independent random streams of one video: timeline, idle motion, body, appearance, camera, scene, sensor."""
    children = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(7)
    return [np.random.default_rng(c) for c in children]


def video_timeline(seed: int, index: int, seconds: float, mode: str = "dense", fps: int = FPS) -> Timeline:
    """Just the timeline of video ``index`` (what :func:`build_video` would use), without building the rest."""
    return sample_timeline(video_streams(seed, index)[0], int(round(seconds * fps)), fps, mode)


def build_video(seed: int, index: int, seconds: float, mode: str = "dense", size: int = 224, fps: int = FPS,
                timeline: Timeline | None = None, framing: tuple[float, float] = FRAMING) -> SynthVideo:
    """Video ``index`` of the benchmark with this ``seed``: a pure function of its arguments.

    ``timeline`` replaces the sampled one (to render a chosen sequence of actions); its frame count wins.
    ``framing`` changes only the focal length: timelines, bodies, rooms, camera poses and skeletons stay the same.
    """
    r_time, r_idle, r_body, r_look, r_cam, r_scene, r_sensor = video_streams(seed, index)
    if timeline is None:
        timeline = sample_timeline(r_time, int(round(seconds * fps)), fps, mode)
    frames = timeline.frames
    track = compose(timeline, r_idle)
    shape = BodyShape(height=r_body.uniform(1.5, 1.95), arm_ratio=r_body.uniform(0.94, 1.06),
                      leg_ratio=r_body.uniform(0.94, 1.06), shoulder_ratio=r_body.uniform(0.9, 1.12))
    body = forward_kinematics(track, shape)
    look = sample_appearance(r_look)
    camera = sample_camera(r_cam, shape.height, size, margin_for(size), framing)
    scene = build_scene(r_scene, camera, size, frames, fps)
    skeleton = sensor_skeleton(camera.to_camera(body.joints), r_sensor, fps)
    return SynthVideo(video_id(index), timeline, shape, camera, body, skeleton,
                      FrameRenderer(body, shape, camera, scene, look))


def split_subsets(videos: int, test_fraction: float, seed: int) -> list[str]:
    """'training'/'testing' per video index: a seeded random ``test_fraction`` (at least one of each when possible)."""
    n_test = int(round(videos * test_fraction))
    if test_fraction > 0 and videos >= 2:
        n_test = min(max(n_test, 1), videos - 1)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**32 - 1,))).permutation(videos)
    test = set(order[:n_test].tolist())
    return ["testing" if i in test else "training" for i in range(videos)]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def _make_one(out: Path, settings: Settings, index: int) -> tuple[int, list | None, str | None]:
    """Build and write video ``index`` unless both its files exist; returns (index, actions, error)."""
    vid = video_id(index)
    mp4, npy = path_in(out / "videos", vid, ".mp4"), path_in(out / "skeletons", vid, ".npy")
    try:
        video = build_video(settings.seed, index, settings.seconds, settings.mode, settings.size,
                            framing=settings.framing)
        if not (mp4.is_file() and npy.is_file()):
            _save_npy(npy, video.skeleton)
            write_mp4(mp4, video.iter_frames(), FPS, settings.size)
        return index, video.actions(), None
    except Exception as exc:  # one bad video must not stop the batch
        return index, None, f"{vid}: {exc.__class__.__name__}: {exc}"


def _manifest(settings: Settings) -> dict:
    return {"generator": "augrgb.synth", "settings": {**asdict(settings), "framing": list(settings.framing)}}


def _check_manifest(out: Path, settings: Settings) -> None:
    manifest = out / "synth.json"
    wanted = _manifest(settings)
    if manifest.is_file():
        try:
            found = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(manifest, f"unreadable benchmark manifest ({exc})") from None
        if not isinstance(found, dict) or {k: found.get(k) for k in wanted} != wanted:
            raise InputError(out, f"already holds a benchmark made with other settings ({found.get('settings')}); use another folder")
    else:
        _atomic_write(manifest, (json.dumps(wanted, indent=2) + "\n").encode())


def generate(out_dir: str | Path, videos: int, seconds: float, mode: str = "dense", size: int = 224, seed: int = 0,
             test_fraction: float = 0.2, workers: int = 1, progress: bool = False,
             framing: tuple[float, float] = FRAMING) -> Path:
    """Write a benchmark of ``videos`` clips of ``seconds`` each into ``out_dir`` and return the folder.

    Deterministic in (videos, seconds, mode, size, seed, test_fraction, framing). Rerunning into the same
    folder skips finished videos; videos that fail are reported on stderr and left out of the
    annotations, and the batch goes on (an error is raised at the end if any failed).
    """
    settings = Settings(videos, float(seconds), mode, size, seed, test_fraction, tuple(framing)).check()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    for sub in ("videos", "skeletons"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _check_manifest(out, settings)

    results: dict[int, list] = {}
    errors: list[str] = []
    indices = range(videos)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = pool.map(_make_one, [out] * videos, [settings] * videos, indices)
            outcomes = _progress(outcomes, videos, progress)
            for index, actions, error in outcomes:
                _collect(results, errors, index, actions, error)
    else:
        for index in _progress(indices, videos, progress):
            _collect(results, errors, *_make_one(out, settings, index))

    subsets = split_subsets(videos, test_fraction, seed)
    duration = round(int(round(settings.seconds * FPS)) / FPS, 3)
    annotations = {video_id(i): {"subset": subsets[i], "duration": duration, "actions": results[i]} for i in sorted(results)}
    _atomic_write(out / "annotations.json", (json.dumps(annotations, indent=1) + "\n").encode())
    _atomic_write(out / "classes.txt", ("\n".join(class_names()) + "\n").encode())
    if errors:
        raise RuntimeError(f"{len(errors)} of {videos} videos failed: " + "; ".join(errors))
    digest = {"sha256": output_digest(out, videos), "files": 2 * videos + 2}
    _atomic_write(out / "synth.json", (json.dumps({**_manifest(settings), "digest": digest}, indent=2) + "\n").encode())
    return out


def output_digest(out: Path, videos: int) -> str:
    """SHA-256 over the names and SHA-256s of every file of the benchmark (annotations, classes, videos, skeletons):
    two folders with the same digest hold the same benchmark, byte for byte."""
    names = ["annotations.json", "classes.txt"]
    names += [f"videos/{video_id(i)}.mp4" for i in range(videos)] + [f"skeletons/{video_id(i)}.npy" for i in range(videos)]
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name} {hashlib.sha256((out / name).read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _collect(results: dict, errors: list, index: int, actions: list | None, error: str | None) -> None:
    if error is None:
        results[index] = actions
    else:
        errors.append(error)
        print(error, file=sys.stderr)


def _progress(items, total: int, enabled: bool):
    if not enabled:
        return items
    return tqdm(items, total=total, unit="video", desc="synth")
