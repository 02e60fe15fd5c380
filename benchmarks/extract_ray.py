"""Wall time of RGB extraction on the same videos: local engine (1 process, N processes) vs Ray engine.

Baseline: the local engine with one process (videos one after another, all CPU threads).
The Ray engine runs one worker per CPU: once starting its own local instance inside the timing
(what ``augrgb extract --engine ray`` costs on one machine), once on a local instance of N CPUs
started beforehand (as on a running cluster). Workers load the weights inside the timing. Each row's ratio is
the baseline's wall time over its own. Features of every engine are checked against the baseline.

    python benchmarks/extract_ray.py [--videos 4] [--snippets 3] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from augrgb.extract.engines import LocalEngine, RayEngine, import_ray
from augrgb.extract.pipeline import extract
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.store import FeatureStore


def make_videos(folder: Path, count: int, snippets: int) -> list[Path]:
    """``count`` synthetic 25 fps 320x240 videos of ``snippets`` 16-frame snippets each (moving gradient and noise)."""
    rng = np.random.default_rng(0)
    x = np.arange(320, dtype=np.uint16)
    paths = []
    for v in range(count):
        path = folder / f"clip{v}.mp4"
        noise = rng.integers(0, 40, size=(240, 320, 3), dtype=np.uint8)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            for i in range(16 * snippets):
                row = ((x + (3 + v) * i) % 256).astype(np.uint8)
                img = np.broadcast_to(row[None, :, None], (240, 320, 3)) + noise
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
            container.mux(stream.encode(None))
        paths.append(path)
    return paths


def timed(videos: list[Path], store: Path, cfg: ExtractConfig, engine, weights: str | None) -> float:
    start = time.perf_counter()
    results = extract(videos, store, cfg, weights=weights, progress=False, engine=engine, report=lambda line: None)
    seconds = time.perf_counter() - start
    assert all(r.status == "done" for r in results), [r for r in results if r.status != "done"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4, help="number of videos")
    parser.add_argument("--snippets", type=int, default=3, help="16-frame snippets per video")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray instance, and local processes")
    parser.add_argument("--weights", help="I3D RGB weights (default: the cache)")
    args = parser.parse_args()
    ray = import_ray()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "videos").mkdir()
        videos = make_videos(root / "videos", args.videos, args.snippets)
        snippets = args.videos * args.snippets
        print(f"{args.videos} videos x {args.snippets} snippets of 16x224x224 (fp32, CPU), {os.cpu_count()} CPUs here")
        rows = [("local engine, 1 process (baseline)", timed(videos, root / "base", ExtractConfig(), LocalEngine(), args.weights))]
        rows.append((f"local engine, {args.cpus} processes",
                     timed(videos, root / "procs", ExtractConfig(workers=args.cpus), LocalEngine(), args.weights)))

        def ray_run(store: str) -> float:
            return timed(videos, root / store, ExtractConfig(), RayEngine(cpus_per_task=1), args.weights)

        rows.append(("ray engine, starting its own instance (all CPUs)", ray_run("ray_cold")))
        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        rows.append((f"ray engine, running instance of {args.cpus} CPUs", ray_run("ray_warm")))
        ray.shutdown()

        base = FeatureStore(root / "base")
        for store in ("procs", "ray_warm", "ray_cold"):
            for vid in base.video_ids():
                np.testing.assert_allclose(FeatureStore(root / store).read(vid, "rgb")[0], base.read(vid, "rgb")[0],
                                           rtol=1e-4, atol=1e-4)
        print(f"{'engine':48s} {'wall s':>7s} {'snippets/s':>10s} {'vs baseline':>11s}")
        for name, seconds in rows:
            print(f"{name:48s} {seconds:7.1f} {snippets / seconds:10.2f} {rows[0][1] / seconds:10.2f}x")
        print("features of every engine match the baseline within 1e-4")


if __name__ == "__main__":
    main()
