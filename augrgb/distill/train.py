"""Stage 2 entry points: ``train_teacher`` (one stream on a privileged modality) and ``train_student``
(the RGB stream distilled from frozen teachers). Both write into the run folder ``cfg.out``:
``best.pt`` (stream checkpoint selected on validation), ``last.pt`` (training state, every epoch),
``run.json`` (run record), ``config.yaml`` and, with tensorboard installed, ``tensorboard/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from augrgb.annotations import Annotations, carve_validation
from augrgb.core.errors import InputError
from augrgb.core.files import sweep_temporaries, write_text_atomic
from augrgb.core.locks import FolderLock
from augrgb.core.grid import SnippetGrid
from augrgb.distill import distributed
from augrgb.distill.data import FeatureSource, VideoItem, feature_settings, load_annotations, load_videos
from augrgb.distill.losses import ObjectiveConfig
from augrgb.distill.settings import RunConfig, StudentConfig, TeacherConfig
from augrgb.distill.trainer import Phase, RunResult, Teacher, Trainer, seed_everything
from augrgb.distill.validation import EventTarget, dense_thresholds
from augrgb.metrics import EVENT_TIOU, THUMOS14_TIOU
from augrgb.models.checkpoint import load_stream, stream_payload
from augrgb.models.stream import Stream

log = logging.getLogger(__name__)

# Config keys that may change between a run and its resumption (everything else must match).
RESUMABLE_KEYS = ("out", "device", "features", "annotations", "teachers", "training.epochs",
                  "training.early_stopping", "training.workers", "training.eval_batch_size")


def train_teacher(cfg: TeacherConfig, *, resume: bool = False, progress: bool = False) -> RunResult:
    """Train a stream on ``cfg.modality`` alone (classification loss), selected on validation mAP."""
    phases = [Phase("train", ObjectiveConfig(terms={}), cfg.training.epochs)]
    return _run(cfg, "teacher", [], phases, resume, progress)


def train_student(cfg: StudentConfig, teachers: Sequence[str | Path] | None = None, *, resume: bool = False,
                  progress: bool = False) -> RunResult:
    """Train the RGB student with ``cfg.objective`` against frozen ``teachers`` (checkpoint paths;
    default ``cfg.teachers``). With ``cfg.two_step`` (CRD): distillation alone, then classification."""
    paths = list(teachers) if teachers is not None else list(cfg.teachers)
    terms = cfg.objective.terms
    if terms and not paths:
        raise InputError("--teacher", f"the objective distils ({', '.join(terms)}) but no teacher checkpoint was given")
    if cfg.two_step is None:
        phases = [Phase("train", cfg.objective, cfg.training.epochs)]
    else:
        phases = [Phase("distill", cfg.objective.model_copy(update={"classification_weight": 0.0}),
                        cfg.two_step.distill_epochs, selects=False),
                  Phase("classify", cfg.objective.model_copy(update={"terms": {}}), cfg.training.epochs,
                        freeze_filter=cfg.two_step.freeze_filter)]
    loaded = []
    if terms:   # a vanilla student (no term) needs neither the teachers nor their features
        for path in paths:
            stream, meta = load_stream(path)
            loaded.append(Teacher(stream, meta.modality, meta))
    return _run(cfg, "student", loaded, phases, resume, progress)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("filter_options", "annotation_options", "terms"):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# Options added after run folders existed, at the value that reproduces the older behaviour: left out of the
# fingerprint at that value, so a run interrupted under the older version still resumes.
LATER_OPTIONS = {"training.selection": "frame", "training.schedule": "selection", "training.keep": "best"}


def _fingerprint(cfg: RunConfig, teachers: Sequence[Teacher]) -> dict[str, Any]:
    """What must not change when a run is resumed: the config minus RESUMABLE_KEYS (and LATER_OPTIONS at their
    older behaviour), the teachers' hashes."""
    flat = _flatten(cfg.model_dump(mode="json"))
    keep = {k: v for k, v in flat.items() if not any(k == r or k.startswith(f"{r}.") for r in RESUMABLE_KEYS)
            and not (k in LATER_OPTIONS and v == LATER_OPTIONS[k])}
    keep["teacher_sha256"] = [t.meta.sha256 for t in teachers]
    return keep


def _check_teacher(teacher: Teacher, classes: list[str], head: str, items: Sequence[VideoItem]) -> None:
    meta, where = teacher.meta, teacher.meta.path
    if meta.classes != classes:
        raise InputError(where, f"teacher was trained on {len(meta.classes)} other classes than the "
                                f"dataset's {len(classes)}")
    if meta.head != head:
        raise InputError(where, f"teacher has a {meta.head} head, the dataset needs {head}")
    dim = items[0].features[teacher.modality].shape[1]
    if teacher.stream.hparams()["in_dim"] != dim:
        raise InputError(where, f"teacher reads {teacher.stream.hparams()['in_dim']}-d {teacher.modality} "
                                f"features, the store has {dim}-d")
    data_grid = feature_settings(items, teacher.modality)
    for key in ("fps", "snippet", "stride"):
        if key in meta.features and key in data_grid and meta.features[key] != data_grid[key]:
            raise InputError(where, f"teacher's {teacher.modality} features have {key} {meta.features[key]}, "
                                    f"the store's have {data_grid[key]}")


