"""Pose extraction speed, each figure beside a naive baseline from the same run.

1. Skeleton reading: frames/s of ``read_skeleton`` on a generated NTU ``.skeleton`` file (2 bodies a
   frame) against a naive parser (Python ``float()`` on every token, lists of lists).
2. Pose features: snippets/s of ``extract_poses`` end to end (read ``.npy`` skeletons, store them,
   encode with a paper-width 2s-AGCN checkpoint, write HDF5) against a naive loop encoding one snippet
   per forward pass from the same skeletons, storing nothing. Both use as many torch threads as
   ``extract_poses`` gives one worker: all cores (``benchmarks/agcn_snippets.py`` measures 1 thread).
MediaPipe frames/s: ``benchmarks/mediapipe_pose.py``.

    PYTHONPATH=. python benchmarks/extract_pose.py [--frames 3000] [--videos 4] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augrgb.extract.agcn import TwoStreamAGCN
from augrgb.extract.pose_encoder_training import save_pose_encoder
from augrgb.extract.pose_pipeline import extract_poses
from augrgb.extract.pose_snippets import cut_snippets, snippets_to_tensor
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.skeletons import read_skeleton


def write_ntu(path: Path, frames: int, rng: np.random.Generator) -> Path:
    """An NTU .skeleton text file with two tracked bodies on every frame."""
    lines = [str(frames)]
    for _ in range(frames):
        lines.append("2")
        for body in ("72057594037931101", "72057594037931102"):
            lines += [f"{body} 0 1 1 1 1 0 0.1 -0.2 2", "25"]
            lines += [" ".join(f"{v:.6f}" for v in xyz) + " 250.1 200.2 960.5 540.5 0.9 0.1 0.2 0.3 2"
                      for xyz in rng.normal(0, 0.5, (25, 3))]
    path.write_text("\n".join(lines) + "\n")
    return path


def naive_read_ntu(path: Path) -> list:
    """Parse every token with float(), keeping x y z of each joint in nested lists."""
    tokens = iter(path.read_text().split("\n"))
    frames = []
    for _ in range(int(next(tokens))):
        bodies = []
        for _ in range(int(next(tokens))):
            next(tokens)
            joints = [[float(v) for v in next(tokens).split()][:3] for _ in range(int(next(tokens)))]
            bodies.append(joints)
        frames.append(bodies)
    return frames


def timed(func, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000, help="frames of the generated NTU file")
    parser.add_argument("--videos", type=int, default=4, help="skeleton sequences to extract pose features from")
    parser.add_argument("--seconds", type=float, default=60, help="length of each sequence at 25 fps")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ntu = write_ntu(tmp / "S001C001P001R001A001.skeleton", args.frames, rng)
        ours, skeleton = timed(read_skeleton, ntu)
        naive, _ = timed(naive_read_ntu, ntu)
        print(f"NTU .skeleton, {args.frames} frames x 2 bodies ({ntu.stat().st_size / 2**20:.1f} MiB)")
        print(f"  read_skeleton     : {args.frames / ours:8.0f} frames/s")
        print(f"  naive float() loop: {args.frames / naive:8.0f} frames/s   ratio {naive / ours:4.2f}x")

        frames = int(args.seconds * 25)
        folder = tmp / "skeletons"
        folder.mkdir()
        for i in range(args.videos):
            np.save(folder / f"v{i}.npy", rng.normal(0, 0.3, (frames, 2, 25, 3)).astype(np.float32))
        model = TwoStreamAGCN(num_classes=10).eval()
        ckpt = tmp / "encoder.pt"
        save_pose_encoder(ckpt, model, {"fps": 25.0, "snippet": 16, "stride": 16})

        def one_at_a_time() -> int:
            count = 0
            with torch.inference_mode():
                for path in sorted(folder.glob("*.npy")):
                    for snippet in cut_snippets(np.load(path)):
                        model.extract_features(snippets_to_tensor(snippet[None]))
                        count += 1
            return count

        torch.set_num_threads(threads)
        naive, count = timed(one_at_a_time)
        cfg = ExtractConfig(batch_size=16)
        ours, results = timed(extract_poses, [folder], tmp / "store", cfg, encoder=str(ckpt), progress=False)
        snippets = sum(r.snippets for r in results)
        assert all(r.status == "done" for r in results) and snippets == count, results
        print(f"pose features, {args.videos} sequences x {frames} frames = {snippets} snippets, 2s-AGCN paper widths, "
              f"{threads} torch thread(s)")
        print(f"  extract_poses (read, store, batch {cfg.batch_size}, HDF5): {snippets / ours:7.1f} snippets/s "
              f"({snippets * 16 / ours:7.0f} frames/s)")
        print(f"  naive one snippet per forward, no store : {count / naive:7.1f} snippets/s   ratio {naive / ours:4.2f}x")


if __name__ == "__main__":
    main()
