"""The KD-loss registry and the one interface every distillation term implements.

``KD_LOSSES.build(name, ctx, **options)`` constructs a term; calling it as
``term(student, teacher, mask, labels) -> scalar`` detaches the teacher (gradient reaches only the
student and the term's own heads), disables autocast, computes in float32 and zeroes padding. ``labels`` are at
snippet resolution: multi-hot ``(B, K, T)`` (sigmoid head) or class indices ``(B, T)`` (softmax).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from augrgb.core.registry import Registry
from augrgb.models.masks import zero_padding
from augrgb.models.stream import StreamOutput

KD_LOSSES: Registry = Registry("distillation loss")


@dataclass(frozen=True)
class KDContext:
    """What a term may need to build its heads: feature dims, logit channels K', head kind."""

    student_dim: int = 256
    teacher_dim: int = 256
    num_outputs: int = 0
    head: str = "sigmoid"


class KDLoss(nn.Module):
    """Base of every KD term. Subclasses implement ``compute`` and set ``default_weight``."""

    default_weight: float = 1.0
    inputs: tuple[str, ...] = ("features",)  # StreamOutput fields the term reads (only these are cleaned)

    def __init__(self, ctx: KDContext) -> None:
        super().__init__()
        self.ctx = ctx

    def forward(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        with torch.autocast(device_type=mask.device.type, enabled=False):
            mask = mask.float()
            return self.compute(_clean(student, mask, self.inputs), _clean(teacher.detach(), mask, self.inputs),
                                mask, labels)

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        """The term's value; ``teacher`` is already detached."""
        raise NotImplementedError

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by ``critic_loss`` (adversarial terms), never by the main loss."""
        return []

    def critic_loss(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor) -> Tensor | None:
        """The adversarial critic's own loss, or None for terms without a critic."""
        return None


def _clean(output: StreamOutput, mask: Tensor, fields: tuple[str, ...] = StreamOutput._fields) -> StreamOutput:
    """float32 tensors; the named ``fields`` get exact zeros at padded positions (garbage there never
    reaches a value or a gradient)."""
    return StreamOutput(*(zero_padding(value.float(), mask) if name in fields else value.float()
                          for name, value in zip(StreamOutput._fields, output)))
