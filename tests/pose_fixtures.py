"""Hand-made NTU-layout skeletons for the pose tests: a standing body and simple class-specific motions."""

from __future__ import annotations

import numpy as np

# A person standing 3 m in front of a Kinect, facing it (x: camera's left = person's right, y up, z away).
STANDING = np.array([
    [0.00, 0.90, 3.0], [0.00, 1.15, 3.0], [0.00, 1.50, 3.0], [0.00, 1.65, 3.0],   # spine base, mid, neck, head
    [-0.20, 1.40, 3.0], [-0.25, 1.15, 3.0], [-0.27, 0.92, 3.0], [-0.28, 0.85, 3.0],  # left arm
    [0.20, 1.40, 3.0], [0.25, 1.15, 3.0], [0.27, 0.92, 3.0], [0.28, 0.85, 3.0],      # right arm
    [-0.10, 0.88, 3.0], [-0.11, 0.48, 3.0], [-0.12, 0.08, 3.0], [-0.12, 0.02, 2.9],  # left leg
    [0.10, 0.88, 3.0], [0.11, 0.48, 3.0], [0.12, 0.08, 3.0], [0.12, 0.02, 2.9],      # right leg
    [0.00, 1.40, 3.0], [-0.29, 0.78, 3.0], [-0.25, 0.86, 2.95], [0.29, 0.78, 3.0], [0.25, 0.86, 2.95],
], dtype=np.float32)

MOVING = {  # class -> joints that oscillate and the axis they move along
    0: ((10, 11, 23, 24), 1),  # right hand up and down
    1: ((6, 7, 21, 22), 1),    # left hand up and down
    2: ((13, 14, 15), 2),      # left leg back and forth
}


def motion(label: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, 25, 3): the standing body, jittered and shifted, with the joints of ``label`` oscillating."""
    t = np.arange(frames)
    joints = np.repeat(STANDING[None], frames, axis=0) + rng.normal(0, 0.01, (frames, 25, 3)).astype(np.float32)
    joints += rng.uniform(-0.5, 0.5, 3).astype(np.float32) * np.array([1, 0, 1], np.float32)
    moving, axis = MOVING[label]
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(6, 10)
    joints[:, list(moving), axis] += 0.25 * np.sin(2 * np.pi * t / period + phase)[:, None]
    return joints
