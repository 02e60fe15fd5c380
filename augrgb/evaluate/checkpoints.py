"""The scores of stream checkpoints (alone or fused) on test videos: :func:`evaluate_checkpoints`, behind the
RGB / teacher / two-stream comparison, and :func:`evaluate_streams`, behind ``augrgb evaluate streams``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from augrgb.annotations import read_annotations
from augrgb.core.errors import InputError
from augrgb.distill.data import FeatureSource, load_videos
from augrgb.distill.distributed import resolve_device
from augrgb.distill.validation import (
    class_scores,
    event_scores,
    head_probabilities,
    predict_logits,
    with_item_durations,
)
from augrgb.metrics import frame_map_from_scores
from augrgb.models.checkpoint import load_stream
from augrgb.models.stream import two_stream_logits


def _row_checkpoints(rows: Mapping[str, str | Path | Sequence[str | Path]]) -> dict[str, list[str]]:
    out = {}
    for name, paths in rows.items():
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise InputError(f"row {name!r}", "names no checkpoint")
        out[name] = [str(p) for p in paths]
    if not out:
        raise InputError("rows", "give at least one row")
    return out


def evaluate_checkpoints(rows: Mapping[str, str | Path | Sequence[str | Path]], features: str | Path,
                         annotations: str | Path, *, fmt: str = "auto", subset: str = "testing",
                         annotation_options: dict[str, Any] | None = None, metric: str = "auto",
                         tiou: Sequence[float] = (0.1, 0.5), device: str = "cpu", batch_size: int = 16,
                         progress: bool = False) -> dict[str, Any]:
    """Score named rows of stream checkpoints on the ``subset`` videos of a feature store.

    A row is one checkpoint, or several whose logits are averaged (the paper's two-stream fusion).
    ``metric``: ``frame`` is per-frame mAP at the ground-truth frame rate; ``event`` is ActivityNet
    event mAP at each ``tiou`` of intervals decoded by :data:`augrgb.distill.validation.EVENT_DECODERS`;
    ``auto`` takes frame for sigmoid heads and event for softmax heads. Each checkpoint is loaded and run once. A video
    without a duration in the annotations gets it from its features. Returns ``{"subset", "videos",
    "skipped", "metric", "columns", "rows": [{"name", "checkpoints", "modality", "scores": {column: value}}]}``.
    """
    named = _row_checkpoints(rows)
    paths = list(dict.fromkeys(p for ps in named.values() for p in ps))
    streams = {p: load_stream(p) for p in paths}
    ref = streams[paths[0]][1]
    for _, meta in streams.values():
        if meta.classes != ref.classes or meta.head != ref.head:
            raise InputError(meta.path, f"classes/head differ from the checkpoint {ref.path}")
    head, k = ref.head, len(ref.classes)
    if metric == "auto":
        metric = "frame" if head == "sigmoid" else "event"
    if metric not in ("frame", "event"):
        raise InputError("metric", f"must be frame, event or auto, got {metric!r}")
    ann = read_annotations(annotations, fmt, **(annotation_options or {})).subset(subset)
    if ann.num_classes != k:
        raise InputError(annotations, f"{ann.num_classes} classes, the checkpoints have {k}")
    grid = ref.grid
    modalities = list(dict.fromkeys(meta.modality for _, meta in streams.values()))
    items, report = load_videos(FeatureSource(features, grid), ann, modalities, head, progress=progress)
    ann = with_item_durations(ann, items)
    if metric == "event" and not any(v.segments for v in ann.videos.values()):
        raise InputError(annotations, f"the {len(items)} '{subset}' video(s) with features hold no action instance: "
                                      "event mAP is undefined (a larger benchmark or another seed has some)")

    dev = resolve_device(device)
    logits = {p: predict_logits(stream.to(dev), items, meta.modality, dev, batch_size)
              for p, (stream, meta) in streams.items()}
    out_rows = []
    for name, row_paths in named.items():
        fused = [logits[row_paths[0]][i] if len(row_paths) == 1 else
                 two_stream_logits(*(torch.from_numpy(logits[p][i]) for p in row_paths)).numpy()
                 for i in range(len(items))]
        if metric == "frame":
            scores = {item.video_id: class_scores(lg, head, k) for item, lg in zip(items, fused)}
            values = {"mAP": frame_map_from_scores(scores, ann, grid).mAP}
        else:
            probs = {item.video_id: head_probabilities(lg, head) for item, lg in zip(items, fused)}
            values = event_scores(probs, head, k, ann, grid, tiou)
        out_rows.append({"name": name, "checkpoints": row_paths,
                         "modality": "+".join(streams[p][1].modality for p in row_paths), "scores": values})
    columns = list(out_rows[0]["scores"])
    label = "per-frame mAP" if metric == "frame" else "event mAP (ActivityNet)"
    return {"subset": subset, "videos": len(items), "skipped": report.skipped, "metric": label, "columns": columns,
            "rows": out_rows}


def evaluate_streams(rgb: str | Path, teachers: Sequence[str | Path], features: str | Path, annotations: str | Path,
                     *, fmt: str = "auto", subset: str = "testing", annotation_options: dict[str, Any] | None = None,
                     metric: str = "frame", tiou: Sequence[float] = (0.1, 0.5), device: str = "cpu",
                     batch_size: int = 16, progress: bool = False) -> dict[str, Any]:
    """mAP of the RGB stream, each teacher, and their fusion (averaged logits) on ``subset``
    (:func:`evaluate_checkpoints` with those rows). ``metric="event"``: each row's ``mAP`` is the mean of its
    event mAPs over ``tiou`` (each in ``scores``), as PKU-MMD and ActivityNet average over thresholds."""
    roles = ["teacher"] if len(teachers) == 1 else [f"teacher {i + 1}" for i in range(len(teachers))]
    rows: dict[str, list[str | Path]] = {"RGB": [rgb], **{r: [t] for r, t in zip(roles, teachers)}}
    rows["two-stream" if len(teachers) == 1 else "multi-stream"] = [rgb, *teachers]
    result = evaluate_checkpoints(rows, features, annotations, fmt=fmt, subset=subset,
                                  annotation_options=annotation_options, metric=metric, tiou=tiou, device=device,
                                  batch_size=batch_size, progress=progress)
    return {"subset": subset, "videos": result["videos"], "skipped": result["skipped"], "protocol": result["metric"],
            "rows": [{"stream": r["name"], "modality": r["modality"],
                      "checkpoint": r["checkpoints"][0] if len(r["checkpoints"]) == 1 else None,
                      "mAP": sum(r["scores"].values()) / len(r["scores"]), "scores": r["scores"]}
                     for r in result["rows"]]}
