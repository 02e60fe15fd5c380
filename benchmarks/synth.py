"""Speed of the benchmark generator on one core: rendering alone, rendering + H.264 encoding, beside a naive renderer.

The naive baseline does per frame what the real renderer does once per video: it rebuilds the room
(textures, perspective floor, clutter) and the projection, depth order, widths and shading for that
single frame. Both produce the same pixels (checked below), so the ratio is what precomputation and
vectorisation over frames buy.

    PYTHONPATH=. python benchmarks/synth.py [--size 224] [--seconds 10] [--naive-frames 50]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from augrgb.synth.generator import FPS, build_video, video_streams
from augrgb.synth.render import FrameRenderer
from augrgb.synth.scene import build_scene
from augrgb.synth.skeleton import BodyPoints
from augrgb.synth.video import video_codec, write_mp4


def naive_frame(video, seed: int, index: int, t: int) -> np.ndarray:
    """Frame ``t`` computed from scratch: scene rebuilt, one frame projected, sorted, shaded and drawn."""
    renderer = video.renderer
    scene = build_scene(video_streams(seed, index)[5], video.camera, renderer.scene.size, video.frames, FPS)
    k = t % len(scene.noise_up)
    one = dataclasses.replace(
        scene, offset=scene.offset[t:t + 1], gain=scene.gain[t:t + 1], noise_up=scene.noise_up[k:k + 1],
        noise_down=scene.noise_down[k:k + 1],
        distractors=tuple(dataclasses.replace(d, centre=d.centre[t:t + 1], angle=d.angle[t:t + 1]) for d in scene.distractors))
    body = BodyPoints(video.body.joints[t:t + 1], video.body.head_rot[t:t + 1])
    return FrameRenderer(body, video.shape, video.camera, one, renderer.look).render(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="frame size in pixels")
    parser.add_argument("--seconds", type=float, default=10.0, help="video length")
    parser.add_argument("--naive-frames", type=int, default=50, help="frames rendered by the naive baseline")
    parser.add_argument("--videos", type=int, default=3, help="videos averaged over")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    setup = render = encode = naive = 0.0
    frames = naive_count = 0
    worst = 0.0
    for index in range(args.videos):
        start = time.perf_counter()
        video = build_video(0, index, args.seconds, "dense", args.size)
        setup += time.perf_counter() - start

        start = time.perf_counter()
        rendered = [video.frame(t) for t in range(video.frames)]
        render += time.perf_counter() - start
        frames += video.frames

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_mp4(Path(tmp) / "v.mp4", video.iter_frames(), FPS, args.size)
            encode += time.perf_counter() - start

        start = time.perf_counter()
        steps = np.linspace(0, video.frames - 1, args.naive_frames).astype(int)
        slow = [naive_frame(video, 0, index, int(t)) for t in steps]
        naive += time.perf_counter() - start
        naive_count += len(steps)
        worst = max(worst, max(np.abs(s.astype(int) - rendered[t]).max() for s, t in zip(slow, steps)))

    fast_fps, naive_fps, full_fps = frames / render, naive_count / naive, frames / encode
    print(f"synth generator, {args.size}x{args.size}, {args.videos} videos x {args.seconds:g} s, one thread, "
          f"encoder {video_codec()[0]}")
    print(f"  naive per-frame renderer     {naive_fps:8.1f} frames/s")
    print(f"  renderer                     {fast_fps:8.1f} frames/s   ({fast_fps / naive_fps:.1f}x naive)")
    print(f"  renderer + encode (mp4)      {full_fps:8.1f} frames/s   ({full_fps / naive_fps:.1f}x naive)")
    print(f"  per-video setup (timeline, kinematics, room, projections) {setup / args.videos * 1000:.0f} ms")
    print(f"  largest pixel difference naive vs renderer: {worst}")


if __name__ == "__main__":
    main()
