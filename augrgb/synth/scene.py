"""The room around the actor and the camera's imperfections, precomputed once per video.

A wall and a perspective floor with random textures, static clutter (furniture, pictures, plants),
moving distractors (behind or in front of the actor), camera shake, slow brightness and colour-cast
changes, and sensor noise. Everything is drawn from the scene's own random stream, independent of
the action timeline, so appearance carries no label information.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from augrgb.synth.camera import Camera
from augrgb.synth.motion import smooth_noise
from augrgb.synth.textures import random_colour, sample_texture

SHIFT = 4  # OpenCV drawing sub-pixel bits: coordinates are passed as integers times 2**SHIFT
ONE = 1 << SHIFT


@dataclass(frozen=True)
class Distractor:
    """A moving shape: 'circle', 'box' or 'ring'; per-frame centre in canvas pixels; drawn behind or in front of the actor."""

    shape: str
    centre: np.ndarray  # (T, 2) float
    radius: float
    colour: tuple[int, int, int]
    front: bool
    angle: np.ndarray   # (T,) radians (boxes spin)


@dataclass(frozen=True)
class Scene:
    """Per-video backdrop and camera effects; frame t is the crop of ``background`` at ``offset[t]``."""

    background: np.ndarray  # (S + 2m, S + 2m, 3) uint8 RGB canvas
    size: int
    margin: int
    offset: np.ndarray      # (T, 2) int crop origin (x, y) in the canvas: margin + shake
    gain: np.ndarray        # (T, 3) per-channel multiplier (exposure, flicker, colour cast)
    noise_up: np.ndarray    # (K, S, S, 3) uint8 added ...
    noise_down: np.ndarray  # ... and subtracted: signed sensor noise without int16 round trips
    distractors: tuple[Distractor, ...]
    shadow_alpha: float


def margin_for(size: int) -> int:
    """Canvas border (pixels) that camera shake may reveal."""
    return max(2, int(round(0.05 * size)))


def _floor(rng: np.random.Generator, camera: Camera, canvas: int, wall_z: float) -> np.ndarray:
    """The floor plane textured in world units and warped into the image by its homography."""
    px_per_m = 40.0
    near_z = camera.position[2] - 0.4
    half_w = 6.0
    tex = sample_texture(rng, max(8, int((near_z - wall_z) * px_per_m)), int(2 * half_w * px_per_m))
    th, tw = tex.shape[:2]
    world = np.array([[-half_w, 0, wall_z], [half_w, 0, wall_z], [half_w, 0, near_z], [-half_w, 0, near_z]])
    image = camera.project(camera.to_camera(world)).astype(np.float32)
    texture = np.float32([[0, 0], [tw - 1, 0], [tw - 1, th - 1], [0, th - 1]])
    homography = cv2.getPerspectiveTransform(texture, image)
    return cv2.warpPerspective(tex, homography, (canvas, canvas), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _box_at(camera: Camera, x: float, width: float, height: float, z: float, lift: float = 0.0) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1) of an upright world rectangle facing the camera."""
    corners = np.array([[x - width / 2, lift, z], [x + width / 2, lift + height, z]])
    (u0, v0), (u1, v1) = camera.project(camera.to_camera(corners))
    return int(min(u0, u1)), int(min(v0, v1)), int(max(u0, u1)), int(max(v0, v1))


