"""Whole-video predictions of a stream, the validation numbers used for model selection, the
per-class thresholds stored with dense students, and the RGB / teacher / two-stream comparison.

Validation mAP is per-frame mAP (:func:`augrgb.detect.metrics.frame_map`) on the snippet label grid:
dense heads score the sigmoid probabilities against the multi-hot labels; sparse heads score the
softmax probabilities of the K action classes against the one-hot labels (background left out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import precision_recall_curve

from augrgb.annotations import Annotations, read_annotations
from augrgb.detect.metrics import SnippetTiming, frame_map, frame_map_from_scores
from augrgb.distill.data import SnippetDataset, VideoItem, evaluation_batches
from augrgb.distill.heads import classification_loss
from augrgb.distill.stream import Stream, two_stream_logits
from augrgb.errors import InputError

DEFAULT_THRESHOLD = 0.5


@torch.no_grad()
def predict_logits(stream: Stream, items: Sequence[VideoItem], modality: str, device: torch.device,
                   batch_size: int = 16) -> list[np.ndarray]:
    """Per-video logits ``(T, K')`` (float32) of whole videos, in the order of ``items``."""
    was_training = stream.training
    stream.eval()
    dataset = SnippetDataset(items, [modality], stream.head, stream.num_classes)
    out: list[np.ndarray | None] = [None] * len(items)
    for indices in evaluation_batches(items, batch_size):
        batch = dataset.collate([dataset[i] for i in indices]).to(device)
        logits = stream(batch.features[modality], batch.mask).logits.float().cpu()
        for row, i in enumerate(indices):
            out[i] = logits[row, :, :items[i].length].T.numpy()
    stream.train(was_training)
    return out  # type: ignore[return-value]


def class_scores(logits: np.ndarray, head: str, num_classes: int) -> np.ndarray:
    """Per-snippet class probabilities ``(T, K)`` for mAP and thresholds (background dropped)."""
    x = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    probs = torch.sigmoid(x) if head == "sigmoid" else torch.softmax(x, dim=-1)
    return probs[:, :num_classes].numpy()


def class_targets(labels: np.ndarray, head: str, num_classes: int) -> np.ndarray:
    """Per-snippet binary targets ``(T, K)``: multi-hot as is; class indices one-hot, background none."""
    if head == "sigmoid":
        return np.asarray(labels, dtype=bool)
    return np.eye(num_classes + 1, dtype=bool)[labels][:, :num_classes]


def validation_metrics(stream: Stream, items: Sequence[VideoItem], modality: str, device: torch.device,
                       batch_size: int = 16) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """``({"loss": L_cls, "mAP": per-frame mAP on the snippet grid (NaN without positives)}, scores, targets)``."""
    head, k = stream.head, stream.num_classes
    logits = predict_logits(stream, items, modality, device, batch_size)
    losses, counts = [], []
    for item, lg in zip(items, logits):
        target = torch.from_numpy(item.labels.T.astype(np.float32) if head == "sigmoid" else item.labels)
        loss = classification_loss(torch.from_numpy(lg.T)[None], target[None], torch.ones(1, 1, item.length), head)
        losses.append(float(loss) * item.length)
        counts.append(item.length)
    scores = np.concatenate([class_scores(lg, head, k) for lg in logits])
    targets = np.concatenate([class_targets(item.labels, head, k) for item in items])
    try:
        m_ap = frame_map(scores, targets).mAP
    except InputError:
        m_ap = math.nan
    return {"loss": sum(losses) / sum(counts), "mAP": m_ap}, scores, targets


def dense_thresholds(scores: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per class, the probability threshold with the best F1 on (validation) snippets; a class with
    no positive keeps 0.5. A snippet is positive for a class when its probability >= the threshold."""
    thresholds = []
    for c in range(scores.shape[1]):
        if not targets[:, c].any():
            thresholds.append(DEFAULT_THRESHOLD)
            continue
        precision, recall, cuts = precision_recall_curve(targets[:, c], scores[:, c])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        thresholds.append(float(cuts[int(np.argmax(f1))]))
    return thresholds


def evaluate_streams(rgb: str | Path, teachers: Sequence[str | Path], features: str | Path, annotations: str | Path,
                     *, fmt: str = "auto", subset: str = "testing", annotation_options: dict[str, Any] | None = None,
                     device: str = "cpu", batch_size: int = 16, progress: bool = False) -> dict[str, Any]:
    """Per-frame mAP of the RGB stream, each teacher, and their fusion (averaged logits) on ``subset``.

    Scores are upsampled to the ground-truth frames (``frame_map_from_scores``); a video without a
    duration in the annotations gets it from its features (frame count, else the snippet grid).
    """
    from augrgb.distill.checkpoint import load_stream
    from augrgb.distill.data import FeatureSource, load_videos
    from augrgb.distill.distributed import resolve_device

    dev = resolve_device(device)
    streams = [("RGB", *load_stream(rgb))] + [("teacher", *load_stream(path)) for path in teachers]
    _, _, ref = streams[0]
    for _, _, meta in streams[1:]:
        if meta["classes"] != ref["classes"] or meta["head"] != ref["head"]:
            raise InputError(meta["path"], f"classes/head differ from the RGB checkpoint {ref['path']}")
    ann = read_annotations(annotations, fmt, **(annotation_options or {})).subset(subset)
    if ann.num_classes != len(ref["classes"]):
        raise InputError(annotations, f"{ann.num_classes} classes, the checkpoints have {len(ref['classes'])}")
    grid = {k: ref["features"][k] for k in ("fps", "snippet", "stride")}
    source = FeatureSource(features, grid)
    modalities = list(dict.fromkeys(meta["modality"] for _, _, meta in streams))
    items, report = load_videos(source, ann, modalities, ref["head"], progress=progress)
    ann = Annotations(ann.classes, {i.video_id: replace(ann.videos[i.video_id], duration=i.duration) for i in items})
    timing = SnippetTiming(float(grid["fps"]), int(grid["snippet"]), int(grid["stride"]))
    k, head = ann.num_classes, ref["head"]

    def score(logits: list[np.ndarray]) -> float:
        scores = {item.video_id: class_scores(lg, head, k) for item, lg in zip(items, logits)}
        return frame_map_from_scores(scores, ann, timing).mAP

    rows, all_logits = [], []
    for role, stream, meta in streams:
        logits = predict_logits(stream.to(dev), items, meta["modality"], dev, batch_size)
        all_logits.append(logits)
        rows.append({"stream": role, "modality": meta["modality"], "checkpoint": meta["path"], "mAP": score(logits)})
    fused = [two_stream_logits(*(torch.from_numpy(lg[i]) for lg in all_logits)).numpy() for i in range(len(items))]
    rows.append({"stream": "two-stream" if len(streams) == 2 else "multi-stream",
                 "modality": "+".join(meta["modality"] for _, _, meta in streams), "checkpoint": None,
                 "mAP": score(fused)})
    return {"subset": subset, "videos": len(items), "skipped": report.skipped, "protocol": "per-frame mAP", "rows": rows}
