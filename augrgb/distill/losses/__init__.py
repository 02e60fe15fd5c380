"""Distillation losses (registry ``KD_LOSSES``) and the training objective.

Ours: ``atomic``, ``global``, ``boundary``. Baselines: ``logit``, ``hint``, ``rkd-da``, ``sp``,
``skd``, ``chen``, ``crd``. Every term: ``term(student, teacher, mask, labels) -> scalar``.
"""

from augrgb.distill.losses import atomic, chen, crd, hint, logit, rkd, sequence, skd, sp  # noqa: F401
from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss
from augrgb.distill.losses.objective import DistillationObjective, ObjectiveConfig, ObjectiveOutput, TermConfig

__all__ = ["KD_LOSSES", "KDContext", "KDLoss", "DistillationObjective", "ObjectiveConfig", "ObjectiveOutput",
           "TermConfig"]
