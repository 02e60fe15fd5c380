"""Pose extraction: skeleton files, or videos through MediaPipe, into the feature store.

Every input gives dataset ``skeleton`` (frames, 2, 25, 3) float32 on the grid's frames (resampled to
the grid fps with the video decoder's frame-index rule, short gaps without a body interpolated) and
``skeleton_present`` (frames,) bool, True where a person was found before gap filling. With a trained
encoder it also gives ``pose`` (T, D) on the RGB snippet grid, encoded from the stored skeletons (which
are reused, so poses are never estimated twice). :class:`PoseJob` plugs into
:func:`augrgb.extract.pipeline.run_batch`, the batch loop every modality shares.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from augrgb import __version__
from augrgb.core.errors import InputError
from augrgb.core.files import checkpoint_sha256
from augrgb.core.grid import num_snippets
from augrgb.core.inputs import VIDEO_SUFFIXES, collect_inputs, video_id_of
from augrgb.extract.jobs import VideoResult
from augrgb.extract.mediapipe_pose import MODEL_COMPLEXITY, estimate_video_poses
from augrgb.extract.pipeline import run_batch
from augrgb.extract.pose_encoder_training import load_pose_encoder
from augrgb.extract.pose_snippets import encode_snippets
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.skeletons import (
    MAX_GAP,
    READERS,
    fill_body_gaps,
    fit_bodies,
    looks_like_pku,
    person_present,
    read_skeleton,
    resample_frames,
)
from augrgb.extract.store import FeatureStore

if TYPE_CHECKING:
    from augrgb.extract.engines import Engine

BODIES = 2  # skeleton slots stored per frame (NTU RGB+D, PKU-MMD and 2s-AGCN use two)
MEDIAPIPE = f"mediapipe-pose model_complexity={MODEL_COMPLEXITY}"


def is_pose_input(path: Path) -> bool:
    """Skeleton files (``.skeleton``, ``.npy``, ``.txt`` holding PKU-MMD frames) and videos."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return looks_like_pku(path)
    return suffix in READERS or suffix in VIDEO_SUFFIXES


def prefer_skeleton_files(paths: Sequence[Path], id_suffix_strip: str | None = None) -> list[Path]:
    """Drop every video whose id also belongs to a given skeleton file: recorded poses need no estimation."""
    recorded = {video_id_of(p, id_suffix_strip) for p in paths if p.suffix.lower() in READERS}
    return [p for p in paths if p.suffix.lower() in READERS or video_id_of(p, id_suffix_strip) not in recorded]


