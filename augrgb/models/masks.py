"""Padding masks for batches of variable-length snippet sequences.

A batch is ``(B, C, T)`` with a float mask ``(B, 1, T)``: 1 on a video's snippets, 0 on padding.
Padded positions of raw inputs may hold anything (even NaN): ``zero_padding`` selects with
``torch.where`` (never multiplies garbage by zero); the averaging helpers expect finite values.
"""

from __future__ import annotations

import torch
from torch import Tensor


def zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with every padded position set to exactly 0 (NaN-safe, unlike ``x * mask``)."""
    return torch.where(mask > 0, x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_mean(values: Tensor, weights: Tensor) -> Tensor:
    """Weighted mean of finite ``values`` (``weights`` 0/1, broadcast to them); 0 when all weights are 0."""
    return (values * weights).sum() / weights.expand_as(values).sum().clamp(min=1.0)


def mean_over_videos(sums: Tensor, counts: Tensor) -> Tensor:
    """Per-video means ``sums / counts`` ``(B,)`` averaged over videos with ``counts > 0`` (0 if none)."""
    present = (counts > 0).to(sums.dtype)
    return (sums / counts.clamp(min=1) * present).sum() / present.sum().clamp(min=1)


def video_mean(values: Tensor, weights: Tensor) -> Tensor:
    """Mean over each video's valid entries, then over the videos that have any (0 if none).

    ``values (B, ...)`` finite, ``weights`` 0/1 broadcastable to them; every video counts equally.
    """
    b = values.shape[0]
    return mean_over_videos((values * weights).reshape(b, -1).sum(1),
                            weights.expand_as(values).reshape(b, -1).sum(1))


def valid_snippets(x: Tensor, mask: Tensor) -> Tensor:
    """The valid snippets of a padded batch as rows: ``(B, C, T)`` -> ``(M, C)``, ``(B, T)`` -> ``(M,)``.

    Rows come video by video, in time order.
    """
    keep = mask[:, 0] > 0
    if x.dim() == 2:
        return x[keep]
    return x.transpose(1, 2)[keep]
