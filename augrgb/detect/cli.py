"""``augrgb detect VIDEO...`` (stage 3: RGB-only detection) and ``augrgb detect export`` (deployable student)."""

from __future__ import annotations

import argparse
import sys

from augrgb.core.errors import InputError
from augrgb.core.paths import printable
from augrgb.detect.intervals import DECODERS
from augrgb.extract.precision import add_runtime_options

_DETECT_ONLY = ("features", "annotations", "plot", "config", "decoder", "threshold", "close_gap", "min_length", "levels",
                "nms_iou", "txt_label_base", "precision", "runtime", "calibrate", "batch_size", "backend", "device", "weights", "cache_dir",
                "overwrite", "quiet")


def _config(args: argparse.Namespace):
    from augrgb.core.config import load_config
    from augrgb.detect.settings import DetectConfig

    overrides = {k: getattr(args, k) for k in DetectConfig.model_fields if hasattr(args, k)}
    return load_config(DetectConfig, args.config, overrides)


def _run_detect(args: argparse.Namespace) -> int:
    from augrgb.detect.pipeline import detect

    if args.format is not None or args.end_to_end:
        flag = "--format" if args.format is not None else "--end-to-end"
        raise InputError(flag, "belongs to `augrgb detect export --model M --format F --out FILE`")
    results = detect(args.inputs, args.model, args.out, _config(args), features=args.features, annotations=args.annotations,
                     plot=args.plot, weights=args.weights, cache=args.cache_dir, overwrite=args.overwrite,
                     progress=not args.quiet)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "redecoded", "failed")}
    found = sum(r.detections for r in results if r.status != "failed")
    print(printable(f"{counts['done']} detected, {counts['skipped']} already done, {counts['redecoded']} re-decoded, "
                    f"{counts['failed']} failed; {found} intervals -> {args.out}"))
    return 1 if counts["failed"] and counts["failed"] == len(results) else 0


