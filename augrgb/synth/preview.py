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

from augrgb.synth.actions import class_names
from augrgb.synth.generator import FPS, Settings, build_video, video_timeline
from augrgb.synth.scene import ONE, SHIFT
from augrgb.synth.schedule import Placed
from augrgb.synth.skeleton import JOINT

TRAILS = ((("left_wrist", "right_wrist"), (255, 230, 0)), (("left_ankle", "right_ankle"), (0, 230, 255)))


def pick_cells(settings: Settings, cells: int) -> list[tuple[int, Placed]]:
    """(video index, action) pairs covering as many classes and videos as possible, in a fixed order."""
    chosen: list[tuple[int, Placed]] = []
    seen_classes: set[str] = set()
    spare: list[tuple[int, Placed]] = []
    for index in range(min(settings.videos, 200)):
        timeline = video_timeline(settings.seed, index, settings.seconds, settings.mode)
        fresh = [p for p in timeline.actions if p.name not in seen_classes]
        if fresh and len(chosen) < cells:
            chosen.append((index, fresh[0]))
            seen_classes.add(fresh[0].name)
        spare += [(index, p) for p in timeline.actions[1:]]
        if len(chosen) == cells or len(seen_classes) == len(class_names()):
            break
    for item in spare:
        if len(chosen) >= cells:
            break
        if item not in chosen:
            chosen.append(item)
    return chosen


def contact_sheet(settings: Settings, columns: int = 4, rows: int = 4, cell: int = 160) -> np.ndarray:
    """The sheet as an RGB image: ``rows`` x ``columns`` captioned frames, ``cell`` pixels wide."""
    caption = 30
    sheet = np.full((rows * (cell + caption), columns * cell, 3), 255, np.uint8)
    for k, (index, placed) in enumerate(pick_cells(settings, rows * columns)):
        video = build_video(settings.seed, index, settings.seconds, settings.mode, settings.size)
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
        lines = [f"{video.video_id[-3:]} t={t / FPS:.1f}s {placed.name}", " + ".join(active)]
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
