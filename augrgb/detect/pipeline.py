"""``augrgb detect``: raw videos -> RGB I3D features -> student -> probabilities -> intervals, resumable.

Per video: features (decoded with the checkpoint's settings, or read from a feature store when
present and made with the same settings), per-snippet and per-frame probabilities, intervals, and
the files of :mod:`augrgb.detect.outputs`. A video is done when its record exists and was made by
the same model (SHA-256); when only the interval options changed, its intervals are re-decoded from
the saved probabilities without running the networks again. A failing video is reported in one
line and the batch goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from augrgb import __version__
from augrgb.annotations import Annotations, read_annotations
from augrgb.core.errors import InputError
from augrgb.core.files import write_text_atomic
from augrgb.core.grid import SnippetGrid
from augrgb.core.inputs import InputResult, claim_id, collect_inputs, error_reason, video_id_of
from augrgb.core.memory import bound_heap_growth
from augrgb.core.paths import printable, unreadable
from augrgb.detect.model import Detector, load_detector
from augrgb.detect.outputs import OutputDir, detections_of, write_run_outputs, write_txt
from augrgb.detect.plot import plot_timeline
from augrgb.detect.probabilities import (
    VideoProbabilities,
    frame_probabilities,
    read_probabilities_file,
    write_probabilities,
)
from augrgb.extract.precision import Choice, check, encoder_probe, resolve
from augrgb.detect.settings import DetectConfig, build_decoder
from augrgb.extract.pipeline import ENCODERS, encode_video
from augrgb.extract.store import FeatureStore
from augrgb.extract.weights import load_i3d, weights_path
from augrgb.metrics.detections import Detection


@dataclass
class DetectResult(InputResult):
    """Outcome of one video (:class:`InputResult`; ``status`` may also be redecoded) with its interval count."""

    detections: int = 0


def _flags(value: Any) -> list[str]:
    """A store's ``flags`` attribute (a JSON list) as a list."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else []
        except ValueError:
            value = [value]
    return [str(v) for v in value or []]


