"""RGB-only detection speed against the two-stream pipeline it replaces, and peak memory on a long video.

One generated benchmark video (``augrgb.synth``, 25 fps) and a paper-sized random student (SS-TCN,
1024 -> 256, 5 layers; speed does not depend on the weights):

(a) RGB-only: ``augrgb.detect.pipeline.detect`` end to end (decode, resize/crop, I3D RGB, student,
    intervals, all output files, I3D weight loading included) for each ``--paths`` runtime/precision
    (default: torch fp32 (the baseline), torch bf16, torch auto, auto/auto (what ``augrgb detect`` runs
    by default: runtime and precision both auto), onnxruntime fp32, onnxruntime int8, openvino fp32,
    bf16 (where the CPU has bf16) and int8; int8 calibrated on ``--calibrate`` or a generated video;
    each row names the runtime/precision the run recorded): seconds per video second, snippets/s,
    speed-up over torch fp32, the 0.2 s per video second target, and the share of this CPU's peak
    (I3D FLOPs per snippet x snippets/s against a large fp32 / bf16 matrix product measured first).
    ONNX graphs are exported, int8 calibrated and `auto` measured before timing (cached, as a second run finds them).
(b) Two-stream (the baseline): the fp32 RGB-only run above (its RGB branch is the same work) plus
    TV-L1 flow of every frame pair, the flow I3D, a flow stream (teacher-sized) and the fusion
    (average of logits). TV-L1 is slow, so it runs on a subset of pairs (in parallel processes on
    all cores, as extraction does) and is extrapolated; the flow I3D likewise on a subset of
    snippets. The output says which figures are extrapolated. TV-L1's cost depends on the content
    (the generated video's flat shapes converge faster than real footage), so the pairs are timed on
    ``--flow-video`` (default: the real Kinetics clip in ../shared) and, for reference, on the
    generated video too.
(c) Peak RSS of ``detect`` on a generated ``--rss-minutes`` video (default 10) for every path of
    ``--paths``, each in a fresh child process, against the 1.5 GB limit. The peak is the child's
    ``VmHWM`` (/proc/self/status), not getrusage's ``ru_maxrss``: a child started by subprocess inherits
    its parent's maxrss at exec (measured: a 10 MB child of an 800 MB parent reports 811 MB), which
    made every path read as this script's own peak.

    PYTHONPATH=. python benchmarks/detect.py [--seconds 60] [--tvl1-pairs 16] [--flow-snippets 8] [--rss-minutes 10]
                                             [--flow-video PATH] [--paths torch/fp32,onnxruntime/int8] [--calibrate DIR]

The default run takes about as long as detecting 12 minutes of video (the peak-RSS child dominates);
``--rss-minutes 0`` skips that part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augrgb.core.files import state_sha256
from augrgb.core.grid import num_snippets
from augrgb.extract.precision import cpu_summary
from augrgb.detect.model import load_detector
from augrgb.detect.pipeline import detect
from augrgb.detect.settings import DetectConfig
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.flow import FlowComputer, encode_for_i3d
from augrgb.extract.runtime import openvino_core
from augrgb.extract.pipeline import ENCODERS
from augrgb.extract.transforms import Preprocess
from augrgb.extract.weights import load_i3d, read_weights_file, weights_path
from augrgb.models.checkpoint import save_stream
from augrgb.models.heads import probabilities
from augrgb.models.stream import Stream, two_stream_logits
from augrgb.synth.generator import FPS, build_video
from augrgb.synth.video import write_mp4

CLASSES = 17  # the built-in benchmark's label set
PATHS = ("torch/fp32", "torch/bf16", "torch/auto", "auto/auto", "onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32",
         "openvino/bf16", "openvino/int8")
RSS_LIMIT_MB = 1536
TARGET = 0.2  # s of compute per s of video: >= 5x real time
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


def config_of(path: str, calibrate: Path) -> DetectConfig:
    """``runtime/precision`` -> the DetectConfig that runs it."""
    runtime, precision = path.split("/")
    return DetectConfig(runtime=runtime, precision=precision, calibrate=str(calibrate) if precision == "int8" else None)


def recorded(out: Path, video: Path) -> str:
    """The "runtime/precision" a ``detect`` run into ``out`` recorded for ``video``."""
    record = json.loads((out / "videos" / f"{video.stem}.json").read_text())
    return f"{record['runtime']}/{record['precision']}"


def timed_detect(video: Path, model: Path, out: Path, config: DetectConfig, weights: Path, cache: Path) -> tuple[float, str]:
    """(seconds, the runtime/precision the run recorded) of one ``detect`` call."""
    start = time.perf_counter()
    results = detect([video], model, out, config, weights=str(weights), cache=str(cache), progress=False,
                     report=lambda _: None)
    elapsed = time.perf_counter() - start
    assert results[0].status == "done", results[0]
    return elapsed, recorded(out, video)


def peak_rss_child(video: Path, model: Path, weights: Path, out: Path, config: DetectConfig, cache: Path) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, runtime/precision recorded) of a fresh process running ``detect`` on ``video`` (its own
    VmHWM, see (c) in the module docstring)."""
    code = ("from augrgb.detect.pipeline import detect; from augrgb.detect.settings import DetectConfig;"
            f"r = detect([{str(video)!r}], {str(model)!r}, {str(out)!r}, DetectConfig(**{config.model_dump()!r}), "
            f"weights={str(weights)!r}, cache={str(cache)!r}, progress=False, report=lambda _: None); "
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]; "
            "print(r[0].status, hwm, r[0].reason or '')")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode or not done.stdout.startswith("done"):
        sys.exit(f"child failed: {done.stdout}{done.stderr[-2000:]}")
    return int(done.stdout.split()[1]) / 1024, time.perf_counter() - start, recorded(out, video)


