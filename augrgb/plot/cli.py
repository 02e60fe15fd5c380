"""``augrgb plot tsne|relations|saliency|timeline|sensitivity|diagnostics``: figures of any run, as PNG files."""

from __future__ import annotations

import argparse


def _tsne(args: argparse.Namespace) -> int:
    from augrgb.plot.tsne import plot_tsne

    out = plot_tsne(args.out, args.checkpoint, args.features, args.annotations, labels=args.label, subset=args.subset,
                    max_snippets=args.max_snippets, seed=args.seed, fmt=args.format)
    print(f"written {out}")
    return 0


def _relations(args: argparse.Namespace) -> int:
    from augrgb.plot.relations import plot_relations

    out = plot_relations(args.out, args.checkpoint or [], args.features, args.video, labels=args.label,
                         two_stream=args.two_stream, annotations=args.annotations, fmt=args.format)
    print(f"written {out}")
    return 0


def _saliency(args: argparse.Namespace) -> int:
    from augrgb.plot.saliency import plot_saliency

    out = plot_saliency(args.out, args.checkpoint, args.features, args.video, labels=args.label,
                        annotations=args.annotations, fmt=args.format)
    print(f"written {out}")
    return 0


def _timeline(args: argparse.Namespace) -> int:
    from augrgb.plot.timeline import plot_detection_timeline

    out = plot_detection_timeline(args.out, args.detections, args.annotations, args.video, fmt=args.format)
    print(f"written {out}")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from augrgb.core.errors import InputError
    from augrgb.plot.sensitivity import plot_sensitivity

    reference = {}
    for item in args.reference or []:
        name, _, value = item.partition("=")
        try:
            reference[name] = float(value)
        except ValueError:
            raise InputError(f"--reference {item}", "expected PARAM=NUMBER") from None
    out = plot_sensitivity(args.out, args.results, args.param, metric=args.metric, reference=reference)
    print(f"written {out}")
    return 0


def _diagnostics(args: argparse.Namespace) -> int:
    from augrgb.plot.diagnostics import plot_diagnostics

    print(f"written {plot_diagnostics(args.out, args.run)}")
    return 0


def _stream_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--features", required=True, help="feature store (or .npy folder) holding every modality the "
                                                      "checkpoints read")
    p.add_argument("--checkpoint", action="append", required=required, metavar="PT",
                   help="stream checkpoint (teacher or student best.pt); repeat for one panel/curve each")
    p.add_argument("--label", action="append", metavar="NAME",
                   help="name of each --checkpoint in the figure, in the same order (default: run folder and modality)")
    p.add_argument("--format", default="auto", help="annotation format (default: detected from the file)")
    p.add_argument("--out", required=True, help="PNG file to write (atomically)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plot`` command group."""
    group = sub.add_parser("plot", help="figures of a run: t-SNE, relation matrices, saliency, timelines, sensitivity, diagnostics",
                           description="Figures of any run as PNG files; see docs/plots.md.")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="plot_command", metavar="FIGURE")

    p = commands.add_parser("tsne", help="t-SNE of the stream features H of a subset, one panel per checkpoint",
                            description="t-SNE of the features H (temporal filter output) of every snippet of a "
                                        "subset; single-label snippets coloured by class, background grey, "
                                        "multi-label snippets left out; silhouette of H in each title.")
    _stream_options(p)
    p.add_argument("--annotations", required=True, help="annotation file with the subset's videos (labels the snippets)")
    p.add_argument("--subset", default="testing", help="annotation subset to embed (default testing)")
    p.add_argument("--max-snippets", type=int, default=3000, help="random sample of at most this many snippets (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the snippet sample and of t-SNE (default 0)")
    p.set_defaults(func=_tsne)

    p = commands.add_parser("relations", help="T x T snippet relation matrices of one video, one panel per checkpoint",
                            description="Relation matrices (snippet correlations of H) of one video on one colour "
                                        "scale; the two-stream panel uses the two streams' H concatenated along channels.")
    _stream_options(p, required=False)
    p.add_argument("--video", required=True, help="video id in the feature store")
    p.add_argument("--two-stream", nargs=2, metavar=("RGB_PT", "TEACHER_PT"),
                   help="add a panel for the two-stream network of these two checkpoints")
    p.add_argument("--annotations", help="annotation file: draw the video's ground-truth segments under each matrix")
    p.set_defaults(func=_relations)

    p = commands.add_parser("saliency", help="boundary saliency of one video over time, one curve per checkpoint",
                            description="How much each stream's features H change between consecutive snippets "
                                        "(normalised per video), with ground-truth starts and ends.")
    _stream_options(p)
    p.add_argument("--video", required=True, help="video id in the feature store")
    p.add_argument("--annotations", help="annotation file: draw the video's action starts/ends and segments")
    p.set_defaults(func=_saliency)

    p = commands.add_parser("timeline", help="ground truth vs detected intervals of one video, per class",
                            description="Ground truth above the detections (opacity = score), and the per-frame "
                                        "probabilities when an `augrgb detect` folder saved them.")
    p.add_argument("--detections", required=True, help="`augrgb detect` output folder or an ActivityNet results JSON")
    p.add_argument("--annotations", required=True, help="annotation file with the video's ground truth and class names")
    p.add_argument("--video", required=True, help="video id")
    p.add_argument("--format", default="auto", help="annotation format (default: detected from the file)")
    p.add_argument("--out", required=True, help="PNG file to write (atomically)")
    p.set_defaults(func=_timeline)

    p = commands.add_parser("sensitivity", help="hyper-parameter curves from a results.jsonl (mean ± std over seeds)",
                            description="Score against each swept parameter, a line per teacher, vanilla RGB and "
                                        "two-stream baselines dashed (supplement Fig. 6).")
    p.add_argument("--results", required=True, help="results file (JSON Lines; `augrgb experiments run` writes results.jsonl)")
    p.add_argument("--param", action="append", required=True, help="swept parameter to draw (repeat for one panel each)")
    p.add_argument("--metric", help="metric to draw (default: the file's only metric)")
    p.add_argument("--reference", action="append", metavar="PARAM=VALUE",
                   help="value of PARAM in the main Augmented-RGB runs: they join the curve there (the grid's reference)")
    p.add_argument("--out", required=True, help="PNG file to write (atomically)")
    p.set_defaults(func=_sensitivity)

    p = commands.add_parser("diagnostics", help="a run's loss terms, gradient shares, feature norm and mAP over epochs",
                            description="What each loss term did to a training run, from its run.json: term values, "
                                        "each term's share of the gradient at the filter output H, the mean norm of "
                                        "H, and mAP on a fixed training subset beside validation mAP.")
    p.add_argument("run", help="run folder (or its run.json)")
    p.add_argument("--out", required=True, help="PNG file to write (atomically)")
    p.set_defaults(func=_diagnostics)
