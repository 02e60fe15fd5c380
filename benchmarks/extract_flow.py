"""Optical-flow throughput at 224x224 on real frames: pairs/s per method, and TV-L1 with N workers vs 1.

Baseline: TV-L1 in one process (the I3D default). Every other row is printed as a ratio to it, and the
parallel TV-L1 row as its speed-up over one worker. Run from the repository root:

    PYTHONPATH=. python benchmarks/extract_flow.py [--tvl1-pairs 24] [--fast-pairs 96] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from augrgb.extract.flow import FlowComputer

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos" / "kinetics_arm_wrestling.mp4"


def load_frames(path: Path, count: int, short_side: int = 256, crop: int = 224) -> list[np.ndarray]:
    """First ``count`` frames as RGB uint8, short side resized to 256 then centre-cropped to 224 (as for I3D)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        h, w = bgr.shape[:2]
        scale = short_side / min(h, w)
        resized = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        top, left = (resized.shape[0] - crop) // 2, (resized.shape[1] - crop) // 2
        frames.append(cv2.cvtColor(resized[top:top + crop, left:left + crop], cv2.COLOR_BGR2RGB))
    capture.release()
    if len(frames) < 2:
        sys.exit(f"{path}: could not decode at least 2 frames")
    return frames


def pairs_per_second(frames: list[np.ndarray], method: str, workers: int, cv_threads: int) -> float:
    """Steady-state frame pairs per second (worker processes are started and warmed up before timing).

    ``cv_threads`` is OpenCV's thread count in this process (it matters for ``workers=1`` only; pool
    processes always run one OpenCV thread each).
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(cv_threads)
    try:
        with FlowComputer(method, workers) as computer:
            for _ in computer.pairs(frames[: workers + 1]):  # start the pool, build each process's flow object
                pass
            start = time.perf_counter()
            count = sum(1 for _ in computer.pairs(frames))
            return count / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(previous)


def flow_video_seconds_per_second(pairs_per_s: float, fps: float = 25.0) -> float:
    """Seconds of video (at ``fps``, one flow pair per frame) whose flow is computed per wall-clock second."""
    return pairs_per_s / fps


def i3d_seconds_per_snippet(in_channels: int, snippets: int = 4) -> float:
    """Wall time of our batched I3D per 16x224x224 snippet (random weights: the cost does not depend on them)."""
    from augrgb.extract.encoder import SnippetEncoder
    from augrgb.extract.i3d import InceptionI3d

    encoder = SnippetEncoder(InceptionI3d(in_channels=in_channels).eval())
    dtype = np.uint8 if in_channels == 3 else np.float32
    batch = np.zeros((snippets, 16, 224, 224, in_channels), dtype)
    encoder.features(batch[:1])  # warm-up
    start = time.perf_counter()
    encoder.features(batch)
    return (time.perf_counter() - start) / snippets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="video to take real frames from")
    parser.add_argument("--tvl1-pairs", type=int, default=24, help="frame pairs timed for TV-L1 (slow)")
    parser.add_argument("--fast-pairs", type=int, default=96, help="frame pairs timed for DIS and Farneback")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel TV-L1 row")
    args = parser.parse_args()

    frames = load_frames(args.video, max(args.tvl1_pairs, args.fast_pairs) + 1)
    slow, fast = frames[: args.tvl1_pairs + 1], frames[: args.fast_pairs + 1]
    default_threads = cv2.getNumThreads()
    print(f"{args.video.name}: {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"cv2 {cv2.__version__}, {default_threads} OpenCV threads by default, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    # (label, method, workers, OpenCV threads in this process, frames)
    rows = [
        ("tvl1, 1 process, 1 thread (baseline)", "tvl1", 1, 1, slow),
        (f"tvl1, 1 process, {default_threads} OpenCV threads", "tvl1", 1, default_threads, slow),
        (f"tvl1, {args.workers} worker processes", "tvl1", args.workers, 1, slow),
        ("dis, 1 process, 1 thread", "dis", 1, 1, fast),
        ("farneback, 1 process, 1 thread", "farneback", 1, 1, fast),
    ]
    rates = [pairs_per_second(clip, method, workers, threads) for _, method, workers, threads, clip in rows]
    print(f"{'run':<40} {'pairs':>6} {'pairs/s':>9} {'video s/s @25fps':>17} {'vs baseline':>12}")
    for (label, _, _, _, clip), rate in zip(rows, rates):
        print(f"{label:<40} {len(clip) - 1:>6} {rate:>9.2f} {flow_video_seconds_per_second(rate):>17.3f} "
              f"{rate / rates[0]:>11.2f}x")
    print(f"TV-L1 speed-up, {args.workers} worker processes vs 1: {rates[2] / rates[0]:.2f}x "
          f"(target >= {0.9 * args.workers:.1f}x with {args.workers} idle cores)")

    # End to end, per second of 25 fps video: 25/16 snippets; flow also needs 25 frame pairs.
    snippets_per_s_video = 25 / 16
    rgb = i3d_seconds_per_snippet(3) * snippets_per_s_video
    flow_i3d = i3d_seconds_per_snippet(2) * snippets_per_s_video
    for label, rate in (("tvl1 (parallel)", rates[2]), ("dis", rates[3])):
        flow = 25 / rate + flow_i3d
        print(f"compute per second of video: RGB features {rgb:.2f} s; {label} flow features {flow:.2f} s "
              f"(flow {25 / rate:.2f} s + flow I3D {flow_i3d:.2f} s) = {flow / rgb:.1f}x RGB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
