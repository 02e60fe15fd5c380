"""t-SNE of the snippet features H of a subset, one panel per checkpoint, points coloured by class.

Snippets with exactly one ground-truth label are coloured by that class; background snippets (no
label) are embedded too and drawn as small grey points; snippets with several labels are left out
(no single colour). The same snippets, chosen once by ``seed``, appear in every panel. Each title
gives the silhouette score of H (Euclidean, single-label snippets only): how well the classes separate
in the stream's own feature space, not in the 2-D picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from augrgb.core.errors import InputError
from augrgb.distill.data import FeatureSource, load_videos
from augrgb.plot.figure import new_figure, save_png
from augrgb.plot.segments import class_colour
from augrgb.plot.streams import hidden_features, load_checkpoints, read_checked_annotations

BACKGROUND, MULTI_LABEL = -1, -2
MAX_LEGEND = 20


def snippet_classes(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per snippet: its class when it has exactly one label, ``BACKGROUND`` (-1) with none,
    ``MULTI_LABEL`` (-2) with several. ``labels``: multi-hot ``(T, K)`` or class indices ``(T,)`` (K = background)."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return np.where(labels >= num_classes, BACKGROUND, labels).astype(np.int64)
    count = labels.sum(axis=1)
    return np.select([count == 1, count == 0], [labels.argmax(axis=1), BACKGROUND], MULTI_LABEL).astype(np.int64)


def silhouette(points: np.ndarray, classes: np.ndarray) -> float | None:
    """Silhouette score of the single-label points (Euclidean); None with fewer than two classes."""
    keep = classes >= 0
    present = np.unique(classes[keep])
    if len(present) < 2 or keep.sum() <= len(present):
        return None
    return float(silhouette_score(points[keep], classes[keep], metric="euclidean"))


def embed(points: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE of ``points`` (PCA initialisation; perplexity 30, lower for small sets as t-SNE requires)."""
    if len(points) < 3:
        raise InputError("t-SNE", f"needs at least 3 snippets, got {len(points)}")
    perplexity = min(30.0, (len(points) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)


@dataclass
class TsnePanel:
    """One panel: the checkpoint's label, 2-D points, their classes (see :func:`snippet_classes`), silhouette of H."""

    label: str
    points: np.ndarray
    classes: np.ndarray
    silhouette: float | None


def tsne_panels(checkpoints: Sequence[str | Path], features: str | Path, annotations: str | Path, *,
                labels: Sequence[str] | None = None, subset: str = "testing", max_snippets: int = 3000,
                seed: int = 0, fmt: str = "auto") -> tuple[list[TsnePanel], list[str]]:
    """The t-SNE panels of ``subset`` (videos that fail to load are skipped with a warning) and the class names."""
    if max_snippets < 3:
        raise InputError("--max-snippets", f"must be at least 3, got {max_snippets}")
    loaded = load_checkpoints(checkpoints, labels)
    ann = read_checked_annotations(annotations, loaded, fmt).subset(subset)
    ref = loaded[0].meta
    source = FeatureSource(features, ref.grid)
    items, _ = load_videos(source, ann, list(dict.fromkeys(ck.modality for ck in loaded)), ref.head)
    classes = np.concatenate([snippet_classes(item.labels, len(ref.classes)) for item in items])
    chosen = np.flatnonzero(classes != MULTI_LABEL)
    if len(chosen) > max_snippets:
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, max_snippets, replace=False))
    panels = []
    for ck in loaded:
        h = np.concatenate([hidden_features(ck, item).T for item in items])[chosen]
        panels.append(TsnePanel(ck.label, embed(h, seed), classes[chosen], silhouette(h, classes[chosen])))
    return panels, list(ref.classes)


def plot_tsne(out: str | Path, checkpoints: Sequence[str | Path], features: str | Path, annotations: str | Path, *,
              labels: Sequence[str] | None = None, subset: str = "testing", max_snippets: int = 3000, seed: int = 0,
              fmt: str = "auto") -> Path:
    """Draw the t-SNE panels (one per checkpoint) of the snippet features H of ``subset`` into ``out`` (PNG)."""
    panels, names = tsne_panels(checkpoints, features, annotations, labels=labels, subset=subset,
                                max_snippets=max_snippets, seed=seed, fmt=fmt)
    fig = new_figure(4.2 * len(panels) + 2.2, 4.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    present = sorted(set(np.unique(panels[0].classes).tolist()) - {BACKGROUND})
    size = float(np.clip(3000 / max(len(panels[0].points), 1), 4, 30))
    for ax, panel in zip(axes, panels):
        back = panel.classes == BACKGROUND
        ax.scatter(*panel.points[back].T, s=size * 0.5, c="0.75", linewidths=0, label="background")
        for c in present:
            pts = panel.points[panel.classes == c]
            ax.scatter(*pts.T, s=size, color=class_colour(c), linewidths=0, label=names[c])
        score = "n/a" if panel.silhouette is None else f"{panel.silhouette:.3f}"
        ax.set_title(f"{panel.label}\nsilhouette of H: {score}", fontsize=9)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
    handles, texts = axes[0].get_legend_handles_labels()
    if len(handles) > MAX_LEGEND:
        handles, texts = handles[:MAX_LEGEND], texts[:MAX_LEGEND - 1] + [f"... ({len(present)} classes)"]
    fig.legend(handles, texts, loc="outside right upper", fontsize=8, markerscale=1.5, title="class")
    fig.suptitle(f"t-SNE of stream features H, {subset} subset ({len(panels[0].points)} snippets; "
                 "multi-label snippets left out)", fontsize=11)
    return save_png(fig, out)
