"""The demo's last stage: the figures of the run, gathered into ``OUT/figures.md`` (one page to look at).

Today these are the detection timelines ``augrgb detect --plot`` draws; the ``augrgb plot`` figures
(t-SNE, relation matrices, saliency) join them here.
"""

from __future__ import annotations

from pathlib import Path

from augrgb.atomic import write_text_atomic


def write_figures(out: Path, detect_dir: Path) -> list[Path]:
    """Write ``out/figures.md`` showing every figure of the run (paths relative to ``out``); returns the figures."""
    figures = sorted((detect_dir / "plots").glob("*.png"))
    lines = ["# Figures of this demo run", "", "## Detection timelines (held-out videos, RGB only)", "",
             "Ground truth, detections (opacity = score) and per-frame probabilities of the Augmented-RGB detector.", ""]
    lines += [f"### {path.stem}\n\n![{path.stem}]({path.relative_to(out).as_posix()})\n" for path in figures]
    write_text_atomic(out / "figures.md", "\n".join(lines))
    return figures
