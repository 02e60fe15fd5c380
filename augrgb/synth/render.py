"""Drawing the actor into the scene: vectorised projection, painter's-order limbs, per-frame compositing.

Everything that can be computed for all frames at once is (camera transform, projection, limb depth
order, line widths, shading, shadow); the per-frame work is a crop of the precomputed background and
a few dozen OpenCV drawing calls, which keeps rendering at hundreds of frames per second per core.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from augrgb.extract.skeleton_layout import JOINT
from augrgb.synth.camera import Camera
from augrgb.synth.scene import ONE, SHIFT, Distractor, Scene
from augrgb.synth.skeleton import BodyPoints, BodyShape
from augrgb.synth.textures import random_colour

PARTS = ("skin", "hair", "shirt", "sleeve", "trousers", "legwear", "shoes")

# (joints, radius in metres at the reference height, colour part); "torso" and "head" are drawn specially.
LIMBS: tuple[tuple[tuple[str, ...], float, str], ...] = (
    (("left_shoulder", "right_shoulder", "right_hip", "left_hip"), 0.12, "shirt"),
    (("spine_shoulder", "neck"), 0.05, "skin"),
    (("head",), 0.105, "skin"),
    (("left_hip", "right_hip"), 0.085, "trousers"),
    (("left_shoulder", "left_elbow"), 0.05, "shirt"),
    (("left_elbow", "left_wrist"), 0.042, "sleeve"),
    (("left_wrist", "left_hand_tip"), 0.038, "skin"),
    (("right_shoulder", "right_elbow"), 0.05, "shirt"),
    (("right_elbow", "right_wrist"), 0.042, "sleeve"),
    (("right_wrist", "right_hand_tip"), 0.038, "skin"),
    (("left_hip", "left_knee"), 0.075, "trousers"),
    (("left_knee", "left_ankle"), 0.055, "legwear"),
    (("left_ankle", "left_foot"), 0.045, "shoes"),
    (("right_hip", "right_knee"), 0.075, "trousers"),
    (("right_knee", "right_ankle"), 0.055, "legwear"),
    (("right_ankle", "right_foot"), 0.045, "shoes"),
)
TORSO, HEAD = 0, 2


@dataclass(frozen=True)
class Appearance:
    """Clothing and skin colours (RGB) and a limb-thickness factor, drawn per actor."""

    colours: dict[str, tuple[int, int, int]]
    thickness: float


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Skin tone, hair, shirt (long or short sleeves), trousers (or shorts), shoes; limbs 0.75-1.35x thick."""
    tone = rng.uniform(0.25, 0.95)
    skin = np.array([224, 172, 135]) * tone + np.array([60, 40, 30]) * (1 - tone)
    colours = {"skin": skin, "hair": random_colour(rng, (0.1, 0.6), (0.05, 0.6)), "shirt": random_colour(rng),
               "trousers": random_colour(rng, value=(0.1, 0.8)), "shoes": random_colour(rng, (0.0, 0.5), (0.05, 0.6))}
    colours["sleeve"] = colours["shirt"] if rng.random() < 0.5 else skin
    colours["legwear"] = colours["trousers"] if rng.random() < 0.75 else skin
    return Appearance({k: tuple(int(c) for c in v) for k, v in colours.items()}, float(rng.uniform(0.75, 1.35)))


def _draw_distractor(img: np.ndarray, d: Distractor, t: int, origin: np.ndarray) -> None:
    cx, cy = ((d.centre[t] - origin) * ONE).astype(int).tolist()
    r = int(d.radius * ONE)
    if d.shape == "circle":
        cv2.circle(img, (cx, cy), r, d.colour, -1, cv2.LINE_AA, SHIFT)
    elif d.shape == "ring":
        cv2.circle(img, (cx, cy), int(0.7 * r), d.colour, max(1, int(d.radius * 0.5)), cv2.LINE_AA, SHIFT)
    else:
        a = d.angle[t]
        corners = np.array([[np.cos(a + k * np.pi / 2), np.sin(a + k * np.pi / 2)] for k in range(4)]) * r
        cv2.fillConvexPoly(img, (corners + (cx, cy)).astype(np.int32), d.colour, cv2.LINE_AA, SHIFT)


