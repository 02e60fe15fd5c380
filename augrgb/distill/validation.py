"""Whole-video predictions of a stream, the validation numbers used for model selection and the per-class
thresholds stored with dense students.

Validation mAP is per-frame mAP (:func:`augrgb.metrics.frame_map`) on the snippet label grid:
dense heads score the sigmoid probabilities against the multi-hot labels; sparse heads score the
softmax probabilities of the K action classes against the one-hot labels (background left out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import precision_recall_curve

from augrgb.core.errors import InputError
from augrgb.distill.data import SnippetDataset, VideoItem, evaluation_batches
from augrgb.metrics import frame_map
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