def i3d_gflops_per_snippet() -> float:
    """Multiply-adds x 2 of the I3D RGB convolutions on one 16x224x224 snippet (counted with forward hooks)."""
    from augrgb.extract.i3d import InceptionI3d

    model, flops = InceptionI3d().eval(), [0]

    def count(module: torch.nn.Conv3d, _inputs: tuple, output: torch.Tensor) -> None:
        per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
        flops[0] += 2 * output.numel() * per_output

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        model.extract_features(torch.zeros(1, 3, 16, 224, 224))
    for hook in hooks:
        hook.remove()
    return flops[0] / 1e9


def gemm_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of a large matrix product in ``dtype`` on all torch threads: the practical peak of this CPU."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


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
    parser.add_argument("--paths", default=",".join(PATHS), help=f"runtime/precision pairs to time (default {','.join(PATHS)}; "
                                                                  "openvino/bf16 is left out on CPUs without bf16)")
    parser.add_argument("--calibrate", type=Path, help="int8: folder of videos to calibrate on (default: a generated 8 s video "
                                                       "of another benchmark scene)")
    parser.add_argument("--gemm-size", type=int, default=2048, help="matrix size of the peak measurement (default 2048)")
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if "openvino/bf16" in paths and "BF16" not in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        paths.remove("openvino/bf16")
        print("openvino/bf16 left out: OpenVINO reports no bf16 support on this CPU")
    if "torch/fp32" not in paths:
        paths.insert(0, "torch/fp32")  # the baseline every row is compared with
    if not args.flow_video.is_file():
        sys.exit(f"{args.flow_video}: no such video for timing TV-L1 (pass --flow-video)")

    weights = weights_path("i3d-rgb")
    if not weights.is_file():
        sys.exit("no cached I3D RGB weights: run `augrgb weights fetch i3d-rgb` first")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; CPU: {cpu_summary()}")
    gflops = i3d_gflops_per_snippet()
    peak = {"fp32": gemm_peak_gflops(torch.float32, args.gemm_size), "bf16": gemm_peak_gflops(torch.bfloat16, args.gemm_size)}
    print(f"I3D RGB: {gflops:.1f} GFLOP per 16x224x224 snippet; {args.gemm_size}^2 matrix product (the practical peak): "
          f"fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s -> at most "
          f"{peak['fp32'] / gflops:.2f} snippets/s fp32, {peak['bf16'] / gflops:.2f} bf16")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_student(tmp / "student.pt", weights)
        load_detector(model)
        cache = tmp / "cache"
        calibrate = args.calibrate
        if calibrate is None and any(p.endswith("/int8") for p in paths):
            calibrate = tmp / "calibrate"
            calibrate.mkdir()
            write_mp4(calibrate / "other.mp4", build_video(0, 1, 8.0, "dense", args.size).iter_frames(), FPS, args.size)
        warm = tmp / "warm.mp4"
        make_video(warm, 1.0, args.size)
        for path in paths:  # export and calibrate the ONNX graphs, and measure auto, into the cache before any timing
            timed_detect(warm, model, tmp / f"warm_{path.replace('/', '_')}", config_of(path, calibrate), weights, cache)

        if args.rss_minutes > 0:
            long_video = tmp / "long.mp4"
            start = time.perf_counter()
            frames = make_video(long_video, args.rss_minutes * 60, args.size)
            print(f"(c) peak RSS, {args.rss_minutes:g}-minute video ({frames} frames, generated in {time.perf_counter() - start:.0f} s):")
            over = []
            for path in paths:
                rss, seconds, ran = peak_rss_child(long_video, model, weights, tmp / f"rss_{path.replace('/', '_')}",
                                                   config_of(path, calibrate), cache)
                verdict = "within" if rss <= RSS_LIMIT_MB else "OVER"
                over += [path] if rss > RSS_LIMIT_MB else []
                print(f"    detect {path:18s} (ran {ran:17s}) in a child process: peak RSS {rss:5.0f} MB ({verdict} the "
                      f"{RSS_LIMIT_MB} MB limit), {seconds:.0f} s ({seconds / (frames / FPS):.3f} s per second of video)")
            print(f"    peak RSS: {'every path within the limit' if not over else 'over the limit: ' + ', '.join(over)}")
            long_video.unlink()

        video = tmp / "video.mp4"
        frames = make_video(video, args.seconds, args.size)
        duration = frames / FPS
        snippets = num_snippets(frames, 16, 16)
        print(f"timed video: {duration:g} s, {frames} frames at {FPS} fps, {args.size}x{args.size}, {snippets} snippets of 16 frames")
        rgb, used = {}, {}
        for path in paths:
            rgb[path], used[path] = timed_detect(video, model, tmp / f"out_{path.replace('/', '_')}", config_of(path, calibrate),
                                                 weights, cache)
        extra = two_stream_extra(video, args.flow_video, frames, args.tvl1_pairs, args.flow_snippets)
        two_stream = rgb["torch/fp32"] + sum(s for _, s, _ in extra)

        scale = (args.size / 224) ** 2  # FLOPs of a snippet at this frame size
        print("\n(a) RGB-only detect, end to end (decode included)")
        print(f"    {'runtime/precision':30s} {'seconds':>8s} {'s/video s':>10s} {'snippets/s':>11s} {'vs torch fp32':>14s} "
              f"{'target 0.2':>11s} {'% of peak':>10s}")
        for path, s in rgb.items():
            name = path if used[path] == path else f"{path} -> {used[path]}"
            ok = "met" if s / duration <= TARGET else f"{s / duration / TARGET:.1f}x off"
            share = snippets / s * gflops * scale / peak["bf16" if used[path].endswith("/bf16") else "fp32"]
            print(f"    {name:30s} {s:8.1f} {s / duration:10.3f} {snippets / s:11.2f} {rgb['torch/fp32'] / s:13.2f}x "
                  f"{ok:>11s} {share:9.0%}")
        print("    (% of peak: I3D FLOPs x snippets/s over the fp32 matrix-product peak, bf16 rows over the bf16 one; "
              "int8 rows over fp32: the int8 peak is higher)")
        print("(b) two-stream pipeline (baseline)")
        print(f"    {'RGB branch = RGB-only torch fp32 run above':35s} {rgb['torch/fp32']:9.1f} {rgb['torch/fp32'] / duration:12.3f}")
        for name, s, extrapolated in extra:
            print(f"    {name} {'[extrapolated]' if extrapolated else ''}\n    {'':35s} {s:9.1f} {s / duration:12.3f}")
        print(f"    {'total':35s} {two_stream:9.1f} {two_stream / duration:12.3f}")
        print("ratio two-stream / RGB-only:  " + ", ".join(f"{p} {two_stream / s:.1f}x" for p, s in rgb.items()))
        best = min(rgb, key=rgb.get)
        print(f"targets: fastest path {best} {rgb[best] / duration:.3f} s per video second (target <= {TARGET}); "
              f">= 2x torch fp32: {rgb['torch/fp32'] / rgb[best]:.2f}x; >= 10x faster than two-stream ({two_stream / rgb[best]:.1f}x)")
        if "auto/auto" in rgb:
            print(f"auto/auto (detect's default, ran {used['auto/auto']}): {rgb['torch/fp32'] / rgb['auto/auto']:.2f}x torch "
                  f"fp32 (target >= 2x), {rgb['auto/auto'] / duration:.3f} s per video second")

if __name__ == "__main__":
    main()
