"""``augrgb evaluate ...``: official metrics on prediction files, printed as text or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import get_args

from augrgb.core.config import load_config
from augrgb.core.errors import InputError
from augrgb.evaluate.benchmarks import (
    evaluate_activitynet,
    evaluate_charades,
    evaluate_frame_map,
    evaluate_pku_mmd,
    evaluate_thumos14,
)
from augrgb.metrics import EVENT_TIOU
from augrgb.metrics.frame import FrameAverage, FrameRule


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command group."""
    group = subparsers.add_parser(
        "evaluate",
        help="score predictions with an official protocol (Charades, ActivityNet, PKU-MMD/TSU, THUMOS14)",
        description="Score prediction files with the official evaluation protocols; see docs/metrics.md.",
    )
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="evaluate_command", metavar="PROTOCOL")

    charades = commands.add_parser(
        "charades",
        help="Charades localisation mAP/wAP (Charades_v1_localize.m: 25 points per video)",
        description="Official Charades localisation protocol: 25 equally spaced points per video, mean AP over all classes.",
    )
    charades.add_argument("--gt", required=True, help="ground-truth CSV, e.g. Charades_v1_test.csv")
    charades.add_argument("--pred", required=True, help="submission: lines 'id framenr score_1 ... score_K', framenr 1..25")
    charades.add_argument("--classes", help="class list (Charades_v1_classes.txt); default: the 157 Charades classes")
    charades.add_argument("--json", action="store_true", help="print the result as one JSON object")
    charades.set_defaults(func=_run_charades)

    event = commands.add_parser(
        "event-map",
        help="event (instance) mAP at tIoU thresholds: activitynet, pku-mmd (also TSU) or thumos14",
        description=(
            "Event mAP with an official protocol. activitynet: --gt JSON --pred results JSON. "
            "pku-mmd: --gt/--pred folders of per-video 'label,start,end,confidence' files with equal names "
            "(PKU-MMD: --num-classes 52 --first-label 1; TSU: --num-classes 51). "
            "thumos14: --gt folder of <Class>_<subset>.txt files, --pred 'video start end class_id score' file."
        ),
    )
    event.add_argument("--protocol", required=True, choices=sorted(EVENT_TIOU), help="which official protocol to reproduce")
    event.add_argument("--gt", required=True, help="ground truth: JSON file (activitynet) or folder (pku-mmd, thumos14)")
    event.add_argument("--pred", required=True, help="predictions: results JSON (activitynet), folder (pku-mmd) or file (thumos14)")
    event.add_argument(
        "--tiou",
        type=float,
        nargs="+",
        help="tIoU thresholds (default: activitynet 0.5:0.05:0.95, pku-mmd 0.1 0.5, thumos14 0.1:0.1:0.5)",
    )
    event.add_argument(
        "--subset",
        help="activitynet: ground-truth subset to evaluate (e.g. validation; default all); "
        "thumos14: file suffix of the ground truth (default test)",
    )
    event.add_argument("--classes", help="class list file (activitynet: names; thumos14: numbered, default detclasslist.txt)")
    event.add_argument("--num-classes", type=int, help="pku-mmd: number of label ids 0..K-1 in the label set (PKU-MMD 52, TSU 51)")
    event.add_argument(
        "--first-label", type=int, default=0, help="pku-mmd: mAP_action averages labels first-label..K-1 (PKU-MMD 1, TSU 0; default 0)"
    )
    event.add_argument("--json", action="store_true", help="print the result as one JSON object")
    event.set_defaults(func=_run_event_map)

    frame = commands.add_parser(
        "frame-map",
        help="per-frame mAP of per-frame probabilities (augrgb detect's probabilities/ folder)",
        description=(
            "Per-frame mAP (Charades, MultiTHUMOS, TSU): AP per class over all frames of the predicted videos, "
            "non-interpolated; frame t at t/fps is positive when start <= t/fps <= end. TGM/super-events' numbers: "
            "--average all --frame-rule open (MultiTHUMOS's own JSON: --label-base 1). See docs/metrics.md."
        ),
    )
    frame.add_argument("--gt", required=True, help="ground truth in any format the annotation readers detect (JSON, CSV, folder)")
    frame.add_argument("--pred", required=True, help="probabilities: a folder of <video>.h5 files (DIR/probabilities) or one file")
    frame.add_argument("--classes", help="class list file for the ground truth (default: what the reader finds, e.g. classes.txt)")
    frame.add_argument("--subset", help="evaluate only this ground-truth subset (e.g. testing; default all)")
    frame.add_argument(
        "--label-base",
        type=int,
        choices=[0, 1],
        help="id of the first class where the ground truth numbers classes (dense JSON, label txt): "
        "1 for multithumos.json as shipped with TGM/super-events (classes 1..65); default: the reader's "
        "(0 for dense JSON, 1 for label txt)",
    )
    frame.add_argument(
        "--average",
        choices=get_args(FrameAverage),
        default="present",
        help="present (default): mean over classes with a positive frame; nonzero: PDAN/MS-TCT's mean over classes "
        "with AP > 0 (equal to present); all: TGM/super-events' mean over all classes, a class without a positive "
        "frame counting 0",
    )
    frame.add_argument(
        "--frame-rule",
        choices=get_args(FrameRule),
        default="closed",
        help="closed (default, augrgb's rule, also used in training): frames t = 0.. at the probabilities' fps over "
        "the annotated duration, positive when start <= t/fps <= end; open: TGM/super-events' rule, every predicted "
        "frame at fps = predicted frames / annotated duration, positive when start < t/fps < end",
    )
    frame.add_argument("--json", action="store_true", help="print the result as one JSON object")
    frame.set_defaults(func=_run_frame_map)

    _add_streams_command(commands)


def _add_streams_command(commands: argparse._SubParsersAction) -> None:
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


def _run_streams(args: argparse.Namespace) -> int:
    from augrgb.distill.settings import DatasetConfig
    from augrgb.evaluate.checkpoints import evaluate_streams

    fmt, options, subset = "auto", {}, "testing"
    if args.dataset:
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


def _run_charades(args: argparse.Namespace) -> int:
    return _report(lambda: evaluate_charades(args.gt, args.pred, args.classes), args.json)


def _run_frame_map(args: argparse.Namespace) -> int:
    return _report(
        lambda: evaluate_frame_map(args.gt, args.pred, args.classes, args.subset, args.average, args.label_base, args.frame_rule),
        args.json,
    )


def _run_event_map(args: argparse.Namespace) -> int:
    tiou = args.tiou if args.tiou else EVENT_TIOU[args.protocol]
    if args.protocol == "activitynet":
        return _report(lambda: evaluate_activitynet(args.gt, args.pred, tiou, args.subset, args.classes), args.json)
    if args.protocol == "thumos14":
        return _report(lambda: evaluate_thumos14(args.gt, args.pred, args.subset or "test", tiou, args.classes), args.json)
    if args.num_classes is None:
        print("error: --num-classes: required by the pku-mmd protocol (PKU-MMD 52, TSU 51)", file=sys.stderr)
        return 2
    return _report(lambda: evaluate_pku_mmd(args.gt, args.pred, args.num_classes, args.first_label, tiou), args.json)


def _report(compute, as_json: bool) -> int:
    try:
        result = compute()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    summary = result.to_dict()
    if as_json:
        print(json.dumps(summary))
        return 0
    print(f"protocol: {summary.pop('protocol')}")
    for key, value in summary.items():
        if isinstance(value, list):
            value = " ".join("nan" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, float):
            value = f"{value:.4f}"
        print(f"{key}: {'nan' if value is None else value}")
    return 0
