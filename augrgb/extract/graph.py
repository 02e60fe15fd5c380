"""Skeleton graph for graph convolution: the spatial partition of ST-GCN / 2s-AGCN.

Three subsets of the adjacency: the joint itself, its inward neighbours (farther from the root,
features flowing towards the body centre) and its outward neighbours (closer to the root). A graph
convolution computes ``y[..., w] = sum_v x[..., v] * A[v, w]``: row = source joint, column = target.
Each subset is normalised so that every column with neighbours sums to one (mean over neighbours).
"""

from __future__ import annotations

import numpy as np

from augrgb.extract.skeleton_layout import BONES, NUM_JOINTS


def normalize_columns(adjacency: np.ndarray) -> np.ndarray:
    """Divide every column by its sum (the target's in-degree); all-zero columns stay zero."""
    degree = adjacency.sum(axis=0, keepdims=True)
    return np.divide(adjacency, degree, out=np.zeros_like(adjacency), where=degree > 0)


def spatial_partition(bones: tuple[tuple[int, int], ...] = BONES, num_joints: int = NUM_JOINTS) -> np.ndarray:
    """Adjacency subsets (3, V, V) float32: identity, inward (child -> parent), outward (parent -> child)."""
    inward = np.zeros((num_joints, num_joints), dtype=np.float64)
    for child, parent in bones:
        inward[child, parent] = 1.0
    subsets = (np.eye(num_joints), normalize_columns(inward), normalize_columns(inward.T))
    return np.stack(subsets).astype(np.float32)
