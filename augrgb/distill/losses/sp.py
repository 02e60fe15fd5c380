"""SP: similarity-preserving KD (Tung & Mori, ICCV 2019), over the snippets of each video.

Per video, ``G = H^T H`` (T x T snippet similarities), each row L2-normalised; loss = mean
squared student-teacher difference over the video's valid pairs (the original's ``1/b^2 ||.||_F^2``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from augrgb.distill.losses.base import KD_LOSSES, KDLoss
from augrgb.models.masks import video_mean
from augrgb.models.stream import StreamOutput


def similarity_matrix(features: Tensor) -> Tensor:
    """``(B, C, T)`` (padding zeroed) -> ``(B, T, T)`` row-normalised snippet similarities."""
    return F.normalize(features.transpose(1, 2) @ features, dim=2)


@KD_LOSSES.register("sp")
class SimilarityPreservingKD(KDLoss):
    """Match row-normalised snippet similarity matrices."""

    default_weight = 3000.0

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        diff = (similarity_matrix(student.features) - similarity_matrix(teacher.features)) ** 2
        return video_mean(diff, mask[:, 0, :, None] * mask[:, 0, None, :])