def _clutter(rng: np.random.Generator, img: np.ndarray, camera: Camera, wall_z: float) -> None:
    """Furniture against the wall, pictures on it, plants and lamps: static shapes with random colours."""
    for _ in range(rng.integers(2, 8)):
        kind = rng.choice(["cabinet", "shelf", "picture", "window", "plant", "lamp"])
        x, z = rng.uniform(-3.0, 3.0), wall_z + rng.uniform(0.05, 0.6)
        colour = tuple(int(c) for c in random_colour(rng))
        dark = tuple(int(c * 0.5) for c in colour)
        if kind in ("cabinet", "shelf"):
            x0, y0, x1, y1 = _box_at(camera, x, rng.uniform(0.4, 1.4), rng.uniform(0.5, 2.0), z)
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
            cv2.rectangle(img, (x0, y0), (x1, y1), dark, 1)
            rows = int(rng.integers(2, 6))
            for r in range(1, rows):
                y = y0 + (y1 - y0) * r // rows
                cv2.line(img, (x0, y), (x1, y), dark, 1)
                if kind == "shelf":
                    bx = x0 + 1
                    while bx < x1 - 2:
                        bw = int(rng.integers(1, 4))
                        book = tuple(int(c) for c in random_colour(rng))
                        cv2.rectangle(img, (bx, y - max(2, (y1 - y0) // (rows + 1))), (bx + bw, y - 1), book, -1)
                        bx += bw + 1
        elif kind in ("picture", "window"):
            x0, y0, x1, y1 = _box_at(camera, x, rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0), wall_z, lift=rng.uniform(1.0, 1.8))
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x1, img.shape[1]), min(y1, img.shape[0])
            if xb - xa > 2 and yb - ya > 2:
                img[ya:yb, xa:xb] = sample_texture(rng, yb - ya, xb - xa)
            cv2.rectangle(img, (x0, y0), (x1, y1), dark, max(1, (x1 - x0) // 15))
            if kind == "window":
                cv2.line(img, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1), dark, max(1, (x1 - x0) // 20))
        elif kind == "plant":
            x0, y0, x1, y1 = _box_at(camera, x, 0.3, 0.35, z)
            cv2.rectangle(img, (x0, y0), (x1, y1), dark, -1)
            leaves = tuple(int(c) for c in random_colour(rng, saturation=(0.3, 0.9)))
            r = max(2, (x1 - x0))
            for _ in range(5):
                cx = (x0 + x1) // 2 + int(rng.integers(-r, r + 1) * 0.6)
                cy = y0 - int(rng.uniform(0.2, 1.2) * r)
                cv2.ellipse(img, (cx, cy), (max(1, r // 2), max(1, r)), float(rng.uniform(0, 180)), 0, 360, leaves, -1)
        else:
            x0, y0, x1, y1 = _box_at(camera, x, 0.04, rng.uniform(1.2, 1.8), z)
            cv2.rectangle(img, (x0, y0), (x1, y1), dark, -1)
            r = max(2, 6 * (x1 - x0))
            cv2.ellipse(img, ((x0 + x1) // 2, y0), (r, max(1, r // 2)), 0, 0, 360, colour, -1)


def _distractors(rng: np.random.Generator, frames: int, fps: float, canvas: int, size: int) -> tuple[Distractor, ...]:
    """0-4 shapes bouncing around the frame; about one in four passes in front of the actor."""
    out = []
    for _ in range(rng.integers(0, 5)):
        front = bool(rng.random() < 0.25)
        radius = rng.uniform(0.02, 0.05 if front else 0.10) * size
        speed = rng.uniform(0.1, 0.6) * size  # pixels per second
        heading = rng.uniform(0, 2 * np.pi)
        start = rng.uniform(radius, canvas - radius, 2)
        path = start + np.outer(np.arange(frames) / fps, speed * np.array([np.cos(heading), np.sin(heading)]))
        lo, span = radius, canvas - 2 * radius
        path = lo + np.abs((path - lo + span) % (2 * span) - span)  # bounce off the canvas edges
        shape = str(rng.choice(["circle", "box", "ring"]))
        spin = rng.uniform(-3, 3) * np.arange(frames) / fps
        out.append(Distractor(shape, path, float(radius), tuple(int(c) for c in random_colour(rng)), front, spin))
    return tuple(out)


def build_scene(rng: np.random.Generator, camera: Camera, size: int, frames: int, fps: float) -> Scene:
    """Draw a room, clutter, distractors and camera effects for one video."""
    margin = margin_for(size)
    canvas = size + 2 * margin
    wall_z = -rng.uniform(0.8, 3.0)
    img = _floor(rng, camera, canvas, wall_z)
    (_, wall_row) = camera.project(camera.to_camera(np.array([0.0, 0.0, wall_z])))
    wall_row = int(np.clip(wall_row, 0, canvas))
    if wall_row > 0:
        img[:wall_row] = sample_texture(rng, wall_row, canvas)
        board = tuple(int(c) for c in random_colour(rng))
        cv2.line(img, (0, wall_row), (canvas, wall_row), board, max(1, canvas // 80))
    _clutter(rng, img, camera, wall_z)
    img = cv2.GaussianBlur(img, (3, 3), 0.6)

    shake_px = rng.choice([0.0, rng.uniform(0.002, 0.02)]) * size
    shake = np.stack([smooth_noise(rng, frames, fps, shake_px, 4.0, terms=6) for _ in range(2)], -1)
    offset = margin + np.clip(np.round(shake), -margin, margin).astype(int)

    exposure = rng.uniform(0.7, 1.25)
    flicker = 1.0 + smooth_noise(rng, frames, fps, rng.uniform(0.0, 0.25), 0.3)
    if rng.random() < 0.2:  # a light switched on or off somewhere in the room
        step_at = rng.integers(frames)
        flicker[step_at:] *= rng.uniform(0.7, 1.3)
    cast = rng.uniform(0.88, 1.12, 3)
    gain = np.clip(exposure * flicker[:, None] * cast[None, :], 0.5, 1.35)

    sigma = rng.uniform(0.5, 3.0)
    noise = rng.normal(0.0, sigma, (4, size, size, 3))
    up = np.clip(noise, 0, 255).astype(np.uint8)
    down = np.clip(-noise, 0, 255).astype(np.uint8)
    return Scene(img, size, margin, offset, gain, up, down, _distractors(rng, frames, fps, canvas, size),
                 float(rng.uniform(0.15, 0.45)))
