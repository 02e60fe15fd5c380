"""RKD-DA: relational KD with distance and angle potentials (Park et al., CVPR 2019), over snippets.

The original relates the samples of a mini-batch; here (as in the paper's supplement) it relates
the snippets of each video. Distance: pairwise Euclidean distances divided by their mean over the
video's valid pairs, Huber (smooth-L1) between student and teacher. Angle: cosine of the angle
at snippet j between i and k, over triplets of distinct snippets, Huber. The angle term is cubic
in T, so it uses up to ``angle_snippets`` valid snippets per video drawn at random (all of them
when the video has no more).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.models.masks import video_mean
from augrgb.models.stream import StreamOutput


def pairwise_distances(x: Tensor) -> Tensor:
    """``(B, T, C)`` -> ``(B, T, T)`` Euclidean distances, with a finite gradient at 0."""
    sq = (x * x).sum(-1)
    d2 = sq[:, :, None] + sq[:, None, :] - 2 * x @ x.transpose(1, 2)
    return d2.clamp(min=1e-12).sqrt()


def distance_potential(x: Tensor, pairs: Tensor) -> Tensor:
    """Distances normalised by their mean over each video's valid pairs (i != j)."""
    d = pairwise_distances(x) * pairs
    mean = d.sum((1, 2), keepdim=True) / pairs.sum((1, 2), keepdim=True).clamp(min=1)
    return d / mean.clamp(min=1e-12)


def angle_potential(x: Tensor) -> Tensor:
    """``(B, S, C)`` -> ``(B, S, S, S)``: entry [j, i, k] = cos of the angle at j between i and k."""
    e = F.normalize(x[:, None, :, :] - x[:, :, None, :], dim=-1)          # [b, j, i] = unit(x_i - x_j)
    return e @ e.transpose(2, 3)


def sample_snippets(mask: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """Up to ``count`` random valid time indices per video: ``(B, S)`` indices and ``(B, S)`` validity."""
    valid = mask[:, 0] > 0
    scores = torch.where(valid, torch.rand(valid.shape, device=mask.device), torch.full_like(mask[:, 0], -1.0))
    top, index = scores.topk(min(count, valid.shape[1]), dim=1)
    return index, (top >= 0).float()


@KD_LOSSES.register("rkd-da")
class RelationalKD(KDLoss):
    """Distance-wise + angle-wise relational KD between the snippets of each video."""

    def __init__(self, ctx: KDContext, *, distance_weight: float = 25.0, angle_weight: float = 50.0,
                 angle_snippets: int = 32) -> None:
        super().__init__(ctx)
        self.distance_weight, self.angle_weight, self.angle_snippets = distance_weight, angle_weight, angle_snippets

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        s, t = student.features.transpose(1, 2), teacher.features.transpose(1, 2)
        m = mask[:, 0]
        eye = torch.eye(m.shape[1], device=m.device)
        pairs = m[:, :, None] * m[:, None, :] * (1 - eye)
        huber = F.smooth_l1_loss(distance_potential(s, pairs), distance_potential(t, pairs), reduction="none")
        loss = self.distance_weight * video_mean(huber, pairs)

        index, picked = sample_snippets(mask, self.angle_snippets)
        s_sub = torch.gather(s, 1, index[..., None].expand(-1, -1, s.shape[2]))
        t_sub = torch.gather(t, 1, index[..., None].expand(-1, -1, t.shape[2]))
        n = index.shape[1]
        distinct = (1 - torch.eye(n, device=m.device))
        triplets = (picked[:, :, None, None] * picked[:, None, :, None] * picked[:, None, None, :]
                    * distinct[None, :, :, None] * distinct[None, :, None, :] * distinct[None, None, :, :])
        huber = F.smooth_l1_loss(angle_potential(s_sub), angle_potential(t_sub), reduction="none")
        return loss + self.angle_weight * video_mean(huber, triplets)
