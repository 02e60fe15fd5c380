"""Tiny generated feature stores for stage-2 tests: the teacher modality is informative, RGB is weak.

Each video has a few action segments on a 1 fps-per-snippet grid (fps 16, snippet 16, stride 16,
so snippet t is centred at t + 0.5 s). Pose features carry a clean class code plus small noise;
RGB features carry the same code scaled down under strong noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from augrgb.extract.store import FeatureStore

GRID = {"fps": 16.0, "snippet": 16, "stride": 16, "crop": "center", "encoder": "synthetic",
        "weights_sha256": "0" * 64}


def make_store(root: Path, *, videos: int = 24, test_videos: int = 4, classes: int = 4, length: tuple[int, int] = (20, 36),
               rgb_dim: int = 12, pose_dim: int = 8, sparse: bool = False, seed: int = 0,
               rgb_signal: float = 0.6, rgb_noise: float = 1.0) -> tuple[Path, Path]:
    """Write ``root/store`` (rgb + pose per video) and ``root/annotations.json`` (dense JSON; the
    first ``videos`` are training, then ``test_videos`` testing). Returns (store, annotations)."""
    rng = np.random.default_rng(seed)
    store = FeatureStore(root / "store")
    code_rgb = rng.normal(size=(classes + 1, rgb_dim))
    code_pose = rng.normal(size=(classes + 1, pose_dim)) * 2
    gt = {}
    for v in range(videos + test_videos):
        vid = f"vid{v:03d}"
        t = int(rng.integers(length[0], length[1] + 1))
        active = np.zeros((t, classes), dtype=bool)
        actions = []
        cursor = int(rng.integers(0, 4))
        while cursor < t - 3:
            c = int(rng.integers(classes))
            n = int(rng.integers(3, 9))
            stop = min(cursor + n, t)
            actions.append([c, float(cursor), float(stop - 1) + 0.9])   # covers the centres cursor+.5 .. stop-.5
            active[cursor:stop, c] = True
            if not sparse and rng.random() < 0.4:                          # a concurrent action (dense only)
                c2 = (c + 1 + int(rng.integers(classes - 1))) % classes
                actions.append([c2, float(cursor), float(stop - 1) + 0.9])
                active[cursor:stop, c2] = True
            cursor = stop + int(rng.integers(1, 4))
        weights = np.concatenate([active, ~active.any(1, keepdims=True)], axis=1).astype(float)
        pose = weights @ code_pose + 0.1 * rng.normal(size=(t, pose_dim))
        rgb = rgb_signal * weights @ code_rgb + rgb_noise * rng.normal(size=(t, rgb_dim))
        store.write(vid, "rgb", rgb.astype(np.float32), {**GRID, "frame_count": t * 16})
        store.write(vid, "pose", pose.astype(np.float32), {**GRID, "frame_count": t * 16, "encoder": "synthetic-agcn"})
        gt[vid] = {"subset": "training" if v < videos else "testing", "duration": t * 1.0, "actions": actions}
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps(gt))
    (root / "classes.txt").write_text("".join(f"action{c}\n" for c in range(classes)))
    return root / "store", annotations


def dataset_config(classes: int = 4, sparse: bool = False) -> dict:
    """The dataset section matching :func:`make_store`."""
    return {"name": "synthetic", "num_classes": classes, "head": "softmax" if sparse else "sigmoid",
            "protocol": "pku-mmd" if sparse else "per-frame", "annotation_format": "dense-json",
            "fps": 16.0, "snippet": 16, "stride": 16}
