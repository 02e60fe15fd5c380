"""The experiment grid as data: which teachers, students and seeds a results table needs.

A grid (YAML in ``augrgb/configs/results/``) names the feature store, the teacher and student presets and a
list of student variants (KD objective, temporal filter, one swept hyper-parameter). :func:`plan`
expands it into training tasks in dependency order: per filter and seed the teachers and the
vanilla RGB stream first, then every variant against every teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from augrgb.core.config import load_config
from augrgb.distill.settings import StudentConfig, TeacherConfig

BASELINES = ("vanilla", "teacher", "two-stream")
"""Rows every (filter, teacher, seed) gets from its vanilla RGB stream and its teacher."""


class Variant(BaseModel):
    """One student row of a table: a group, a name and how it differs from the base student."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    group: str = Field(description="table the row belongs to: main, ablation, kd, filters, sensitivity")
    name: str = Field(description="row name, unique within the group")
    kd: str | None = Field(None, description="objective preset (ours, logit, hint, ...); replaces the base objective")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted overrides of the student config")
    filter: str | None = Field(None, description="temporal filter of this student and of its teacher (default: the grid's)")
    teachers: list[str] | None = Field(None, description="teachers this row distils from (default: every teacher)")
    param: str | None = Field(None, description="swept hyper-parameter this row varies (sensitivity curves)")
    value: float | None = Field(None, description="its value in this row")


class Grid(BaseModel):
    """A results grid: data, presets, seeds, shared overrides and the student variants."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    features: str = Field(description="feature store with rgb and every teacher modality")
    annotations: str = Field(description="annotation file (training/testing subsets)")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    teachers: dict[str, str] = Field(min_length=1, description="teacher name -> teacher preset (it sets the modality)")
    vanilla: str = Field(description="preset of the vanilla RGB student")
    student: str = Field(description="preset of the Augmented-RGB student (the base of every variant)")
    filter: str = Field("ss-tcn", description="temporal filter unless a variant says otherwise (presets written for "
                        "another filter run it with its default options)")
    metric: Literal["frame", "event"] = Field("frame", description="frame: per-frame mAP (dense benchmarks); event: "
                                              "event mAP averaged over `tiou` (sparse, softmax heads)")
    tiou: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5], min_length=1,
                              description="tIoU thresholds of the event metric")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted overrides for every run (teachers too)")
    teacher_set: dict[str, Any] = Field(default_factory=dict, description="dotted overrides for the teachers alone, "
                                        "after `set` (e.g. to pin an earlier teacher preset)")
    variants: list[Variant] = Field(min_length=1)
    reference: dict[str, float] = Field(default_factory=dict, description="value of each swept parameter in the "
                                        "main Augmented-RGB row (that row is the sweep's point at this value)")

    @property
    def metric_name(self) -> str:
        """What each record's ``score`` is, e.g. ``frame_mAP`` or ``event_mAP@0.1:0.5``."""
        return "frame_mAP" if self.metric == "frame" else f"event_mAP@{min(self.tiou):g}:{max(self.tiou):g}"

    @property
    def metric_label(self) -> str:
        """The metric as table headers name it."""
        if self.metric == "frame":
            return "per-frame mAP"
        return f"event mAP (mean over tIoU {', '.join(f'{t:g}' for t in self.tiou)})"

    @model_validator(mode="after")
    def _unique_rows(self) -> Grid:
        seen: set[tuple[str, str]] = set()
        for v in self.variants:
            if (v.group, v.name) in seen:
                raise ValueError(f"variant {v.group}/{v.name} appears twice")
            unknown = sorted(set(v.teachers or ()) - set(self.teachers))
            if unknown:
                raise ValueError(f"variant {v.group}/{v.name}: unknown teacher {unknown[0]} (grid teachers: "
                                 f"{', '.join(self.teachers)})")
            seen.add((v.group, v.name))
        return self

    def teachers_for(self, filter: str) -> list[str]:
        """Teachers trained with ``filter``: all for the grid's filter, else those its variants distil from."""
        if filter == self.filter:
            return list(self.teachers)
        used = [v.teachers or list(self.teachers) for v in self.variants if v.filter == filter]
        return [t for t in self.teachers if any(t in names for names in used)]

    def filters(self) -> list[str]:
        """Every temporal filter the grid trains (the default first)."""
        return list(dict.fromkeys([self.filter, *(v.filter for v in self.variants if v.filter)]))


