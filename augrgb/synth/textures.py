"""Procedural surface textures for walls, floors and clutter, kept in a registry (name -> generator).

Every generator takes a random generator and a size and returns an RGB uint8 image; colours are
drawn independently of anything about the actions, so the background never tells the class.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import cv2
import numpy as np

Texture = Callable[[np.random.Generator, int, int], np.ndarray]
TEXTURES: dict[str, Texture] = {}


def register(name: str) -> Callable[[Texture], Texture]:
    """Decorator adding a texture generator to :data:`TEXTURES`."""
    def add(fn: Texture) -> Texture:
        TEXTURES[name] = fn
        return fn
    return add


def random_colour(rng: np.random.Generator, saturation: tuple[float, float] = (0.0, 0.8),
                  value: tuple[float, float] = (0.15, 0.95)) -> np.ndarray:
    """An RGB colour (float 0..255) with hue uniform and the given saturation/value ranges."""
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return np.array(rgb) * 255.0


def _mix(weight: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(weight, 0.0, 1.0)[..., None]
    return np.clip(a * (1 - w) + b * w, 0, 255).astype(np.uint8)


def _pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = random_colour(rng)
    b = np.clip(a * rng.uniform(0.55, 1.45) + rng.normal(0, 25, 3), 0, 255)
    return a, b


def _value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    return cv2.resize(rng.random((gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


@register("noise")
def noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blotchy multi-scale noise (plaster, carpet)."""
    field = sum(_value_noise(rng, h, w, max(h, w) / k) / k for k in (3, 9, 27)) / (1 + 1 / 3 + 1 / 9)
    return _mix(field, *_pair(rng))


@register("stripes")
def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A grating at a random angle and period (wallpaper, blinds)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 30) * max(h, w) / 224
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    return _mix(wave ** rng.uniform(0.3, 3.0), *_pair(rng))


@register("tiles")
def tiles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A checkerboard of tiles with grout lines."""
    y, x = np.mgrid[0:h, 0:w]
    cell = int(rng.uniform(8, 40) * max(h, w) / 224) + 2
    check = ((x // cell + y // cell) % 2).astype(np.float32) * rng.uniform(0.2, 1.0)
    grout = ((x % cell) < max(1, cell // 12)) | ((y % cell) < max(1, cell // 12))
    img = _mix(check, *_pair(rng))
    img[grout] = (random_colour(rng, value=(0.3, 0.9))).astype(np.uint8)
    return img


@register("bricks")
def bricks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Offset rows of bricks with per-brick shade changes."""
    bh = int(rng.uniform(5, 16) * max(h, w) / 224) + 2
    bw = bh * int(rng.integers(2, 4))
    a, b = _pair(rng)
    rows = np.arange(h) // bh
    y, x = np.mgrid[0:h, 0:w]
    shifted = x + (rows[:, None] % 2) * (bw // 2)
    brick_id = rows[:, None] * 1000 + shifted // bw
    shade = (np.sin(brick_id * 12.9898) * 43758.5453) % 1.0
    img = _mix(shade.astype(np.float32) * 0.6, a, b)
    mortar = ((y % bh) < max(1, bh // 6)) | ((shifted % bw) < max(1, bh // 6))
    img[mortar] = np.clip(a * 0.5 + 110, 0, 255).astype(np.uint8)
    return img


@register("wood")
def wood(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Planks: long stripes with noisy grain."""
    horizontal = rng.random() < 0.5
    length, across = (w, h) if horizontal else (h, w)
    plank = int(rng.uniform(8, 30) * max(h, w) / 224) + 3
    grain = _value_noise(rng, plank * 4, length, 6.0)
    line = np.arange(across)
    field = 0.5 * ((line // plank) * 0.37 % 1.0)[:, None] + 0.5 * np.resize(grain, (across, length))
    field[(line % plank) < 1] = 0.0
    img = _mix(field, *_pair(rng))
    return img if horizontal else np.ascontiguousarray(img.transpose(1, 0, 2))


@register("plain")
def plain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An evenly painted surface with a gentle light gradient."""
    a, b = _pair(rng)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    return _mix(ramp * rng.uniform(0.1, 0.5), a, b)


def sample_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A texture from a uniformly chosen generator."""
    name = sorted(TEXTURES)[rng.integers(len(TEXTURES))]
    return TEXTURES[name](rng, h, w)
