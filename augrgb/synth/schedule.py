"""Sampling a video's timeline of actions: dense (concurrent on disjoint body-part channels) or sparse.

Dense: an action class is drawn uniformly among those the actor's state allows (standing/seated,
room left to turn) and placed at the earliest time all its channels are free, after a random idle
gap, so concurrent actions always use different body parts. Sparse: one action at a time with
background stretches between. Either way the timeline is a list of :class:`Placed` actions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augrgb.synth.actions import ACTIONS, CHANNELS

MODES = ("dense", "sparse")
MAX_YAW = np.deg2rad(110.0)  # facing stays within this of the initial camera-facing direction
TURN_RANGE = (np.deg2rad(45.0), np.deg2rad(100.0))


@dataclass(frozen=True)
class Placed:
    """One action instance: class name, frames ``start..end`` inclusive, arm (-1 if none), signed turn angle, motion seed."""

    name: str
    start: int
    end: int
    side: int = -1
    angle: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Timeline:
    """A sampled schedule with the actor's state at frame 0."""

    actions: tuple[Placed, ...]
    frames: int
    fps: float
    yaw_at_start: float
    seated_at_start: bool


def _gap(rng: np.random.Generator, mode: str) -> float:
    if mode == "sparse":
        return rng.uniform(1.0, 4.0)
    return 0.0 if rng.random() < 0.25 else rng.uniform(0.5, 5.0)


def sample_timeline(rng: np.random.Generator, frames: int, fps: float, mode: str) -> Timeline:
    """Draw a timeline for a video of ``frames`` frames; deterministic given ``rng``'s state."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    end_s = (frames - 1) / fps
    yaw0 = float(rng.uniform(-np.deg2rad(60.0), np.deg2rad(60.0)))
    seated0 = bool(rng.random() < 0.15)
    yaw, seated = yaw0, seated0
    if mode == "dense":
        free = {ch: rng.uniform(0.0, 2.5) for ch in CHANNELS}  # seconds at which each channel is free
    else:
        free = dict.fromkeys(CHANNELS, rng.uniform(0.5, 3.0))
    order = list(ACTIONS)
    class_free = dict.fromkeys(order, 0.0)  # an action never overlaps another instance of its own class
    placed: list[Placed] = []
    while True:
        options: dict[str, list[tuple[float, int]]] = {}  # class -> [(start, alternative), ...] that fit
        for action in ACTIONS.values():
            if action.posture != "any" and action.posture != ("seated" if seated else "standing"):
                continue
            if action.turn and MAX_YAW - action.turn * yaw < TURN_RANGE[0]:
                continue
            for alt, chans in enumerate(action.channels):
                start = max([free[c] for c in chans] + [class_free[action.name]])
                if start + action.duration[0] <= end_s:
                    options.setdefault(action.name, []).append((start, alt))
        if not options:
            break
        names = sorted(options, key=order.index)
        action = ACTIONS[names[rng.integers(len(names))]]
        start_s = min(start for start, _ in options[action.name])
        earliest = [alt for start, alt in options[action.name] if start == start_s]
        alt = earliest[rng.integers(len(earliest))]  # e.g. which hand drinks when both are free
        dur = min(rng.uniform(*action.duration), end_s - start_s)
        first = int(round(start_s * fps))
        final = min(int(round((start_s + dur) * fps)), frames - 1)
        angle = 0.0
        if action.turn:
            room = MAX_YAW - action.turn * yaw
            angle = action.turn * rng.uniform(TURN_RANGE[0], min(TURN_RANGE[1], room))
            yaw += angle
        if action.posture_after is not None:
            seated = action.posture_after == "seated"
        placed.append(Placed(action.name, first, final, action.side_of(alt), float(angle), int(rng.integers(2**31))))
        # channels in a fixed order: each one draws from rng, so a set's hash order would change the benchmark
        for c in (CHANNELS if mode == "sparse" else action.channels[alt]):
            free[c] = (final + 1) / fps + _gap(rng, mode)
        class_free[action.name] = (final + 1) / fps + 1.0  # repeats of a class are separate instances
    placed.sort(key=lambda p: (p.start, order.index(p.name)))
    return Timeline(tuple(placed), frames, fps, yaw0, seated0)
