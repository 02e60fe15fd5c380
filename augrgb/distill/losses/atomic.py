"""L_atomic: supervised snippet-level contrastive distillation (our reading of the paper).

Student and teacher snippet features are projected (``student_head``, ``teacher_head``: none, linear
or a small MLP) and L2-normalised. For the student anchor of snippet i the positive is the teacher
embedding of snippet i and the N negatives are teacher embeddings of batch snippets whose label set
differs from i's (``label_disjoint``: shares no class with it), drawn uniformly with replacement from
``negative_pool``: the same video, other videos, or any video of the batch. InfoNCE with
``temperature``. An anchor without any admissible negative is skipped.

Each option is one reading of a paper that does not fix them; docs/distill.md says which reading is
the default and how it was chosen (validation mAP over seeds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.models.masks import masked_mean, valid_snippets
from augrgb.models.stream import StreamOutput

PROJECTIONS: tuple[str, ...] = ("none", "linear", "mlp")
NEGATIVE_POOLS: tuple[str, ...] = ("same-video", "other-videos", "any")
_CHUNK = 1024  # anchors whose candidate rows are built at once (bounds memory at CHUNK x M)


def label_sets(labels: Tensor) -> Tensor:
    """``(M,)`` class indices or ``(M, K)`` multi-hot -> ``(M, K')`` boolean label sets (multi-hot read at 0.5)."""
    if labels.dim() == 1:
        return F.one_hot(labels.long(), int(labels.max()) + 1 if labels.numel() else 1).bool()
    return labels > 0.5


def label_groups(labels: Tensor) -> Tensor:
    """``(M,)`` ids, equal iff two rows have the same label set (the empty set is a group of its own)."""
    return torch.unique(label_sets(labels), dim=0, return_inverse=True)[1]


def negative_candidates(sets: Tensor, groups: Tensor, videos: Tensor, rows: slice, pool: str = "any",
                        label_disjoint: bool = False) -> Tensor:
    """``(len(rows), M)`` bool: which snippets may be negatives of the anchors ``rows``, given every snippet's
    label set (``sets``, ``groups`` from :func:`label_sets`, :func:`label_groups`) and video index."""
    allowed = groups[rows, None] != groups[None, :]
    if label_disjoint:
        allowed &= (sets[rows].float() @ sets.float().T) == 0
    if pool == "same-video":
        allowed &= videos[rows, None] == videos[None, :]
    elif pool == "other-videos":
        allowed &= videos[rows, None] != videos[None, :]
    elif pool != "any":
        raise ValueError(f"unknown negative pool {pool!r} (known: {', '.join(NEGATIVE_POOLS)})")
    return allowed


def sample_negatives(labels: Tensor, videos: Tensor, n: int, pool: str = "any", label_disjoint: bool = False,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """For each row i, ``n`` indices drawn uniformly with replacement among its admissible negatives.

    ``labels``: ``(M,)`` class indices or ``(M, K)`` multi-hot; ``videos``: ``(M,)`` the video of each row.
    Returns ``(indices (M, n) long, has_negative (M,) bool)``; rows without a candidate get index 0 and
    ``has_negative`` False.
    """
    m = labels.shape[0]
    sets, groups = label_sets(labels), label_groups(labels)
    indices = torch.zeros(m, n, dtype=torch.long, device=labels.device)
    has_negative = torch.zeros(m, dtype=torch.bool, device=labels.device)
    if pool == "same-video":  # candidates are confined to the anchor's video: T x T per video, not M x M
        order = torch.argsort(videos, stable=True)
        start = 0
        for count in torch.unique_consecutive(videos[order], return_counts=True)[1].tolist():
            rows = order[start:start + count]
            start += count
            allowed = negative_candidates(sets[rows], groups[rows], videos[rows], slice(None), "any", label_disjoint)
            has = allowed.any(1)
            weights = allowed.float()
            weights[~has, 0] = 1.0  # a placeholder draw for anchors that are skipped anyway
            indices[rows] = rows[torch.multinomial(weights, n, replacement=True, generator=generator)]
            has_negative[rows] = has
        return indices, has_negative
    for start in range(0, m, _CHUNK):
        rows = slice(start, min(start + _CHUNK, m))
        allowed = negative_candidates(sets, groups, videos, rows, pool, label_disjoint)
        has = allowed.any(1)
        weights = allowed.float()
        weights[~has, 0] = 1.0  # a placeholder draw for anchors that are skipped anyway
        indices[rows] = torch.multinomial(weights, n, replacement=True, generator=generator)
        has_negative[rows] = has
    return indices, has_negative


def info_nce(anchors: Tensor, positives: Tensor, bank: Tensor, negatives: Tensor, valid: Tensor,
             temperature: float) -> Tensor:
    """Mean over valid anchors of ``-log softmax([a.p, a.n_1..a.n_N] / tau)[0]``.

    ``anchors``, ``positives``, ``bank``: ``(M, D)``; ``negatives``: ``(M, N)`` rows of ``bank``.
    """
    positive = (anchors * positives).sum(-1, keepdim=True)
    negative = torch.einsum("md,mnd->mn", anchors, bank[negatives])
    logits = torch.cat([positive, negative], dim=1) / temperature
    return masked_mean(-torch.log_softmax(logits, dim=1)[:, 0], valid.float())


def projection_head(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """``none`` (identity; needs ``in_dim == out_dim``), ``linear``, or ``mlp`` (Linear -> ReLU -> Linear)."""
    if kind == "none":
        if in_dim != out_dim:
            raise ValueError(f"a 'none' projection keeps the width: {in_dim} -> {out_dim} needs linear or mlp")
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))
    raise ValueError(f"unknown projection {kind!r} (known: {', '.join(PROJECTIONS)})")


def embedding_dim(student_dim: int, teacher_dim: int, student_head: str, teacher_head: str, projection_dim: int) -> int:
    """The width both sides are projected to: a side without a head keeps its own width, the other maps onto it."""
    if teacher_head == "none":
        return teacher_dim
    return student_dim if student_head == "none" else projection_dim


@KD_LOSSES.register("atomic")
class AtomicLoss(KDLoss):
    """InfoNCE between projected student and teacher snippets, negatives of other label sets."""

    default_weight = 300.0

    def __init__(self, ctx: KDContext, *, negatives: int = 1, temperature: float = 0.5, projection_dim: int = 128,
                 student_head: str = "linear", teacher_head: str = "none", teacher_head_trainable: bool = True,
                 negative_pool: str = "same-video", label_disjoint: bool = False) -> None:
        """Defaults: the reading with the best validation mAP over 5 seeds on the built-in benchmark (a linear
        student head onto the frozen teacher's own features, negatives from the same video, tau 0.5;
        docs/results/earlier.md, "The objective")."""
        super().__init__(ctx)
        if negatives < 1 or temperature <= 0:
            raise ValueError("atomic loss needs negatives >= 1 and temperature > 0")
        if negative_pool not in NEGATIVE_POOLS:
            raise ValueError(f"unknown negative pool {negative_pool!r} (known: {', '.join(NEGATIVE_POOLS)})")
        self.negatives, self.temperature = negatives, temperature
        self.negative_pool, self.label_disjoint = negative_pool, label_disjoint
        dim = embedding_dim(ctx.student_dim, ctx.teacher_dim, student_head, teacher_head, projection_dim)
        self.student_head = projection_head(student_head, ctx.student_dim, dim)
        self.teacher_head = projection_head(teacher_head, ctx.teacher_dim, dim).requires_grad_(teacher_head_trainable)

    def embed(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Projected, L2-normalised valid snippets: student ``(M, D)``, teacher ``(M, D)``."""
        z_s = F.normalize(self.student_head(valid_snippets(student.features, mask)), dim=-1)
        z_t = F.normalize(self.teacher_head(valid_snippets(teacher.features, mask)), dim=-1)
        return z_s, z_t

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        z_s, z_t = self.embed(student, teacher, mask)
        b, t = mask.shape[0], mask.shape[-1]
        videos = valid_snippets(torch.arange(b, device=mask.device)[:, None].expand(b, t), mask)
        negatives, valid = sample_negatives(valid_snippets(labels, mask), videos, self.negatives,
                                            self.negative_pool, self.label_disjoint)
        return info_nce(z_s, z_t, z_t, negatives, valid, self.temperature)
