"""Batch extraction: inputs -> per-video snippet features in the store, resumable, failure-tolerant.

:func:`run_batch` is the batch loop of every modality: it checks ids, skips finished inputs, hands a
:class:`Job` and the rest to an engine (``augrgb.extract.engines``: parallel processes on this
machine, or the workers of a Ray cluster) and records each outcome in the manifest; only the driver
writes the manifest. A job says what one input becomes (I3D rgb/flow here, poses in
``augrgb.extract.pose_pipeline``). For I3D, one video at a time flows decode -> preprocess ->
(optical flow) -> snippets -> batched I3D; decoding runs in a background thread so it overlaps with
the network; TV-L1 flow runs its frame pairs in parallel processes."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from augrgb import __version__
from augrgb.core.errors import InputError
from augrgb.core.grid import Snippet, iter_snippets
from augrgb.core.inputs import claim_id, collect_inputs, video_id_of
from augrgb.core.memory import bound_heap_growth
from augrgb.core.paths import path_in, printable, unreadable
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.engines import Engine, LocalEngine
from augrgb.extract.flow import FlowComputer, encode_for_i3d, read_flow_images
from augrgb.extract.jobs import Job, VideoResult
from augrgb.extract.precision import Choice, check, encoder_probe, resolve
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.store import FeatureStore
from augrgb.extract.transforms import Preprocess
from augrgb.extract.weights import load_i3d, weights_path

ENCODERS = {"rgb": "i3d-inceptionv1-kinetics400-rgb", "flow": "i3d-inceptionv1-kinetics400-flow"}


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
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
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
                  source: Path, meta: dict, flow_method: str = "", choice: Choice | None = None) -> dict:
    """The provenance attributes stored with every feature dataset (DESIGN.md, feature store); ``choice``: the resolved
    runtime and precision with their reasons (default: ``cfg``'s, as given)."""
    choice = choice or Choice(cfg.runtime, cfg.precision, "given")
    return {
        **cfg.grid_attrs(), "frame_count": meta["frames"], "padded_frames": meta["padded"],
        "encoder": encoder_name, "weights_sha256": weights_sha, "weights_source": weights_source,
        "flow_method": flow_method, **choice.as_record(), "backend": meta["backend"],
        "source": str(source), "source_fps": meta["source_fps"], "source_size": [meta["width"], meta["height"]],
        "flags": meta["flags"], "augrgb_version": __version__,
    }


@dataclass
class ExtractJob:
    """Everything a (worker) process needs to extract one I3D modality, rgb or flow (picklable)."""

    cfg: ExtractConfig
    store: str
    modality: str = "rgb"
    weights: str | None = None
    cache: str | None = None
    threads: int = 1  # torch CPU threads; set by the engine (see sized) from the CPUs each worker has
    flow_method: str = "tvl1"
    flow_workers: int | None = None  # processes computing flow pairs; None: all the worker's cores (see sized)
    flow_images: str | None = None  # save flow images under this folder, one subfolder per video
    choice: Choice | None = None  # cfg's runtime and precision, resolved (see resolve_choice), with their reasons

    def sized(self, workers: int, cpus: int) -> ExtractJob:
        """This job for ``workers`` parallel videos on ``cpus`` cores: torch threads, and flow processes
        (all cores when one video runs at a time)."""
        return replace(self, threads=max(1, cpus // workers), flow_workers=1 if workers > 1 else (self.flow_workers or cpus))

    def is_done(self, store: FeatureStore, video_id: str) -> bool:
        return store.has(video_id, self.modality)

    def needs_source(self, store: FeatureStore, video_id: str) -> bool:
        """RGB and flow always decode the input (or read its flow images)."""
        return True

    def notices(self) -> list[str]:
        if self.modality == "flow" and self.weights is None and not weights_path("i3d-flow", self.cache).is_file():
            return [("warning: no flow I3D weights (--flow-weights or `augrgb weights fetch i3d-flow --from PATH`); using "
                     "cross-modality initialisation from the RGB weights, recorded in the feature attributes")]
        return []

    def make_encoder(self) -> tuple[SnippetEncoder, str, str]:
        """The I3D of this modality, its weights' SHA-256 and a description of where they came from."""
        torch.set_num_threads(self.threads)
        from augrgb.extract.runtime import make_encoder

        model, sha, source = load_i3d(self.modality, path=self.weights, cache=self.cache)
        cfg = self.cfg
        return make_encoder(model, sha, cfg.runtime, cfg.precision, cfg.device, self.cache, cfg.calibrate, float(cfg.fps),
                            cfg.crop, int(cfg.short_side)), sha, source

    def start(self) -> I3DWorker:
        """Load the encoder (and start the flow processes) once per process."""
        return I3DWorker(self, *self.make_encoder())


class I3DWorker:
    """A started :class:`ExtractJob`: extracts and stores one video at a time."""

    def __init__(self, job: ExtractJob, encoder: SnippetEncoder, sha: str, source: str) -> None:
        self.job, self.encoder, self.sha, self.source = job, encoder, sha, source
        self.flow = FlowComputer(job.flow_method, job.flow_workers) if job.modality == "flow" else None

    def extract(self, video_id: str, path: Path) -> VideoResult:
        job = self.job
        images = path_in(job.flow_images, video_id, "") if job.flow_images else None
        features, meta = encode_video(path, self.encoder, job.cfg, flow=self.flow, flow_images=images)
        attrs = feature_attrs(job.cfg, ENCODERS[job.modality], self.sha, self.source, path, meta,
                              job.flow_method if job.modality == "flow" else "", job.choice)
        FeatureStore(job.store).write(video_id, job.modality, features.astype(np.float32), attrs)
        return VideoResult(video_id, str(path), "done", snippets=len(features), frames=meta["frames"], flags=meta["flags"])

    def close(self) -> None:
        if self.flow is not None:
            self.flow.close()


def run_batch(paths: Sequence[Path], job: Job, *, overwrite: bool = False, progress: bool = True,
              id_suffix_strip: str | None = None, engine: Engine | None = None,
              report: Callable[[str], None] = print) -> list[VideoResult]:
    """Run ``job`` on every input path: check ids, skip finished ones unless ``overwrite``, extract the rest
    with ``engine`` (default: this machine, ``cfg.workers`` processes), record every outcome in the store's
    manifest; one result per input. A failing input is recorded with its reason and the batch goes on.
    """
    bound_heap_growth()  # worker processes inherit it; long videos keep a bounded peak RSS
    store = FeatureStore(job.store)
    store.sweep()  # what killed writers left
    results: list[VideoResult] = []
    todo: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        vid = video_id_of(path, id_suffix_strip)
        reason = claim_id(vid, path, seen)
        if reason is None and job.needs_source(store, vid):
            reason = unreadable(path)  # only an input the job will read has to be readable
        if reason is not None:
            results.append(VideoResult(vid, str(path), "failed", reason))
            continue
        if overwrite and store.discard_unreadable(vid):
            report(printable(f"{path}: replacing the unreadable feature file {store.path(vid).name}"))
        if not overwrite and job.is_done(store, vid):
            results.append(VideoResult(vid, str(path), "skipped", "already extracted"))
        else:
            todo.append((vid, path))
    for res in results:
        if res.status == "failed":
            report(printable(f"{res.source}: {res.reason}"))
            store.record(res.video_id, job.modality, "failed", res.source, res.reason)

    bar = tqdm(total=len(todo), desc=f"{job.modality} features", unit="video", disable=not progress or not todo)

    def finish(res: VideoResult) -> None:
        results.append(res)
        store.record(res.video_id, job.modality, res.status, res.source, res.reason,
                     snippets=res.snippets, frames=res.frames, flags=res.flags)
        if res.status == "failed":
            (bar.write if progress else report)(printable(f"{res.source}: {res.reason}"))
            if res.traceback:
                store.log_error(res.source, res.traceback)
        bar.update(1)

    if todo:
        for notice in job.notices():
            print(notice, file=sys.stderr)
        if engine is None:
            engine = LocalEngine()
        for res in engine.run(job, todo):
            finish(res)
    bar.close()
    return results


def resolve_choice(cfg: ExtractConfig, modality: str = "rgb", weights: str | None = None,
                   cache: str | None = None) -> tuple[ExtractConfig, Choice]:
    """``cfg`` with its runtime and precision resolved (``auto``; checked against each other and the device), and the
    choice with its reasons. Flow runs torch at fp32 or bf16. A runtime other than torch has its I3D graph exported
    (and calibrated, for int8) into the weights cache here, once, before any worker starts."""
    if modality != "rgb":
        if cfg.runtime != "torch" or cfg.precision not in ("fp32", "bf16") or cfg.calibrate is not None:
            raise InputError("--runtime", f"{modality} features run on torch at fp32 or bf16 only (runtime {cfg.runtime}, "
                                          f"precision {cfg.precision}, calibrate {cfg.calibrate}); runtimes, auto and int8 "
                                          "are for extract rgb")
        return cfg, Choice("torch", cfg.precision, "given")
    runtime, _ = check(cfg.runtime, cfg.precision, cfg.device, cfg.calibrate)
    model = sha = None
    if runtime != "torch" or cfg.precision == "auto":
        model, sha, _ = load_i3d("rgb", path=weights, cache=cache)
    probe = encoder_probe(model, (cfg.batch_size, cfg.snippet, cfg.size, cfg.size, 3), cfg.device) if model else None
    choice = resolve(cfg.runtime, cfg.precision, cfg.device, cfg.calibrate, probe=probe, cache=cache)
    cfg = cfg.model_copy(update={"runtime": choice.runtime, "precision": choice.precision})
    if choice.runtime != "torch":
        from augrgb.extract.runtime import make_encoder

        encoder = make_encoder(model, sha, choice.runtime, choice.precision, cfg.device, cache, cfg.calibrate,
                               float(cfg.fps), cfg.crop, int(cfg.short_side))
        encoder.graph_path((3, cfg.snippet, cfg.size, cfg.size))
    return cfg, choice


def extract(inputs: Sequence[str | Path], store_dir: str | Path, cfg: ExtractConfig, *, modality: str = "rgb",
            weights: str | None = None, cache: str | None = None, overwrite: bool = False, progress: bool = True,
            flow_method: str = "tvl1", flow_workers: int | None = None, flow_images: str | Path | None = None,
            from_flow_images: bool = False, id_suffix_strip: str | None = None, engine: Engine | None = None,
            report: Callable[[str], None] = print) -> list[VideoResult]:
    """Extract ``modality`` (rgb or flow) I3D features of every input into ``store_dir``; one result per video.

    Finished videos are skipped unless ``overwrite``; a failing video is recorded with its reason and the
    batch goes on. ``engine`` runs the videos (default: this machine); see :func:`run_batch`.
    """
    cfg, choice = resolve_choice(cfg, modality, weights, cache)
    job = ExtractJob(cfg, str(store_dir), modality, weights, cache, flow_method=flow_method, flow_workers=flow_workers,
                     flow_images=str(flow_images) if flow_images else None, choice=choice)
    if modality == "rgb":
        report(choice.describe())
    return run_batch(collect_inputs(inputs, folders_are_items=from_flow_images), job, overwrite=overwrite,
                     progress=progress, id_suffix_strip=id_suffix_strip, engine=engine, report=report)
