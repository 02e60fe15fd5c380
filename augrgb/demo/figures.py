"""The demo's last step: the figures of the run, gathered into ``OUT/figures.md`` (one page to look at).

The ``augrgb plot`` figures of the pose-taught run (t-SNE of the snippet features, T x T relation
matrices and boundary saliency of the first held-out video) and the detection timelines that
``augrgb detect --plot`` drew. Each is the same call a user makes on any run (docs/plots.md).
"""

from __future__ import annotations

from pathlib import Path

from augrgb.core.files import write_text_atomic
from augrgb.plot.relations import plot_relations
from augrgb.plot.saliency import plot_saliency
from augrgb.plot.tsne import plot_tsne

LABELS = ["vanilla RGB", "Augmented-RGB (pose)", "pose teacher"]


def write_figures(out: Path, detect_dir: Path, *, features: Path, annotations: Path, runs: dict[str, Path],
                  video: str) -> list[Path]:
    """Draw the plots of ``runs`` (best checkpoints of student_vanilla, student_pose, pose_teacher) and write
    ``out/figures.md`` showing every figure of the run (paths relative to ``out``); returns the figures."""
    folder = out / "figures"
    checkpoints = [runs["student_vanilla"], runs["student_pose"], runs["pose_teacher"]]
    drawn = [
        ("t-SNE of the held-out snippets' features H (one colour per class; title: silhouette of H)",
         plot_tsne(folder / "tsne.png", checkpoints, features, annotations, labels=LABELS)),
        (f"Relation matrices (snippet x snippet correlations of H) of {video}",
         plot_relations(folder / "relations.png", checkpoints, features, video, labels=LABELS,
                        two_stream=(runs["student_vanilla"], runs["pose_teacher"]), annotations=annotations)),
        (f"Boundary saliency of {video} (ground-truth starts and ends as vertical lines)",
         plot_saliency(folder / "saliency.png", checkpoints, features, video, labels=LABELS, annotations=annotations)),
    ]
    timelines = sorted((detect_dir / "plots").glob("*.png"))
    lines = ["# Figures of this demo run", ""]
    for title, path in drawn:
        lines += [f"## {title}", "", f"![{path.stem}]({path.relative_to(out).as_posix()})", ""]
    lines += ["## Detection timelines (held-out videos, RGB only)", "",
              "Ground truth, detections (opacity = score) and per-frame probabilities of the Augmented-RGB detector.", ""]
    lines += [f"### {path.stem}\n\n![{path.stem}]({path.relative_to(out).as_posix()})\n" for path in timelines]
    write_text_atomic(out / "figures.md", "\n".join(lines))
    return [path for _, path in drawn] + timelines
