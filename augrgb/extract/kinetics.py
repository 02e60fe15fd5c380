"""Kinetics-400 classification with the RGB I3D: the sanity check users run on their own clips."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from augrgb.core.errors import InputError
from augrgb.core.grid import iter_snippets
from augrgb.extract import decode
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.transforms import Preprocess

CLIP_FRAMES = 64
CLIP_SHAPE = (1, CLIP_FRAMES, 224, 224, 3)
"""What ``classify_video`` feeds the I3D per forward pass: one centre-cropped clip (timed by ``--precision auto``)."""


def kinetics400_classes() -> list[str]:
    """The 400 Kinetics class names in the order of the I3D logits."""
    text = resources.files("augrgb").joinpath("data/kinetics400_classes.txt").read_text()
    return [line for line in text.splitlines() if line]


def classify_video(path: str | Path, encoder: SnippetEncoder, clip_frames: int = CLIP_FRAMES, fps: float = 25.0,
                   backend: str | None = None) -> np.ndarray:
    """Kinetics-400 probabilities of a whole video: logits of consecutive clips, averaged weighted by real frames."""
    preprocess = Preprocess(crop="center")
    frames = (preprocess(f) for f in decode.iter_frames(path, fps=fps, backend=backend))
    total, weight = None, 0
    for clip in iter_snippets(frames, clip_frames, clip_frames):
        real = clip_frames - clip.padded
        logits = encoder.logits(clip.frames[None])[0] * real
        total = logits if total is None else total + logits
        weight += real
    if total is None:
        raise InputError(path, "no decodable frames")
    logits = total / weight
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()
