"""The NTU RGB+D 25-joint body layout (Kinect v2) that every pose source is mapped onto, and that the
synthetic actors of :mod:`augrgb.synth` are built on: the one list of joint names.

Joint indices are 0-based here (the NTU documentation counts from 1). The bone list is the one
ST-GCN and 2s-AGCN use: a tree rooted at the spine-shoulder joint, each joint paired with its parent.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 25

JOINT_NAMES: tuple[str, ...] = (
    "spine_base", "spine_mid", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
    "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
)

JOINT: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
"""Index of each joint by name."""

ROOT_JOINT = JOINT_NAMES.index("spine_shoulder")
CENTRE_JOINT = JOINT_NAMES.index("spine_mid")

# (child, parent), 1-based as published for NTU RGB+D in ST-GCN / 2s-AGCN; converted below.
NTU_BONES_1BASED: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
    (22, 23), (23, 8), (24, 25), (25, 12),
)
BONES: tuple[tuple[int, int], ...] = tuple((c - 1, p - 1) for c, p in NTU_BONES_1BASED)


def parents() -> np.ndarray:
    """Parent index of every joint; the root (spine shoulder) is its own parent."""
    parent = np.arange(NUM_JOINTS)
    for child, par in BONES:
        parent[child] = par
    return parent
