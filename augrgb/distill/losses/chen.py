"""Chen et al. (NeurIPS 2017, KD for object detection), adapted as the supplement does: L_soft + L_hint.

- L_soft: class-weighted distillation of the teacher's (temperature-softened) predictions; the
  background class weighs ``background_weight`` (1.5 in the paper) on the softmax head. Written as
  the weighted KL (same gradient as their weighted cross-entropy, zero when predictions agree).
  The sigmoid head has no background class: unweighted binary KL per class.
- L_hint: MSE between the teacher's features and the student's after an adaptation layer (a 1x1
  conv, always present, as the paper finds it helps even with equal widths).
The bounded regression loss has no counterpart (no regression branch here).
"""

from __future__ import annotations

import torch
from torch import Tensor

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.distill.losses.hint import feature_regressor, hint_mse
from augrgb.distill.losses.logit import masked_soft_kl
from augrgb.models.stream import StreamOutput


@KD_LOSSES.register("chen")
class ChenKD(KDLoss):
    """Weighted soft-target loss + hint loss with an adaptation layer."""

    inputs = ("features", "logits")

    def __init__(self, ctx: KDContext, *, soft_weight: float = 1.0, hint_weight: float = 0.5,
                 temperature: float = 1.0, background_weight: float = 1.5) -> None:
        super().__init__(ctx)
        self.soft_weight, self.hint_weight, self.temperature = soft_weight, hint_weight, temperature
        self.adaptation = feature_regressor(ctx.student_dim, ctx.teacher_dim, always=True)
        weights = torch.ones(ctx.num_outputs)
        if ctx.head == "softmax":
            weights[-1] = background_weight
        self.register_buffer("class_weights", weights, persistent=False)

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        weights = self.class_weights if self.ctx.head == "softmax" else None
        soft = masked_soft_kl(student.logits, teacher.logits, mask, self.ctx.head, self.temperature, weights)
        hint = hint_mse(self.adaptation(student.features), teacher.features, mask)
        return self.soft_weight * soft + self.hint_weight * hint
