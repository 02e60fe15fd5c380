"""Turning a timeline into per-frame body parameters: idle sway, posture and facing states, then the actions."""

from __future__ import annotations

import numpy as np

from augrgb.synth.actions import ACTIONS, SEATED_THIGH, ActionClass, Window, posture_level, yaw_curve
from augrgb.synth.motion import smooth_noise
from augrgb.synth.schedule import Timeline
from augrgb.synth.skeleton import LEFT, RIGHT, PoseTrack


def idle(frames: int, fps: float, rng: np.random.Generator) -> PoseTrack:
    """A standing actor who is never perfectly still: arm sway, trunk sway and breathing, head glances, drift."""
    track = PoseTrack.standing(frames)
    for side in (LEFT, RIGHT):
        for axis in range(3):
            track.wrists[side, :, axis] += smooth_noise(rng, frames, fps, 0.02, 0.4)
    track.torso[:, 0] += smooth_noise(rng, frames, fps, 0.03, 0.3)
    track.torso[:, 1] += smooth_noise(rng, frames, fps, 0.04, 0.2)
    track.torso[:, 2] += smooth_noise(rng, frames, fps, 0.08, 0.2)
    track.head[:, 0] += smooth_noise(rng, frames, fps, 0.10, 0.3)
    track.head[:, 1] += smooth_noise(rng, frames, fps, 0.35, 0.25)
    for side in (LEFT, RIGHT):
        track.legs[side, :, 1] += 0.04 + smooth_noise(rng, frames, fps, 0.02, 0.15)
    track.position[:, 0] += smooth_noise(rng, frames, fps, 0.08, 0.05)
    track.position[:, 1] += smooth_noise(rng, frames, fps, 0.08, 0.05)
    return track


def windows(timeline: Timeline) -> list[tuple[ActionClass, Window]]:
    """Each placed action with its class and window (its own random stream for motion parameters)."""
    return [(ACTIONS[p.name], Window(p.start, p.end, timeline.fps, p.side, p.angle, np.random.default_rng(p.seed)))
            for p in timeline.actions]


def compose(timeline: Timeline, rng: np.random.Generator) -> PoseTrack:
    """The actor's body parameters for every frame of ``timeline``."""
    track = idle(timeline.frames, timeline.fps, rng)
    placed = windows(timeline)
    seat = posture_level(placed, timeline.frames, timeline.seated_at_start)
    track.seat[:] = seat
    track.legs[:, :, 0] += SEATED_THIGH * seat
    track.yaw[:] = yaw_curve(placed, timeline.frames, timeline.yaw_at_start)
    for action, win in placed:
        action.motion(track, win)
    return track