def _run_export(args: argparse.Namespace) -> int:
    from augrgb.detect.export import export
    from augrgb.detect.model import load_detector

    allowed = ("weights", "cache_dir") if args.end_to_end else ()
    stray = [k for k in _DETECT_ONLY if k not in allowed and getattr(args, k) not in (None, False)]
    if stray:
        raise InputError(f"--{stray[0].replace('_', '-')}", "does not apply to `augrgb detect export`"
                         + (" (--weights and --cache-dir only with --end-to-end)" if stray[0] in ("weights", "cache_dir") else ""))
    if args.format is None:
        raise InputError("--format", "required by `augrgb detect export` (torchscript, onnx, or openvino with --end-to-end)")
    if args.end_to_end:
        from augrgb.detect.onnx_export import export_end_to_end, export_torchscript_end_to_end

        if args.format == "torchscript":
            path = export_torchscript_end_to_end(load_detector(args.model), args.out, weights=args.weights,
                                                 cache=args.cache_dir)
            print(f"torchscript end to end (one file: forward, encode, temporal; augrgb.json inside) -> {path}")
            return 0
        path = export_end_to_end(load_detector(args.model), args.out, weights=args.weights, cache=args.cache_dir,
                                 fmt=args.format)
        files = "encoder.onnx, temporal.onnx" if args.format == "onnx" else "encoder.xml/.bin, temporal.xml/.bin"
        print(f"{args.format} end to end ({files}, augrgb.json) -> {path}")
        return 0
    if args.format == "openvino":
        raise InputError("--format openvino", "exports the whole detector only: add --end-to-end")
    path = export(load_detector(args.model), args.format, args.out)
    print(f"{args.format} -> {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Detection, or export when the only input is the word ``export``; InputErrors become one line."""
    try:
        if args.inputs[:1] == ["export"]:
            if len(args.inputs) > 1:
                raise InputError("export", "takes no video inputs: augrgb detect export --model M --format F --out FILE")
            return _run_export(args)
        return _run_detect(args)
    except InputError as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)
        return 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``detect`` (with its ``export`` form) to the top-level parser."""
    p = sub.add_parser(
        "detect", help="stage 3: raw videos -> action intervals, reading RGB only (also: detect export)",
        usage="augrgb detect VIDEO... --model STUDENT.pt --out DIR [options]\n"
              "       augrgb detect export --model STUDENT.pt --format {torchscript,onnx} --out FILE\n"
              "       augrgb detect export --model STUDENT.pt --format {onnx,openvino} --end-to-end --out DIR [--weights W]\n"
              "       augrgb detect export --model STUDENT.pt --format torchscript --end-to-end --out FILE [--weights W]",
        description="Decode each video with the feature settings stored in the student checkpoint, encode it with the "
                    "I3D RGB network, run the student and turn its probabilities into action intervals. Writes "
                    "DIR/detections.json (ActivityNet), DIR/detections.csv, DIR/txt/<video>.txt (PKU-MMD/TSU), "
                    "DIR/probabilities/<video>.h5 and, with --plot, DIR/plots/<video>.png; finished videos are skipped. "
                    "`augrgb detect export` writes the student (features -> probabilities) as TorchScript or ONNX. "
                    "See docs/detect.md.")
    p.add_argument("inputs", nargs="*", metavar="VIDEO",
                   help="video files, folders of videos or text files listing one per line (none with --features: "
                        "every video of the store); the single word 'export' exports the model instead")
    p.add_argument("--model", required=True, metavar="STUDENT.pt", help="student checkpoint (augrgb.stream/1, RGB modality)")
    p.add_argument("--out", required=True, help="detect: output folder (created if missing); export: the file to write")
    p.add_argument("--features", metavar="STORE", help="feature store: use its RGB features instead of decoding a video when "
                                                       "they exist (refused if made with other settings than the model's)")
    p.add_argument("--annotations", metavar="ANNOT", help="ground truth (any format `augrgb evaluate` reads) drawn above the "
                                                         "detections in the --plot timelines")
    p.add_argument("--plot", action="store_true", default=None, help="also write a timeline PNG per video")
    p.add_argument("--config", help="YAML file with any of the options below (command-line options override it)")
    p.add_argument("--decoder", choices=["auto", *DECODERS.names()],
                   help="interval decoder (default auto: sparse for softmax heads, dense for sigmoid heads)")
    p.add_argument("--threshold", type=float, help="dense: one probability threshold for every class (default: the "
                                                   "checkpoint's per-class thresholds, else 0.5)")
    p.add_argument("--close-gap", type=float, metavar="SECONDS", help="dense, multi-threshold: join runs of a class at most "
                                                                      "this far apart (default 0)")
    p.add_argument("--min-length", type=float, metavar="SECONDS", help="drop intervals shorter than this (default 0)")
    p.add_argument("--levels", type=float, nargs="+", help="multi-threshold: the thresholds (default 0.1 0.2 ... 0.9)")
    p.add_argument("--nms-iou", type=float, help="multi-threshold: class-wise NMS tIoU (default 0.5)")
    p.add_argument("--txt-label-base", type=int, help="label of the first class in the txt files (PKU-MMD 1, TSU 0; default 0)")
    add_runtime_options(p, runtime="auto", precision="auto", recorded="DIR/videos/<video>.json")
    p.add_argument("--batch-size", type=int, help="snippets per I3D forward pass (default 8)")
    p.add_argument("--backend", choices=["decord", "pyav", "opencv"], help="video decoder (default: decord where installed, else pyav)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--weights", help="I3D RGB weights file (default: the cached ones); must be those the model was trained on")
    p.add_argument("--cache-dir", help="weights cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
    p.add_argument("--overwrite", action="store_true", default=None, help="recompute videos that are already done")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    p.add_argument("--format", choices=["torchscript", "onnx", "openvino"],
                   help="export only: torchscript, onnx (needs augrgb[export]) or openvino (OpenVINO IR, with --end-to-end "
                        "only; needs augrgb[export,openvino])")
    p.add_argument("--end-to-end", action="store_true", help="export only: the I3D RGB snippet encoder, the temporal filter "
                                                              "+ head and their metadata (preprocessed snippets -> "
                                                              "probabilities); onnx, openvino: a folder of two graphs (see "
                                                              "docs/detect.md and docs/deploy_onnx.py); torchscript: one file")
    p.set_defaults(func=_run)
