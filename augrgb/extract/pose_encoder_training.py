"""Train the pose encoder (AGCN) as a snippet-level action classifier, and save/load it safely.

No public pretrained 2s-AGCN weights are available offline, so stage 1 trains one on the labelled
training snippets: multi-label (sigmoid + BCE) for dense datasets, or softmax over the classes plus one
background class (cross-entropy) for sparse datasets. Checkpoints are a dict of tensors and plain values,
readable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import Tensor, nn
from tqdm.auto import tqdm

from augrgb.core.errors import InputError
from augrgb.core.files import replacing
from augrgb.extract.agcn import PAPER_WIDTHS, POSE_ENCODERS
from augrgb.extract.pose_snippets import snippets_to_tensor
from augrgb.extract.skeletons import fit_bodies
from augrgb.models.heads import check_head

CHECKPOINT_FORMAT = "augrgb-pose-encoder"
CHECKPOINT_VERSION = 1

Kind = Literal["sigmoid", "softmax"]
"""The classifier heads of :mod:`augrgb.models.heads` (one name set for streams and the pose encoder)."""


def classification_targets(labels: np.ndarray, kind: Kind) -> Tensor:
    """Training targets from multi-hot snippet labels (N, C).

    ``sigmoid``: the labels as floats. ``softmax``: a distribution over C + 1 classes, the last one
    being background (a snippet without any action); a snippet with several actions splits its mass evenly.
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    if check_head(kind) == "sigmoid":
        return labels
    background = (labels.sum(dim=1, keepdim=True) == 0).float()
    target = torch.cat([labels, background], dim=1)
    return target / target.sum(dim=1, keepdim=True)


def snippet_loss(logits: Tensor, targets: Tensor, kind: Kind) -> Tensor:
    """The encoder's loss on a batch of snippets ``(N, K')``: BCE with logits averaged over entries (sigmoid) or
    cross-entropy against (soft) class distributions (softmax). Streams train with
    :func:`augrgb.models.heads.classification_loss` (padded sequences, class indices)."""
    if check_head(kind) == "sigmoid":
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)
    return nn.functional.cross_entropy(logits, targets)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, kind: Kind) -> dict[str, float]:
    """Snippet-level metrics: accuracy (top-1 incl. background, or exact match at p > 0.5) and the mean
    average precision over classes with at least one positive."""
    labels = np.asarray(labels, dtype=bool)
    if check_head(kind) == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-logits))
        accuracy = float(((scores > 0.5) == labels).all(axis=1).mean())
    else:
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores = (exp / exp.sum(axis=1, keepdims=True))[:, :-1]
        target = np.where(labels.any(axis=1), labels.argmax(axis=1), labels.shape[1])
        accuracy = float((logits.argmax(axis=1) == target).mean())
    with_positives = labels.any(axis=0)
    average = (float(average_precision_score(labels[:, with_positives], scores[:, with_positives], average="macro"))
               if with_positives.any() else float("nan"))
    return {"accuracy": accuracy, "mAP": average}


