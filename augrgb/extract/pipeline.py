"""Batch extraction: inputs -> per-video snippet features in the store, resumable, failure-tolerant.

One video at a time flows decode -> preprocess -> snippets -> batched encoder; decoding runs in a
background thread so it overlaps with the network. Several videos run in parallel processes
(``workers``), each with its share of the CPU threads. Only the driver writes the manifest.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from augrgb import __version__
from augrgb.errors import InputError
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.snippets import Snippet, iter_snippets
from augrgb.extract.store import FeatureStore
from augrgb.extract.transforms import Preprocess
from augrgb.paths import check_video_id

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}
RGB_ENCODER = "i3d-inceptionv1-kinetics400-rgb"


def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand video files, folders (recursively, by video suffix) and list files (one path per line)."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
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
    """The id a video is stored under: its file name without the extension."""
    return path.stem


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


def encode_video(path: Path, encoder: SnippetEncoder, cfg: ExtractConfig) -> tuple[np.ndarray, dict]:
    """(T, D) features of one video on the snippet grid, plus what happened (frames, padding, flags)."""
    stream = decode.iter_frames(path, fps=cfg.fps, backend=cfg.backend)
    preprocess = Preprocess(crop=cfg.crop, size=cfg.size, short_side=cfg.short_side)
    snippets = iter_snippets((preprocess(f) for f in stream), cfg.snippet, cfg.stride)
    features: list[np.ndarray] = []
    padded = 0
    for batch in prefetch(_batches(snippets, cfg.batch_size)):
        features.append(encoder.features(np.stack([s.frames for s in batch])))
        padded += sum(s.padded for s in batch)
    if not features:
        raise InputError(path, "no decodable frames")
    flags = list(stream.warnings)
    if stream.frames_read < cfg.snippet:
        flags.append(f"short: {stream.frames_read} frames < one {cfg.snippet}-frame snippet, padded")
    info = stream.info
    return np.concatenate(features), {
        "frames": stream.frames_read, "padded": padded, "flags": flags, "source_fps": info.fps,
        "width": info.width, "height": info.height, "backend": info.backend,
    }


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
class RGBJob:
    """Everything a worker process needs to extract RGB features (picklable)."""

    cfg: ExtractConfig
    store: str
    weights: str | None
    cache: str | None
    threads: int

    def make_encoder(self) -> tuple[SnippetEncoder, str, str]:
        from augrgb.extract.weights import load_i3d

        torch.set_num_threads(self.threads)
        model, sha, source = load_i3d("rgb", path=self.weights, cache=self.cache)
        return SnippetEncoder(model, self.cfg.precision, self.cfg.device), sha, source


def _extract_one(job: RGBJob, bundle: tuple[SnippetEncoder, str, str], video_id: str, path: Path) -> VideoResult:
    """Extract and store one video's RGB features; any bad input becomes a failed result."""
    encoder, sha, source = bundle
    try:
        features, meta = encode_video(path, encoder, job.cfg)
        attrs = feature_attrs(job.cfg, RGB_ENCODER, sha, source, path, meta)
        FeatureStore(job.store).write(video_id, "rgb", features.astype(np.float32), attrs)
    except InputError as exc:
        return VideoResult(video_id, str(path), "failed", exc.reason)
    except (OSError, RuntimeError, ValueError) as exc:
        return VideoResult(video_id, str(path), "failed", f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return VideoResult(video_id, str(path), "done", snippets=len(features), frames=meta["frames"], flags=meta["flags"])


_PROCESS_STATE: dict = {}  # per worker process: the job and its encoder, built once by the initializer


def _init_worker(job: RGBJob) -> None:
    _PROCESS_STATE["job"] = job
    _PROCESS_STATE["bundle"] = job.make_encoder()


def _extract_in_worker(video_id: str, path: Path) -> VideoResult:
    return _extract_one(_PROCESS_STATE["job"], _PROCESS_STATE["bundle"], video_id, path)


def extract_rgb(inputs: Sequence[str | Path], store_dir: str | Path, cfg: ExtractConfig, *,
                weights: str | None = None, cache: str | None = None, overwrite: bool = False,
                progress: bool = True, report: Callable[[str], None] = print) -> list[VideoResult]:
    """Extract RGB I3D features of every input video into ``store_dir``; return one result per video.

    Finished videos are skipped unless ``overwrite``; a failing video is recorded with its reason
    and the batch goes on.
    """
    store = FeatureStore(store_dir)
    results: list[VideoResult] = []
    todo: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}
    for path in collect_inputs(inputs):
        vid = video_id_of(path)
        try:
            check_video_id(vid)
            if vid in seen:
                raise InputError(path, f"video id '{vid}' already used by {seen[vid]}")
        except InputError as exc:
            results.append(VideoResult(vid, str(path), "failed", exc.reason))
            continue
        seen[vid] = path
        if not overwrite and store.has(vid, "rgb"):
            results.append(VideoResult(vid, str(path), "skipped", "already extracted"))
        else:
            todo.append((vid, path))
    for res in results:
        if res.status == "failed":
            report(f"{res.source}: {res.reason}")
            store.record(res.video_id, "rgb", "failed", res.source, res.reason)

    workers = min(cfg.workers, max(len(todo), 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    job = RGBJob(cfg, str(store_dir), weights, cache, threads)
    bar = tqdm(total=len(todo), desc="rgb features", unit="video", disable=not progress or not todo)

    def finish(res: VideoResult) -> None:
        results.append(res)
        store.record(res.video_id, "rgb", res.status, res.source, res.reason,
                     snippets=res.snippets, frames=res.frames, flags=res.flags)
        if res.status == "failed":
            bar.write(f"{res.source}: {res.reason}") if progress else report(f"{res.source}: {res.reason}")
        bar.update(1)

    if workers <= 1:
        bundle = job.make_encoder() if todo else None  # fails early (e.g. weights missing)
        for vid, path in todo:
            finish(_extract_one(job, bundle, vid, path))
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(job,)) as pool:
            futures = [pool.submit(_extract_in_worker, vid, path) for vid, path in todo]
            for future in as_completed(futures):
                finish(future.result())
    bar.close()
    return results
