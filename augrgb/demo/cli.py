"""``augrgb demo``: the one command a newcomer runs first."""

from __future__ import annotations

import argparse
import sys

INTERRUPTED = "interrupted: rerun the same command to resume"
SIZE_TIMES = ("small (default, I3D at 224 px) 5 min 47 s with --seeds 0,1,2 on an idle 2-core machine (520 s of CPU "
              "time; the 224 px RGB features take 174 s of the wall time; --flow dis adds about 4 minutes), tiny under a minute; "
              "medium (3x the videos, 1.5x as long) and large were not timed")


def run(args: argparse.Namespace) -> int:
    """Run or resume the demo; Ctrl-C stops it with exit status 130 and a rerun goes on where it stopped."""
    from augrgb.demo.pipeline import run_demo
    from augrgb.demo.settings import demo_settings, parse_seeds

    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    settings = demo_settings(args.size, args.mode, args.flow, args.seed, seeds)
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
        description="Generate a small benchmark of rendered skeleton actors, extract RGB and pose features (and "
                    "optical flow with --flow), train a pose teacher (and a flow teacher), a vanilla RGB student and "
                    "an Augmented-RGB student from each teacher, evaluate them on held-out videos, detect actions in "
                    "the held-out videos from raw RGB, and print one table. Time on a 2-core AMD EPYC, "
                    "weights cached: " + SIZE_TIMES + ". Every step is resumable: after Ctrl-C, rerun the same command.")
    demo.add_argument("--out", default="augrgb-demo", help="output folder (default ./augrgb-demo); rerunning with the "
                                                           "same options resumes, other options there are refused")
    demo.add_argument("--mode", choices=("dense", "sparse"), default="dense",
                      help="dense: concurrent actions, per-frame mAP; sparse: one action at a time, event mAP at "
                           "tIoU 0.1 and 0.5 (default dense)")
    demo.add_argument("--size", default="small",
                      help="preset in augrgb/configs/demo.yaml: small (default), medium, large; tiny is for smoke "
                           "tests (times above)")
    demo.add_argument("--flow", choices=("dis", "tvl1"),
                      help="also extract optical flow and train a flow teacher and its student: dis (fast) or tvl1 "
                           "(the paper's; many times slower on a CPU). Default: pose teacher only, since flow I3D has "
                           "no Kinetics weights offline and its teacher is weak here (docs/demo.md)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the benchmark, and of the training runs unless --seeds (default 0)")
    demo.add_argument("--seeds", metavar="S,S,...",
                      help="training seeds, e.g. 0,1,2: every teacher and student is trained once per seed on the same "
                           "benchmark and the table shows mean ± std (each seed adds the training time of one)")
    demo.add_argument("--cache-dir", help="weights cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars (step headers, summaries and the table only)")
    demo.set_defaults(func=run)
