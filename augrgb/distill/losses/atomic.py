"""L_atomic: supervised snippet-level contrastive distillation (our reading of the paper).

Student and teacher snippet features are projected by small MLP heads and L2-normalised. For the
student anchor of snippet i, the positive is the teacher feature of snippet i and the N negatives
are teacher features of batch snippets whose label set differs from i's; InfoNCE with temperature.
Negatives are drawn uniformly, with replacement, among all such snippets of the batch. An anchor
with no differently-labelled snippet in the batch is skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.distill.masks import masked_mean, valid_snippets
from augrgb.distill.stream import StreamOutput


def label_groups(labels: Tensor) -> Tensor:
    """``(M,)`` class indices or ``(M, K)`` multi-hot -> ``(M,)`` ids equal iff the label sets are equal.

    Multi-hot labels are read as sets by thresholding at 0.5; the empty set is a group of its own.
    """
    if labels.dim() == 1:
        return torch.unique(labels.long(), return_inverse=True)[1]
    return torch.unique(labels > 0.5, dim=0, return_inverse=True)[1]


def sample_negatives(groups: Tensor, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """For each row i, ``n`` indices j drawn uniformly (with replacement) among rows of another group.

    Returns ``(indices (M, n) long, has_negative (M,) bool)``; rows without any other-group row get
    index 0 and ``has_negative`` False. O(M n): rows are sorted by group and each draw skips the
    anchor's own block, so no M x M matrix is built.
    """
    m = groups.numel()
    counts = torch.bincount(groups, minlength=1)
    order = torch.argsort(groups, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    own, start = counts[groups], starts[groups]
    others = m - own
    draws = torch.rand(m, n, generator=generator, device=groups.device)
    pick = (draws * others[:, None]).long().clamp(max=(others - 1).clamp(min=0)[:, None])
    pick = pick + (pick >= start[:, None]) * own[:, None]
    has_negative = others > 0
    pick = torch.where(has_negative[:, None], pick, torch.zeros_like(pick))
    return order[pick], has_negative


def info_nce(anchors: Tensor, positives: Tensor, bank: Tensor, negatives: Tensor, valid: Tensor,
             temperature: float) -> Tensor:
    """Mean over valid anchors of ``-log softmax([a.p, a.n_1..a.n_N] / tau)[0]``.

    ``anchors``, ``positives``, ``bank``: ``(M, D)``; ``negatives``: ``(M, N)`` rows of ``bank``.
    """
    positive = (anchors * positives).sum(-1, keepdim=True)
    negative = torch.einsum("md,mnd->mn", anchors, bank[negatives])
    logits = torch.cat([positive, negative], dim=1) / temperature
    return masked_mean(-torch.log_softmax(logits, dim=1)[:, 0], valid.float())


def projection_head(in_dim: int, out_dim: int) -> nn.Module:
    """Linear -> ReLU -> Linear, the small MLP used for contrastive embeddings."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


@KD_LOSSES.register("atomic")
class AtomicLoss(KDLoss):
    """InfoNCE between projected student and teacher snippets, negatives of other label sets."""

    default_weight = 300.0

    def __init__(self, ctx: KDContext, *, negatives: int = 1, temperature: float = 0.07,
                 projection_dim: int = 128) -> None:
        super().__init__(ctx)
        if negatives < 1 or temperature <= 0:
            raise ValueError("atomic loss needs negatives >= 1 and temperature > 0")
        self.negatives, self.temperature = negatives, temperature
        self.student_head = projection_head(ctx.student_dim, projection_dim)
        self.teacher_head = projection_head(ctx.teacher_dim, projection_dim)

    def embed(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Projected, L2-normalised valid snippets: student ``(M, D)``, teacher ``(M, D)``."""
        z_s = F.normalize(self.student_head(valid_snippets(student.features, mask)), dim=-1)
        z_t = F.normalize(self.teacher_head(valid_snippets(teacher.features, mask)), dim=-1)
        return z_s, z_t

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        z_s, z_t = self.embed(student, teacher, mask)
        negatives, valid = sample_negatives(label_groups(valid_snippets(labels, mask)), self.negatives)
        return info_nce(z_s, z_t, z_t, negatives, valid, self.temperature)