class FrameRenderer:
    """Renders frame ``t`` of a video: scene crop, distractors, the actor's shadow and body, lighting, noise."""

    def __init__(self, body: BodyPoints, shape: BodyShape, camera: Camera, scene: Scene, look: Appearance) -> None:
        self.scene = scene
        self.look = look
        frames = body.joints.shape[0]
        cam = camera.to_camera(body.joints)                         # (T, 25, 3)
        origin = scene.offset.astype(float)                         # canvas -> frame shift per frame
        pixels = camera.project(cam) - origin[:, None, :]
        self.points = np.round(pixels * ONE).astype(np.int64)       # fixed-point frame coordinates
        scale = shape.scale * look.thickness

        index = [[JOINT[j] for j in joints] for joints, _, _ in LIMBS]
        depth = np.stack([cam[:, idx, 2].mean(1) for idx in index], 1)  # (T, items)
        depth[:, TORSO] += 0.03  # arms in front of the chest win ties
        self.order = np.argsort(-depth, axis=1, kind="stable")           # far to near
        radius = np.array([r for _, r, _ in LIMBS]) * scale
        self.width = np.maximum(1, np.round(2 * radius * camera.focal / depth)).astype(int)
        self.outline = np.maximum(1, np.round(self.width / 8)).astype(int)
        nearest = cam[:, :, 2].min(1, keepdims=True)
        shade = 1.0 - 0.35 * np.clip((depth - nearest) / 0.5, 0.0, 1.0)     # farther limbs darker
        base = np.array([look.colours[part] for _, _, part in LIMBS], float)
        self.fill = np.clip(shade[..., None] * base, 0, 255).astype(np.uint8)
        self.edge = (self.fill * 0.45).astype(np.uint8)

        head = body.joints[:, JOINT["head"]]
        s = shape.scale
        hair = head + np.einsum("tij,j->ti", body.head_rot, np.array([0.0, 0.03, -0.035]) * s)
        eyes = [head + np.einsum("tij,j->ti", body.head_rot, np.array([x, 0.02, 0.09]) * s) for x in (0.035, -0.035)]
        facing_z = (body.head_rot[:, :, 2] @ camera.rotation.T)[:, 2]  # head's forward axis, camera z
        self.facing = facing_z < -0.2                                     # face turned towards the camera
        self.hair_points = np.round((camera.project(camera.to_camera(hair)) - origin) * ONE).astype(np.int64)
        self.eye_points = np.round((camera.project(camera.to_camera(np.stack(eyes, 1))) - origin[:, None]) * ONE).astype(np.int64)
        self.eye_radius = np.maximum(1, np.round(0.016 * s * camera.focal / depth[:, HEAD] * ONE)).astype(int)
        self.hair_colour = look.colours["hair"]

        ground = body.joints[:, JOINT["spine_base"]].copy()
        ground[:, 1] = 0.0
        spread = np.stack([ground + [0.35 * s, 0, 0], ground + [0, 0, 0.25 * s]], 1)
        centre = camera.project(camera.to_camera(ground))
        ends = camera.project(camera.to_camera(spread))
        self.shadow_centre = centre - origin
        self.shadow_axes = np.abs(ends - centre[:, None]).max(axis=1) + 1.0
        self.frames = frames

    def _shadow(self, img: np.ndarray, t: int) -> None:
        (cx, cy), (ax, ay) = self.shadow_centre[t], self.shadow_axes[t]
        size = img.shape[0]
        x0, x1 = int(max(cx - ax - 2, 0)), int(min(cx + ax + 3, size))
        y0, y1 = int(max(cy - ay - 2, 0)), int(min(cy + ay + 3, size))
        if x1 <= x0 or y1 <= y0:
            return
        roi = img[y0:y1, x0:x1]
        dark = roi.copy()
        cv2.ellipse(dark, (int((cx - x0) * ONE), int((cy - y0) * ONE)), (int(ax * ONE), int(ay * ONE)), 0, 0, 360,
                    (0, 0, 0), -1, cv2.LINE_AA, SHIFT)
        cv2.addWeighted(dark, self.scene.shadow_alpha, roi, 1.0 - self.scene.shadow_alpha, 0, dst=roi)

    def _head(self, img: np.ndarray, t: int, pts: list, fill: tuple, edge: tuple, width: int) -> None:
        centre = pts[JOINT["head"]]
        radius = max(ONE, width * ONE // 2)
        hair = tuple(self.hair_points[t].tolist())
        if self.facing[t]:
            cv2.circle(img, hair, radius, self.hair_colour, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(img, tuple(centre), radius, fill, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(img, tuple(centre), radius, edge, 1, cv2.LINE_AA, SHIFT)
        if self.facing[t]:
            for eye in self.eye_points[t].tolist():
                cv2.circle(img, tuple(eye), int(self.eye_radius[t]), (20, 20, 20), -1, cv2.LINE_AA, SHIFT)
        else:
            cv2.circle(img, hair, radius, self.hair_colour, -1, cv2.LINE_AA, SHIFT)

    def draw_actor(self, img: np.ndarray, t: int) -> None:
        """The body in painter's order (far limbs first), each limb an outlined thick line."""
        pts = self.points[t].tolist()
        fill, edge, width, outline = self.fill[t].tolist(), self.edge[t].tolist(), self.width[t].tolist(), self.outline[t].tolist()
        for i in self.order[t].tolist():
            joints = LIMBS[i][0]
            if i == HEAD:
                self._head(img, t, pts, tuple(fill[i]), tuple(edge[i]), width[i])
            elif i == TORSO:
                quad = np.array([pts[JOINT[j]] for j in joints], np.int32)
                top = tuple((a + b) // 2 for a, b in zip(pts[JOINT["left_shoulder"]], pts[JOINT["right_shoulder"]]))
                bottom = tuple((a + b) // 2 for a, b in zip(pts[JOINT["left_hip"]], pts[JOINT["right_hip"]]))
                cv2.polylines(img, [quad], True, tuple(edge[i]), 2 * outline[i], cv2.LINE_AA, SHIFT)
                cv2.line(img, top, bottom, tuple(edge[i]), width[i] + 2 * outline[i], cv2.LINE_AA, SHIFT)
                cv2.fillPoly(img, [quad], tuple(fill[i]), cv2.LINE_AA, SHIFT)
                cv2.line(img, top, bottom, tuple(fill[i]), width[i], cv2.LINE_AA, SHIFT)
            else:
                a, b = tuple(pts[JOINT[joints[0]]]), tuple(pts[JOINT[joints[1]]])
                cv2.line(img, a, b, tuple(edge[i]), width[i] + 2 * outline[i], cv2.LINE_AA, SHIFT)
                cv2.line(img, a, b, tuple(fill[i]), width[i], cv2.LINE_AA, SHIFT)

    def render(self, t: int) -> np.ndarray:
        """Frame ``t`` as an RGB uint8 array of shape (size, size, 3)."""
        sc = self.scene
        ox, oy = sc.offset[t].tolist()
        img = sc.background[oy:oy + sc.size, ox:ox + sc.size].copy()
        origin = sc.offset[t]
        for d in sc.distractors:
            if not d.front:
                _draw_distractor(img, d, t, origin)
        self._shadow(img, t)
        self.draw_actor(img, t)
        for d in sc.distractors:
            if d.front:
                _draw_distractor(img, d, t, origin)
        cv2.multiply(img, (*sc.gain[t].tolist(), 0.0), dst=img)
        k = t % len(sc.noise_up)
        cv2.add(img, sc.noise_up[k], dst=img)
        cv2.subtract(img, sc.noise_down[k], dst=img)
        return img