def _event_target(cfg: RunConfig, val_ann: Annotations, val_items: Sequence[VideoItem],
                  grid: SnippetGrid) -> EventTarget | None:
    """The event-mAP target of the validation videos: given whenever the head is softmax or model selection is on
    event mAP (``training.selection``), so sparse run records carry both mAPs. Its tIoUs are the dataset
    protocol's (0.1-0.5 for frame protocols)."""
    dataset = cfg.dataset
    if cfg.training.selection == "frame" and dataset.head == "sigmoid":
        return None
    tiou = EVENT_TIOU.get(dataset.protocol, THUMOS14_TIOU)
    return EventTarget.of(val_ann, val_items, grid, tiou)


def _run(cfg: RunConfig, kind: str, teachers: list[Teacher], phases: list[Phase], resume: bool,
         progress: bool) -> RunResult:
    ctx = distributed.setup(cfg.device)
    lock = FolderLock(cfg.out, "run folder")
    try:
        seed_everything(cfg.seed, cfg.deterministic)
        out = Path(cfg.out)
        if ctx.is_main:  # one run per folder: a second one would interleave its checkpoints with ours
            lock.acquire()
            sweep_temporaries(out)  # what a killed run left; nobody else writes here while we hold the lock
        if resume and not (out / "last.pt").is_file():
            raise InputError(out, "nothing to resume (no last.pt)")
        if not resume and (out / "last.pt").is_file():
            raise InputError(out, "run folder already holds a run (last.pt): pass --resume or choose another --out")
        dataset = cfg.dataset
        annotations = load_annotations(cfg.annotations, dataset)
        train_ann, val_ann = carve_validation(annotations, cfg.training.validation_fraction, cfg.seed,
                                              dataset.train_subset)
        source = FeatureSource(cfg.features, SnippetGrid(dataset.fps, dataset.snippet, dataset.stride))
        modalities = list(dict.fromkeys([cfg.modality, *(t.modality for t in teachers)]))
        show = progress and ctx.is_main
        train_items, train_report = load_videos(source, train_ann, modalities, dataset.head, progress=show)
        val_items, val_report = load_videos(source, val_ann, modalities, dataset.head, progress=show)
        for teacher in teachers:
            _check_teacher(teacher, annotations.classes, dataset.head, train_items)

        torch.manual_seed(cfg.seed)
        in_dim = train_items[0].features[cfg.modality].shape[1]
        stream = Stream(in_dim, dataset.num_classes, dataset.head, cfg.stream.filter, cfg.stream.hidden,
                        cfg.stream.dropout, cfg.stream.filter_options)
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, ctx.rank]).generate_state(1)[0]))  # dropout per rank
        features = feature_settings(train_items, cfg.modality)
        selection = cfg.training.selection
        events = _event_target(cfg, val_ann, val_items, SnippetGrid.of(features, source=cfg.features))
        teacher_info = [{"path": t.meta.path, "sha256": t.meta.sha256, "modality": t.modality} for t in teachers]
        threads = torch.get_num_threads()  # the record and the checkpoints must name the same count
        info = {"role": kind, "dataset": dataset.name, "seed": cfg.seed, "torch_threads": threads,
                "teachers": teacher_info,
                "objective": getattr(cfg, "objective", ObjectiveConfig(terms={})).model_dump(mode="json")}

        def best_checkpoint(model: Stream, validation: dict[str, Any], scores: np.ndarray,
                            targets: np.ndarray) -> dict[str, Any]:
            thresholds = dense_thresholds(scores, targets) if dataset.head == "sigmoid" else None
            return stream_payload(model, classes=annotations.classes, modality=cfg.modality,
                                  features=features, thresholds=thresholds,
                                  info={**info, "epoch": validation["epoch"],
                                        "validation": {k: v for k, v in validation.items() if k != "epoch"}})

        header = {"kind": kind, "config": cfg.model_dump(mode="json"), "objective": info["objective"],
                  "teachers": teacher_info,
                  "selection": {"metric": selection, "tiou": None if events is None else list(events.tiou),
                                "schedule": cfg.training.schedule},
                  "world_size": ctx.world_size, "device": str(ctx.device), "torch_threads": threads,
                  "data": {"train_videos": len(train_items), "validation_videos": len(val_items),
                           "skipped": train_report.skipped + val_report.skipped, "features": features}}
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        trainer = Trainer(stream=stream, modality=cfg.modality, teachers=teachers, phases=phases,
                          head=dataset.head, num_classes=dataset.num_classes, train_items=train_items,
                          val_items=val_items, training=cfg.training, seed=cfg.seed, amp=cfg.amp, ctx=ctx, out=out,
                          best_checkpoint=best_checkpoint, record_header=header, fingerprint=_fingerprint(cfg, teachers),
                          events=events, selection=selection, schedule=cfg.training.schedule, progress=progress)
        return trainer.run(resume)
    finally:
        lock.release()
        distributed.teardown(ctx)
