"""A contact sheet of a generated benchmark: frames from many classes and viewpoints, with motion trails.

Each cell is the middle frame of one action; thin lines trace where the wrists (yellow) and ankles
(cyan) were over the previous 0.6 s (drawn only here, never in the videos) and the caption lists
the labels active at that frame, the shown action first.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from augrgb.extract.skeleton_layout import JOINT
from augrgb.synth.generator import FPS, Settings, build_video, video_timeline
from augrgb.synth.scene import SHIFT
from augrgb.synth.schedule import Placed

TRAILS = ((("left_wrist", "right_wrist"), (255, 230, 0)), (("left_ankle", "right_ankle"), (0, 230, 255)))


def pick_cells(settings: Settings, cells: int) -> list[tuple[int, Placed]]:
    """(video index, action) pairs showing as many classes as possible, spread over as many videos (views) as possible."""
    timelines = [video_timeline(settings.seed, i, settings.seconds, settings.mode) for i in range(min(settings.videos, 64))]
    chosen: list[tuple[int, Placed]] = []
    shown: set[str] = set()
    for one_per_video in (True, False):  # first a new class from each video, then any new class, then repeats
        for index, timeline in enumerate(timelines):
            for placed in timeline.actions:
                if len(chosen) < cells and placed.name not in shown:
                    chosen.append((index, placed))
                    shown.add(placed.name)
                    if one_per_video:
                        break
    for index, timeline in enumerate(timelines):
        chosen += [(index, p) for p in timeline.actions if (index, p) not in chosen][:max(0, cells - len(chosen))]
    return chosen


def contact_sheet(settings: Settings, columns: int = 4, rows: int = 4, cell: int = 160) -> np.ndarray:
    """The sheet as an RGB image: ``rows`` x ``columns`` captioned frames, ``cell`` pixels wide."""
    caption = 30
    sheet = np.full((rows * (cell + caption), columns * cell, 3), 255, np.uint8)
    for k, (index, placed) in enumerate(pick_cells(settings, rows * columns)):
        video = build_video(settings.seed, index, settings.seconds, settings.mode, settings.size,
                            framing=settings.framing)
        t = (placed.start + placed.end) // 2
        img = video.frame(t)
        points = video.renderer.points
        for joints, colour in TRAILS:
            for joint in joints:
                trail = points[max(0, t - int(0.6 * FPS)):t + 1, JOINT[joint]].astype(np.int32)
                cv2.polylines(img, [trail], False, colour, max(1, settings.size // 160), cv2.LINE_AA, SHIFT)
        img = cv2.resize(img, (cell, cell), interpolation=cv2.INTER_AREA)
        active = [p.name for p in video.timeline.actions if p.start <= t <= p.end and p != placed]
        r, c = divmod(k, columns)
        y0, x0 = r * (cell + caption), c * cell
        sheet[y0:y0 + cell, x0:x0 + cell] = img
        lines = [f"#{index} t={t / FPS:.1f}s {placed.name}", ("also " + ", ".join(active)) if active else ""]
        for i, text in enumerate(lines):
            cv2.putText(sheet, text, (x0 + 3, y0 + cell + 12 + 12 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(sheet, (x0, y0), (x0 + cell - 1, y0 + cell + caption - 1), (200, 200, 200), 1)
    return sheet


def write_preview(out_dir: str | Path, settings: Settings, path: str | Path | None = None) -> Path:
    """Write the contact sheet (a 256-colour PNG, small enough for docs) atomically; default ``out_dir/preview.png``."""
    path = Path(path) if path is not None else Path(out_dir) / "preview.png"
    tmp = path.with_name(f".{path.stem}.tmp.png")
    Image.fromarray(contact_sheet(settings)).quantize(256).save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path
