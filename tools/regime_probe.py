"""Controlled regime probes: what makes the built-in benchmark's RGB features carry its actions.

Each probe changes one thing and keeps the rest of a benchmark fixed, then compares single-snippet linear
probes (``augrgb.experiments.probe.probe_modality``'s model) on the same snippets. The framing is a setting of
``augrgb synth`` (``--framing``): two benchmarks that differ only in it have byte-identical skeletons and
annotations.

* ``features BENCH SIZE EVERY OUT.npz``: Kinetics I3D RGB features of every EVERY-th snippet of each video of
  BENCH, frames resized to SIZE px (the 25 fps / 16-frame grid of the synth preset).
* ``probe STORE ANNOTATIONS NAME=OUT.npz...``: probes (:func:`augrgb.experiments.probe.probe_arrays`) of the
  store's ``rgb`` and ``pose`` and of each npz on the snippets the npz files hold (all must hold the same ones),
  training and test per-frame mAP at C = 0.01 and 1.

Numbers and commands: docs/benchmark.md, Regime. Run under ``OMP_NUM_THREADS=1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def features(bench: Path, size: int, every: int, out: Path) -> None:
    """I3D RGB features of every ``every``-th 16-frame snippet per video, frames resized to ``size``."""
    import decord
    from tqdm import tqdm

    from augrgb.extract.encoder import SnippetEncoder
    from augrgb.extract.transforms import Preprocess
    from augrgb.extract.weights import load_i3d

    encoder, preprocess = SnippetEncoder(load_i3d("rgb")[0]), Preprocess("resize", size, size)
    arrays = {}
    for vid in tqdm(sorted(json.loads((bench / "annotations.json").read_text())), desc=f"I3D at {size} px"):
        frames = decord.VideoReader(str(bench / "videos" / f"{vid}.mp4"))
        index = np.arange(0, len(frames) // 16, every)
        decoded = frames.get_batch(list(range(int(index[-1]) * 16 + 16))).asnumpy()
        clips = np.stack([[preprocess(f) for f in decoded[s * 16:(s + 1) * 16]] for s in index])
        arrays[f"{vid}__idx"] = index
        arrays[f"{vid}__f"] = np.concatenate([encoder.features(clips[i:i + 8]) for i in range(0, len(clips), 8)])
    np.savez(out, **arrays)


def probe(store: Path, annotations: Path, extra: dict[str, Path]) -> None:
    """Print train/test per-frame mAP of each modality's linear probe on the npz files' snippets."""
    from augrgb.experiments.probe import probe_arrays, split_videos

    loaded = {name: np.load(path) for name, path in extra.items()}
    first = next(iter(loaded.values()))

    def split(which: str) -> dict[str, np.ndarray]:
        items = split_videos(store, annotations, ["rgb", "pose"], which)
        rows: dict[str, list[np.ndarray]] = {"rgb": [], "pose": [], "labels": [], **{n: [] for n in loaded}}
        for item in items:
            index = first[f"{item.video_id}__idx"]
            for name, arrays in loaded.items():
                if not np.array_equal(arrays[f"{item.video_id}__idx"], index):
                    raise ValueError(f"{extra[name]}: other snippets of {item.video_id} than {extra[next(iter(extra))]}")
                rows[name].append(arrays[f"{item.video_id}__f"])
            rows["rgb"].append(item.features["rgb"][index].astype(np.float32))
            rows["pose"].append(item.features["pose"][index].astype(np.float32))
            rows["labels"].append(item.labels[index])
        return {k: np.concatenate(v) for k, v in rows.items()}

    train, test = split("train"), split("test")
    print(f"snippets: {len(train['labels'])} training, {len(test['labels'])} test")
    print("| features | C | train mAP (%) | test mAP (%) |\n|---|---:|---:|---:|")
    for name in ("rgb", *loaded, "pose"):
        for c in (0.01, 1.0):
            scores = probe_arrays(train[name], train["labels"], test[name], test["labels"], c=c)
            print(f"| {name} | {c:g} | {100 * scores[0]:.1f} | {100 * scores[1]:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("features", help="I3D RGB features of every k-th snippet at a frame size")
    p.add_argument("bench", type=Path)
    p.add_argument("size", type=int)
    p.add_argument("every", type=int)
    p.add_argument("out", type=Path)
    p = sub.add_parser("probe", help="linear probes of the store's rgb and pose and of NAME=FILE.npz features")
    p.add_argument("store", type=Path)
    p.add_argument("annotations", type=Path)
    p.add_argument("extra", nargs="+", help="NAME=FILE.npz from the features command")
    args = parser.parse_args()
    if args.command == "features":
        features(args.bench, args.size, args.every, args.out)
    else:
        probe(args.store, args.annotations, dict(item.split("=", 1) for item in args.extra))


if __name__ == "__main__":
    main()
