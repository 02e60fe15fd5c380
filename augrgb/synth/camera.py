"""A pinhole camera looking at the actor, in Kinect's camera-space convention.

Camera coordinates (metres) follow Kinect v2's camera space: x grows to the sensor's left, y up
(tilted with the sensor), z out along the viewing direction. Skeleton files are written in these
coordinates, as NTU RGB+D's are. Image pixels: u = cx - f x / z, v = cy - f y / z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Position, orientation (rows: camera left, up, forward in world axes) and intrinsics (pixels)."""

    position: np.ndarray
    rotation: np.ndarray
    focal: float
    cx: float
    cy: float
    elevation: float  # radians the view points downwards

    @classmethod
    def looking_at(cls, position: np.ndarray, target: np.ndarray, focal: float, cx: float, cy: float) -> "Camera":
        """A camera without roll at ``position`` aimed at ``target`` (world: y up)."""
        forward = target - position
        forward = forward / np.linalg.norm(forward)
        left = np.cross([0.0, 1.0, 0.0], forward)
        left /= np.linalg.norm(left)
        up = np.cross(forward, left)
        return cls(np.asarray(position, float), np.stack([left, up, forward]), float(focal), float(cx), float(cy),
                   float(np.arcsin(-forward[1])))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) to camera coordinates (..., 3)."""
        return (points - self.position) @ self.rotation.T

    def project(self, camera_points: np.ndarray) -> np.ndarray:
        """Camera coordinates (..., 3) to pixel coordinates (..., 2); points must be in front (z > 0)."""
        z = np.maximum(camera_points[..., 2], 1e-6)
        return np.stack([self.cx - self.focal * camera_points[..., 0] / z,
                         self.cy - self.focal * camera_points[..., 1] / z], -1)


FRAMING = (0.85, 0.95)  # share of the frame height the actor fills; 0.5-0.78 before (the far framing)


def sample_camera(rng: np.random.Generator, height: float, size: int, margin: int,
                  framing: tuple[float, float] = FRAMING) -> Camera:
    """A random viewpoint: 2.3-4.5 m away, 0-35 degrees above, framing the actor at a share of the image height
    drawn from ``framing`` (85-95 % by default: docs/benchmark.md, "What moves it", measured why).

    The principal point is in the coordinates of the (larger) background canvas, ``margin`` pixels
    wider on every side than the output frame, so camera shake can be a crop offset.
    """
    distance = rng.uniform(2.3, 4.5)
    elevation = np.deg2rad(rng.uniform(0.0, 35.0))
    target = np.array([rng.uniform(-0.25, 0.25) * height, rng.uniform(0.42, 0.6) * height, 0.0])
    position = target + distance * np.array([0.0, np.sin(elevation), np.cos(elevation)])
    focal = rng.uniform(*framing) * size * distance / height
    return Camera.looking_at(position, target, focal, size / 2 + margin, size / 2 + margin)
