"""Batch extraction: inputs -> per-video snippet features in the store, resumable, failure-tolerant.

One video at a time flows decode -> preprocess -> (optical flow) -> snippets -> batched I3D;
decoding runs in a background thread so it overlaps with the network. An engine
(``augrgb.extract.engines``) runs the videos: in parallel processes on this machine, or on the
workers of a Ray cluster. Only the driver writes the manifest.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from augrgb import __version__
from augrgb.errors import InputError
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.flow import FlowComputer, encode_for_i3d, read_flow_images
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.snippets import Snippet, iter_snippets
from augrgb.extract.store import FeatureStore
from augrgb.extract.transforms import Preprocess
from augrgb.extract.weights import load_i3d, weights_path
from augrgb.paths import check_video_id, path_in

if TYPE_CHECKING:
    from augrgb.extract.engines import Engine

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}
ENCODERS = {"rgb": "i3d-inceptionv1-kinetics400-rgb", "flow": "i3d-inceptionv1-kinetics400-flow"}


def collect_inputs(inputs: Sequence[str | Path], folders_are_items: bool = False) -> list[Path]:
    """Expand video files, folders (recursively, by video suffix) and list files (one path per line).

    With ``folders_are_items`` a folder is itself one input (a folder of flow images).
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir() and not folders_are_items:
            found.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()))
        elif item.suffix.lower() in (".txt", ".lst", ".list") and item.is_file():
            for line in item.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    path = Path(line)
                    found.append(path if path.is_absolute() else item.parent / path)
        else:
            found.append(item)
    return found


def video_id_of(path: Path) -> str:
    """The id a video is stored under: its file name without the extension (a folder's name)."""
    return path.name if path.is_dir() else path.stem


@dataclass
class VideoResult:
    """Outcome of one video: ``status`` is done, skipped or failed (with ``reason``)."""

    video_id: str
    source: str
    status: str
    reason: str | None = None
    snippets: int = 0
    frames: int = 0
    flags: list[str] = field(default_factory=list)


