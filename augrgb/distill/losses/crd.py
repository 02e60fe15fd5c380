"""CRD: contrastive representation distillation (Tian et al., ICLR 2020), snippets as samples.

Student and teacher snippets are embedded (linear + L2 norm, 128-d) and contrasted in both
directions with CRD's NCE objective: the critic ``h = P / (P + N/M)``, ``P = exp(z.z'/tau) / Z``
(``Z`` estimated from the batch, as CRD estimates it from its memory), the positive is the same
snippet in the other modality and the N negatives are random batch snippets, shared by all
anchors (a batch stands in for CRD's memory bank). Unlike L_atomic, labels are not used.
The supplement trains CRD in two steps (distillation, then classification): that schedule
belongs to the trainer (first ``classification_weight: 0`` with this term, then the
classification loss alone).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.models.masks import valid_snippets
from augrgb.models.stream import StreamOutput


def nce_loss(anchors: Tensor, contrast: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """CRD's NCE loss for anchors ``(M, D)`` against ``contrast (M, D)`` (positive: same row).

    ``negatives (N,)`` are rows of ``contrast`` shared by every anchor; an anchor's own row among
    them is left out. Computed in log space.
    """
    m, n = anchors.shape[0], negatives.numel()
    log_pos = (anchors * contrast).sum(-1) / temperature                      # (M,)
    log_neg = anchors @ contrast[negatives].T / temperature                   # (M, N)
    scores = torch.cat([log_pos, log_neg.flatten()]).detach()
    log_z = torch.logsumexp(scores, 0) - math.log(scores.numel()) + math.log(m)
    log_noise = math.log(n / m)
    log_pos, log_neg = log_pos - log_z, log_neg - log_z
    noise = torch.full_like(log_pos, log_noise)
    log_d1 = log_pos - torch.logaddexp(log_pos, noise)
    log_d0 = log_noise - torch.logaddexp(log_neg, torch.full_like(log_neg, log_noise))
    keep = (negatives[None, :] != torch.arange(m, device=anchors.device)[:, None]).float()
    return -(log_d1 + (log_d0 * keep).sum(1)).mean()


@KD_LOSSES.register("crd")
class ContrastiveRepresentationKD(KDLoss):
    """Bidirectional NCE between embedded student and teacher snippets."""

    default_weight = 0.8

    def __init__(self, ctx: KDContext, *, negatives: int = 4096, temperature: float = 0.07,
                 embedding_dim: int = 128) -> None:
        super().__init__(ctx)
        self.negatives, self.temperature = negatives, temperature
        self.student_embed = nn.Linear(ctx.student_dim, embedding_dim)
        self.teacher_embed = nn.Linear(ctx.teacher_dim, embedding_dim)

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        z_s = F.normalize(self.student_embed(valid_snippets(student.features, mask)), dim=-1)
        z_t = F.normalize(self.teacher_embed(valid_snippets(teacher.features, mask)), dim=-1)
        m = z_s.shape[0]
        if m < 2:
            return z_s.sum() * 0.0
        negatives = torch.randperm(m, device=z_s.device)[:min(self.negatives, m)]
        return nce_loss(z_s, z_t, negatives, self.temperature) + nce_loss(z_t, z_s, negatives, self.temperature)
