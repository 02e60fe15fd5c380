"""``augrgb synth``: write the built-in procedural benchmark (videos, skeletons, annotations)."""

from __future__ import annotations

import argparse
import json
import sys

from augrgb.core.errors import InputError
from augrgb.synth.camera import FRAMING
from augrgb.synth.schedule import MODES


def _framing(text: str) -> tuple[float, float]:
    """``LOW,HIGH`` -> a pair of floats (the range itself is checked with the other settings)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    return low, high


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` command."""
    p = subparsers.add_parser(
        "synth", help="generate the built-in benchmark: rendered skeleton actors, dense or sparse labels",
        description="Write untrimmed videos of rendered NTU-25 skeleton actors (random views, bodies, clothes, "
                    "cluttered rooms, camera shake), their skeletons as a Kinect gives them, and labels in the "
                    "dense-detection JSON format. Deterministic by seed; rerunning into the same folder resumes.")
    p.add_argument("--out", required=True, help="output folder (created; a rerun with the same settings resumes)")
    p.add_argument("--videos", type=int, required=True, help="number of videos")
    p.add_argument("--seconds", type=float, required=True, help="length of each video in seconds (at least 2)")
    p.add_argument("--mode", choices=MODES, default="dense",
                   help="dense: concurrent actions on different body parts; sparse: one action at a time (default dense)")
    p.add_argument("--size", type=int, default=224, help="frame width and height in pixels, even (default 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files (default 0)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="fraction of videos in the 'testing' subset, chosen by seed (default 0.2)")
    p.add_argument("--framing", type=_framing, default=FRAMING, metavar="LOW,HIGH",
                   help="share of the frame height the actor fills, drawn per video from [LOW, HIGH] (default "
                        f"{FRAMING[0]:g},{FRAMING[1]:g}: close enough for I3D's RGB features to carry the actions, "
                        "docs/benchmark.md; 0.5,0.78 is the far framing of benchmarks made before 2026-12)")
    p.add_argument("--workers", type=int, default=1, help="videos generated in parallel processes (default 1)")
    p.add_argument("--preview", action="store_true", help="also write OUT/preview.png, a contact sheet of frames")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate, then print where things are and the label statistics."""
    from augrgb.synth.generator import Settings, generate
    from augrgb.synth.preview import write_preview
    from augrgb.synth.stats import label_statistics

    try:
        out = generate(args.out, args.videos, args.seconds, args.mode, args.size, args.seed, args.test_fraction,
                       max(1, args.workers), progress=sys.stderr.isatty(), framing=args.framing)
        if args.preview:
            write_preview(out, Settings(args.videos, float(args.seconds), args.mode, args.size, args.seed,
                                        args.test_fraction, args.framing))
    except InputError as exc:
        print(f"augrgb synth: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"augrgb synth: {exc}", file=sys.stderr)
        return 1
    stats = label_statistics(out / "annotations.json")
    digest = json.loads((out / "synth.json").read_text())["digest"]["sha256"]
    print(f"wrote {stats['videos']} videos to {out} (annotations.json, classes.txt, videos/, skeletons/); "
          f"digest {digest[:16]} (synth.json)")
    print(json.dumps({k: stats[k] for k in ("actions_per_video", "action_length_s", "labels_per_frame")}))
    return 0