@dataclass(frozen=True)
class Task:
    """One training run: a teacher, the vanilla RGB stream or a student variant, for one seed and filter."""

    kind: str  # "teacher", "vanilla" or "student"
    filter: str
    seed: int
    out: Path
    config: Any = field(compare=False)
    teacher: str | None = None
    variant: Variant | None = field(default=None, compare=False)
    depends: tuple[Path, ...] = ()

    @property
    def key(self) -> str:
        """Stable identity of the task (its run folder)."""
        return str(self.out)



def _filter_overrides(preset_filter: str, name: str) -> dict[str, Any]:
    """A preset that already uses filter ``name`` keeps its filter options; another filter runs with its own defaults."""
    return {} if name == preset_filter else {"stream.filter": name, "stream.filter_options": {}}


def plan(grid: Grid, out: str | Path) -> list[Task]:
    """Every task of ``grid`` with its config, in an order where dependencies come first."""
    root = Path(out)
    base = {"features": grid.features, "annotations": [grid.annotations], **grid.set}
    tasks: list[Task] = []
    students: list[Task] = []
    presets = [(TeacherConfig, p) for p in grid.teachers.values()] + [(StudentConfig, grid.vanilla), (StudentConfig, grid.student)]
    preset_filter = {preset: load_config(cls, preset, sets=base).stream.filter for cls, preset in presets}
    for name in grid.filters():
        for seed in grid.seeds:
            folder = root / "runs" / name / f"seed{seed}"
            common = {**base, "seed": seed}
            teachers = {}
            for teacher, preset in grid.teachers.items():
                if teacher not in grid.teachers_for(name):
                    continue
                path = folder / f"teacher_{teacher}"
                cfg = load_config(TeacherConfig, preset, sets={**common, **_filter_overrides(preset_filter[preset], name),
                                                               **grid.teacher_set, "out": str(path)},
                                  note=f"{name}, seed {seed}")
                tasks.append(Task("teacher", name, seed, path, cfg, teacher=teacher))
                teachers[teacher] = path
            path = folder / "vanilla"
            cfg = load_config(StudentConfig, grid.vanilla, sets={**common, **_filter_overrides(preset_filter[grid.vanilla], name),
                                                                  "out": str(path)}, note=f"{name}, seed {seed}")
            tasks.append(Task("vanilla", name, seed, path, cfg))
            for variant in grid.variants:
                if (variant.filter or grid.filter) != name:
                    continue
                for teacher, teacher_path in teachers.items():
                    if variant.teachers is not None and teacher not in variant.teachers:
                        continue
                    path = folder / teacher / f"{variant.group}-{variant.name}".replace("/", "_")  # one folder
                    over = {**common, **_filter_overrides(preset_filter[grid.student], name), **variant.set, "out": str(path),
                            "teachers": [str(teacher_path / "best.pt")]}
                    if variant.kd is not None:
                        over["kd"] = variant.kd
                    cfg = load_config(StudentConfig, grid.student, sets=over, note=f"variant {variant.group}/{variant.name}")
                    students.append(Task("student", name, seed, path, cfg, teacher=teacher, variant=variant,
                                         depends=(teacher_path,)))
    return tasks + students


def load_grid(source: str | Path, overrides: dict[str, Any] | None = None) -> Grid:
    """A grid from YAML (path or preset name under ``augrgb/configs/``), with dotted overrides."""
    return load_config(Grid, source, sets=overrides)
