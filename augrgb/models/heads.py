"""Classifier heads: a 1x1 conv from the filter's features to per-snippet logits, and its loss.

- ``"sigmoid"`` (dense datasets, concurrent actions): K logits, one binary classifier per class.
  Targets: multi-hot ``(B, K, T)`` floats. L_cls is the BCE *summed over classes* and averaged over
  the valid snippets of the batch (``"sum-classes"``, the authors' convention: dairui01/PDAN
  ``train_PDAN.py``, dairui01/MS-TCT ``train.py``, piergiaj/tgm-icml19 ``train_model.py`` sum the
  BCE and divide by the number of valid frames), or averaged over (snippet, class) entries
  (``"mean-classes"``, K times smaller).
- ``"softmax"`` (sparse datasets, one action at a time): K + 1 logits; **index K (the last) is
  background**. Cross-entropy averaged over valid snippets. Targets: class indices ``(B, T)``
  (long), background = K.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.core.errors import InputError
from augrgb.models.masks import masked_mean, zero_padding

HEADS: tuple[str, ...] = ("sigmoid", "softmax")
CLS_REDUCTIONS: tuple[str, ...] = ("sum-classes", "mean-classes")


def check_head(kind: str) -> str:
    """``kind`` if it names a head, else a one-line InputError."""
    if kind not in HEADS:
        raise InputError(kind, f"unknown classifier head (known: {', '.join(HEADS)})")
    return kind


def num_outputs(num_classes: int, kind: str) -> int:
    """Logit channels K' of a head: K for sigmoid, K + 1 (background last) for softmax."""
    return num_classes + 1 if check_head(kind) == "softmax" else num_classes


def background_index(num_classes: int) -> int:
    """The softmax head's background class: the last index, K."""
    return num_classes


class Classifier(nn.Module):
    """1x1 conv ``(B, hidden, T)`` -> logits ``(B, K', T)``, zero at padded positions."""

    def __init__(self, hidden: int, num_classes: int, kind: str = "sigmoid") -> None:
        super().__init__()
        self.kind = check_head(kind)
        self.num_classes = num_classes
        self.conv = nn.Conv1d(hidden, num_outputs(num_classes, kind), 1)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.conv(h) * mask


def classification_loss(logits: Tensor, targets: Tensor, mask: Tensor, kind: str,
                        reduction: str = "sum-classes") -> Tensor:
    """L_cls over the valid snippets of the batch: BCE (sigmoid; multi-hot targets; ``reduction`` says whether it is
    summed or averaged over classes) or cross-entropy (softmax; indices). Every snippet of the batch weighs the
    same, whichever video it belongs to.

    Returns 0 for an all-padding batch. Targets at padded positions are ignored (may be anything).
    """
    valid = mask[:, 0] > 0
    logits = zero_padding(logits, mask)
    if check_head(kind) == "sigmoid":
        if targets.shape != logits.shape:
            raise ValueError(f"sigmoid head: targets must be multi-hot {tuple(logits.shape)}, "
                             f"got {tuple(targets.shape)}")
        targets = zero_padding(targets.to(logits.dtype), mask)
        per_entry = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if reduction == "sum-classes":
            return masked_mean(per_entry.sum(1), mask[:, 0])
        if reduction == "mean-classes":
            return masked_mean(per_entry, mask)
        raise ValueError(f"unknown classification reduction {reduction!r} (known: {', '.join(CLS_REDUCTIONS)})")
    if targets.shape != (logits.shape[0], logits.shape[2]):
        raise ValueError(f"softmax head: targets must be class indices {(logits.shape[0], logits.shape[2])}, "
                         f"got {tuple(targets.shape)}")
    targets = torch.where(valid, targets.long(), torch.zeros((), dtype=torch.long, device=logits.device))
    per_snippet = F.cross_entropy(logits, targets, reduction="none")
    return masked_mean(per_snippet, mask[:, 0])


def probabilities(logits: Tensor, kind: str) -> Tensor:
    """Class probabilities ``(B, K', T)``: sigmoid per class, or softmax over classes + background."""
    return torch.sigmoid(logits) if check_head(kind) == "sigmoid" else torch.softmax(logits, dim=1)
