"""MediaPipe Pose throughput on the NTU sample clip: frames/s of estimate_video_poses (video mode: the person
detector runs only when tracking is lost) against a naive loop running detector + landmarks on every frame
(static-image mode). Both include decoding. Needs augrgb[pose].

Usage: PYTHONPATH=. python benchmarks/mediapipe_pose.py [VIDEO]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
from mediapipe.python.solutions.pose import Pose

from augrgb.extract.mediapipe_pose import MODEL_COMPLEXITY, estimate_video_poses

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "ntu_S001C001P001R001A001_rgb.avi"


def naive_frames_per_second(path: Path) -> tuple[float, float]:
    """Per-frame detection without tracking: (frames/s, fraction of frames with a person)."""
    start, found, frames = time.perf_counter(), 0, 0
    with av.open(str(path)) as container, Pose(static_image_mode=True, model_complexity=MODEL_COMPLEXITY) as pose:
        for frame in container.decode(video=0):
            found += pose.process(frame.to_ndarray(format="rgb24")).pose_world_landmarks is not None
            frames += 1
    return frames / (time.perf_counter() - start), found / max(frames, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT, help="video to estimate poses on")
    args = parser.parse_args()
    start = time.perf_counter()
    _, present = estimate_video_poses(args.video)
    ours = len(present) / (time.perf_counter() - start)
    naive, naive_found = naive_frames_per_second(args.video)
    print(f"{args.video.name}: {len(present)} frames, model_complexity={MODEL_COMPLEXITY}")
    print(f"estimate_video_poses (tracking)  : {ours:6.1f} frames/s, person on {present.mean():.0%} of frames")
    print(f"detector on every frame (naive)  : {naive:6.1f} frames/s, person on {naive_found:.0%} of frames")
    print(f"ratio {ours / naive:4.2f}x")


if __name__ == "__main__":
    main()
