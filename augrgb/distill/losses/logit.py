"""Logit-level KD (Hinton et al., 2015): match the teacher's temperature-softened predictions.

Softmax head: ``T^2 * KL(softmax(z_t/T) || softmax(z_s/T))`` per snippet (summed over the K+1
classes), averaged over valid snippets. Sigmoid head: each class is a binary classifier, so the
per-class binary KL of ``sigmoid(z/T)``, times ``T^2``, averaged over valid (snippet, class).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.models.masks import masked_mean
from augrgb.models.stream import StreamOutput


def soft_kl(student_logits: Tensor, teacher_logits: Tensor, kind: str, temperature: float = 1.0,
            class_weights: Tensor | None = None) -> tuple[Tensor, bool]:
    """Per-entry KL of softened teacher vs student predictions.

    Returns ``(kl, per_snippet)``: for softmax ``kl`` is ``(B, T)`` (summed over classes, optionally
    weighted per class, ``class_weights (K',)``) and ``per_snippet`` is True; for sigmoid ``kl`` is
    ``(B, K, T)`` binary KLs. Zero when the logits are equal.
    """
    s, t = student_logits / temperature, teacher_logits / temperature
    if kind == "softmax":
        log_p_t, log_p_s = F.log_softmax(t, dim=1), F.log_softmax(s, dim=1)
        terms = log_p_t.exp() * (log_p_t - log_p_s)
        if class_weights is not None:
            terms = terms * class_weights[None, :, None]
        return terms.sum(dim=1), True
    q_t = torch.sigmoid(t)
    kl = q_t * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - q_t) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl, False


def masked_soft_kl(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor, kind: str, temperature: float,
                   class_weights: Tensor | None = None) -> Tensor:
    """``T^2`` times the mean of :func:`soft_kl` over valid snippets (softmax) or entries (sigmoid)."""
    kl, per_snippet = soft_kl(student_logits, teacher_logits, kind, temperature, class_weights)
    return temperature ** 2 * masked_mean(kl, mask[:, 0] if per_snippet else mask)


@KD_LOSSES.register("logit")
class LogitKD(KDLoss):
    """Classic logit distillation with a temperature, for the sigmoid or softmax head."""

    inputs = ("logits",)

    def __init__(self, ctx: KDContext, *, temperature: float = 4.0) -> None:
        super().__init__(ctx)
        self.temperature = temperature

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        return masked_soft_kl(student.logits, teacher.logits, mask, self.ctx.head, self.temperature)
