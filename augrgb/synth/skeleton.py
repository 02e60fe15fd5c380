"""The NTU RGB+D 25-joint body: body proportions and vectorised forward kinematics.

Joint order and bones are NTU RGB+D's (Kinect v2), from :mod:`augrgb.extract.skeleton_layout`. In NTU's
own 1-based numbering: 1 base of spine, 2 middle of spine, 3 neck, 4 head, 5 left shoulder, 6 left elbow,
7 left wrist, 8 left hand, 9 right shoulder, 10 right elbow, 11 right wrist, 12 right hand, 13 left hip,
14 left knee, 15 left ankle, 16 left foot, 17 right hip, 18 right knee, 19 right ankle, 20 right foot,
21 spine at the shoulders, 22 tip of the left hand, 23 left thumb, 24 tip of the right hand, 25 right
thumb. Arrays here are 0-based (joint k of NTU is index k-1). Body-local axes follow Kinect's
right-handed convention: x towards the actor's left, y up, z forwards (the way the actor faces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augrgb.extract.skeleton_layout import JOINT

LEFT, RIGHT = 0, 1
SIDE_SIGN = (1.0, -1.0)  # +x is the actor's left
REFERENCE_HEIGHT = 1.75  # metres; motion primitives are written for this body and scaled


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths (metres) of one actor, derived from height and small proportion changes."""

    height: float
    arm_ratio: float = 1.0
    leg_ratio: float = 1.0
    shoulder_ratio: float = 1.0

    @property
    def scale(self) -> float:
        return self.height / REFERENCE_HEIGHT

    def lengths(self) -> dict[str, float]:
        s = self.scale
        return {
            "thigh": 0.43 * s * self.leg_ratio, "shin": 0.42 * s * self.leg_ratio, "ankle": 0.08 * s,
            "foot": 0.14 * s, "hip_width": 0.09 * s, "hip_drop": 0.06 * s,
            "spine_mid": 0.26 * s, "spine_shoulder": 0.50 * s, "neck": 0.58 * s, "head": 0.13 * s,
            "shoulder_width": 0.18 * s * self.shoulder_ratio, "shoulder_drop": 0.03 * s,
            "upper_arm": 0.29 * s * self.arm_ratio, "forearm": 0.26 * s * self.arm_ratio,
            "hand": 0.08 * s, "hand_tip": 0.07 * s, "thumb": 0.05 * s,
        }

    def shoulder(self, side: int) -> np.ndarray:
        """Shoulder position in the torso frame (origin at the base of the spine)."""
        lens = self.lengths()
        return np.array([SIDE_SIGN[side] * lens["shoulder_width"], lens["spine_shoulder"] - lens["shoulder_drop"], 0.0])


@dataclass
class PoseTrack:
    """Per-frame body parameters (angles in radians, distances in metres at the reference height).

    Motion primitives write into these arrays; :func:`forward_kinematics` turns them into joints.
    Arms are driven by wrist targets (relative to the shoulder, torso frame) solved with two-bone IK;
    legs by angles in the pelvis frame, and the pelvis height follows the legs so feet stay on the floor.
    """

    yaw: np.ndarray      # (T,) facing direction about the vertical; positive turns towards the actor's left
    position: np.ndarray  # (T, 2) floor position (x, z) of the base of the spine
    lift: np.ndarray     # (T,) extra pelvis height above the supporting leg (jumps)
    seat: np.ndarray     # (T,) 0 standing .. 1 seated: hips move back by a thigh length so the feet stay put
    torso: np.ndarray    # (T, 3) bend forward, lean towards the right, twist towards the left
    head: np.ndarray     # (T, 2) nod down, look left
    legs: np.ndarray     # (2, T, 3) left/right: thigh flexion (forward +), thigh abduction (outward +), shin flexion
    wrists: np.ndarray   # (2, T, 3) left/right wrist target relative to the shoulder, torso frame
    elbows: np.ndarray   # (2, T, 3) left/right elbow pole direction, torso frame

    @classmethod
    def standing(cls, frames: int) -> "PoseTrack":
        """Arms hanging, legs straight, facing +z."""
        wrists = np.zeros((2, frames, 3))
        elbows = np.zeros((2, frames, 3))
        for side in (LEFT, RIGHT):
            wrists[side] = (SIDE_SIGN[side] * 0.06, -0.52, 0.04)
            elbows[side] = (SIDE_SIGN[side] * 0.3, 0.0, -1.0)
        return cls(yaw=np.zeros(frames), position=np.zeros((frames, 2)), lift=np.zeros(frames),
                   seat=np.zeros(frames), torso=np.zeros((frames, 3)), head=np.zeros((frames, 2)), legs=np.zeros((2, frames, 3)),
                   wrists=wrists, elbows=elbows)

    @property
    def frames(self) -> int:
        return len(self.yaw)


@dataclass(frozen=True)
class BodyPoints:
    """Forward-kinematics output: joints and the head frame (for drawing a face), world coordinates."""

    joints: np.ndarray   # (T, 25, 3)
    head_rot: np.ndarray  # (T, 3, 3) columns: head's left, up, forward axes


