"""RGB feature extraction speed and memory, each figure beside a naive baseline from the same run.

Naive baseline: a pytorch-i3d-style forward (explicit F.pad before every convolution, separate
BatchNorm, contiguous layout), one snippet at a time, fp32, frames decoded beforehand.
Ours: the real pipeline (decode in a background thread, preprocess, batches, folded BatchNorm,
channels-last-3d, inference_mode), in fp32 and bf16, end to end on the same video; then the same
pipeline with the I3D on OpenVINO in fp32, bf16 (where the CPU has it) and int8 (calibrated on
``--calibrate``, default the folder of ``--video``; graphs exported, calibrated and compiled before
timing), each also as a ratio to torch fp32 from this run.
Then the peak RSS of extracting a generated 10-minute 25 fps video (must stay under 1.5 GB).

    python benchmarks/extract_rgb.py [--video PATH] [--snippets 12] [--size 224] [--minutes 10] [--calibrate DIR]
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augrgb.core.errors import InputError
from augrgb.core.grid import iter_snippets
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.i3d import MaxPool3dSame, Unit3D, _pad_same
from augrgb.extract.pipeline import encode_video
from augrgb.extract.precision import cpu_summary
from augrgb.extract.runtime import make_encoder
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.transforms import Preprocess
from augrgb.extract.weights import load_i3d

REPO = Path(__file__).resolve().parents[1]


class PaddedMaxPool(MaxPool3dSame):
    """pytorch-i3d style max pooling: an explicit F.pad copy before every pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


def naive_model(model: torch.nn.Module) -> torch.nn.Module:
    """pytorch-i3d style: every unit and pool pads with F.pad, convolutions have no padding of their own."""
    naive = copy.deepcopy(model).eval()
    for unit in naive.modules():
        if isinstance(unit, Unit3D):
            unit.symmetric = False
            unit.conv3d.padding = (0, 0, 0)
        elif isinstance(unit, MaxPool3dSame):
            unit.__class__ = PaddedMaxPool
    return naive


def clip_of(video: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``video`` at 25 fps re-encoded to a temporary mp4 (same input for every path)."""
    import av

    out = Path(tempfile.mkdtemp()) / "bench.mp4"
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.pix_fmt, stream.bit_rate = "yuv420p", 4_000_000
        for i, frame in enumerate(decode.iter_frames(video, fps=25)):
            if i == frames:
                break
            if i == 0:
                stream.height, stream.width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
            img = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
            container.mux(stream.encode(img))
        container.mux(stream.encode(None))
    return out


def make_long_video(path: Path, minutes: float) -> None:
    """A synthetic 25 fps 320x240 video of ``minutes`` minutes (moving gradient and noise)."""
    import av

    n = int(minutes * 60 * 25)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, size=(240, 320, 3), dtype=np.uint8)
    x = np.arange(320, dtype=np.uint16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(n):
            row = ((x + 3 * i) % 256).astype(np.uint8)
            img = np.broadcast_to(row[None, :, None], (240, 320, 3)) + noise
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        container.mux(stream.encode(None))


def peak_rss_child(video: Path, cache_weights: Path) -> float:
    """Peak RSS (MB) of a fresh process extracting ``video`` end to end: the child's own VmHWM, since getrusage's
    maxrss of a child carries its parent's peak across exec (see benchmarks/detect.py)."""
    code = (
        "from augrgb.extract.pipeline import extract; from augrgb.extract.settings import ExtractConfig;"
        f"r = extract([{str(video)!r}], {str(video.parent / 'store')!r}, ExtractConfig(), weights={str(cache_weights)!r}, progress=False);"
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]; "
        "print(hwm, r[0].status, r[0].snippets, r[0].reason)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    hwm, report = out.stdout.strip().splitlines()[-1].split(" ", 1)
    print(f"  child: {report}")
    return int(hwm) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=REPO.parent / "shared/data/videos/kinetics_arm_wrestling.mp4")
    parser.add_argument("--snippets", type=int, default=12, help="snippets to time (16 frames each)")
    parser.add_argument("--minutes", type=float, default=10, help="length of the generated video for peak RSS (0: skip)")
    parser.add_argument("--size", type=int, default=224, help="crop size (short side scaled by 256/224; default 224)")
    parser.add_argument("--weights", type=Path, help="I3D RGB weights (default: the cache)")
    parser.add_argument("--calibrate", type=Path, help="OpenVINO int8: folder of videos to calibrate on (default: the folder of --video)")
    args = parser.parse_args()

    model, sha, _ = load_i3d("rgb", path=args.weights)
    weights = args.weights or Path(__import__("augrgb.extract.weights", fromlist=["x"]).weights_path("i3d-rgb"))
    size, short_side = args.size, round(args.size * 256 / 224)
    video = clip_of(args.video, args.snippets * 16)
    frames = [Preprocess(size=size, short_side=short_side)(f) for f in decode.iter_frames(video, fps=25)]
    snippets = [s.frames for s in iter_snippets(iter(frames), 16, 16)]
    n = len(snippets)
    print(f"video: {args.video.name}, first {n * 16} frames at 25 fps, {n} snippets of 16x{size}x{size}; "
          f"torch threads {torch.get_num_threads()}; CPU: {cpu_summary()}")

    naive = naive_model(model)
    with torch.no_grad():
        naive.extract_features(torch.zeros(1, 3, 16, size, size))
        start = time.perf_counter()
        for s in snippets:
            x = torch.from_numpy(s).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
            naive.extract_features(x)
        naive_s = time.perf_counter() - start
    rows = [("naive per-snippet fp32 (decode excluded)", naive_s)]
    encoders = [(f"augrgb {p} end to end (decode included)", lambda p=p: SnippetEncoder(model, p)) for p in ("fp32", "bf16")]
    calibrate = args.calibrate or args.video.parent
    encoders += [(f"augrgb openvino {p} end to end", lambda p=p: make_encoder(
        model, sha, "openvino", p, calibrate=calibrate if p == "int8" else None, short_side=short_side))
        for p in ("fp32", "bf16", "int8")]
    for name, build in encoders:
        cfg = ExtractConfig(batch_size=8, size=size, short_side=short_side)
        try:
            encoder = build()
            encoder.features(np.stack(snippets[:2]))  # warm-up (OpenVINO: export, calibrate and compile)
        except InputError as refused:
            print(f"{name}: skipped, {refused}")
            continue
        start = time.perf_counter()
        feats, _ = encode_video(video, encoder, cfg)
        rows.append((name, time.perf_counter() - start))
        assert feats.shape == (n, 1024)
    torch_fp32 = rows[1][1]
    print(f"{'path':45s} {'snippets/s':>10s} {'frames/s':>9s} {'vs naive':>9s} {'vs torch fp32':>14s}")
    for name, seconds in rows:
        print(f"{name:45s} {n / seconds:10.3f} {16 * n / seconds:9.2f} {naive_s / seconds:8.2f}x {torch_fp32 / seconds:13.2f}x")

    if args.minutes > 0:
        with tempfile.TemporaryDirectory() as tmp:
            long_video = Path(tmp) / "long.mp4"
            start = time.perf_counter()
            make_long_video(long_video, args.minutes)
            print(f"peak RSS, {args.minutes:g}-minute 25 fps 320x240 video (generated in {time.perf_counter() - start:.0f} s):")
            start = time.perf_counter()
            rss = peak_rss_child(long_video, weights)
            print(f"  peak RSS {rss:.0f} MB (limit 1536 MB) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
