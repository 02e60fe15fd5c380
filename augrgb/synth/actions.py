"""The action classes: 3D motion primitives of the NTU 25-joint body, kept in a registry.

Each class occupies one or more body-part *channels*; actions on disjoint channels can run at the
same time (legs walk while an arm waves). A primitive edits a :class:`PoseTrack` over its window.
Several classes differ mainly in motion rather than in any single frame (sit down vs stand up,
turn left vs right, kick/wave left vs right): that is information flow and skeletons carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from augrgb.synth.motion import blend, bump, envelope, smoothstep
from augrgb.synth.skeleton import LEFT, RIGHT, SIDE_SIGN, PoseTrack

CHANNELS: tuple[str, ...] = ("left_arm", "right_arm", "legs", "torso")
ARM_CHANNEL = {LEFT: "left_arm", RIGHT: "right_arm"}


@dataclass(frozen=True)
class Window:
    """Where and how one action instance runs: frames ``start..end`` inclusive, its arm, its turn angle."""

    start: int
    end: int
    fps: float
    side: int
    angle: float
    rng: np.random.Generator

    @property
    def frames(self) -> slice:
        return slice(self.start, self.end + 1)

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def seconds(self) -> np.ndarray:
        """Time since the action started, per frame of the window."""
        return np.arange(self.length) / self.fps

    @property
    def phase(self) -> np.ndarray:
        """0 at the first frame, 1 at the last."""
        return np.linspace(0.0, 1.0, self.length)


Motion = Callable[[PoseTrack, Window], None]


@dataclass(frozen=True)
class ActionClass:
    """One action class: its channels (alternatives, one per arm for one-armed actions), durations and motion."""

    name: str
    description: str
    channels: tuple[tuple[str, ...], ...]  # each alternative's channels in CHANNELS order (never a set: see schedule)
    duration: tuple[float, float]
    motion: Motion
    posture: str = "any"             # posture required at the start: "standing", "seated" or "any"
    posture_after: str | None = None  # posture it leaves the actor in, when it changes it
    turn: int = 0                     # +1 turns left (counter-clockwise seen from above), -1 right

    def side_of(self, alternative: int) -> int:
        """The arm (LEFT/RIGHT) a one-armed alternative uses, or -1."""
        chans = self.channels[alternative]
        arms = [side for side, ch in ARM_CHANNEL.items() if ch in chans]
        return arms[0] if len(arms) == 1 else -1


ACTIONS: dict[str, ActionClass] = {}


def register(name: str, *, channels: list[set[str]], duration: tuple[float, float], description: str,
             posture: str = "any", posture_after: str | None = None, turn: int = 0) -> Callable[[Motion], Motion]:
    """Decorator adding a motion primitive to :data:`ACTIONS` (class index = registration order)."""
    def add(motion: Motion) -> Motion:
        if name in ACTIONS:
            raise ValueError(f"action {name!r} registered twice")
        unknown = set().union(*channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"action {name!r}: unknown channels {sorted(unknown)}")
        ACTIONS[name] = ActionClass(name, description, tuple(tuple(ch for ch in CHANNELS if ch in c) for c in channels), duration, motion,
                                    posture, posture_after, turn)
        return motion
    return add


def class_names() -> list[str]:
    """Class names in class-index order."""
    return list(ACTIONS)


# ---- arms -------------------------------------------------------------------------------------------

def _reach(side: int, elevation: np.ndarray, azimuth: float, reach: float = 0.5) -> np.ndarray:
    """Wrist target of a straight arm raised ``elevation`` from hanging, in a plane ``azimuth`` from forward towards outward."""
    e = np.asarray(elevation)
    return reach * np.stack([SIDE_SIGN[side] * np.sin(e) * np.sin(azimuth), -np.cos(e), np.sin(e) * np.cos(azimuth)], -1)


def _wave(track: PoseTrack, win: Window, side: int) -> None:
    r = win.rng
    sign = SIDE_SIGN[side]
    hz, amp = r.uniform(1.6, 2.6), r.uniform(0.10, 0.16)
    t = win.seconds
    target = np.stack([sign * (r.uniform(0.16, 0.26) + amp * np.sin(2 * np.pi * hz * t)),
                       np.full_like(t, r.uniform(0.22, 0.34)), np.full_like(t, r.uniform(0.0, 0.15))], -1)
    w = envelope(win.length, win.fps)
    blend(track.wrists[side, win.frames], target, w)
    blend(track.elbows[side, win.frames], np.array([sign, -1.0, 0.2]), w)


@register("wave_left_hand", channels=[{"left_arm"}], duration=(2.0, 6.0),
          description="left forearm raised beside the head, wrist swinging sideways at 1.6-2.6 Hz")
def wave_left_hand(track: PoseTrack, win: Window) -> None:
    _wave(track, win, LEFT)


@register("wave_right_hand", channels=[{"right_arm"}], duration=(2.0, 6.0),
          description="right forearm raised beside the head, wrist swinging sideways at 1.6-2.6 Hz")
def wave_right_hand(track: PoseTrack, win: Window) -> None:
    _wave(track, win, RIGHT)


@register("clap", channels=[{"left_arm", "right_arm"}], duration=(1.5, 5.0),
          description="both hands in front of the chest meeting and parting at 1.8-3 Hz")
def clap(track: PoseTrack, win: Window) -> None:
    r = win.rng
    hz, height, depth = r.uniform(1.8, 3.0), r.uniform(-0.18, 0.0), r.uniform(0.30, 0.40)
    gap = 0.2 + r.uniform(0.2, 0.3) * (0.5 + 0.5 * np.cos(2 * np.pi * hz * win.seconds + np.pi))  # wrists; hands meet
    w = envelope(win.length, win.fps)
    for side in (LEFT, RIGHT):
        sign = SIDE_SIGN[side]
        target = np.stack([sign * (-0.18 + gap / 2), np.full_like(gap, height), np.full_like(gap, depth)], -1)
        blend(track.wrists[side, win.frames], target, w)
        blend(track.elbows[side, win.frames], np.array([sign, -1.0, -0.3]), w)


@register("raise_arms", channels=[{"left_arm", "right_arm"}], duration=(1.5, 4.0),
          description="both straight arms swing up over the head, hold, and come down")
def raise_arms(track: PoseTrack, win: Window) -> None:
    r = win.rng
    level = envelope(win.length, win.fps, ramp_s=10.0, ramp_fraction=0.35)
    top, azimuth = r.uniform(2.7, 3.0), r.uniform(0.2, 1.2)
    for side in (LEFT, RIGHT):
        blend(track.wrists[side, win.frames], _reach(side, level * top + 0.12, azimuth, reach=0.52), np.minimum(1.0, 4 * level))
        blend(track.elbows[side, win.frames], np.array([SIDE_SIGN[side], 0.0, -1.0]), level)


@register("punch", channels=[{"left_arm", "right_arm"}], duration=(1.5, 5.0),
          description="fists at the chin, arms alternately thrown straight forward (1.2-2 punches/s per arm)")
def punch(track: PoseTrack, win: Window) -> None:
    r = win.rng
    hz = r.uniform(1.2, 2.0)
    w = envelope(win.length, win.fps)
    for side in (LEFT, RIGHT):
        sign = SIDE_SIGN[side]
        throw = np.maximum(0.0, np.sin(2 * np.pi * hz * win.seconds + (0.0 if side == RIGHT else np.pi))) ** 2
        guard, out = np.array([-sign * 0.06, -0.02, 0.20]), np.array([-sign * 0.13, 0.0, 0.54])
        blend(track.wrists[side, win.frames], guard + throw[:, None] * (out - guard), w)
        blend(track.elbows[side, win.frames], np.array([sign, -1.0, 0.0]), w)


@register("drink", channels=[{"left_arm"}, {"right_arm"}], duration=(2.0, 6.0),
          description="one hand brought to the mouth, small sipping tilts, and back down")
def drink(track: PoseTrack, win: Window) -> None:
    sign = SIDE_SIGN[win.side]
    sip = 0.02 * np.sin(2 * np.pi * win.rng.uniform(0.3, 0.7) * win.seconds)
    target = np.stack([np.full_like(sip, -sign * 0.16), 0.08 + sip, 0.14 + sip], -1)  # the hand reaches the mouth
    w = envelope(win.length, win.fps, ramp_s=0.6)
    blend(track.wrists[win.side, win.frames], target, w)
    blend(track.elbows[win.side, win.frames], np.array([sign, -1.0, 0.0]), w)


@register("phone_call", channels=[{"left_arm"}, {"right_arm"}], duration=(3.0, 8.0),
          description="one hand held at the ear on its own side, elbow out, for the whole call")
def phone_call(track: PoseTrack, win: Window) -> None:
    sign = SIDE_SIGN[win.side]
    drift = 0.015 * np.sin(2 * np.pi * win.rng.uniform(0.2, 0.5) * win.seconds)
    target = np.stack([np.full_like(drift, -sign * 0.06), 0.12 + drift, 0.02 + drift], -1)  # the hand covers the ear
    w = envelope(win.length, win.fps, ramp_s=0.6)
    blend(track.wrists[win.side, win.frames], target, w)
    blend(track.elbows[win.side, win.frames], np.array([sign, -0.4, 0.3]), w)


# ---- legs -------------------------------------------------------------------------------------------

def _cycles(win: Window, period_s: tuple[float, float]) -> np.ndarray:
    """Phase within each repetition (0..1), the window holding a whole number of repetitions."""
    count = max(1, round(win.length / win.fps / win.rng.uniform(*period_s)))
    return (win.phase * count) % 1.0 if count > 1 else win.phase


def _kick(track: PoseTrack, win: Window, side: int) -> None:
    p = _cycles(win, (0.9, 1.3))
    thigh = win.rng.uniform(1.1, 1.4) * np.sin(np.pi * p)
    knee = 1.5 * np.sin(2 * np.pi * p) ** 2
    track.legs[side, win.frames, 0] += thigh
    track.legs[side, win.frames, 2] += thigh - knee


@register("kick_left", channels=[{"legs"}], posture="standing", duration=(1.0, 3.0),
          description="left knee chambered, leg snapped straight forward to hip height, back down; repeated per ~1 s")
def kick_left(track: PoseTrack, win: Window) -> None:
    _kick(track, win, LEFT)


@register("kick_right", channels=[{"legs"}], posture="standing", duration=(1.0, 3.0),
          description="right knee chambered, leg snapped straight forward to hip height, back down; repeated per ~1 s")
def kick_right(track: PoseTrack, win: Window) -> None:
    _kick(track, win, RIGHT)


@register("squat", channels=[{"legs", "torso"}], posture="standing", duration=(2.0, 6.0),
          description="hips lowered by bending both knees with the trunk leaning forward, and back up; 1-3 times")
def squat(track: PoseTrack, win: Window) -> None:
    depth = win.rng.uniform(0.8, 1.0) * bump(_cycles(win, (1.6, 2.5)))
    track.legs[:, win.frames, 0] += 1.6 * depth
    track.legs[:, win.frames, 2] += -0.8 * depth
    track.torso[win.frames, 0] += 0.6 * depth


@register("jump", channels=[{"legs"}], posture="standing", duration=(1.5, 5.0),
          description="hops in place: crouch, take off (15-30 cm), tucked legs in flight, landing crouch")
def jump(track: PoseTrack, win: Window) -> None:
    p = _cycles(win, (0.7, 1.0))
    crouch = np.where(p < 0.3, np.sin(np.pi * p / 0.3), 0.0) + np.where(p > 0.7, np.sin(np.pi * (p - 0.7) / 0.3), 0.0)
    flight = np.where((p >= 0.3) & (p <= 0.7), np.sin(np.pi * (p - 0.3) / 0.4), 0.0)
    track.lift[win.frames] += win.rng.uniform(0.15, 0.3) * flight
    track.legs[:, win.frames, 0] += 0.8 * crouch + 0.35 * flight
    track.legs[:, win.frames, 2] += -0.8 * crouch - 0.25 * flight


def _steps(track: PoseTrack, win: Window, amplitude: float, hz: float) -> None:
    swing = np.sin(np.pi * hz * win.seconds) * envelope(win.length, win.fps, ramp_s=0.2)
    for side, lift in ((LEFT, np.maximum(0.0, swing)), (RIGHT, np.maximum(0.0, -swing))):
        track.legs[side, win.frames, 0] += amplitude * lift
        track.legs[side, win.frames, 2] += -amplitude * lift


@register("walk_in_place", channels=[{"legs"}], posture="standing", duration=(2.0, 8.0),
          description="knees lifted alternately, 1.5-2.2 steps/s, without moving across the floor")
def walk_in_place(track: PoseTrack, win: Window) -> None:
    _steps(track, win, win.rng.uniform(0.5, 0.8), win.rng.uniform(1.5, 2.2))


@register("turn_left", channels=[{"legs"}], posture="standing", duration=(1.0, 2.5), turn=+1,
          description="body rotated 45-100 degrees counter-clockwise seen from above, with small steps")
def turn_left(track: PoseTrack, win: Window) -> None:
    _steps(track, win, 0.3, 2.0)


@register("turn_right", channels=[{"legs"}], posture="standing", duration=(1.0, 2.5), turn=-1,
          description="body rotated 45-100 degrees clockwise seen from above, with small steps")
def turn_right(track: PoseTrack, win: Window) -> None:
    _steps(track, win, 0.3, 2.0)


# ---- trunk and posture ------------------------------------------------------------------------------

@register("bend_down", channels=[{"legs", "torso"}], duration=(1.5, 4.5),
          description="trunk bent forward 60-85 degrees at the hips, held, and straightened")
def bend_down(track: PoseTrack, win: Window) -> None:
    level = envelope(win.length, win.fps, ramp_s=10.0, ramp_fraction=0.35)
    track.torso[win.frames, 0] += win.rng.uniform(1.05, 1.5) * level
    track.head[win.frames, 0] += 0.3 * level


def _posture_change(track: PoseTrack, win: Window) -> None:
    track.torso[win.frames, 0] += win.rng.uniform(0.35, 0.55) * np.sin(np.pi * win.phase)


@register("sit_down", channels=[{"legs", "torso"}], duration=(1.2, 2.5), posture="standing", posture_after="seated",
          description="from standing: trunk leans forward, hips go back and down to seat height (legs are the posture state)")
def sit_down(track: PoseTrack, win: Window) -> None:
    _posture_change(track, win)


@register("stand_up", channels=[{"legs", "torso"}], duration=(1.2, 2.5), posture="seated", posture_after="standing",
          description="from seated: trunk leans forward, hips rise to standing (the time-reverse of sit_down)")
def stand_up(track: PoseTrack, win: Window) -> None:
    _posture_change(track, win)


SEATED_THIGH = 1.5  # radians of thigh flexion when seated (knees at about hip height)


def posture_level(windows: list[tuple[ActionClass, Window]], frames: int, seated_at_start: bool) -> np.ndarray:
    """Seatedness per frame (0 standing, 1 seated), changing smoothly over sit_down/stand_up windows."""
    level = np.full(frames, 1.0 if seated_at_start else 0.0)
    t = np.arange(frames)
    for action, win in windows:
        if action.posture_after is not None:
            step = smoothstep((t - win.start) / max(win.length - 1, 1))
            level += step if action.posture_after == "seated" else -step
    return np.clip(level, 0.0, 1.0)


def yaw_curve(windows: list[tuple[ActionClass, Window]], frames: int, yaw_at_start: float) -> np.ndarray:
    """Facing direction per frame, turning smoothly over turn windows by their angles."""
    yaw = np.full(frames, yaw_at_start)
    t = np.arange(frames)
    for action, win in windows:
        if action.turn:
            yaw += win.angle * smoothstep((t - win.start) / max(win.length - 1, 1))
    return yaw
