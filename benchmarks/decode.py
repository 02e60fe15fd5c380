"""Decoding throughput and memory per backend, beside a naive baseline that holds the whole video.

Writes a synthetic video (default: 10 minutes, 25 fps, 320x240, H.264) unless --video is given, then
decodes it in a fresh process per run and reports frames/s, peak RSS, and the RSS at half way and at
the end (bounded memory: these stay equal). The baseline is what streaming replaces: decord
``get_batch`` of every frame at once. ``decord-forced`` lifts the size limit above which
``iter_frames`` reads with PyAV instead of decord; run it with ``--consumer-ms`` to see why the limit
exists.

    PYTHONPATH=. python benchmarks/decode.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def write_synthetic(path: Path, minutes: float, fps: int, width: int, height: int) -> None:
    """Moving gradients and a moving square: cheap to make, realistic enough for a decoder."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], -1).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(minutes * 60 * fps)):
            frame = np.roll(base, i % width, axis=1)
            y, x = (i * 3) % (height - 32), (i * 5) % (width - 32)
            frame[y : y + 32, x : x + 32] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def child(method: str, video: str, fps: float | None, consumer_ms: float) -> dict:
    """One measured run, in its own process so its RSS belongs to it alone."""
    from augrgb.extract import decode

    base = current_rss_mb()
    start = time.perf_counter()
    if method == "naive-decord-all":
        import decord

        reader = decord.VideoReader(video)
        frames = reader.get_batch(list(range(len(reader)))).asnumpy()
        count, half, end, used = len(frames), current_rss_mb(), current_rss_mb(), "decord"
    else:
        if method == "decord-forced":
            method, decode._DECORD_MAX_BYTES = "decord", float("inf")
        stream = decode.iter_frames(video, fps=fps, backend=method)
        used = stream.backend
        count, half = 0, 0.0
        for _ in stream:
            count += 1
            if count == stream.expected_frames // 2:
                half = current_rss_mb()
            if consumer_ms:
                time.sleep(consumer_ms / 1000)
        end = current_rss_mb()
    seconds = time.perf_counter() - start - count * consumer_ms / 1000
    return {"frames": count, "seconds": seconds, "rss_mb": peak_rss_mb(), "base_mb": base,
            "half_mb": half, "end_mb": end, "used": used}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="decode this file instead of a synthetic one")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic video")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the synthetic video")
    parser.add_argument("--fps", type=float, default=25.0, help="target fps for the streaming runs")
    parser.add_argument("--backends", default="decord,pyav,opencv,decord-forced",
                        help="comma-separated methods to run: backends, and decord-forced (no size limit)")
    parser.add_argument("--consumer-ms", type=float, default=0.0,
                        help="sleep this long per frame, like a slow model consuming the stream (not timed)")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the hold-everything baseline")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "VIDEO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.fps, args.consumer_ms)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if video is None:
            width, height = (int(v) for v in args.size.split("x"))
            video = Path(tmp) / "synthetic.mp4"
            start = time.perf_counter()
            write_synthetic(video, args.minutes, 25, width, height)
            print(f"wrote {video.name}: {args.minutes} min, 25 fps, {width}x{height}"
                  f" ({video.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - start:.0f} s")
        methods = args.backends.split(",") + ([] if args.skip_naive else ["naive-decord-all"])
        rows = []
        for method in methods:
            command = [sys.executable, __file__, "--fps", str(args.fps), "--consumer-ms", str(args.consumer_ms),
                       "--child", method, str(video)]
            result = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append({"method": method, **json.loads(result)})
    naive = next((r for r in rows if r["method"] == "naive-decord-all"), None)
    print(f"{'method':<18}{'read by':>8}{'frames':>8}{'seconds':>9}{'frames/s':>10}{'peak RSS MiB':>14}"
          f"{'at half':>9}{'at end':>8}{'peak vs naive':>15}")
    for r in rows:
        ratio = f"{r['rss_mb'] / naive['rss_mb']:.3f}x" if naive else "-"
        print(f"{r['method']:<18}{r['used']:>8}{r['frames']:>8}{r['seconds']:>9.1f}"
              f"{r['frames'] / r['seconds']:>10.0f}{r['rss_mb']:>14.0f}{r['half_mb']:>9.0f}{r['end_mb']:>8.0f}{ratio:>15}")
    print(f"(RSS after imports, before decoding: {rows[0]['base_mb']:.0f} MiB; streaming runs at {args.fps} fps,"
          " the naive run reads every source frame)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
