"""3D poses estimated from raw video with MediaPipe Pose, mapped onto the NTU 25-joint layout.

Optional extra ``augrgb[pose]`` (``mediapipe==0.10.21``, which carries its model files and runs
offline; it pins numpy<2). Only ``model_complexity=1`` (the bundled "full" landmark model) is used.
MediaPipe tracks one person; its 33 world landmarks (metres, origin at the hip midpoint) become one
NTU body. Frames without a detected person are filled from their neighbours across short gaps and
flagged in ``present``. The mapping is tabulated in ``docs/poses.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from augrgb.errors import InputError
from augrgb.extract.skeleton_layout import JOINT_NAMES, NUM_JOINTS
from augrgb.extract.skeletons import Skeleton

MODEL_COMPLEXITY = 1  # the only landmark model shipped inside the mediapipe wheel ("full")
MAX_GAP = 5  # frames without a person filled from neighbours (0.2 s at 25 fps); longer gaps are zeros

LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

# Every NTU joint as a weighted sum of MediaPipe landmarks (weights sum to one). Both use the person's
# own left/right. Hand tips extrapolate past the index/pinky knuckles: wrist + 2 (knuckle midpoint - wrist).
NTU_FROM_MEDIAPIPE: dict[str, dict[str, float]] = {
    "spine_base": {"left_hip": 0.5, "right_hip": 0.5},
    "spine_mid": {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25},
    "neck": {"left_shoulder": 0.25, "right_shoulder": 0.25, "mouth_left": 0.25, "mouth_right": 0.25},
    "head": {"left_ear": 0.5, "right_ear": 0.5},
    "spine_shoulder": {"left_shoulder": 0.5, "right_shoulder": 0.5},
    **{f"{side}_{joint}": {f"{side}_{joint}": 1.0} for side in ("left", "right")
       for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "thumb")},
    **{f"{side}_hand": {f"{side}_wrist": 1 / 3, f"{side}_index": 1 / 3, f"{side}_pinky": 1 / 3} for side in ("left", "right")},
    **{f"{side}_hand_tip": {f"{side}_wrist": -1.0, f"{side}_index": 1.0, f"{side}_pinky": 1.0} for side in ("left", "right")},
    **{f"{side}_foot": {f"{side}_foot_index": 1.0} for side in ("left", "right")},
}

# MediaPipe world axes follow the image (x right, y down, z away from the camera); NTU/Kinect camera space
# has x to the camera's left, y up, z away. A 180-degree turn about z maps one onto the other.
AXES_TO_NTU = np.array([-1.0, -1.0, 1.0], dtype=np.float32)


def mapping_matrix() -> np.ndarray:
    """(25, 33) float32 weights W with ntu_joints = W @ mediapipe_landmarks."""
    weights = np.zeros((NUM_JOINTS, len(LANDMARKS)), dtype=np.float32)
    for joint, terms in NTU_FROM_MEDIAPIPE.items():
        for landmark, weight in terms.items():
            weights[JOINT_NAMES.index(joint), LANDMARKS.index(landmark)] = weight
    return weights


def landmarks_to_ntu(landmarks: np.ndarray) -> np.ndarray:
    """World landmarks (..., 33, 3) in MediaPipe axes -> NTU joints (..., 25, 3) in NTU camera axes."""
    return np.einsum("jl,...lc->...jc", mapping_matrix(), landmarks).astype(np.float32) * AXES_TO_NTU


def fill_gaps(joints: np.ndarray, present: np.ndarray, max_gap: int = MAX_GAP) -> np.ndarray:
    """Fill runs of absent frames in (T, V, 3) joints: runs of at most ``max_gap`` frames are linearly
    interpolated between the neighbouring detections (held at the sequence ends); longer runs are zeros."""
    out = np.where(present[:, None, None], joints, 0.0).astype(np.float32)
    num_frames = len(present)
    t = 0
    while t < num_frames:
        if present[t]:
            t += 1
            continue
        end = t
        while end < num_frames and not present[end]:
            end += 1
        if end - t <= max_gap and (t > 0 or end < num_frames):
            before, after = (out[t - 1] if t > 0 else out[end]), (out[end] if end < num_frames else out[t - 1])
            weight = (np.arange(t, end) - (t - 1))[:, None, None] / (end - t + 1)
            out[t:end] = (1 - weight) * before + weight * after
        t = end
    return out


def _pose_solution():
    """MediaPipe's Pose solution class, or a one-line ImportError telling how to install it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # silence MediaPipe's native INFO/WARNING logging
    try:
        from mediapipe.python.solutions.pose import Pose
    except ImportError:
        raise ImportError("pose estimation needs MediaPipe: pip install 'augrgb[pose]'") from None
    return Pose


def estimate_poses(frames: Iterable[np.ndarray], max_gap: int = MAX_GAP, min_detection_confidence: float = 0.5,
                   min_tracking_confidence: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Estimate one body per frame from RGB uint8 frames (H, W, 3) (grayscale (H, W) accepted).

    Returns joints (T, 1, 25, 3) float32 in metres (NTU layout and axes, origin at the hip midpoint) and
    present (T,) bool, True where MediaPipe found a person; other frames are gap-filled (see :func:`fill_gaps`).
    """
    pose_class = _pose_solution()
    detections, present = [], []
    with pose_class(static_image_mode=False, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=True,
                    enable_segmentation=False, min_detection_confidence=min_detection_confidence,
                    min_tracking_confidence=min_tracking_confidence) as pose:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.ndim == 2:
                frame = np.repeat(frame[:, :, None], 3, axis=2)
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"frames must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
            result = pose.process(np.ascontiguousarray(frame))
            world = result.pose_world_landmarks
            if world is None:
                detections.append(np.zeros((len(LANDMARKS), 3), np.float32))
                present.append(False)
            else:
                detections.append(np.array([(p.x, p.y, p.z) for p in world.landmark], dtype=np.float32))
                present.append(True)
    present_array = np.array(present, dtype=bool)
    if not detections:
        return np.zeros((0, 1, NUM_JOINTS, 3), np.float32), present_array
    joints = fill_gaps(landmarks_to_ntu(np.stack(detections)), present_array, max_gap)
    return joints[:, None], present_array


def _video_frames(path: Path) -> Iterable[np.ndarray]:
    """RGB frames of a video decoded with PyAV (until the project's decode module is wired in)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def estimate_video_poses(path: str | Path, max_gap: int = MAX_GAP) -> tuple[Skeleton, np.ndarray]:
    """Estimate poses on every frame of a video file: (Skeleton with one body, present (T,) bool)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(path, "no video stream")
            rate = container.streams.video[0].average_rate
        joints, present = estimate_poses(_video_frames(path), max_gap=max_gap)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, f"cannot decode video ({exc.__class__.__name__}: {exc})") from None
    if len(present) == 0:
        raise InputError(path, "no frames decoded")
    return Skeleton(joints, str(path), float(rate) if rate else None), present
