"""One way to make and save a figure: a pyplot-free matplotlib Figure (Agg), written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from augrgb.core.files import replacing

DPI = 120


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with no global pyplot state (safe in workers and tests)."""
    return Figure(figsize=(width, height), layout="constrained")


def save_png(fig: Figure, out: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``out`` atomically (readers see the old PNG or the whole new one)."""
    with replacing(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(out)
