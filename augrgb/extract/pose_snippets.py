"""Pose snippets: cut a skeleton sequence on the snippet grid, normalise each snippet, encode it with AGCN.

The grid is the RGB one (:mod:`augrgb.core.grid`): ``1 + ceil(max(N - snippet, 0) / stride)``
snippets, snippet i covering frames ``[i*stride, i*stride + snippet)``, frames past the end repeating
the last frame.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from augrgb.core.grid import snippet_frame_indices
from augrgb.extract.skeleton_layout import CENTRE_JOINT, JOINT_NAMES
from augrgb.extract.skeletons import fit_bodies

_SIDES = tuple(JOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))


def cut_snippets(joints: np.ndarray, snippet: int = 16, stride: int = 16) -> np.ndarray:
    """(T, M, V, 3) joints -> (S, snippet, M, V, 3) snippets on the grid, the tail padded with the last frame."""
    return joints[snippet_frame_indices(joints.shape[0], snippet, stride)]


def normalize_snippets(snippets: np.ndarray, face_camera: bool = True) -> np.ndarray:
    """View-normalise snippets (S, T, M, V, 3): translate, then turn the body to face the camera.

    The reference point is the spine-mid joint of the first present body (slot order) at the first frame it
    appears; it moves to the origin, so motion within the snippet (walking, jumping) stays visible. With
    ``face_camera`` the snippet is then rotated about the vertical (y) axis so that the left-to-right
    shoulder plus hip direction of that body at that frame points along +x. Absent bodies stay all zero.
    """
    out = snippets.astype(np.float32, copy=True)
    present = np.abs(out).sum(axis=(3, 4)) > 0  # (S, T, M)
    for s in range(out.shape[0]):
        slots = np.flatnonzero(present[s].any(axis=0))
        if slots.size == 0:
            continue
        body = slots[0]
        ref = out[s, np.flatnonzero(present[s, :, body])[0], body]
        out[s] -= ref[CENTRE_JOINT]
        if face_camera:
            l_sh, r_sh, l_hip, r_hip = (ref[j] for j in _SIDES)
            across = (r_sh - l_sh) + (r_hip - l_hip)
            norm = math.hypot(across[0], across[2])
            if norm > 1e-6:
                cos, sin = across[0] / norm, across[2] / norm
                x, z = out[s, ..., 0].copy(), out[s, ..., 2].copy()
                out[s, ..., 0] = cos * x + sin * z
                out[s, ..., 2] = -sin * x + cos * z
        out[s][~present[s]] = 0.0
    return out


def snippets_to_tensor(snippets: np.ndarray) -> torch.Tensor:
    """Normalised (S, T, M, V, 3) snippets as the AGCN input layout (S, 3, T, V, M)."""
    return torch.from_numpy(np.ascontiguousarray(normalize_snippets(snippets).transpose(0, 4, 1, 3, 2)))


@torch.inference_mode()
def encode_snippets(model: nn.Module, joints: np.ndarray, snippet: int = 16, stride: int = 16,
                    batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """One feature per snippet: (T_frames, M, 25, 3) joints -> (T_snippets, feature_dim) float32.

    ``model`` is an AGCN or TwoStreamAGCN (anything with ``extract_features`` and ``num_person``); bodies
    are padded with absent ones, or reduced to the most active, to match ``model.num_person``.
    """
    joints = fit_bodies(np.asarray(joints, dtype=np.float32), model.num_person)
    indices = snippet_frame_indices(joints.shape[0], snippet, stride)
    was_training = model.training
    model.eval()
    features = []
    for start in range(0, len(indices), batch_size):
        batch = snippets_to_tensor(joints[indices[start:start + batch_size]]).to(device)
        features.append(model.extract_features(batch).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(features)
