"""Same seed, same bytes: `augrgb synth` and `augrgb demo` do not depend on Python's hash randomisation.

Each command runs in two fresh interpreters with different PYTHONHASHSEED values, each in its own
working directory with the same relative output folder, and every output file is compared. Files that
record when or how long something ran are compared without those fields; PyTorch checkpoints are
compared by content (torch.save writes a random id into every file); TensorBoard event files (named by
time, host and pid) by the scalars they hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from augrgb.core.files import payload_sha256

# Keys that hold wall-clock times, timestamps, memory readings or the host: everything else must match.
VOLATILE = {"started", "updated", "seconds", "wall_seconds", "peak_memory", "finished", "host", "git_commit"}


def run_twice(tmp_path: Path, args: list[str]) -> tuple[Path, Path]:
    """Run ``augrgb ARGS`` in two interpreters with hash seeds 1 and 2; return their working directories."""
    folders = []
    for hash_seed in ("1", "2"):
        cwd = tmp_path / f"hashseed{hash_seed}"
        cwd.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-m", "augrgb.cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        folders.append(cwd)
    return folders[0], folders[1]


def strip_volatile(obj):
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


def content(path: Path):
    """What must be identical in ``path``: bytes, or the non-volatile part of a JSON record or checkpoint."""
    if path.suffix == ".pt":
        return payload_sha256(strip_volatile(torch.load(path, map_location="cpu", weights_only=True)))
    if path.name in ("run.json", "demo.json", "manifest.json"):
        return strip_volatile(json.loads(path.read_text()))
    if path.suffix == ".lock" or ".locks" in path.parts:  # lock files name the process that held them
        return None
    return path.read_bytes()


TENSORBOARD_EVENTS = "events.out.tfevents."  # file names carry the time, host and pid: compared by their scalars


def scalars(folder: Path) -> dict[str, list[tuple[int, str]]]:
    """The TensorBoard scalars logged into ``folder``: tag -> [(step, repr of the value)] (NaN equals NaN), without
    the wall times."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, repr(e.value)) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def assert_same_outputs(a: Path, b: Path) -> list[str]:
    tb_a = sorted({str(p.parent.relative_to(a)) for p in a.rglob(f"{TENSORBOARD_EVENTS}*")})
    tb_b = sorted({str(p.parent.relative_to(b)) for p in b.rglob(f"{TENSORBOARD_EVENTS}*")})
    assert tb_a == tb_b and all(scalars(a / d) == scalars(b / d) for d in tb_a)
    files_a = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file() and TENSORBOARD_EVENTS not in p.name)
    files_b = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file() and TENSORBOARD_EVENTS not in p.name)
    assert files_a == files_b
    differ = [name for name in files_a if content(a / name) != content(b / name)]
    assert differ == []
    return files_a


def test_synth_is_the_same_bytes_under_any_hash_seed(tmp_path):
    a, b = run_twice(tmp_path, ["synth", "--out", "bench", "--videos", "5", "--seconds", "4", "--size", "48",
                                "--seed", "3"])
    files = assert_same_outputs(a / "bench", b / "bench")
    assert {"annotations.json", "classes.txt", "synth.json", "videos/synth_00004.mp4",
            "skeletons/synth_00004.npy"} <= set(files)
    manifest = json.loads((a / "bench" / "synth.json").read_text())
    assert manifest["digest"]["files"] == 12 and len(manifest["digest"]["sha256"]) == 64


def test_synth_digest_changes_with_any_file(tmp_path):
    from augrgb.synth.generator import generate, output_digest

    out = generate(tmp_path / "b", videos=2, seconds=2, size=32, seed=0)
    recorded = json.loads((out / "synth.json").read_text())["digest"]["sha256"]
    assert output_digest(out, 2) == recorded
    skeleton = out / "skeletons" / "synth_00001.npy"
    data = bytearray(skeleton.read_bytes())
    data[-1] ^= 1
    skeleton.write_bytes(bytes(data))
    assert output_digest(out, 2) != recorded


@pytest.mark.slow
def test_tiny_demo_is_the_same_under_any_hash_seed(tmp_path, i3d_rgb_weights):
    """Videos, skeletons, annotations, every feature file, every checkpoint, the table and the detections."""
    cache = str(i3d_rgb_weights.parents[1])
    a, b = run_twice(tmp_path, ["demo", "--size", "tiny", "--out", "demo", "--quiet", "--cache-dir", cache])
    files = assert_same_outputs(a / "demo", b / "demo")
    assert {"results.md", "bench/synth.json", "features/synth_00000.h5", "runs/seed0/student_pose/best.pt",
            "models/pose_encoder.pt", "detect/detections.json"} <= set(files)


def test_the_encoder_writes_the_same_bytes_every_time(tmp_path):
    """libx264 with macroblock-tree rate control gave 4-7 different files in 10 encodes of these frames in one
    process (its lookahead's asm reads memory whose contents vary); the writer's settings give one."""
    import hashlib

    import numpy as np

    from augrgb.synth.generator import build_video
    from augrgb.synth.video import write_mp4

    frames = list(build_video(0, 4, 4, "dense", 48).iter_frames())
    digests, churn = set(), []
    for i in range(8):
        churn.append(np.empty(1000 + 7919 * i, np.uint8))  # move the allocator around between encodes
        write_mp4(tmp_path / "v.mp4", iter(frames), 25, 48)
        digests.add(hashlib.sha256((tmp_path / "v.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1
