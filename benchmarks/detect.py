"""RGB-only detection speed against the two-stream pipeline it replaces, and peak memory on a long video.

One generated benchmark video (``augrgb.synth``, 25 fps) and a paper-sized random student (SS-TCN,
1024 -> 256, 5 layers; speed does not depend on the weights):

(a) RGB-only: ``augrgb.detect.pipeline.detect`` end to end (decode, resize/crop, I3D RGB, student,
    intervals, all output files, I3D weight loading included), I3D in fp32 and in bf16.
(b) Two-stream (the baseline): the fp32 RGB-only run above (its RGB branch is the same work) plus
    TV-L1 flow of every frame pair, the flow I3D, a flow stream (teacher-sized) and the fusion
    (average of logits). TV-L1 is slow, so it runs on a subset of pairs (in parallel processes on
    all cores, as extraction does) and is extrapolated; the flow I3D likewise on a subset of
    snippets. The output says which figures are extrapolated. TV-L1's cost depends on the content
    (the generated video's flat shapes converge faster than real footage), so the pairs are timed on
    ``--flow-video`` (default: the real Kinetics clip in ../shared) and, for reference, on the
    generated video too.
(c) Peak RSS of ``detect`` on a generated ``--rss-minutes`` video in a fresh child process
    (resource.getrusage RUSAGE_CHILDREN), measured first, before any other child process exists.

    PYTHONPATH=. python benchmarks/detect.py [--seconds 60] [--tvl1-pairs 16] [--flow-snippets 8] [--rss-minutes 10]
                                             [--flow-video PATH]

The default run takes about as long as detecting 12 minutes of video (the peak-RSS child dominates);
``--rss-minutes 0`` skips that part.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augrgb.core.files import state_sha256
from augrgb.core.grid import num_snippets
from augrgb.detect.model import load_detector
from augrgb.detect.pipeline import detect
from augrgb.detect.settings import DetectConfig
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.flow import FlowComputer, encode_for_i3d
from augrgb.extract.pipeline import ENCODERS
from augrgb.extract.transforms import Preprocess
from augrgb.extract.weights import load_i3d, read_weights_file, weights_path
from augrgb.models.checkpoint import save_stream
from augrgb.models.heads import probabilities
from augrgb.models.stream import Stream, two_stream_logits
from augrgb.synth.generator import FPS, build_video
from augrgb.synth.video import write_mp4

CLASSES = 17  # the built-in benchmark's label set
REPO = Path(__file__).resolve().parents[1]


REAL_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "kinetics_arm_wrestling.mp4"


def make_video(path: Path, seconds: float, size: int) -> int:
    """Write video 0 of the built-in benchmark (seed 0, dense) of ``seconds``; returns its frame count."""
    return write_mp4(path, build_video(0, 0, seconds, "dense", size).iter_frames(), FPS, size)


def make_student(path: Path, weights: Path) -> Path:
    """A paper-sized random RGB student checkpoint that accepts features of the cached I3D weights."""
    torch.manual_seed(0)
    stream = Stream(1024, CLASSES, "sigmoid", hidden=256, dropout=0.5).eval()
    features = {"fps": 25.0, "snippet": 16, "stride": 16, "crop": "center", "size": 224, "short_side": 256,
                "encoder": ENCODERS["rgb"], "weights_sha256": state_sha256(read_weights_file(weights))}
    return save_stream(path, stream, classes=[f"class{i}" for i in range(CLASSES)], modality="rgb", features=features)


def timed_detect(video: Path, model: Path, out: Path, precision: str, weights: Path) -> float:
    start = time.perf_counter()
    results = detect([video], model, out, DetectConfig(precision=precision), weights=str(weights), progress=False)
    elapsed = time.perf_counter() - start
    assert results[0].status == "done", results[0]
    return elapsed


def peak_rss_child(video: Path, model: Path, weights: Path, out: Path, precision: str) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of a fresh process running ``detect`` on ``video``."""
    code = ("from augrgb.detect.pipeline import detect; from augrgb.detect.settings import DetectConfig;"
            f"r = detect([{str(video)!r}], {str(model)!r}, {str(out)!r}, DetectConfig(precision={precision!r}), "
            f"weights={str(weights)!r}, progress=False); print(r[0].status, r[0].reason or '')")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # small helpers (e.g. ldconfig) may have run
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode or not done.stdout.startswith("done"):
        sys.exit(f"child failed: {done.stdout}{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        sys.exit(f"an earlier child process peaked higher ({before / 1024:.0f} MB): cannot attribute the peak")
    return peak / 1024, time.perf_counter() - start


def preprocessed_frames(video: Path, count: int) -> list[np.ndarray]:
    frames, preprocess = [], Preprocess()
    for frame in decode.iter_frames(video, fps=25):
        frames.append(preprocess(frame))
        if len(frames) == count:
            break
    return frames


def tvl1_seconds_per_pair(video: Path, pairs: int) -> tuple[float, list[np.ndarray]]:
    """Seconds per TV-L1 pair on the first ``pairs`` pairs of ``video`` (all cores), and the flow fields."""
    sample = preprocessed_frames(video, max(pairs + 1, 17))
    workers = os.cpu_count() or 1
    with FlowComputer("tvl1", workers) as computer:
        for _ in computer.pairs(sample[: workers + 1]):  # start the pool before timing
            pass
        start = time.perf_counter()
        fields = list(computer.pairs(sample[: pairs + 1]))
        return (time.perf_counter() - start) / len(fields), fields


def two_stream_extra(video: Path, flow_video: Path, frames: int, tvl1_pairs: int,
                     flow_snippets: int) -> list[tuple[str, float, bool]]:
    """Seconds of what two-stream adds to the RGB path: (name, seconds for the whole video, extrapolated?)."""
    rows = []
    workers = os.cpu_count() or 1
    generated, _ = tvl1_seconds_per_pair(video, tvl1_pairs)
    per_pair, fields = tvl1_seconds_per_pair(flow_video, tvl1_pairs)
    print(f"TV-L1 on {workers} processes: {per_pair:.3f} s/pair on {flow_video.name}, {generated:.3f} s/pair on the "
          f"generated video ({per_pair / generated:.1f}x); the two-stream total uses {flow_video.name}'s rate")
    rows.append((f"TV-L1 flow, {workers} processes ({len(fields)} of {frames - 1} pairs timed, {per_pair:.2f} s/pair)",
                 per_pair * (frames - 1), True))

    snippets = num_snippets(frames, 16, 16)
    model, _, _ = load_i3d("flow")  # cross-modality initialisation when no flow weights are cached: same cost
    encoder = SnippetEncoder(model, "fp32")
    flow_snippet = np.stack([encode_for_i3d(f) for f in (fields * 16)[:16]])
    batch = np.stack([flow_snippet] * min(8, flow_snippets))
    encoder.features(batch[:1])  # warm-up
    start = time.perf_counter()
    done = 0
    while done < flow_snippets:
        encoder.features(batch[: min(len(batch), flow_snippets - done)])
        done += min(len(batch), flow_snippets - done)
    per_snippet = (time.perf_counter() - start) / done
    rows.append((f"flow I3D fp32 ({done} of {snippets} snippets timed)", per_snippet * snippets, True))

    torch.manual_seed(1)
    teacher = Stream(1024, CLASSES, "sigmoid").eval()
    student = Stream(1024, CLASSES, "sigmoid").eval()
    x, mask = torch.randn(1, 1024, snippets), torch.ones(1, 1, snippets)
    with torch.inference_mode():
        start = time.perf_counter()
        fused = probabilities(two_stream_logits(teacher(x, mask).logits, student(x, mask).logits), "sigmoid")
        rows.append(("flow stream + fusion (two-stream head; the RGB stream is in the RGB-only run)",
                     time.perf_counter() - start, False))
    assert fused.shape == (1, CLASSES, snippets)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of the timed video (default 60)")
    parser.add_argument("--size", type=int, default=224, help="frame size of the generated videos (default 224)")
    parser.add_argument("--tvl1-pairs", type=int, default=16, help="TV-L1 frame pairs actually timed (default 16)")
    parser.add_argument("--flow-snippets", type=int, default=8, help="flow I3D snippets actually timed (default 8)")
    parser.add_argument("--rss-minutes", type=float, default=10, help="length of the peak-RSS video (0: skip; default 10)")
    parser.add_argument("--flow-video", type=Path, default=REAL_VIDEO,
                        help="real video whose frames time TV-L1 (default: the Kinetics clip in ../shared)")
    args = parser.parse_args()
    if not args.flow_video.is_file():
        sys.exit(f"{args.flow_video}: no such video for timing TV-L1 (pass --flow-video)")

    weights = weights_path("i3d-rgb")
    if not weights.is_file():
        sys.exit("no cached I3D RGB weights: run `augrgb weights fetch i3d-rgb` first")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_student(tmp / "student.pt", weights)
        load_detector(model)

        if args.rss_minutes > 0:
            long_video = tmp / "long.mp4"
            start = time.perf_counter()
            frames = make_video(long_video, args.rss_minutes * 60, args.size)
            print(f"(c) peak RSS, {args.rss_minutes:g}-minute video ({frames} frames, generated in {time.perf_counter() - start:.0f} s):")
            rss, seconds = peak_rss_child(long_video, model, weights, tmp / "rss_out", "bf16")
            print(f"    detect bf16 in a child process: peak RSS {rss:.0f} MB (limit 1536 MB), {seconds:.0f} s "
                  f"({seconds / (frames / FPS):.2f} s per second of video)")
            long_video.unlink()

        video = tmp / "video.mp4"
        frames = make_video(video, args.seconds, args.size)
        duration = frames / FPS
        print(f"timed video: {duration:g} s, {frames} frames at {FPS} fps, {args.size}x{args.size}, "
              f"{num_snippets(frames, 16, 16)} snippets of 16 frames")
        rgb = {p: timed_detect(video, model, tmp / f"out_{p}", p, weights) for p in ("fp32", "bf16")}
        extra = two_stream_extra(video, args.flow_video, frames, args.tvl1_pairs, args.flow_snippets)
        two_stream = rgb["fp32"] + sum(s for _, s, _ in extra)

        print("\n(a) RGB-only detect, end to end          seconds   s per video second")
        for p, s in rgb.items():
            print(f"    {p:35s} {s:9.1f} {s / duration:12.3f}")
        print("(b) two-stream pipeline (baseline)")
        print(f"    {'RGB branch = RGB-only fp32 run above':35s} {rgb['fp32']:9.1f} {rgb['fp32'] / duration:12.3f}")
        for name, s, extrapolated in extra:
            print(f"    {name} {'[extrapolated]' if extrapolated else ''}\n    {'':35s} {s:9.1f} {s / duration:12.3f}")
        print(f"    {'total':35s} {two_stream:9.1f} {two_stream / duration:12.3f}")
        print("ratio two-stream / RGB-only:  " + ", ".join(f"{p} {two_stream / s:.1f}x" for p, s in rgb.items()))
        print(f"targets: bf16 RGB-only < 1 s per video second ({rgb['bf16'] / duration:.3f}); >= 10x faster than "
              f"two-stream ({two_stream / rgb['bf16']:.1f}x)")


if __name__ == "__main__":
    main()
