"""Linear probes: how much of the actions one snippet's features carry, per modality.

A teacher can only pass on what the student's frozen input features can express. The probe fits one
logistic regression per class on single training snippets (no temporal context) and scores per-frame
mAP on the snippet grid of the training and test videos: the ratio of RGB's test mAP to another
modality's says how much of that modality's knowledge the RGB features could carry at all (the
benchmark's *regime*), and train minus test how much a modality overfits.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augrgb.annotations.core import Annotations
from augrgb.core.config import load_config
from augrgb.core.grid import SnippetGrid
from augrgb.distill.data import FeatureSource, VideoItem, load_annotations, load_videos
from augrgb.distill.settings import AnnotationSource, DatasetConfig
from augrgb.metrics.frame import frame_map


@dataclass(frozen=True)
class ProbeResult:
    """One modality's linear probe: feature width, snippet counts and per-frame mAP on each split."""

    modality: str
    dims: int
    train_snippets: int
    test_snippets: int
    train_mAP: float
    test_mAP: float


def _stack(items: Sequence[VideoItem], modality: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([item.features[modality].astype(np.float32) for item in items])
    y = np.concatenate([item.labels for item in items]).astype(bool)
    return x, y


def probe_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                 c: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """(train, test) per-frame mAP of the probe on snippet features ``(N, D)`` and multi-hot labels ``(N, K)``:
    standardise on the training snippets, fit one L2-regularised logistic regression per class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(),
                          OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, random_state=seed)))
    with warnings.catch_warnings():  # a class absent from training gets a constant score, as it should
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        model.fit(x_train, y_train)
    return (float(frame_map(model.predict_proba(x_train), y_train).mAP),
            float(frame_map(model.predict_proba(x_test), y_test).mAP))


def probe_modality(train: Sequence[VideoItem], test: Sequence[VideoItem], modality: str, *, c: float = 1.0,
                   seed: int = 0) -> ProbeResult:
    """:func:`probe_arrays` on one modality of the training and test videos' snippets."""
    x_train, y_train = _stack(train, modality)
    x_test, y_test = _stack(test, modality)
    train_map, test_map = probe_arrays(x_train, y_train, x_test, y_test, c=c, seed=seed)
    return ProbeResult(modality, int(x_train.shape[1]), len(x_train), len(x_test), train_map, test_map)


def split_videos(features: str | Path, annotations: str | Path, modalities: Sequence[str], split: str,
                 dataset: str = "synth", *, progress: bool = False) -> list[VideoItem]:
    """The videos of the dataset's ``split`` ("train" or "test" subset) from a feature store, on the dataset's
    snippet grid with multi-hot labels: what the probes and the research tools read."""
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r}: must be 'train' or 'test'")
    config = load_config(DatasetConfig, dataset)
    ann: Annotations = load_annotations([AnnotationSource(path=str(annotations))], config)
    source = FeatureSource(features, SnippetGrid(config.fps, config.snippet, config.stride))
    subset = config.train_subset if split == "train" else config.test_subset
    items, _ = load_videos(source, ann.subset(subset), list(modalities), "sigmoid", progress=progress)
    return items


def probe(features: str | Path, annotations: str | Path, modalities: Sequence[str], dataset: str = "synth",
          *, c: float = 1.0, seed: int = 0, progress: bool = False) -> list[ProbeResult]:
    """Probe every modality of a feature store on the dataset's training and test subsets (multi-label head)."""
    train, test = (split_videos(features, annotations, modalities, split, dataset, progress=progress)
                   for split in ("train", "test"))
    return [probe_modality(train, test, m, c=c, seed=seed) for m in modalities]


def render(results: Sequence[ProbeResult]) -> str:
    """A Markdown table; the last column is each modality's test mAP over the best one's."""
    best = max(r.test_mAP for r in results)
    lines = ["| modality | dims | train snippets | test snippets | train mAP (%) | test mAP (%) | test / best |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.modality} | {r.dims} | {r.train_snippets} | {r.test_snippets} | {100 * r.train_mAP:.1f} | "
              f"{100 * r.test_mAP:.1f} | {r.test_mAP / best:.2f} |" for r in results]
    return "\n".join(lines) + "\n"
