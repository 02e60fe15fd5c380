"""``augrgb demo``: the one command a newcomer runs first."""

from __future__ import annotations

import argparse
import sys

INTERRUPTED = "interrupted: rerun the same command to resume"


def run(args: argparse.Namespace) -> int:
    """Run or resume the demo; Ctrl-C stops it with exit status 130 and a rerun goes on where it stopped."""
    from augrgb.demo.pipeline import run_demo
    from augrgb.demo.settings import demo_settings

    settings = demo_settings(args.size, args.mode, args.flow, args.seed)
    try:
        run_demo(args.out, settings, cache=args.cache_dir, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return 130
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``augrgb demo``."""
    demo = sub.add_parser(
        "demo", help="run the whole pipeline on a generated benchmark and print the results table (start here)",
        description="Generate a small benchmark of rendered skeleton actors, extract RGB, optical-flow and pose "
                    "features, train a pose and a flow teacher, a vanilla RGB student and an Augmented-RGB student "
                    "from each teacher, evaluate them on held-out videos, detect actions in the held-out videos from "
                    "raw RGB, and print one table. The default size takes 12-15 minutes on a 2-core CPU. Every "
                    "step is resumable: after Ctrl-C, rerun the same command.")
    demo.add_argument("--out", default="augrgb-demo", help="output folder (default ./augrgb-demo); rerunning with the "
                                                           "same options resumes, other options there are refused")
    demo.add_argument("--mode", choices=("dense", "sparse"), default="dense",
                      help="dense: concurrent actions, per-frame mAP; sparse: one action at a time, event mAP at "
                           "tIoU 0.1 and 0.5 (default dense)")
    demo.add_argument("--size", default="small",
                      help="preset in augrgb/configs/demo.yaml: small (default, about 10 min on 2 CPU cores), medium, large; "
                           "tiny is for smoke tests")
    demo.add_argument("--flow", choices=("dis", "tvl1"), default="dis",
                      help="optical flow of the flow teacher: dis (fast, default) or tvl1 (the paper's; many times "
                           "slower on a CPU)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the benchmark and every training run (default 0)")
    demo.add_argument("--cache-dir", help="weights cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars (step headers, summaries and the table only)")
    demo.set_defaults(func=run)