def _batches(snippets: Iterator[Snippet], size: int) -> Iterator[list[Snippet]]:
    batch: list[Snippet] = []
    for snip in snippets:
        batch.append(snip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` ahead, re-raising its errors here."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                box.put(item)
            box.put(done)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def encode_inputs(inputs: Iterable[np.ndarray], encoder: SnippetEncoder, cfg: ExtractConfig) -> tuple[np.ndarray, int]:
    """(T, D) features of per-frame network inputs on the snippet grid, and how many frames were padding."""
    features: list[np.ndarray] = []
    padded = 0
    for batch in prefetch(_batches(iter_snippets(inputs, cfg.snippet, cfg.stride), cfg.batch_size)):
        features.append(encoder.features(np.stack([s.frames for s in batch])))
        padded += sum(s.padded for s in batch)
    if not features:
        return np.zeros((0, 0), np.float32), 0
    return np.concatenate(features), padded


def encode_video(path: Path, encoder: SnippetEncoder, cfg: ExtractConfig, *, flow: FlowComputer | None = None,
                 flow_images: Path | None = None) -> tuple[np.ndarray, dict]:
    """Features of one video (RGB, or optical flow when ``flow`` is given) plus what happened.

    RGB: preprocessed uint8 frames. Flow: fields of consecutive preprocessed frames (one per
    frame, see ``augrgb.extract.flow``), clipped to ±20 px and scaled to [-1, 1]; a folder of
    flow images is read back instead of computing flow. ``flow_images`` saves the fields as images.
    """
    if path.is_dir():
        if flow is None:
            raise InputError(path, "is a folder; only `extract flow --from-flow-images` reads folders")
        fields = list(read_flow_images(path))
        features, padded = encode_inputs((encode_for_i3d(f) for f in fields), encoder, cfg)
        meta = {"frames": len(fields), "flags": [], "source_fps": cfg.fps, "width": 0, "height": 0, "backend": "flow-images"}
    else:
        stream = decode.iter_frames(path, fps=cfg.fps, backend=cfg.backend)
        preprocess = Preprocess(crop=cfg.crop, size=cfg.size, short_side=cfg.short_side)
        frames = (preprocess(f) for f in stream)
        if flow is not None:
            frames = (encode_for_i3d(f) for f in flow.stream(frames, str(path), save_images=flow_images))
        features, padded = encode_inputs(frames, encoder, cfg)
        info = stream.info
        meta = {"frames": stream.frames_read, "flags": list(stream.warnings), "source_fps": info.fps,
                "width": info.width, "height": info.height, "backend": info.backend}
    if not len(features):
        raise InputError(path, "no decodable frames")
    if meta["frames"] < cfg.snippet:
        meta["flags"].append(f"short: {meta['frames']} frames < one {cfg.snippet}-frame snippet, padded")
    meta["padded"] = padded
    return features, meta


def feature_attrs(cfg: ExtractConfig, encoder_name: str, weights_sha: str, weights_source: str,
                  source: Path, meta: dict, flow_method: str = "") -> dict:
    """The provenance attributes stored with every feature dataset (DESIGN.md, feature store)."""
    return {
        **cfg.grid_attrs(), "frame_count": meta["frames"], "padded_frames": meta["padded"],
        "encoder": encoder_name, "weights_sha256": weights_sha, "weights_source": weights_source,
        "flow_method": flow_method, "precision": cfg.precision, "backend": meta["backend"],
        "source": str(source), "source_fps": meta["source_fps"], "source_size": [meta["width"], meta["height"]],
        "flags": meta["flags"], "augrgb_version": __version__,
    }


@dataclass
class ExtractJob:
    """Everything a (worker) process needs to extract one modality (picklable)."""

    cfg: ExtractConfig
    store: str
    modality: str = "rgb"
    weights: str | None = None
    cache: str | None = None
    threads: int = 1  # torch CPU threads; set by the engine from the CPUs each worker has
    flow_method: str = "tvl1"
    flow_workers: int | None = None  # processes for flow frame pairs; None: the engine decides
    flow_images: str | None = None  # save flow images under this folder, one subfolder per video

    def make_encoder(self) -> tuple[SnippetEncoder, str, str]:
        """The I3D of this modality, its weights' SHA-256 and a description of where they came from."""
        torch.set_num_threads(self.threads)
        model, sha, source = load_i3d(self.modality, path=self.weights, cache=self.cache)
        return SnippetEncoder(model, self.cfg.precision, self.cfg.device), sha, source

    def run(self, bundle: tuple[SnippetEncoder, str, str], flow: FlowComputer | None, video_id: str, path: Path) -> VideoResult:
        """Extract and store one video; any bad input becomes a failed result."""
        encoder, sha, source = bundle
        try:
            images = path_in(self.flow_images, video_id, "") if self.flow_images else None
            features, meta = encode_video(path, encoder, self.cfg, flow=flow, flow_images=images)
            attrs = feature_attrs(self.cfg, ENCODERS[self.modality], sha, source, path, meta,
                                  self.flow_method if self.modality == "flow" else "")
            FeatureStore(self.store).write(video_id, self.modality, features.astype(np.float32), attrs)
        except InputError as exc:
            return VideoResult(video_id, str(path), "failed", exc.reason)
        except (OSError, RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            return VideoResult(video_id, str(path), "failed", f"{exc.__class__.__name__}: {first}")
        return VideoResult(video_id, str(path), "done", snippets=len(features), frames=meta["frames"], flags=meta["flags"])

    def flow_computer(self) -> FlowComputer | None:
        return FlowComputer(self.flow_method, self.flow_workers) if self.modality == "flow" else None


def extract(inputs: Sequence[str | Path], store_dir: str | Path, cfg: ExtractConfig, *, modality: str = "rgb",
            weights: str | None = None, cache: str | None = None, overwrite: bool = False, progress: bool = True,
            flow_method: str = "tvl1", flow_workers: int | None = None, flow_images: str | Path | None = None,
            from_flow_images: bool = False, engine: Engine | None = None,
            report: Callable[[str], None] = print) -> list[VideoResult]:
    """Extract ``modality`` (rgb or flow) I3D features of every input into ``store_dir``; one result per video.

    Finished videos are skipped unless ``overwrite``; a failing video is recorded with its
    reason and the batch goes on. ``engine`` runs the videos (default: this machine, see
    ``augrgb.extract.engines``); whatever it is, only this process writes the manifest.
    """
    store = FeatureStore(store_dir)
    results: list[VideoResult] = []
    todo: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}
    for path in collect_inputs(inputs, folders_are_items=from_flow_images):
        vid = video_id_of(path)
        try:
            check_video_id(vid)
            if vid in seen:
                raise InputError(path, f"video id '{vid}' already used by {seen[vid]}")
        except InputError as exc:
            results.append(VideoResult(vid, str(path), "failed", exc.reason))
            continue
        seen[vid] = path
        if not overwrite and store.has(vid, modality):
            results.append(VideoResult(vid, str(path), "skipped", "already extracted"))
        else:
            todo.append((vid, path))
    for res in results:
        if res.status == "failed":
            report(f"{res.source}: {res.reason}")
            store.record(res.video_id, modality, "failed", res.source, res.reason)

    job = ExtractJob(cfg, str(store_dir), modality, weights, cache, flow_method=flow_method, flow_workers=flow_workers,
                     flow_images=str(flow_images) if flow_images else None)
    bar = tqdm(total=len(todo), desc=f"{modality} features", unit="video", disable=not progress or not todo)

    def finish(res: VideoResult) -> None:
        results.append(res)
        store.record(res.video_id, modality, res.status, res.source, res.reason,
                     snippets=res.snippets, frames=res.frames, flags=res.flags)
        if res.status == "failed":
            (bar.write if progress else report)(f"{res.source}: {res.reason}")
        bar.update(1)

    if todo and modality == "flow" and weights is None and not weights_path("i3d-flow", cache).is_file():
        print("warning: no flow I3D weights (--flow-weights or `augrgb weights fetch i3d-flow --from PATH`); "
              "using cross-modality initialisation from the RGB weights, recorded in the feature attributes", file=sys.stderr)
    if todo:
        if engine is None:
            from augrgb.extract.engines import LocalEngine  # engines import this module

            engine = LocalEngine()
        for res in engine.run(job, todo):
            finish(res)
    bar.close()
    return results
