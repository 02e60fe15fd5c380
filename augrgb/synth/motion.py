"""Small shaping functions the motion primitives share: envelopes, smooth random curves, blending."""

from __future__ import annotations

import numpy as np


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a C1-smooth S-curve between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def envelope(frames: int, fps: float, ramp_s: float = 0.35, ramp_fraction: float = 0.3) -> np.ndarray:
    """Weights (frames,) rising from 0 to 1 and back, ramps of ``ramp_s`` seconds (at most ``ramp_fraction`` of the window)."""
    ramp = max(1.0, min(ramp_s * fps, ramp_fraction * frames))
    i = np.arange(frames, dtype=float)
    return smoothstep(i / ramp) * smoothstep((frames - 1 - i) / ramp)


def bump(p: np.ndarray) -> np.ndarray:
    """A smooth 0 -> 1 -> 0 hump over p in [0, 1] (zero slope at both ends)."""
    return np.sin(np.pi * np.clip(p, 0.0, 1.0)) ** 2


def smooth_noise(rng: np.random.Generator, frames: int, fps: float, amplitude: float, max_hz: float, terms: int = 4) -> np.ndarray:
    """A smooth random curve (sum of sinusoids up to ``max_hz``) with peak roughly ``amplitude``."""
    t = np.arange(frames) / fps
    freqs = rng.uniform(0.05, max_hz, terms)
    phases = rng.uniform(0, 2 * np.pi, terms)
    weights = rng.uniform(0.5, 1.0, terms)
    curve = np.sum(weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None]), axis=0)
    return amplitude * curve / weights.sum()


def blend(current: np.ndarray, target: np.ndarray, weight: np.ndarray) -> None:
    """In place: ``current <- current + weight * (target - current)``; weight is per frame (first axis)."""
    w = weight.reshape(weight.shape + (1,) * (current.ndim - 1))
    current += w * (np.broadcast_to(target, current.shape) - current)
