"""Ground-truth action segments drawn along a time axis, one row per class present, coloured by class."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib import colormaps
from matplotlib.axes import Axes

from augrgb.annotations import Segment


def class_colour(label: int) -> tuple[float, float, float, float]:
    """The colour of class ``label`` in every figure (tab20, cycling past 20 classes)."""
    return colormaps["tab20"](label % 20)


def draw_segments(ax: Axes, segments: Sequence[Segment], classes: Sequence[str]) -> None:
    """Bars of the segments on ``ax`` (x in seconds), a row per class present, class names as y ticks."""
    rows = sorted({s.label for s in segments})
    row_of = {c: i for i, c in enumerate(rows)}
    for s in segments:
        ax.broken_barh([(s.start, max(s.end - s.start, 1e-3))], (row_of[s.label] - 0.4, 0.8), color=class_colour(s.label))
    ax.set_yticks(range(len(rows)), [classes[c] for c in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