def rot_x(a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about the left axis: positive tips up towards forward."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about the vertical: positive turns forward towards the left."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about the forward axis: positive tips up towards the right."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _apply(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate per-frame vectors: rot (T,3,3), v (T,3) or (3,) -> (T,3)."""
    return np.einsum("tij,tj->ti", rot, np.broadcast_to(v, (rot.shape[0], 3)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def limb_direction(flex: np.ndarray, abduction: np.ndarray, side: int) -> np.ndarray:
    """Unit vector of a leg segment in the pelvis frame: straight down, swung forward by ``flex``, outward by ``abduction``."""
    ca = np.cos(abduction)
    return np.stack([SIDE_SIGN[side] * np.sin(abduction), -ca * np.cos(flex), ca * np.sin(flex)], -1)


def two_bone_ik(root: np.ndarray, target: np.ndarray, pole: np.ndarray, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Elbow/knee and end positions of a two-segment chain reaching for ``target`` (clamped to reach), bending towards ``pole``."""
    offset = target - root
    dist = np.linalg.norm(offset, axis=-1, keepdims=True)
    axis = offset / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(a - b) + 1e-3, a + b - 1e-4)
    along = (a * a - b * b + dist * dist) / (2 * dist)
    across = np.sqrt(np.maximum(a * a - along * along, 0.0))
    bend = pole - np.sum(pole * axis, -1, keepdims=True) * axis
    bend = _unit(bend)
    return root + along * axis + across * bend, root + dist * axis


def forward_kinematics(track: PoseTrack, shape: BodyShape) -> BodyPoints:
    """World joint positions (T, 25, 3) in metres, floor at y = 0, for every frame at once."""
    lens = shape.lengths()
    s = shape.scale
    t = track.frames
    joints = np.zeros((t, 25, 3))

    pelvis_rot = rot_y(track.yaw)
    leg_dirs = []
    support = np.zeros(t)
    for side in (LEFT, RIGHT):
        flex, abd, shin_flex = track.legs[side].T
        thigh = limb_direction(flex, abd, side)
        shin = limb_direction(shin_flex, abd, side)
        leg_dirs.append((thigh, shin, shin_flex))
        support = np.maximum(support, -(lens["thigh"] * thigh[:, 1] + lens["shin"] * shin[:, 1]) + lens["ankle"])
    base = np.zeros((t, 3))
    base[:, 0], base[:, 2] = track.position[:, 0], track.position[:, 1]
    base -= (track.seat * lens["thigh"])[:, None] * _apply(pelvis_rot, np.array([0.0, 0.0, 1.0]))
    base[:, 1] = support + track.lift * s + lens["hip_drop"]
    joints[:, JOINT["spine_base"]] = base

    for side, prefix in ((LEFT, "left"), (RIGHT, "right")):
        thigh, shin, shin_flex = leg_dirs[side]
        hip = base + _apply(pelvis_rot, np.array([SIDE_SIGN[side] * lens["hip_width"], -lens["hip_drop"], 0.0]))
        knee = hip + lens["thigh"] * _apply(pelvis_rot, thigh)
        ankle = knee + lens["shin"] * _apply(pelvis_rot, shin)
        foot_dir = np.stack([np.zeros(t), np.sin(shin_flex), np.cos(shin_flex)], -1)
        foot = ankle + lens["foot"] * _apply(pelvis_rot, foot_dir) - np.array([0.0, 0.5 * lens["ankle"], 0.0])
        for name, value in (("hip", hip), ("knee", knee), ("ankle", ankle), ("foot", foot)):
            joints[:, JOINT[f"{prefix}_{name}"]] = value

    torso_rot = pelvis_rot @ rot_y(track.torso[:, 2]) @ rot_x(track.torso[:, 0]) @ rot_z(track.torso[:, 1])
    for name, height in (("spine_mid", lens["spine_mid"]), ("spine_shoulder", lens["spine_shoulder"]), ("neck", lens["neck"])):
        joints[:, JOINT[name]] = base + _apply(torso_rot, np.array([0.0, height, 0.0]))
    head_rot = torso_rot @ rot_y(track.head[:, 1]) @ rot_x(track.head[:, 0])
    joints[:, JOINT["head"]] = joints[:, JOINT["neck"]] + _apply(head_rot, np.array([0.0, lens["head"], 0.01 * s]))

    forward = np.array([0.0, 0.0, 1.0])
    for side, prefix in ((LEFT, "left"), (RIGHT, "right")):
        shoulder = shape.shoulder(side)
        target = shoulder + track.wrists[side] * s
        elbow, wrist = two_bone_ik(np.broadcast_to(shoulder, (t, 3)), target, track.elbows[side],
                                   lens["upper_arm"], lens["forearm"])
        along = wrist - elbow
        inward = along[:, 0] * SIDE_SIGN[side] < 0
        along[inward, 0] *= 0.3  # the wrist bends: hands crossing the midline turn forwards (claps meet palm to palm)
        along = _unit(along)
        hand = wrist + lens["hand"] * along
        tip = hand + lens["hand_tip"] * along
        palm = _unit(forward - np.sum(forward * along, -1, keepdims=True) * along)
        thumb = wrist + 0.6 * lens["hand"] * along + lens["thumb"] * _unit(palm - SIDE_SIGN[side] * 0.5 * np.array([1.0, 0, 0]))
        for name, value in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist), ("hand", hand),
                            ("hand_tip", tip), ("thumb", thumb)):
            joints[:, JOINT[f"{prefix}_{name}"]] = base + _apply(torso_rot, np.broadcast_to(value, (t, 3)))
    return BodyPoints(joints=joints, head_rot=head_rot)
