"""A stream: encoder features -> temporal filter -> features H -> classifier -> per-snippet logits.

The paper's single-modality network; the teacher (flow or pose) and the RGB student are both
streams, and distillation acts on H. ``two_stream_logits`` fuses streams by averaging logits.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.models.filters import TEMPORAL_FILTERS
from augrgb.models.heads import Classifier, check_head


class StreamOutput(NamedTuple):
    """What a stream gives the losses: features H ``(B, hidden, T)`` and logits ``(B, K', T)``."""

    features: Tensor
    logits: Tensor

    def detach(self) -> StreamOutput:
        """The same tensors cut from the graph (a teacher's output)."""
        return StreamOutput(self.features.detach(), self.logits.detach())


class Stream(nn.Module):
    """Temporal filter (``TEMPORAL_FILTERS[filter]``) + classifier head over snippet features.

    ``hparams()`` returns the constructor arguments, so ``Stream(**s.hparams())`` rebuilds it
    (checkpoints store them).
    """

    def __init__(self, in_dim: int, num_classes: int, head: str = "sigmoid", filter: str = "ss-tcn",
                 hidden: int = 256, dropout: float = 0.5, filter_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._hparams = dict(in_dim=in_dim, num_classes=num_classes, head=check_head(head), filter=filter,
                             hidden=hidden, dropout=dropout, filter_options=dict(filter_options or {}))
        self.head = head
        self.num_classes = num_classes
        self.filter = TEMPORAL_FILTERS.build(filter, in_dim, hidden, dropout, **(filter_options or {}))
        self.classifier = Classifier(self.filter.out_dim, num_classes, head)

    def hparams(self) -> dict[str, Any]:
        """Constructor arguments of this stream."""
        return {**self._hparams, "filter_options": dict(self._hparams["filter_options"])}

    def forward(self, features: Tensor, mask: Tensor) -> StreamOutput:
        h = self.filter(features, mask)
        return StreamOutput(h, self.classifier(h, mask))


def upsample_logits(logits: Tensor, target_len: int) -> Tensor:
    """Logits ``(..., K', T)`` -> ``(..., K', target_len)`` by nearest neighbour in time.

    Rule: output step j takes snippet ``floor(j * T / target_len)``, i.e. snippet i covers the
    ground-truth steps ``[i * target_len / T, (i + 1) * target_len / T)``. Apply it per video
    (or to a batch whose videos share the snippet-to-frame ratio).
    """
    if target_len < 1 or logits.shape[-1] < 1:
        raise ValueError(f"cannot upsample {logits.shape[-1]} snippets to {target_len} steps")
    lead = logits.shape[:-1]
    flat = logits.reshape(-1, 1, logits.shape[-1])
    return F.interpolate(flat, size=target_len, mode="nearest").reshape(*lead, target_len)


def two_stream_logits(a: Tensor, b: Tensor, *more: Tensor) -> Tensor:
    """Two-stream (or multi-stream) fusion as in the paper: the average of the streams' logits."""
    return torch.stack((a, b, *more)).mean(dim=0)
