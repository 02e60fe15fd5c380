"""Spatial preprocessing of decoded frames for I3D: resize + centre crop (or plain resize), then [-1, 1].

Conventions of pytorch-i3d and video_features: OpenCV bilinear resize (cv2.INTER_LINEAR) and
x / 127.5 - 1 scaling. See docs/decoding.md.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

# level x -> float32 nearest to (2x - 255) / 255 = x / 127.5 - 1, exactly symmetric around 127.5
_UNIT_RANGE = ((2 * np.arange(256, dtype=np.float64) - 255) / 255).astype(np.float32)


class Preprocess:
    """Frame (H, W, 3) uint8 -> (size, size, 3) uint8, by "center" (short side -> short_side, centre
    crop) or "resize" (straight to size x size, aspect ratio not kept)."""

    def __init__(self, crop: Literal["center", "resize"] = "center", size: int = 224, short_side: int = 256) -> None:
        if crop not in ("center", "resize"):
            raise ValueError(f"crop must be 'center' or 'resize', got {crop!r}")
        if size < 1 or (crop == "center" and short_side < size):
            raise ValueError(f"need 1 <= size <= short_side, got size={size}, short_side={short_side}")
        self.crop, self.size, self.short_side = crop, size, short_side

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) a frame is resized to before cropping."""
        if self.crop == "resize":
            return self.size, self.size
        scale = self.short_side / min(width, height)
        if width <= height:
            return self.short_side, round(height * scale)
        return round(width * scale), self.short_side

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        height, width = frame.shape[:2]
        new_w, new_h = self.output_size(width, height)
        if (new_w, new_h) != (width, height):
            frame = cv2.resize(np.ascontiguousarray(frame), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        return np.ascontiguousarray(frame[top : top + self.size, left : left + self.size])

    def __repr__(self) -> str:
        return f"Preprocess(crop={self.crop!r}, size={self.size}, short_side={self.short_side})"


def to_unit_range(frames: np.ndarray) -> np.ndarray:
    """uint8 pixels (any shape) -> float32 in [-1, 1]: x / 127.5 - 1 (0 -> -1, 255 -> 1)."""
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {frames.dtype}")
    return _UNIT_RANGE[frames]