def read_poses(path: Path, cfg: ExtractConfig, skeleton_fps: float | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Joints (T, 2, 25, 3) at the grid fps, person-present flags (T,) and provenance of one input.

    Skeleton files are resampled from their frame rate (``.npy``: ``skeleton_fps``, default the grid fps)
    and each body's gaps of at most :data:`MAX_GAP` frames are interpolated; videos are decoded at the grid
    fps and MediaPipe estimates one body per frame (gaps filled the same way).
    """
    if path.suffix.lower() in READERS:
        skeleton = read_skeleton(path, max_bodies=BODIES)
        if not len(skeleton.joints):
            raise InputError(path, "no frames")
        source_fps = skeleton.fps or skeleton_fps or cfg.fps
        joints = resample_frames(skeleton.joints, source_fps, cfg.fps)
        present = person_present(joints)
        joints = fill_body_gaps(joints, MAX_GAP)
        info = {"estimator": f"skeleton file ({path.suffix.lower()})", "source_fps": source_fps,
                "source_frames": len(skeleton.joints), "warnings": []}
    else:
        try:
            poses = estimate_video_poses(path, fps=cfg.fps, backend=cfg.backend, max_gap=MAX_GAP)
        except ImportError as exc:
            raise InputError(path, str(exc)) from None
        joints, present = fit_bodies(poses.skeleton.joints, BODIES), poses.present
        if not len(joints):
            raise InputError(path, "no decodable frames")
        info = {"estimator": MEDIAPIPE, "source_fps": poses.source_fps, "source_frames": None,
                "warnings": poses.warnings}
    return joints, present, info


def presence_flags(joints: np.ndarray, present: np.ndarray) -> tuple[dict[str, int], list[str]]:
    """Counts of frames with a person, interpolated and left zero, and the flags that describe them."""
    missing = int((~present).sum())
    zero = int((~person_present(joints)).sum())
    counts = {"present_frames": int(present.sum()), "interpolated_frames": missing - zero, "zero_frames": zero}
    flags = []
    if not present.any():
        flags.append("no person on any frame: the skeleton is all zeros")
    elif missing:
        flags.append(f"frames without a person: {missing - zero} interpolated, {zero} zero")
    return counts, flags


def skeleton_attrs(cfg: ExtractConfig, source: Path, joints: np.ndarray, present: np.ndarray,
                   info: dict[str, Any]) -> dict[str, Any]:
    """Provenance of a stored skeleton: the grid it is cut on, where it came from, frames without a person."""
    counts, flags = presence_flags(joints, present)
    frames = len(joints)
    if frames < cfg.snippet:
        flags.append(f"short: {frames} frames < one {cfg.snippet}-frame snippet, padded")
    return {"fps": cfg.fps, "snippet": cfg.snippet, "stride": cfg.stride, "frame_count": frames,
            "source": str(source), "source_fps": info["source_fps"], "source_frames": info["source_frames"] or "",
            "estimator": info["estimator"], "max_gap": MAX_GAP, **counts,
            "flags": info["warnings"] + flags, "augrgb_version": __version__}


@dataclass
class PoseJob:
    """Store the skeletons of each input and, with ``encoder`` (a checkpoint), its pose features (picklable)."""

    cfg: ExtractConfig
    store: str
    encoder: str | None = None
    encoder_sha: str | None = None
    skeleton_fps: float | None = None
    threads: int = 1

    @property
    def modality(self) -> str:
        return "pose" if self.encoder else "skeleton"

    def sized(self, workers: int, cpus: int) -> PoseJob:
        return replace(self, threads=max(1, cpus // workers))

    def is_done(self, store: FeatureStore, video_id: str) -> bool:
        """Skeletons: stored at the grid fps. Pose features: stored on this grid with this encoder."""
        if not store.has(video_id, self.modality):
            return False
        attrs = store.attrs(video_id, self.modality)
        same_grid = all(attrs.get(k) == v for k, v in (("fps", self.cfg.fps), ("snippet", self.cfg.snippet),
                                                       ("stride", self.cfg.stride)))
        return same_grid and (self.encoder is None or attrs.get("weights_sha256") == self.encoder_sha)

    def needs_source(self, store: FeatureStore, video_id: str) -> bool:
        """Pose features reuse the stored skeletons: the source file is read only when none are stored."""
        return self.encoder is None or not store.has(video_id, "skeleton")

    def notices(self) -> list[str]:
        return []

    def start(self) -> PoseWorker:
        torch.set_num_threads(self.threads)
        model = None
        if self.encoder is not None:
            model, meta = load_pose_encoder(self.encoder)
            check_encoder_grid(self.encoder, meta, self.cfg)
            model = model.to(self.cfg.device)
        return PoseWorker(self, model)


def check_encoder_grid(path: str, meta: dict[str, Any], cfg: ExtractConfig) -> None:
    """Refuse an encoder trained on snippets of another length or frame rate than this run's grid."""
    trained = (meta.get("fps"), meta.get("snippet"))
    if None not in trained and (float(trained[0]), int(trained[1])) != (cfg.fps, cfg.snippet):
        raise InputError(path, f"trained on {trained[1]}-frame snippets at {trained[0]:g} fps but this run uses "
                               f"{cfg.snippet} at {cfg.fps:g} fps (set --snippet/--fps to match)")


class PoseWorker:
    """A started :class:`PoseJob`: reads or reuses skeletons, encodes snippets, stores one input at a time."""

    def __init__(self, job: PoseJob, model: nn.Module | None) -> None:
        self.job, self.model = job, model

    def stored_skeleton(self, store: FeatureStore, video_id: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The skeleton already stored for ``video_id`` at the grid fps, if any (reused, never re-estimated)."""
        if not store.has(video_id, "skeleton") or store.attrs(video_id, "skeleton").get("fps") != self.job.cfg.fps:
            return None
        joints, attrs = store.read(video_id, "skeleton")
        return joints, {**attrs, "flags": json.loads(attrs.get("flags") or "[]")}

    def extract(self, video_id: str, path: Path) -> VideoResult:
        job, cfg = self.job, self.job.cfg
        store = FeatureStore(job.store)
        datasets: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        stored = self.stored_skeleton(store, video_id) if self.model is not None else None
        if stored is None:
            joints, present, info = read_poses(path, cfg, job.skeleton_fps)
            attrs = skeleton_attrs(cfg, path, joints, present, info)
            datasets["skeleton"] = (joints.astype(np.float32), attrs)
            datasets["skeleton_present"] = (present.astype(bool), {"fps": cfg.fps, "source": str(path)})
        else:
            joints, attrs = stored
        flags = list(attrs["flags"])
        snippets = num_snippets(len(joints), cfg.snippet, cfg.stride)
        if self.model is not None:
            features = encode_snippets(self.model, joints, cfg.snippet, cfg.stride, cfg.batch_size, cfg.device)
            snippets = len(features)
            datasets["pose"] = (features.astype(np.float32), {
                "fps": cfg.fps, "snippet": cfg.snippet, "stride": cfg.stride, "frame_count": len(joints),
                "padded_frames": max(0, (snippets - 1) * cfg.stride + cfg.snippet - len(joints)),
                "encoder": self.model.arch, "weights_sha256": job.encoder_sha, "weights_source": str(job.encoder),
                "feature_dim": features.shape[1], "source": attrs.get("source", str(path)),
                "source_fps": attrs.get("source_fps", ""), "estimator": attrs.get("estimator", ""), "flags": flags,
                "augrgb_version": __version__})
        store.write_datasets(video_id, datasets)
        return VideoResult(video_id, str(path), "done", snippets=snippets, frames=len(joints), flags=flags)

    def close(self) -> None:
        """Nothing to release."""


def extract_poses(inputs: Sequence[str | Path], store_dir: str | Path, cfg: ExtractConfig, *, encoder: str | None = None,
                  skeleton_fps: float | None = None, overwrite: bool = False, progress: bool = True,
                  id_suffix_strip: str | None = None, engine: Engine | None = None,
                  report: Callable[[str], None] = print) -> list[VideoResult]:
    """Store the skeletons of every input (skeleton files, videos, folders, list files) in ``store_dir`` and,
    with ``encoder``, their pose features; one result per input (see :func:`~augrgb.extract.pipeline.run_batch`).

    ``overwrite`` redoes what this run produces: the skeletons without ``encoder``, the pose features with it
    (stored skeletons are then reused). A video whose id also has a skeleton file among the inputs is dropped.
    ``engine`` runs the inputs (default: this machine, ``cfg.workers`` processes; or a Ray cluster).
    """
    if skeleton_fps is not None and skeleton_fps <= 0:
        raise InputError("--skeleton-fps", f"must be positive, got {skeleton_fps}")
    sha = None
    if encoder is not None:
        if not Path(encoder).is_file():
            raise InputError(encoder, "no such encoder checkpoint")
        sha = checkpoint_sha256(encoder)
    paths = prefer_skeleton_files(collect_inputs(inputs, accepts=is_pose_input), id_suffix_strip)
    job = PoseJob(cfg, str(store_dir), encoder=str(encoder) if encoder else None, encoder_sha=sha, skeleton_fps=skeleton_fps)
    return run_batch(paths, job, overwrite=overwrite, progress=progress, id_suffix_strip=id_suffix_strip, engine=engine,
                     report=report)