class _Run:
    """The state shared by every video of one ``detect`` call."""

    def __init__(self, detector: Detector, out: OutputDir, config: DetectConfig, store: FeatureStore | None,
                 truth: Annotations | None, plot: bool) -> None:
        self.detector, self.out, self.config, self.store, self.truth, self.plot = detector, out, config, store, truth, plot
        self.decoding = config.decoding(detector.head, len(detector.classes), detector.thresholds)
        self.decoder = build_decoder(self.decoding)
        self.encoder = None
        check(config.runtime, config.precision, config.device, config.calibrate)  # bad options fail before any video
        self.choice: Choice | None = None  # resolved when the encoder loads: `auto` may time it
        self.extract_config = detector.extract_config(batch_size=config.batch_size, backend=config.backend,
                                                      device=config.device)

    def load_encoder(self, weights: str | None, cache: str | None) -> None:
        """The I3D RGB encoder, refused when its weights are not those the model was trained on."""
        from augrgb.extract.runtime import make_encoder

        model, sha, _ = load_i3d("rgb", path=weights, cache=cache)
        self.detector.check_features({**self.extract_config.grid_attrs(), "encoder": ENCODERS["rgb"], "weights_sha256": sha},
                                     weights or weights_path("i3d-rgb", cache))
        config, cfg = self.config, self.extract_config
        probe = encoder_probe(model, (cfg.batch_size, cfg.snippet, cfg.size, cfg.size, 3), config.device)
        self.choice = resolve(config.runtime, config.precision, config.device, config.calibrate, probe=probe, cache=cache)
        if self.choice.runtime == "torch":
            self.extract_config = cfg = cfg.model_copy(update={"precision": self.choice.precision})
        self.encoder = make_encoder(model, sha, self.choice.runtime, self.choice.precision, config.device, cache,
                                    config.calibrate, float(cfg.fps), cfg.crop, int(cfg.short_side))

    def has_features(self, video_id: str) -> bool:
        return self.store is not None and self.store.has(video_id, "rgb")

    def features(self, video_id: str, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
        """(T, 1024) features and facts about the video (frames at the model fps, source fps, flags)."""
        if self.has_features(video_id):
            features, attrs = self.store.read(video_id, "rgb")
            self.detector.check_features(attrs, self.store.path(video_id))
            cfg = self.extract_config
            frames = attrs.get("frame_count") or (len(features) - 1) * cfg.stride + cfg.snippet  # older stores: whole snippets
            return np.asarray(features, np.float32), {"frames": int(frames), "source_fps": attrs.get("source_fps"),
                                                      "flags": _flags(attrs.get("flags")), "features": str(self.store.path(video_id)),
                                                      "precision": attrs.get("precision", ""), "runtime": attrs.get("runtime", "torch"),
                                                      "runtime_reason": "feature store", "precision_reason": "feature store"}
        features, meta = encode_video(path, self.encoder, self.extract_config)
        return features, {"frames": meta["frames"], "source_fps": meta["source_fps"], "flags": meta["flags"], "features": "decoded",
                          **self.choice.as_record()}

    def infer(self, video_id: str, path: Path) -> DetectResult:
        """Run the networks on one video and write all its outputs (the record last)."""
        features, facts = self.features(video_id, path)
        fps = float(self.extract_config.fps)
        grid = SnippetGrid(fps, self.extract_config.snippet, self.extract_config.stride, max(int(facts["frames"]), 1))
        snippet_probs = self.detector.probabilities(features, self.config.device)
        probs = VideoProbabilities(video_id, frame_probabilities(snippet_probs, grid)[:, : len(self.detector.classes)],
                                   snippet_probs, fps, self.detector.classes, self.detector.head,
                                   {"snippet": grid.snippet, "stride": grid.stride, "frame_count": grid.frames,
                                    "model_sha256": self.detector.sha256, "source": str(path)})
        self.out.record(video_id).unlink(missing_ok=True)  # not done until the new record exists
        write_probabilities(self.out.probabilities(video_id), probs)
        source_fps = float(facts["source_fps"] or fps)
        record = {"video_id": video_id, "source": str(path), "model": self.detector.meta.path,
                  "model_sha256": self.detector.sha256, "precision": facts["precision"], "runtime": facts["runtime"],
                  "runtime_reason": facts["runtime_reason"], "precision_reason": facts["precision_reason"],
                  "features": facts["features"],
                  "fps": fps, "snippet": grid.snippet, "stride": grid.stride, "frames": grid.frames,
                  "duration": grid.frames / fps, "snippets": len(snippet_probs), "source_fps": source_fps,
                  "flags": facts["flags"], "augrgb_version": __version__}
        return self.decode(record, probs, grid)

    def redecode(self, record: dict[str, Any]) -> DetectResult:
        """New intervals for a finished video from its saved probabilities (interval options changed)."""
        probs = read_probabilities_file(self.out.probabilities(record["video_id"]))
        if probs.classes != self.detector.classes or probs.attrs.get("model_sha256") != self.detector.sha256:
            raise InputError(self.out.probabilities(record["video_id"]), "saved by another model")
        grid = SnippetGrid(probs.fps, int(probs.attrs["snippet"]), int(probs.attrs["stride"]), int(probs.attrs["frame_count"]))
        result = self.decode(record, probs, grid)
        result.status = "redecoded"
        return result

    def decode(self, record: dict[str, Any], probs: VideoProbabilities, grid: SnippetGrid) -> DetectResult:
        """Intervals from saved or fresh probabilities; writes the txt, the plot and the record."""
        video_id, k = record["video_id"], len(self.detector.classes)
        background = probs.snippets[:, k] if self.detector.head == "softmax" else None
        intervals = self.decoder(probs.snippets[:, :k], grid, background)
        detections = [Detection(video_id, i.label, i.start, i.end, i.score) for i in intervals]
        write_txt(self.out.txt(video_id), detections, record["source_fps"], self.config.txt_label_base)
        if self.plot:
            self.draw(video_id, probs, detections)
        record.update(decoding=self.decoding, txt_label_base=self.config.txt_label_base,
                      detections=[[self.detector.classes[d.label], d.start, d.end, d.score] for d in detections])
        self.out.write_record(video_id, record)
        return DetectResult(video_id, record["source"], "done", detections=len(detections))

    def draw(self, video_id: str, probs: VideoProbabilities, detections: Sequence[Detection]) -> None:
        truth = self.truth.videos.get(video_id) if self.truth is not None else None
        plot_timeline(self.out.plot(video_id), video_id, self.detector.classes, probs.frames, probs.fps, detections,
                      truth.segments if truth is not None else None)

    def up_to_date(self, record: dict[str, Any] | None) -> str:
        """``"done"``, ``"redecode"`` (same model, other interval options) or ``"run"``."""
        if record is None or record.get("model_sha256") != self.detector.sha256:
            return "run"
        same = record.get("decoding") == self.decoding and record.get("txt_label_base") == self.config.txt_label_base
        return "done" if same else "redecode"


def _inputs(inputs: Sequence[str | Path], store: FeatureStore | None) -> list[tuple[str, Path]]:
    if not inputs:
        if store is None:
            raise InputError("VIDEO", "give videos (files, folders, list files), or --features STORE to use all its videos")
        return [(vid, store.path(vid)) for vid in store.video_ids()]
    # an input that is no file names a video: of the --features store, or one whose saved probabilities can serve
    # (the run reports it as failed when neither can)
    stored = set(store.video_ids()) if store is not None else set()
    named = [str(p) for p in inputs if not Path(p).exists() and not Path(p).is_symlink()]
    files = [p for p in inputs if str(p) not in named]
    return ([(vid, store.path(vid) if vid in stored else Path(vid)) for vid in named]
            + ([(video_id_of(p), p) for p in collect_inputs(files)] if files else []))


def detect(inputs: Sequence[str | Path], model: str | Path, out_dir: str | Path, config: DetectConfig | None = None, *,
           features: str | Path | None = None, annotations: str | Path | None = None, plot: bool = False,
           weights: str | None = None, cache: str | None = None, overwrite: bool = False, progress: bool = True,
           report: Callable[[str], None] = print) -> list[DetectResult]:
    """Detect actions in every input (see module docstring); one result per video.

    ``features``: a feature store whose RGB features are used instead of decoding, when present.
    ``annotations``: ground truth drawn above the detections in the plots.
    Sets the process's malloc options for bounded memory (:mod:`augrgb.core.memory`).
    """
    bound_heap_growth()
    config = config or DetectConfig()
    if annotations is not None and not plot:
        raise InputError("--annotations", "is only drawn in the --plot timelines; add --plot")
    detector = load_detector(model)
    store = None
    if features is not None:
        if not Path(features).is_dir():
            raise InputError(features, "feature store folder not found")
        store = FeatureStore(features)
    truth = read_annotations(annotations, classes=detector.classes) if annotations is not None else None
    out = OutputDir(out_dir)
    run = _Run(detector, out, config, store, truth, plot)

    results: list[DetectResult] = []
    todo: list[tuple[str, Path]] = []
    redo: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for vid, path in _inputs(inputs, store):
        reason = claim_id(vid, path, seen)
        if reason is None:
            record = None if overwrite else out.read_record(vid)
            state = run.up_to_date(record)
            if state == "run" and not run.has_features(vid):  # only a video that must be decoded has to be readable
                reason = unreadable(path)
        if reason is not None:
            results.append(DetectResult(vid, str(path), "failed", reason))
            continue
        if state == "run":
            todo.append((vid, path))
        elif state == "redecode":
            redo.append(record)
        else:
            results.append(DetectResult(vid, str(path), "skipped", "already done", len(record["detections"])))
            if plot and not out.plot(vid).is_file():
                try:
                    run.draw(vid, read_probabilities_file(out.probabilities(vid)), detections_of(record, detector.classes))
                except InputError as exc:
                    report(printable(f"warning: no plot for {vid}: {exc}"))
    for res in results:
        if res.status == "failed":
            report(printable(f"{res.source}: {res.reason}"))
    for record in redo:
        try:
            results.append(run.redecode(record))
        except (InputError, KeyError, ValueError):  # probabilities missing or unusable: run the networks again
            todo.append((record["video_id"], seen[record["video_id"]]))
    if any(not run.has_features(vid) for vid, _ in todo):
        run.load_encoder(weights, cache)
        report(run.choice.describe())

    bar = tqdm(total=len(todo), desc="detect", unit="video", disable=not progress or not todo)
    for vid, path in todo:
        try:
            result = run.infer(vid, path)
        except InputError as exc:
            result = DetectResult(vid, str(path), "failed", exc.reason)
        except (OSError, RuntimeError, ValueError) as exc:
            result = DetectResult(vid, str(path), "failed", error_reason(exc))
        if result.status == "failed":
            (bar.write if progress else report)(printable(f"{result.source}: {result.reason}"))
        results.append(result)
        bar.update(1)
    bar.close()

    order = {vid: i for i, vid in enumerate(seen)}
    finished = sorted((r for r in results if r.status != "failed"), key=lambda r: order[r.video_id])
    detections = [d for r in finished for d in detections_of(out.read_record(r.video_id), detector.classes)]
    write_run_outputs(out, detections, detector.classes)
    failures = "".join(printable(f"{r.source}: {r.reason}") + "\n" for r in results if r.status == "failed")
    write_text_atomic(out.failures, failures)
    return results
