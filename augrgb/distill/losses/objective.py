"""The training objective ``L = w_cls L_cls + sum_i alpha_i L_i`` built from a typed config.

Paper default (Augmented-RGB): atomic 300, global 100, boundary 5 (each class's ``default_weight``), N = 1
negative. Any term of ``KD_LOSSES`` (ours or a baseline) can be switched on with its weight and options; a
term's weight defaults to the class's ``default_weight``. With several teachers each term has its own
heads per teacher and is averaged over the teachers.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor, nn

from augrgb.distill.losses.base import KD_LOSSES, KDContext
from augrgb.models.heads import check_head, classification_loss, num_outputs
from augrgb.models.stream import StreamOutput


class TermConfig(BaseModel):
    """One KD term: its weight (None = the term's default) and its own options (extra keys)."""

    model_config = ConfigDict(extra="allow")
    weight: float | None = Field(default=None, ge=0)

    @property
    def options(self) -> dict[str, Any]:
        """The term's constructor options (every key but ``weight``)."""
        return dict(self.model_extra or {})


PAPER_TERMS: tuple[str, ...] = ("atomic", "global", "boundary")
"""The paper's objective; each term's alpha is its class's ``default_weight`` (the one place it is written)."""


def _paper_terms() -> dict[str, TermConfig]:
    """The paper's terms with their alphas written out (so configs and run records show them)."""
    options = {"atomic": {"negatives": 1, "temperature": 0.07}}
    return {name: TermConfig(weight=KD_LOSSES.get(name).default_weight, **options.get(name, {})) for name in PAPER_TERMS}


class ObjectiveConfig(BaseModel):
    """Which KD terms, with which weights and options (YAML section ``objective``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    classification_weight: float = Field(default=1.0, ge=0)
    classification_reduction: Literal["sum-classes", "mean-classes"] = Field(
        default="sum-classes", description="sigmoid L_cls: BCE summed over classes per valid snippet (the authors' "
                                           "convention, which the paper's alphas are balanced against) or averaged")
    terms: dict[str, TermConfig] = Field(default_factory=_paper_terms)

    @field_validator("terms")
    @classmethod
    def _known_terms_and_options(cls, terms: dict[str, TermConfig]) -> dict[str, TermConfig]:
        for name, term in terms.items():
            if name not in KD_LOSSES:
                raise ValueError(f"unknown distillation loss '{name}' (known: {', '.join(KD_LOSSES.names())})")
            accepted = [p for p in inspect.signature(KD_LOSSES.get(name)).parameters if p != "ctx"]
            unknown = sorted(set(term.options) - set(accepted))
            if unknown:
                raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)} "
                                 f"(accepted: {', '.join(accepted) or 'none'})")
        return terms


class ObjectiveOutput(NamedTuple):
    """The total loss to backpropagate and each unweighted part (detached, for logging)."""

    total: Tensor
    parts: dict[str, Tensor]


class DistillationObjective(nn.Module):
    """L_cls on the student + weighted KD terms against one or more frozen teachers.

    ``forward(student, teachers, mask, labels)``: ``teachers`` is one StreamOutput per teacher
    (order of ``teacher_dims``), or a single StreamOutput; ``labels`` at snippet resolution (see ``heads``).
    """

    def __init__(self, config: ObjectiveConfig, *, head: str, num_classes: int, student_dim: int = 256,
                 teacher_dims: Sequence[int] = (256,)) -> None:
        super().__init__()
        self.config, self.head = config, check_head(head)
        self.weights: dict[str, float] = {}
        self.terms = nn.ModuleDict()
        for name, term in config.terms.items():
            cls = KD_LOSSES.get(name)
            weight = cls.default_weight if term.weight is None else term.weight
            if weight == 0:
                continue
            self.weights[name] = weight
            self.terms[name] = nn.ModuleList(
                cls(KDContext(student_dim, dim, num_outputs(num_classes, head), head), **term.options)
                for dim in teacher_dims)
        self.num_teachers = len(teacher_dims)

    def forward(self, student: StreamOutput, teachers: StreamOutput | Sequence[StreamOutput], mask: Tensor,
                labels: Tensor) -> ObjectiveOutput:
        parts = self.parts(student, teachers, mask, labels)
        total = sum(weight * value for weight, value in parts.values())
        logged = {name: value.detach() for name, (_, value) in parts.items()}
        logged["total"] = total.detach()
        return ObjectiveOutput(total, logged)

    def parts(self, student: StreamOutput, teachers: StreamOutput | Sequence[StreamOutput], mask: Tensor,
              labels: Tensor) -> dict[str, tuple[float, Tensor]]:
        """``{"cls": (w_cls, L_cls), term: (alpha, L_term), ...}``, values still in the graph (each term averaged
        over the teachers); the total is the weighted sum."""
        teachers = self._check_teachers(teachers)
        parts = {"cls": (self.config.classification_weight,
                         classification_loss(student.logits, labels, mask, self.head,
                                             self.config.classification_reduction))}
        for name, per_teacher in self.terms.items():
            parts[name] = (self.weights[name], torch.stack([term(student, teacher, mask, labels)
                                                            for term, teacher in zip(per_teacher, teachers)]).mean())
        return parts

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the main optimiser trains with the student (projection heads, regressors)."""
        critic = {id(p) for p in self.critic_parameters()}
        return [p for p in self.parameters() if id(p) not in critic and p.requires_grad]

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters of adversarial critics (SKD holistic), trained only on ``critic_loss``."""
        return [p for per_teacher in self.terms.values() for term in per_teacher for p in term.critic_parameters()]

    def critic_loss(self, student: StreamOutput, teachers: StreamOutput | Sequence[StreamOutput],
                    mask: Tensor) -> Tensor | None:
        """Sum of the critics' losses (None when no term has a critic)."""
        teachers = self._check_teachers(teachers)
        losses = [loss for per_teacher in self.terms.values() for term, teacher in zip(per_teacher, teachers)
                  if (loss := term.critic_loss(student, teacher, mask)) is not None]
        return torch.stack(losses).sum() if losses else None

    def _check_teachers(self, teachers: StreamOutput | Sequence[StreamOutput]) -> Sequence[StreamOutput]:
        if isinstance(teachers, StreamOutput):
            teachers = [teachers]
        if len(teachers) != self.num_teachers:
            raise ValueError(f"objective built for {self.num_teachers} teacher(s), got {len(teachers)}")
        return teachers
