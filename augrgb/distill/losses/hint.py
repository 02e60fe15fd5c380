"""Hint / feature-matching KD (FitNets, Romero et al. 2015; MARS, Crasto et al. 2019).

Mean squared error between the student's features (through a 1x1 conv regressor when the
widths differ, as FitNets) and the teacher's, over valid (snippet, channel) entries.
"""

from __future__ import annotations

from torch import Tensor, nn

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.models.masks import masked_mean
from augrgb.models.stream import StreamOutput


def feature_regressor(student_dim: int, teacher_dim: int, always: bool = False) -> nn.Module:
    """A 1x1 conv student -> teacher width; identity when the widths agree (unless ``always``)."""
    if always or student_dim != teacher_dim:
        return nn.Conv1d(student_dim, teacher_dim, 1)
    return nn.Identity()


def hint_mse(regressed: Tensor, teacher_features: Tensor, mask: Tensor) -> Tensor:
    """Mean squared difference over valid (snippet, channel) entries."""
    return masked_mean((regressed - teacher_features) ** 2, mask)


@KD_LOSSES.register("hint")
class HintLoss(KDLoss):
    """FitNets/MARS feature matching on the temporal filter's output H."""

    def __init__(self, ctx: KDContext) -> None:
        super().__init__(ctx)
        self.regressor = feature_regressor(ctx.student_dim, ctx.teacher_dim)

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        return hint_mse(self.regressor(student.features), teacher.features, mask)