@torch.no_grad()
@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, inputs: Tensor, batch_size: int, device: torch.device) -> None:
    """Recompute BatchNorm running statistics as exact averages over ``inputs`` with the final weights.

    On small training sets the exponential running averages lag behind the weights, and the model in eval
    mode then scores far below its training-mode self; one pass with cumulative averaging fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(inputs), batch_size):
        if len(inputs[i:i + batch_size]) > 1:
            model(inputs[i:i + batch_size].to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.no_grad()
def _predict(model: nn.Module, inputs: Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    model.eval()
    return torch.cat([model(inputs[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(inputs), batch_size)]).numpy()


def train_pose_encoder(snippet_joints: np.ndarray, snippet_labels: np.ndarray, kind: Kind = "sigmoid", *,
                       epochs: int = 30, lr: float = 0.05, batch_size: int = 32, weight_decay: float = 1e-4,
                       arch: str = "2s-agcn", widths: Sequence[int] = PAPER_WIDTHS, num_person: int = 2,
                       holdout: np.ndarray | None = None, seed: int = 0, device: str | torch.device = "cpu",
                       progress: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Train an AGCN on snippets (N, T, M, 25, 3) with multi-hot labels (N, C); return (model, metrics).

    SGD with Nesterov momentum 0.9 and cosine learning-rate decay (the paper uses SGD, lr 0.1, step decay).
    ``holdout`` (N,) bool marks validation snippets (e.g. the snippets of videos carved off with
    :func:`augrgb.annotations.carve_validation`): they are not trained on, and the epoch with the lowest
    validation loss is kept; without any, the last epoch. BatchNorm statistics are recomputed over the
    training snippets before any evaluation (:func:`recalibrate_batchnorm`). Metrics: per-epoch losses, and the returned
    model's loss, accuracy and mAP on the training (and validation) snippets.
    """
    check_head(kind)
    snippet_labels = np.asarray(snippet_labels)
    if snippet_labels.ndim != 2 or len(snippet_labels) != len(snippet_joints):
        raise ValueError(f"labels must be multi-hot (N, C) with N = {len(snippet_joints)} snippets, got {snippet_labels.shape}")
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    device = torch.device(device)
    num_classes = snippet_labels.shape[1] + (kind == "softmax")
    inputs = snippets_to_tensor(np.stack([fit_bodies(s, num_person) for s in snippet_joints]))
    targets = classification_targets(snippet_labels, kind)

    held = np.zeros(len(inputs), bool) if holdout is None else np.asarray(holdout, dtype=bool)
    if held.shape != (len(inputs),):
        raise ValueError(f"holdout must be a bool mask of the {len(inputs)} snippets, got shape {held.shape}")
    val_idx, train_idx = np.flatnonzero(held), np.flatnonzero(~held)
    if len(train_idx) < 2:
        raise ValueError(f"need at least 2 training snippets, got {len(train_idx)}")
    num_val = len(val_idx)
    model = POSE_ENCODERS.build(arch, num_classes, in_channels=3, num_person=num_person, widths=widths).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps_per_epoch = max(1, -(-len(train_idx) // batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)

    history: list[dict[str, float]] = []
    best_state, best_val = None, float("inf")
    bar = tqdm(range(epochs), desc="pose encoder", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        total = 0.0
        shuffled = generator.permutation(train_idx)
        for start in range(0, len(shuffled), batch_size):
            batch = torch.from_numpy(shuffled[start:start + batch_size])
            if len(batch) < 2:  # BatchNorm needs two samples; the odd one is seen next epoch
                continue
            loss = snippet_loss(model(inputs[batch].to(device)), targets[batch].to(device), kind)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        record = {"epoch": epoch + 1, "train_loss": total / max(len(train_idx), 1)}
        if num_val:
            recalibrate_batchnorm(model, inputs[train_idx], batch_size, device)
            val_logits = torch.from_numpy(_predict(model, inputs[val_idx], batch_size, device))
            record["val_loss"] = snippet_loss(val_logits, targets[val_idx], kind).item()
            if record["val_loss"] < best_val:
                best_val, best_state = record["val_loss"], copy.deepcopy(model.state_dict())
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        recalibrate_batchnorm(model, inputs[train_idx], batch_size, device)

    metrics: dict[str, Any] = {"history": history, "num_train": len(train_idx), "num_val": num_val}
    for split, idx in (("train", train_idx), ("val", val_idx)):
        if len(idx):
            logits = _predict(model, inputs[idx], batch_size, device)
            loss = snippet_loss(torch.from_numpy(logits), targets[idx], kind).item()
            metrics[split] = {"loss": loss, **classification_metrics(logits, snippet_labels[idx], kind)}
    if num_val:
        metrics["best_epoch"] = min(history, key=lambda r: r["val_loss"])["epoch"]
    model.eval()
    return model.cpu(), metrics


def save_pose_encoder(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write a checkpoint atomically: architecture name, constructor config, state dict, plain metadata.

    ``meta`` holds plain values only (class names, kind, snippet/stride, metrics, ...).
    """
    path = Path(path)
    checkpoint = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "arch": model.arch,
                  "config": model.config(), "state_dict": model.state_dict(), "meta": meta}
    with replacing(path) as tmp:
        torch.save(checkpoint, tmp)


def load_pose_encoder(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_pose_encoder` (never runs code: weights_only=True); eval mode."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise InputError(path, f"not a readable weights-only checkpoint ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, f"not an augrgb pose-encoder checkpoint (no format '{CHECKPOINT_FORMAT}')")
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise InputError(path, f"unsupported checkpoint version {checkpoint.get('version')!r} (expected {CHECKPOINT_VERSION})")
    arch = checkpoint.get("arch")
    if arch not in POSE_ENCODERS:
        raise InputError(path, f"unknown pose encoder '{arch}' (known: {', '.join(POSE_ENCODERS.names())})")
    try:
        model = POSE_ENCODERS.build(arch, **checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, KeyError, RuntimeError) as exc:
        raise InputError(path, f"checkpoint does not match the {arch} model ({str(exc).splitlines()[0][:200]})") from None
    return model.eval(), checkpoint["meta"]
