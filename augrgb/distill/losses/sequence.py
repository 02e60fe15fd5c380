"""Sequence-level distillation (our reading of the paper): L_global and L_boundary.

- Global Contextual Relations: per video the T x T relation matrix of snippet features (each
  snippet vector centred over channels and L2-normalised; Gram matrix = correlation between
  snippets); loss = mean squared student-teacher difference over the video's valid pairs.
- Action Boundary Saliency: ``s_t = ||h_{t+1} - h_t||_1 / C`` for t, t+1 both valid, divided by
  the video's maximum (so the curves compare where features change, not the modalities' scales);
  loss = mean squared difference over the video's valid t.
Both average per video first, then over videos, so every video counts equally.
"""

from __future__ import annotations

import torch
from torch import Tensor

from augrgb.distill.losses.base import KD_LOSSES, KDLoss
from augrgb.models.masks import mean_over_videos, video_mean, zero_padding
from augrgb.models.stream import StreamOutput

SALIENCY_EPS = 1e-8


def relation_matrix(features: Tensor, mask: Tensor) -> Tensor:
    """``(B, C, T)`` -> ``(B, T, T)`` correlations between snippets; rows/columns of padding are 0.

    Each snippet vector is centred over channels and L2-normalised; the normalisation is applied
    to the T x T Gram matrix (cheaper than to the C x T features when C > T). Padded snippets are
    zero vectors, so their rows and columns vanish.
    """
    h = zero_padding(features, mask)
    h = h - h.mean(dim=1, keepdim=True)
    inverse_norm = 1.0 / h.norm(dim=1).clamp(min=1e-12)
    return (h.transpose(1, 2) @ h) * inverse_norm[:, :, None] * inverse_norm[:, None, :]


def boundary_saliency(features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Normalised saliency ``(B, T-1)`` and its validity ``(B, T-1)`` (both t and t+1 valid)."""
    b, c, t = features.shape
    if t < 2:
        empty = features.new_zeros(b, 0)
        return empty, empty
    h = zero_padding(features, mask)
    valid = mask[:, 0, 1:] * mask[:, 0, :-1]
    saliency = torch.linalg.vector_norm(h[..., 1:] - h[..., :-1], ord=1, dim=1) / c * valid
    return saliency / (saliency.amax(dim=1, keepdim=True) + SALIENCY_EPS), valid


@KD_LOSSES.register("global")
class GlobalRelationLoss(KDLoss):
    """Match the student's snippet relation matrices to the teacher's."""

    default_weight = 100.0

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        diff = (relation_matrix(student.features, mask) - relation_matrix(teacher.features, mask)) ** 2
        n = mask.sum(dim=(1, 2))
        return mean_over_videos(diff.sum(dim=(1, 2)), n * n)  # padding rows/columns of diff are 0


@KD_LOSSES.register("boundary")
class BoundarySaliencyLoss(KDLoss):
    """Match the student's boundary-saliency curve to the teacher's."""

    default_weight = 5.0

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        s_s, valid = boundary_saliency(student.features, mask)
        s_t, _ = boundary_saliency(teacher.features, mask)
        if valid.numel() == 0:
            return zero_padding(student.features, mask).sum() * 0.0
        return video_mean((s_s - s_t) ** 2, valid)
