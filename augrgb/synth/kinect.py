"""What a depth sensor's skeleton tracker would report: jittery joints and dropped frames.

Noise grows with distance (depth error of time-of-flight sensors grows roughly with z squared) and is
larger on the extremities (hands, thumbs, feet) than on the trunk; it is temporally correlated, as
tracker jitter is. Dropped frames are all-zero, as in Kinect-recorded datasets (NTU RGB+D, PKU-MMD).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from augrgb.extract.skeleton_layout import JOINT

BODIES = 2  # NTU RGB+D / 2s-AGCN layout: up to two bodies per frame; the second is absent (zeros) here

_EXTREMITIES = ("left_hand", "right_hand", "left_hand_tip", "right_hand_tip", "left_thumb", "right_thumb",
                "left_foot", "right_foot")
_LIMBS = ("left_wrist", "right_wrist", "left_elbow", "right_elbow", "left_ankle", "right_ankle", "left_knee", "right_knee")


def joint_noise_scale() -> np.ndarray:
    """Per-joint jitter (metres at 3 m): trunk 5 mm, elbows/wrists/knees/ankles 8 mm, hands/feet 15 mm."""
    scale = np.full(25, 0.005)
    scale[[JOINT[j] for j in _LIMBS]] = 0.008
    scale[[JOINT[j] for j in _EXTREMITIES]] = 0.015
    return scale


def sensor_skeleton(camera_joints: np.ndarray, rng: np.random.Generator, fps: float) -> np.ndarray:
    """(T, 25, 3) true camera-space joints -> (T, BODIES, 25, 3) float32 as a sensor reports them."""
    frames = camera_joints.shape[0]
    depth_factor = np.clip((camera_joints[..., 2:3] / 3.0) ** 2, 0.25, 2.0)
    jitter = gaussian_filter1d(rng.standard_normal((frames, 25, 3)), sigma=0.15 * fps, axis=0, mode="nearest")
    jitter /= max(float(jitter.std()), 1e-9)
    white = 0.1 * rng.standard_normal((frames, 25, 3))
    noisy = camera_joints + (jitter + white) * joint_noise_scale()[None, :, None] * depth_factor
    out = np.zeros((frames, BODIES, 25, 3), np.float32)
    out[:, 0] = noisy
    dropped = np.zeros(frames, bool)
    rate = rng.uniform(0.0, 0.01)  # chance per frame that tracking is lost
    for start in np.flatnonzero(rng.random(frames) < rate):
        dropped[start:start + rng.integers(1, 13)] = True
    out[dropped] = 0.0
    return out
