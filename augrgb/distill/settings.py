"""Typed stage-2 configs: a dataset's conventions (``augrgb/configs/<dataset>.yaml``) and a training run
(``augrgb/configs/experiments/*.yaml``), validated by pydantic with unknown keys refused.

A teacher run (:class:`TeacherConfig`) trains one stream on one modality; a student run
(:class:`StudentConfig`) adds the frozen teachers and the distillation objective. ``kd`` names a
preset objective (ours or a baseline) and, when set, replaces ``objective.terms``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from augrgb.core.config import load_config
from augrgb.distill.losses import ObjectiveConfig
from augrgb.distill.presets import kd_terms
from augrgb.models.filters import TEMPORAL_FILTERS


class DatasetConfig(BaseModel):
    """A dataset's conventions: classes, head, snippet grid of released features, annotation format."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(description="dataset name (for records)")
    num_classes: int = Field(ge=1, description="number of action classes K (without background)")
    head: Literal["sigmoid", "softmax"] = Field(description="sigmoid: dense, concurrent actions; softmax: sparse, + background")
    protocol: Literal["per-frame", "charades", "pku-mmd", "thumos14", "activitynet"] = Field(
        description="the official test protocol of the dataset (augrgb evaluate); its tIoUs are those of event-mAP "
                    "model selection (training.selection)")
    annotation_format: str = Field("auto", description="reader name for augrgb.annotations.read_annotations")
    annotation_options: dict[str, Any] = Field(default_factory=dict, description="reader options (label_base, time_unit, fps, ...)")
    train_subset: str = Field("training", description="annotation subset trained on (validation is carved from it)")
    test_subset: str = Field("testing", description="annotation subset reported on; never used for model selection")
    fps: float = Field(25.0, gt=0, description="frame rate of features that carry no attributes (released .npy)")
    snippet: int = Field(16, ge=1, description="frames per snippet of features without attributes")
    stride: int = Field(16, ge=1, description="frames between snippets of features without attributes")


class AnnotationSource(BaseModel):
    """One annotation file or folder; ``format``/``options`` default to the dataset's."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    path: str
    format: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class StreamConfig(BaseModel):
    """The stream's temporal filter and width (the classifier head comes from the dataset)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    filter: str = Field("ss-tcn", description="temporal filter: ss-tcn, pdan or tgm")
    hidden: int = Field(256, ge=1, description="feature width C2 of H")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout inside the filter")
    filter_options: dict[str, Any] = Field(default_factory=dict, description="filter options (layers, ...)")

    @field_validator("filter")
    @classmethod
    def _known_filter(cls, name: str) -> str:
        if name not in TEMPORAL_FILTERS:
            raise ValueError(f"unknown temporal filter '{name}' (known: {', '.join(TEMPORAL_FILTERS.names())})")
        return name


