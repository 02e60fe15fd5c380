"""``augrgb distill teacher|student`` (stage 2 training) and ``augrgb evaluate streams``."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

import yaml

from augrgb.config import read_yaml, resolve_config_path, set_dotted, validate_config
from augrgb.errors import InputError
from augrgb.distill.presets import KD_PRESETS



def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> ``{dotted key: YAML value}``."""
    values = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set {item}", "expected KEY=VALUE, e.g. training.lr=1e-4")
        try:
            values[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError(f"--set {item}", "value is not valid YAML") from None
    return values


def build_config(model: type, args: argparse.Namespace) -> Any:
    """The run config: YAML file < named options (--epochs ...) < --set KEY=VALUE overrides."""
    path = resolve_config_path(args.config)
    data = read_yaml(path)
    named = {"features": args.features, "annotations": args.annotations, "out": args.out, "modality": args.modality,
             "seed": args.seed, "device": args.device, "training.epochs": args.epochs,
             "training.batch_size": args.batch_size, "training.lr": args.lr, "kd": getattr(args, "kd", None)}
    overrides = {k: v for k, v in named.items() if v is not None}
    overrides.update(parse_set(args.set))
    if isinstance(data.get("dataset"), str) and any(k.startswith("dataset.") for k in overrides):
        data["dataset"] = read_yaml(resolve_config_path(data["dataset"]))
    for key, value in overrides.items():
        set_dotted(data, key, value)
    return validate_config(model, data, f"{path} (with command-line overrides)" if overrides else path)


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


def _run_streams(args: argparse.Namespace) -> int:
    from augrgb.distill.evaluation import evaluate_streams
    from augrgb.distill.settings import DatasetConfig

    fmt, options, subset = "auto", {}, "testing"
    if args.dataset:
        from augrgb.config import load_config

        dataset = load_config(DatasetConfig, args.dataset)
        fmt, options, subset = dataset.annotation_format, dataset.annotation_options, dataset.test_subset
    result = evaluate_streams(args.rgb, args.teacher, args.features, args.annotations, fmt=args.format or fmt,
                              subset=args.subset or subset, annotation_options=options, device=args.device,
                              batch_size=args.batch_size, progress=False)
    if args.json:
        print(json.dumps(result))
        return 0
    skipped = f", {len(result['skipped'])} skipped" if result["skipped"] else ""
    print(f"{result['protocol']} on {result['subset']} ({result['videos']} videos{skipped})")
    print(f"{'stream':<14}{'modality':<16}{'mAP (%)':>8}")
    for row in result["rows"]:
        print(f"{row['stream']:<14}{row['modality']:<16}{100 * row['mAP']:>8.2f}")
    return 0


def _add_run_options(p: argparse.ArgumentParser, modality_help: str) -> None:
    p.add_argument("--config", required=True, help="experiment YAML, or a preset name in configs/ (e.g. experiments/synth_pose_teacher)")
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


def add_streams_command(commands: argparse._SubParsersAction) -> None:
    """Add ``streams`` to the ``evaluate`` command group."""
    streams = commands.add_parser(
        "streams", help="per-frame mAP of the RGB stream, the teacher(s) and the two-stream fusion side by side",
        description="Evaluate stream checkpoints on features: RGB alone, each teacher alone, and their fusion "
                    "(averaged logits, the paper's two-stream), per-frame mAP at the ground-truth frame rate.")
    streams.add_argument("--rgb", required=True, metavar="CKPT", help="RGB stream checkpoint (a student's best.pt)")
    streams.add_argument("--teacher", required=True, action="append", metavar="CKPT", help="teacher checkpoint (repeat for several)")
    streams.add_argument("--features", required=True, metavar="STORE", help="feature store holding every stream's modality")
    streams.add_argument("--annotations", required=True, metavar="FILE", help="ground-truth annotation file or folder")
    streams.add_argument("--dataset", help="dataset preset (e.g. charades) giving the annotation format, options and test subset")
    streams.add_argument("--format", help="annotation format (default: the dataset's, else detected)")
    streams.add_argument("--subset", help="annotation subset to evaluate (default: the dataset's test subset, else testing)")
    streams.add_argument("--device", default="cpu", help="torch device (default cpu)")
    streams.add_argument("--batch-size", type=int, default=16, help="videos per forward pass (default 16)")
    streams.add_argument("--json", action="store_true", help="print the result as one JSON object")
    streams.set_defaults(func=_run_streams)


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
