"""``augrgb distill teacher|student`` (stage 2 training)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from augrgb.core.config import load_config, parse_set
from augrgb.distill.presets import KD_PRESETS


def build_config(model: type, args: argparse.Namespace) -> Any:
    """The run config: YAML file < named options (--epochs ...) < --set KEY=VALUE overrides."""
    named = {"features": args.features, "annotations": args.annotations, "out": args.out, "modality": args.modality,
             "seed": args.seed, "device": args.device, "training.epochs": args.epochs,
             "training.batch_size": args.batch_size, "training.lr": args.lr, "kd": getattr(args, "kd", None)}
    return load_config(model, args.config, named, sets=parse_set(args.set), note="with command-line overrides")


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", force=True)


def _report(result: Any) -> int:
    if os.environ.get("RANK", "0") != "0":      # under torchrun only rank 0 reports
        return 0
    val = result.best_validation
    print(f"best epoch {result.best_epoch}: validation mAP {val.get('mAP', float('nan')):.4f}, "
          f"loss {val.get('loss', float('nan')):.4f} -> {result.checkpoint} (record: {result.record})")
    return 0


def _run_teacher(args: argparse.Namespace) -> int:
    from augrgb.distill.settings import TeacherConfig
    from augrgb.distill.train import train_teacher

    _setup_logging(args.quiet)
    cfg = build_config(TeacherConfig, args)
    return _report(train_teacher(cfg, resume=args.resume, progress=not args.quiet))


def _run_student(args: argparse.Namespace) -> int:
    from augrgb.distill.settings import StudentConfig
    from augrgb.distill.train import train_student

    _setup_logging(args.quiet)
    cfg = build_config(StudentConfig, args)
    return _report(train_student(cfg, args.teacher, resume=args.resume, progress=not args.quiet))


def _add_run_options(p: argparse.ArgumentParser, modality_help: str) -> None:
    p.add_argument("--config", required=True, help="experiment YAML, or a preset name in augrgb/configs/ (e.g. experiments/synth_pose_teacher)")
    p.add_argument("--features", help="feature store folder (or folder of released .npy features); overrides the config")
    p.add_argument("--annotations", action="append", metavar="FILE", help="annotation file or folder (repeat to merge several); overrides the config")
    p.add_argument("--out", help="run folder for checkpoints and the run record; overrides the config")
    p.add_argument("--modality", help=modality_help)
    p.add_argument("--epochs", type=int, help="training epochs (training.epochs)")
    p.add_argument("--batch-size", type=int, help="videos per batch and process (training.batch_size)")
    p.add_argument("--lr", type=float, help="Adam learning rate (training.lr)")
    p.add_argument("--seed", type=int, help="seed of weights, shuffling, crops, dropout and the validation split")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (under torchrun each process takes cuda:LOCAL_RANK)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config field by its dotted name, value in YAML (e.g. objective.terms.atomic.weight=100)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt (same config; epochs may grow)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``distill`` (teacher, student)."""
    distill = sub.add_parser("distill", help="stage 2: train a teacher stream, then the Augmented-RGB student",
                             description="Stage 2: train a stream on a privileged modality (teacher), then distil it "
                                         "into an RGB stream (student). Under torchrun, runs on every process (DDP).")
    distill.set_defaults(group_parser=distill)
    commands = distill.add_subparsers(dest="distill_command", metavar="ROLE")
    teacher = commands.add_parser("teacher", help="train a teacher stream on flow or pose features",
                                  description="Train one stream on one modality with the classification loss; "
                                              "writes best.pt, last.pt and run.json into the run folder.")
    _add_run_options(teacher, "modality the teacher reads (flow, pose, ...); overrides the config")
    teacher.set_defaults(func=_run_teacher)

    student = commands.add_parser("student", help="train the RGB student against frozen teacher(s)",
                                  description="Train the RGB stream with L_cls + distillation terms against the "
                                              "frozen teacher checkpoints (--kd none: vanilla RGB, no teacher needed).")
    _add_run_options(student, "modality the student reads (default rgb); overrides the config")
    student.add_argument("--teacher", action="append", metavar="CKPT", help="teacher checkpoint (repeat for several teachers); overrides the config's teachers")
    student.add_argument("--kd", choices=KD_PRESETS, help="objective preset: ours (atomic+global+boundary), none (vanilla), or a baseline")
    student.set_defaults(func=_run_student)
