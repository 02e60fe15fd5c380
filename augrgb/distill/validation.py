"""Whole-video predictions of a stream, the validation numbers used for model selection and the per-class
thresholds stored with dense students.

Validation mAP is per-frame mAP (:func:`augrgb.metrics.frame_map`) on the snippet label grid:
dense heads score the sigmoid probabilities against the multi-hot labels; sparse heads score the
softmax probabilities of the K action classes against the one-hot labels (background left out).
Given :class:`EventTarget`, validation also reports event mAP (:func:`event_scores`): the metric a sparse
benchmark is judged by, which per-frame mAP does not always rank the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.metrics import precision_recall_curve

from augrgb.annotations import Annotations, num_frames_at
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.detect.intervals import DECODERS
from augrgb.distill.data import SnippetDataset, VideoItem, evaluation_batches
from augrgb.metrics import activitynet_event_map, frame_map
from augrgb.metrics.detections import Detection
from augrgb.models.checkpoint import DEFAULT_THRESHOLD
from augrgb.models.heads import classification_loss
from augrgb.models.stream import Stream


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


def head_probabilities(logits: np.ndarray, head: str) -> np.ndarray:
    """Per-snippet probabilities of every output: ``(T, K)`` sigmoid, or ``(T, K + 1)`` softmax with the background
    last, as the interval decoders read them."""
    x = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    return (torch.sigmoid(x) if head == "sigmoid" else torch.softmax(x, dim=-1)).numpy()


def class_scores(logits: np.ndarray, head: str, num_classes: int) -> np.ndarray:
    """Per-snippet class probabilities ``(T, K)`` for mAP and thresholds (background dropped)."""
    return head_probabilities(logits, head)[:, :num_classes]


def class_targets(labels: np.ndarray, head: str, num_classes: int) -> np.ndarray:
    """Per-snippet binary targets ``(T, K)``: multi-hot as is; class indices one-hot, background none."""
    if head == "sigmoid":
        return np.asarray(labels, dtype=bool)
    return np.eye(num_classes + 1, dtype=bool)[labels][:, :num_classes]


SELECTION_KEYS = {"frame": "mAP", "event": "event_mAP"}
"""The validation entry each model-selection metric (``training.selection``) reads."""

EVENT_DECODERS = {"softmax": "sparse", "sigmoid": "multi-threshold"}
"""Interval decoder (``augrgb.detect.intervals.DECODERS``) per head for event mAP: fused rows have no
per-class thresholds, so dense heads use the threshold-free multi-threshold decoder."""


def decode_events(probabilities: Mapping[str, np.ndarray], head: str, num_classes: int, ann: Annotations,
                  grid: SnippetGrid) -> list[Detection]:
    """The intervals :data:`EVENT_DECODERS` finds in per-video snippet probabilities ``(T, K)`` (sigmoid) or
    ``(T, K + 1)`` (softmax, background last), each video's frame count from its duration in ``ann``."""
    decoder = DECODERS.build(EVENT_DECODERS[head])
    detections = []
    for video_id, probs in probabilities.items():
        frames = max(1, num_frames_at(ann.videos[video_id].duration, grid.fps))
        background = probs[:, num_classes] if head == "softmax" else None
        for d in decoder(probs[:, :num_classes], replace(grid, frames=frames), background):
            detections.append(Detection(video_id, d.label, d.start, d.end, d.score))
    return detections


def event_scores(probabilities: Mapping[str, np.ndarray], head: str, num_classes: int, ann: Annotations,
                 grid: SnippetGrid, tiou: Sequence[float]) -> dict[str, float]:
    """``{"mAP@t": ActivityNet event mAP}`` at each ``tiou`` of the intervals :func:`decode_events` finds."""
    result = activitynet_event_map(ann, decode_events(probabilities, head, num_classes, ann, grid), tiou)
    return {f"mAP@{t:g}": float(m) for t, m in zip(result.tiou, result.mAP)}


def with_item_durations(annotations: Annotations, items: Sequence[VideoItem]) -> Annotations:
    """The annotations of ``items`` only, each video's duration taken from its item (which knows it from the
    features when the annotations do not)."""
    videos = {i.video_id: replace(annotations.videos[i.video_id], duration=i.duration) for i in items}
    return Annotations(list(annotations.classes), videos)


@dataclass(frozen=True)
class EventTarget:
    """What validation needs for event mAP: the validation videos' instances, their snippet grid, the tIoUs."""

    annotations: Annotations
    grid: SnippetGrid
    tiou: tuple[float, ...]

    @classmethod
    def of(cls, annotations: Annotations, items: Sequence[VideoItem], grid: SnippetGrid,
           tiou: Sequence[float]) -> EventTarget:
        """The target for the videos of ``items``."""
        return cls(with_item_durations(annotations, items), grid, tuple(float(t) for t in tiou))

    def score(self, logits: Sequence[np.ndarray], items: Sequence[VideoItem], head: str, num_classes: int) -> float:
        """Event mAP averaged over the tIoUs (NaN when the videos hold no action instance). A small validation
        split rarely holds every class: detections of the absent ones, which ActivityNet's mAP ignores, are
        dropped here so that every epoch does not warn about them."""
        present = {seg.label for v in self.annotations.videos.values() for seg in v.segments}
        if not present:
            return math.nan
        probs = {item.video_id: head_probabilities(lg, head) for item, lg in zip(items, logits)}
        detections = [d for d in decode_events(probs, head, num_classes, self.annotations, self.grid)
                      if d.label in present]
        return float(np.mean(activitynet_event_map(self.annotations, detections, self.tiou).mAP))


def validation_metrics(stream: Stream, items: Sequence[VideoItem], modality: str, device: torch.device,
                       batch_size: int = 16, events: EventTarget | None = None
                       ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """``({"loss": L_cls, "mAP": per-frame mAP on the snippet grid (NaN without positives)[, "event_mAP": event mAP
    averaged over the tIoUs of ``events`` (NaN without instances)]}, scores, targets)``."""
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
    metrics = {"loss": sum(losses) / sum(counts), "mAP": m_ap}
    if events is not None:
        metrics["event_mAP"] = events.score(logits, items, head, k)
    return metrics, scores, targets


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
