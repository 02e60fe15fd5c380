"""``augrgb experiments run|report|probe``: train a results grid, tabulate it (mean ± std over seeds), probe a store."""

from __future__ import annotations

import argparse
from pathlib import Path


def _grid(args: argparse.Namespace):
    from augrgb.distill.cli import parse_set
    from augrgb.experiments.grid import load_grid

    return load_grid(args.grid, parse_set(args.set))


def _run(args: argparse.Namespace) -> int:
    from augrgb.experiments.runner import run_grid

    grid = _grid(args)
    results = run_grid(grid, args.out, jobs=args.jobs, progress=not args.quiet)
    print(f"results: {results}; tables: `augrgb experiments report {args.grid} --out {args.out}`")
    return 0


def _report(args: argparse.Namespace) -> int:
    from augrgb.atomic import write_text_atomic
    from augrgb.errors import InputError
    from augrgb.experiments.report import render
    from augrgb.experiments.runner import RESULTS, read_results

    grid = _grid(args)
    records = read_results(Path(args.out) / RESULTS)
    if not records:
        raise InputError(Path(args.out) / RESULTS, "no results yet: run `augrgb experiments run` first")
    text = render(records, grid, args.split, args.per_seed)
    target = Path(args.out) / ("results.md" if args.split == "test" else "results_validation.md")
    write_text_atomic(target, text)
    print(text, end="")
    print(f"written to {target}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    import sys

    from augrgb.atomic import write_text_atomic
    from augrgb.experiments.probe import probe, render

    modalities = [m for m in args.modalities.split(",") if m]
    text = render(probe(args.features, args.annotations, modalities, args.dataset, c=args.c,
                        progress=sys.stderr.isatty()))
    print(text, end="")
    if args.out:
        write_text_atomic(Path(args.out), text)
        print(f"written to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``augrgb experiments run`` and ``augrgb experiments report``."""
    group = sub.add_parser("experiments", help="run a results grid (teachers, students, seeds) and tabulate it",
                           description="Reproduce results tables: every run of a grid (configs/results/*.yaml) is "
                                       "trained once, scored on the test subset and appended to OUT/results.jsonl.")
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    group.set_defaults(group_parser=group)
    for name, func, text in (("run", _run, "train and score every run of the grid not yet in OUT/results.jsonl "
                                          "(rerun to resume)"),
                             ("report", _report, "write OUT/results.md: mean ± std over seeds per table")):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("grid", help="grid YAML, or a preset name under configs/ (e.g. results/synth_dense)")
        p.add_argument("--out", required=True, help="results folder (runs/, results.jsonl, results.md)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a grid field by its dotted name, value in YAML (e.g. seeds=[0])")
        if name == "report":
            p.add_argument("--split", choices=("test", "validation"), default="test",
                           help="test: the reported numbers (default); validation: each run's validation mAP at its "
                                "selected epoch, what settings are chosen on (two-stream has none)")
            p.add_argument("--per-seed", action="store_true", help="show every seed's score after each mean ± std")
        if name == "run":
            p.add_argument("--jobs", type=int, default=2, help="runs trained at once, one torch thread each (default 2)")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=func)
    text = ("linear probe per modality: how much of the actions one snippet's features carry (train and test "
            "per-frame mAP on the snippet grid), the benchmark's regime")
    p = commands.add_parser("probe", help=text, description=text + ". One logistic regression per class on "
                            "standardised single-snippet features of the training subset, no temporal context; "
                            "RGB's test mAP over the pose or flow one bounds what distillation into frozen RGB "
                            "features can recover.")
    p.add_argument("--features", required=True, help="feature store (augrgb extract ...)")
    p.add_argument("--annotations", required=True, help="annotation file with training and testing subsets")
    p.add_argument("--modalities", default="rgb,pose", help="comma-separated modalities in the store (default rgb,pose)")
    p.add_argument("--dataset", default="synth", help="dataset preset: subsets and grid (default synth)")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength (default 1.0)")
    p.add_argument("--out", help="also write the Markdown table here")
    p.set_defaults(func=_probe)
