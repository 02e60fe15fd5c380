"""Label statistics of a dense-detection annotation file, to describe a benchmark honestly (e.g. beside Charades)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from augrgb.core.errors import InputError


def _load(annotations: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    if isinstance(annotations, Mapping):
        return annotations
    try:
        data = json.loads(Path(annotations).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(annotations, f"cannot read annotation JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise InputError(annotations, "annotation JSON must map video ids to entries")
    return data


def label_statistics(annotations: Mapping[str, Any] | str | Path, fps: float = 25.0) -> dict[str, Any]:
    """Videos, durations, actions per video, action lengths and labels per frame of ``{vid: {duration, actions}}``.

    Frame t (time t/fps, t = 0 .. round(duration*fps)-1) carries an action when start <= t/fps <= end.
    """
    data = _load(annotations)
    durations, per_video, lengths, classes, subsets = [], [], [], Counter(), Counter()
    labels_per_frame = []
    for vid, entry in data.items():
        try:
            duration = float(entry["duration"])
            actions = [(int(c), float(s), float(e)) for c, s, e in entry["actions"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(vid, f"malformed annotation entry ({exc.__class__.__name__}: {exc})") from None
        durations.append(duration)
        per_video.append(len(actions))
        subsets[entry.get("subset", "?")] += 1
        times = np.arange(int(round(duration * fps))) / fps
        count = np.zeros(len(times), int)
        for cls, start, end in actions:
            lengths.append(end - start)
            classes[cls] += 1
            count += (times >= start - 1e-9) & (times <= end + 1e-9)
        labels_per_frame.append(count)
    if not durations:
        raise InputError("annotations", "no videos")
    frames = np.concatenate(labels_per_frame) if labels_per_frame else np.zeros(0, int)
    lengths_a = np.array(lengths) if lengths else np.zeros(1)
    return {
        "videos": len(durations),
        "subsets": dict(subsets),
        "duration_s": {"mean": float(np.mean(durations)), "min": float(np.min(durations)), "max": float(np.max(durations))},
        "actions": int(sum(per_video)),
        "actions_per_video": {"mean": float(np.mean(per_video)), "median": float(np.median(per_video)),
                              "max": int(np.max(per_video))},
        "action_length_s": {"mean": float(lengths_a.mean()), "median": float(np.median(lengths_a)),
                            "min": float(lengths_a.min()), "max": float(lengths_a.max())},
        "labels_per_frame": {"mean": float(frames.mean()), "max": int(frames.max(initial=0)),
                             "fraction_0": float(np.mean(frames == 0)), "fraction_1": float(np.mean(frames == 1)),
                             "fraction_2_or_more": float(np.mean(frames >= 2))},
        "instances_per_class": {int(k): int(v) for k, v in sorted(classes.items())},
    }