class TrainingConfig(BaseModel):
    """Optimisation, batching, validation split, learning-rate schedule and early stopping."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    epochs: int = Field(50, ge=1, description="epochs (of the last step, with a two-step schedule)")
    batch_size: int = Field(32, ge=1, description="videos per batch (per process under DDP)")
    max_length: int | None = Field(256, ge=1, description="training crop in snippets (random window); None = whole videos")
    lr: float = Field(5e-4, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay")
    ema: float | None = Field(None, gt=0, lt=1, description="decay of an exponential moving average of the weights, "
                              "updated after every step; validation, model selection and best.pt then use the "
                              "average (None = off)")
    selection: Literal["frame", "event"] = Field(
        "frame", description="validation metric behind model selection (and, by default, the LR schedule and early "
        "stopping, training.schedule): frame = "
        "per-frame mAP on the snippet grid; event = event mAP averaged over the dataset protocol's tIoUs (0.1-0.5 "
        "for frame protocols); docs/results.md measures both on the sparse benchmark")
    schedule: Literal["selection", "frame"] = Field(
        "selection", description="validation metric behind the LR schedule and early stopping: selection = the one "
        "that selects (training.selection); frame = per-frame mAP whatever selects, so that event selection picks the "
        "epoch while the smoother per-frame mAP paces the run")
    keep: Literal["best", "last"] = Field(
        "best", description="which epoch best.pt holds: best = the one model selection scores highest on validation; "
        "last = the final epoch, no selection (the built-in pose teacher preset: a teacher trained to the end teaches "
        "better than the epoch its own validation picks, docs/results.md)")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="learning-rate factor when validation mAP stops improving")
    lr_patience: int | None = Field(5, ge=0, description="epochs without validation improvement before the LR is "
                                    "cut; None = a constant learning rate")
    early_stopping: int | None = Field(15, ge=1, description="stop after this many epochs without improvement; None = off")
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="share of the training videos carved out for validation")
    eval_batch_size: int = Field(16, ge=1, description="videos per batch at evaluation (whole videos)")
    workers: int = Field(0, ge=0, description="DataLoader worker processes (features are in RAM; 0 is usually fastest)")


class RunConfig(BaseModel):
    """What every training run needs: data, modality, stream, optimisation, seed, device, output folder."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dataset: DatasetConfig = Field(description="dataset conventions, or the name of a preset in augrgb/configs/")
    features: str = Field(description="feature store folder (HDF5 per video) or folder of released .npy features")
    annotations: list[AnnotationSource] = Field(min_length=1, description="annotation files/folders (merged)")
    modality: str = Field("rgb", description="modality this run's stream reads")
    stream: StreamConfig = Field(default_factory=StreamConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    seed: int = Field(0, description="seed of weights, shuffling, crops, dropout and the validation split")
    deterministic: bool = Field(False, description="ask torch for deterministic kernels (slower on GPU)")
    amp: bool = Field(True, description="mixed precision on CUDA (bf16 where supported, else fp16); no-op on CPU")
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda or cuda:N; DDP uses cuda:LOCAL_RANK")
    out: str = Field(description="run folder: checkpoints, run.json, TensorBoard events")

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_preset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return load_config(DatasetConfig, value)
        return value

    @field_validator("annotations", mode="before")
    @classmethod
    def _annotation_paths(cls, value: Any) -> Any:
        items = [value] if isinstance(value, (str, dict)) else value
        return [{"path": v} if isinstance(v, str) else v for v in items] if isinstance(items, list) else value


class TeacherConfig(RunConfig):
    """A teacher run: one stream on a privileged modality (flow or pose), classification loss only."""

    modality: str = Field("pose", description="modality the teacher reads (flow, pose, ...)")


class TwoStepConfig(BaseModel):
    """CRD's schedule (supplement): distillation alone, then classification alone."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    distill_epochs: int = Field(20, ge=1, description="step 1: epochs with classification weight 0 and the KD terms")
    freeze_filter: bool = Field(False, description="step 2: train only the classifier on the distilled filter")


class StudentConfig(RunConfig):
    """An RGB student run: frozen teacher checkpoints and a distillation objective."""

    teachers: list[str] = Field(default_factory=list, description="teacher checkpoints (--teacher adds/overrides)")
    kd: str | None = Field(None, description="objective preset (augrgb.distill.presets.KD_PRESETS); when set it "
                                             "replaces objective.terms")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    two_step: TwoStepConfig | None = Field(None, description="two-step schedule (default on for kd: crd)")

    @model_validator(mode="after")
    def _apply_kd_preset(self) -> StudentConfig:
        if self.kd is not None:
            self.objective = self.objective.model_copy(update={"terms": kd_terms(self.kd)})
            if self.kd == "crd" and self.two_step is None:
                self.two_step = TwoStepConfig()
        if self.two_step is not None and not self.objective.terms:
            raise ValueError("two_step needs at least one distillation term in objective.terms")
        return self
