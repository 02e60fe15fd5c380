"""Train the pose encoder from a feature store's skeletons and the annotations of those videos.

Snippets are cut from the stored skeletons on the grid they were stored with (fps, snippet, stride in
their attributes); a snippet's labels are the actions whose segment holds the snippet's centre time
(:func:`augrgb.annotations.label_times`, the one labelling rule). Validation videos are carved from the
training subset with :func:`augrgb.annotations.carve_validation` (seeded), so no video is in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augrgb import __version__
from augrgb.annotations import (
    Annotations,
    carve_validation,
    label_times,
    read_annotations,
)
from augrgb.core.errors import InputError
from augrgb.core.files import checkpoint_sha256
from augrgb.core.grid import SnippetGrid, num_snippets, snippet_centers
from augrgb.extract.agcn import PAPER_WIDTHS, POSE_ENCODERS
from augrgb.extract.pose_encoder_training import save_pose_encoder, train_pose_encoder
from augrgb.extract.pose_snippets import cut_snippets
from augrgb.extract.store import FeatureStore

NEEDS_ANNOTATIONS = ("training the pose encoder needs annotations (snippet labels) of the stored videos: "
                     "augrgb extract pose-encoder train --poses STORE --annotations FILE --out encoder.pt")


@dataclass
class PoseTrainingSet:
    """Snippets (N, snippet, M, 25, 3), their multi-hot labels (N, K), and the video each comes from."""

    snippets: np.ndarray
    labels: np.ndarray
    owner: np.ndarray  # (N,) index into ``videos``
    videos: list[str]
    classes: list[str]
    grid: dict[str, Any]  # fps, snippet, stride


def stored_grid(store: FeatureStore, video_ids: Sequence[str]) -> dict[str, Any]:
    """The grid (fps, snippet, stride) all stored skeletons share; mixed grids are an error."""
    grids: dict[tuple, str] = {}
    for vid in video_ids:
        grid = SnippetGrid.of(store.attrs(vid, "skeleton"), source=f"{store.path(vid)} (skeleton dataset)")
        grids.setdefault((grid.fps, grid.snippet, grid.stride), vid)
    if len(grids) > 1:
        described = "; ".join(f"{vid}: {s}-frame snippets, stride {st}, {f:g} fps" for (f, s, st), vid in grids.items())
        raise InputError(store.root, f"stored skeletons are on different grids ({described}); re-extract them with one")
    fps, snippet, stride = next(iter(grids))
    return {"fps": fps, "snippet": snippet, "stride": stride}


def training_set(store: FeatureStore, annotations: Annotations) -> PoseTrainingSet:
    """Every snippet of every annotated video that has stored skeletons, labelled at its centre time."""
    videos = [v for v in annotations.videos if store.has(v, "skeleton")]
    if not videos:
        raise InputError(store.root, "none of the annotated videos has stored skeletons: " + NEEDS_ANNOTATIONS)
    grid = stored_grid(store, videos)
    snippets, labels, owner = [], [], []
    for index, vid in enumerate(videos):
        joints, _ = store.read(vid, "skeleton")
        count = num_snippets(len(joints), grid["snippet"], grid["stride"])
        centres = snippet_centers(count, grid["snippet"], grid["stride"], grid["fps"])
        snippets.append(cut_snippets(joints, grid["snippet"], grid["stride"]))
        labels.append(label_times(annotations.videos[vid], annotations.num_classes, centres))
        owner.append(np.full(count, index))
    return PoseTrainingSet(np.concatenate(snippets), np.concatenate(labels), np.concatenate(owner), videos,
                           list(annotations.classes), grid)


def bodies_present(snippets: np.ndarray) -> int:
    """How many body slots of ``snippets`` (N, T, M, V, 3) ever hold a joint (at least 1).

    The encoder models only these: a slot that is empty in every training snippet (e.g. the second
    body of single-actor data) would double the AGCN's cost and teach it nothing.
    """
    return max(1, int((np.abs(snippets).sum(axis=(0, 1, 3, 4)) > 0).sum()))


def choose_head(labels: np.ndarray) -> str:
    """``sigmoid`` when some snippet has two actions at once (a dense dataset), else ``softmax``."""
    return "sigmoid" if (labels.sum(axis=1) > 1).any() else "softmax"


def train_from_store(poses: str | Path, annotations_path: str | Path | None, out: str | Path, *,
                     annotation_format: str = "auto", subset: str = "training", head: str = "auto",
                     val_fraction: float = 0.1, seed: int = 0, epochs: int = 30, lr: float = 0.05,
                     batch_size: int = 32, arch: str = "2s-agcn", widths: Sequence[int] | None = None,
                     device: str = "cpu", progress: bool = False) -> dict[str, Any]:
    """Train an encoder on the ``subset`` videos' stored skeletons and save it to ``out``; returns its meta.

    ``val_fraction`` of those videos (at least one, when there are two or more) are held out for
    validation and choosing the epoch; 0 trains on all of them. ``widths`` default to the paper's.
    """
    if annotations_path is None:
        raise InputError("--annotations", NEEDS_ANNOTATIONS)
    POSE_ENCODERS.get(arch)  # an unknown name fails before any data is read
    for option, value, low in (("--epochs", epochs, 1), ("--batch-size", batch_size, 2)):
        if value < low:
            raise InputError(option, f"must be at least {low}, got {value}")
    if not lr > 0:
        raise InputError("--lr", f"must be positive, got {lr}")
    store_dir = Path(poses)
    if not store_dir.is_dir():
        raise InputError(store_dir, "no such feature store (run `augrgb extract pose INPUT... --out STORE` first)")
    store = FeatureStore(store_dir)
    annotations = read_annotations(annotations_path, annotation_format).subset(subset)
    matched = [v for v in annotations.videos if store.has(v, "skeleton")]
    if not matched:
        stored = [v for v in store.video_ids() if store.has(v, "skeleton")]
        raise InputError(annotations_path, f"none of its {len(annotations)} '{subset}' videos has skeletons in {store_dir} "
                                           f"({len(stored)} stored, e.g. {', '.join(stored[:3]) or 'none'}); "
                                           "a trained encoder needs annotations of the stored videos")
    annotations = annotations.select(matched)
    validation: set[str] = set()
    if val_fraction > 0 and len(matched) >= 2:
        _, held = carve_validation(annotations, val_fraction, seed, source_subset=subset)
        validation = set(held.videos)
    data = training_set(store, annotations)
    kind = choose_head(data.labels) if head == "auto" else head
    holdout = np.isin(data.owner, [data.videos.index(v) for v in validation])
    if (~holdout).sum() < 2:
        raise InputError(annotations_path, f"only {(~holdout).sum()} training snippet(s) in the stored skeletons of its "
                                           f"'{subset}' videos; training needs at least 2")
    model, metrics = train_pose_encoder(data.snippets, data.labels, kind, epochs=epochs, lr=lr, batch_size=batch_size,
                                        arch=arch, widths=widths or PAPER_WIDTHS, num_person=bodies_present(data.snippets), holdout=holdout,
                                        seed=seed, device=device, progress=progress)
    meta = {"kind": kind, "class_names": data.classes, **data.grid, "feature_dim": model.feature_dim,
            "annotations": str(annotations_path), "subset": subset, "seed": seed, "epochs": epochs, "lr": lr,
            "batch_size": batch_size, "train_videos": [v for v in data.videos if v not in validation],
            "val_videos": sorted(validation), "metrics": metrics, "augrgb_version": __version__,
            # CPU results are the same bytes only at the same thread count (reduction order); say which one
            "torch_threads": torch.get_num_threads()}
    save_pose_encoder(out, model, meta)
    return {**meta, "sha256": checkpoint_sha256(out)}
