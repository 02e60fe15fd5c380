"""Training data: snippet features of several modalities on one grid, snippet labels, padded batches.

- Features come from a feature store (one HDF5 per video, grid in the dataset attributes) or a
  folder of released per-video ``.npy`` files (``ROOT/<modality>/<video>.npy``, or ``ROOT/<video>.npy``
  for rgb; grid from the dataset config). They are loaded once, as float16, into RAM.
- Modalities of one video are aligned on one grid: lengths may differ by one snippet (trimmed to
  the shorter), more is an error naming the video and the modalities.
- Labels: snippet t, at its centre time c_t (``snippet_centers``), is positive for an action when
  start <= c_t <= end. Dense: multi-hot ``(T, K)``; sparse: class index ``(T,)``, background = K.
- Batches: features ``(B, C, T)`` per modality (float16, float32 once on the device), mask ``(B, 1, T)``,
  labels ``(B, K, T)`` or ``(B, T)``; training crops long videos to a random window, evaluation keeps whole videos.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from augrgb.annotations import Annotations, VideoAnnotation, read_annotations
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid, snippet_centers
from augrgb.extract.store import FeatureStore, read_features

log = logging.getLogger(__name__)

PROVENANCE_KEYS = ("fps", "snippet", "stride", "crop", "size", "short_side", "encoder", "weights_sha256")


# ------------------------------------------------------------------------------------- features
class FeatureSource:
    """Reads ``(T, C)`` features and their attributes from a feature store or a ``.npy`` folder."""

    def __init__(self, root: str | Path, default_grid: SnippetGrid) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(self.root, "feature folder not found")
        self.is_store = any(self.root.glob("*.h5"))
        self.default_grid = default_grid.attrs()

    def _npy_path(self, video_id: str, modality: str) -> Path:
        from augrgb.core.paths import path_in

        folder = self.root / modality
        if folder.is_dir():
            return path_in(folder, video_id, ".npy")
        if modality == "rgb":
            return path_in(self.root, video_id, ".npy")
        raise InputError(self.root, f"no '{modality}' sub-folder of .npy features")

    def read(self, video_id: str, modality: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Features ``(T, C)`` (float32, finite) and attributes: a store's own, which must name the grid (guessing it
        would mislabel every snippet); for ``.npy`` files the dataset's grid."""
        if self.is_store:
            store = FeatureStore(self.root)
            array, attrs = store.read(video_id, modality)
            SnippetGrid.of(attrs, source=f"{store.path(video_id)} ({modality} dataset)")  # a store records its grid
            array = np.asarray(array, dtype=np.float32)
            if array.ndim == 4 and array.shape[1:3] == (1, 1):
                array = array[:, 0, 0]
            if array.ndim != 2:
                raise InputError(video_id, f"{modality} features have shape {array.shape}, expected (T, C)")
            if not np.isfinite(array).all():
                raise InputError(video_id, f"{modality} features contain NaN or Inf")
            return array, attrs
        path = self._npy_path(video_id, modality)
        if not path.is_file():
            raise InputError(path, f"no {modality} features for video {video_id}")
        return read_features(path), dict(self.default_grid)


@dataclass
class VideoItem:
    """One video in RAM: float16 features per modality ``(T, C)``, snippet labels, grid and duration."""

    video_id: str
    features: dict[str, np.ndarray]
    labels: np.ndarray
    length: int
    duration: float | None = None
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)


def snippet_labels(video: VideoAnnotation, num_classes: int, count: int, snippet: int, stride: int, fps: float,
                   head: str) -> np.ndarray:
    """Snippet labels by the one grid rule at the snippet centres: multi-hot ``(T, K)`` bool (sigmoid)
    or class indices ``(T,)`` int64 with background = K (softmax; overlapping segments: the one that
    starts last wins)."""
    centers = snippet_centers(count, snippet, stride, fps)
    if head == "sigmoid":
        labels = np.zeros((count, num_classes), dtype=bool)
    else:
        labels = np.full(count, num_classes, dtype=np.int64)
    for seg in sorted(video.segments, key=lambda s: s.start):
        if not 0 <= seg.label < num_classes:
            raise InputError(video.video_id, f"label {seg.label} outside 0..{num_classes - 1}")
        inside = (centers >= seg.start) & (centers <= seg.end)
        if head == "sigmoid":
            labels[inside, seg.label] = True
        else:
            labels[inside] = seg.label
    return labels


def load_video(source: FeatureSource, video: VideoAnnotation, modalities: Sequence[str], num_classes: int,
               head: str) -> VideoItem:
    """Read every modality of one video, align them on one grid, store float16, and label the snippets."""
    arrays, attrs = {}, {}
    for modality in modalities:
        arrays[modality], attrs[modality] = source.read(video.video_id, modality)
    grids = {m: SnippetGrid.of(a) for m, a in attrs.items()}
    if len(set(grids.values())) > 1:
        described = ", ".join(f"{m} (fps {g.fps:g}, snippet {g.snippet}, stride {g.stride})" for m, g in grids.items())
        raise InputError(video.video_id, f"modalities are on different snippet grids: {described}")
    lengths = {m: a.shape[0] for m, a in arrays.items()}
    if max(lengths.values()) - min(lengths.values()) > 1:
        described = ", ".join(f"{m} T={n}" for m, n in lengths.items())
        raise InputError(video.video_id, f"modalities differ by more than one snippet: {described}")
    length = min(lengths.values())
    if length < 1:
        raise InputError(video.video_id, "no snippet")
    features = {}
    for modality, array in arrays.items():
        with np.errstate(over="ignore"):
            half = array[:length].astype(np.float16)
        if not np.isfinite(half).all():
            raise InputError(video.video_id, f"{modality} features overflow float16 (|x| > 65504)")
        features[modality] = half
    grid = grids[modalities[0]]
    fps, snippet, stride = grid.fps, grid.snippet, grid.stride
    labels = snippet_labels(video, num_classes, length, snippet, stride, fps, head)
    duration = video.duration
    if duration is None:
        frames = attrs[modalities[0]].get("frame_count")
        duration = (int(frames) if frames else (length - 1) * stride + snippet) / fps
    provenance = {m: {k: a[k] for k in PROVENANCE_KEYS if k in a} for m, a in attrs.items()}
    return VideoItem(video.video_id, features, labels, length, duration, provenance)


@dataclass
class LoadReport:
    """Videos that could not be used, each with its one-line reason."""

    skipped: list[str] = field(default_factory=list)


def load_videos(source: FeatureSource, annotations: Annotations, modalities: Sequence[str], head: str,
                progress: bool = False) -> tuple[list[VideoItem], LoadReport]:
    """Load the annotated videos; a video that fails (missing or bad features, misaligned modalities)
    is skipped with a warning and listed in the report. No usable video at all is an error."""
    from tqdm import tqdm

    items, report = [], LoadReport()
    for video in tqdm(list(annotations), desc="loading features", unit="video", disable=not progress):
        try:
            items.append(load_video(source, video, modalities, annotations.num_classes, head))
        except InputError as err:
            log.warning("skipping video: %s", err)
            report.skipped.append(str(err))
    if not items:
        first = f" (first: {report.skipped[0]})" if report.skipped else ""
        raise InputError(source.root, f"no usable video among {len(annotations)} annotated{first}")
    _check_same_grid(items)
    return items, report


def _check_same_grid(items: Sequence[VideoItem]) -> None:
    """Every video must share the first video's grid and encoder weights: a model reads one kind of feature."""
    reference = items[0].provenance
    keys = ("fps", "snippet", "stride", "crop", "weights_sha256")
    for item in items[1:]:
        for modality, prov in item.provenance.items():
            for key in keys:
                if key in prov and key in reference[modality] and prov[key] != reference[modality][key]:
                    raise InputError(item.video_id, f"{modality} {key} is {prov[key]!r}, but video "
                                                    f"{items[0].video_id} has {reference[modality][key]!r}")


def feature_settings(items: Sequence[VideoItem], modality: str) -> dict[str, Any]:
    """The feature settings of one modality (fps, snippet, stride, crop, weights SHA-256, ...)."""
    return dict(items[0].provenance[modality])


# ------------------------------------------------------------------------------------- annotations
def merge_annotations(parts: Sequence[Annotations]) -> Annotations:
    """One :class:`Annotations` from several files (same classes, no video twice)."""
    merged = Annotations(list(parts[0].classes), dict(parts[0].videos))
    for part in parts[1:]:
        if part.classes != merged.classes:
            raise InputError("annotations", f"class lists differ ({len(part.classes)} vs {len(merged.classes)} classes)")
        twice = sorted(set(part.videos) & set(merged.videos))
        if twice:
            raise InputError(f"video {twice[0]!r}", f"appears in more than one annotation file ({len(twice)} such)")
        merged.videos.update(part.videos)
    return merged


def load_annotations(sources: Sequence[Any], dataset: Any) -> Annotations:
    """Read and merge annotation sources (``AnnotationSource``) with the dataset's format and options."""
    parts = []
    for src in sources:
        options = {**dataset.annotation_options, **src.options}
        parts.append(read_annotations(src.path, src.format or dataset.annotation_format, **options))
    annotations = merge_annotations(parts)
    if annotations.num_classes != dataset.num_classes:
        raise InputError(sources[0].path, f"{annotations.num_classes} classes, but dataset "
                                          f"{dataset.name} has {dataset.num_classes}")
    return annotations


# ------------------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """A padded batch: features ``(B, C, T)`` per modality, mask ``(B, 1, T)``, labels at snippet level."""

    video_ids: list[str]
    features: dict[str, Tensor]
    mask: Tensor
    labels: Tensor

    def to(self, device: torch.device | str) -> Batch:
        """The batch on ``device``; float16 features move as float16 and become float32 there."""
        return Batch(self.video_ids, {m: x.to(device, non_blocking=True).float() for m, x in self.features.items()},
                     self.mask.to(device, non_blocking=True), self.labels.to(device, non_blocking=True))


class SnippetDataset(Dataset):
    """Videos in RAM; ``max_length`` crops each video to a random window (seeded by seed, epoch, index)."""

    def __init__(self, items: Sequence[VideoItem], modalities: Sequence[str], head: str, num_classes: int,
                 max_length: int | None = None, seed: int = 0) -> None:
        self.items, self.modalities = list(items), list(modalities)
        self.head, self.num_classes = head, num_classes
        self.max_length, self.seed, self.epoch = max_length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Crops depend on the epoch: the same epoch gives the same windows (resume-safe)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
        item = self.items[index]
        start, stop = 0, item.length
        if self.max_length is not None and item.length > self.max_length:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            start = int(rng.integers(0, item.length - self.max_length + 1))
            stop = start + self.max_length
        return (item.video_id, {m: item.features[m][start:stop] for m in self.modalities},
                item.labels[start:stop])

    def collate(self, samples: Sequence[tuple[str, dict[str, np.ndarray], np.ndarray]]) -> Batch:
        """Pad to the longest video of the batch. Features stay float16 (half the bytes to copy and to
        move to the GPU); :meth:`Batch.to` makes them float32 on the device."""
        lengths = [labels.shape[0] for _, _, labels in samples]
        b, t = len(samples), max(lengths)
        mask = torch.zeros(b, 1, t)
        padded = {m: torch.zeros(b, t, samples[0][1][m].shape[1], dtype=torch.float16) for m in self.modalities}
        if self.head == "sigmoid":
            labels = torch.zeros(b, t, self.num_classes)
        else:
            labels = torch.full((b, t), self.num_classes, dtype=torch.long)
        for i, ((_, feats, lab), n) in enumerate(zip(samples, lengths)):
            mask[i, 0, :n] = 1
            for m in self.modalities:
                padded[m][i, :n] = torch.from_numpy(feats[m])
            labels[i, :n] = torch.from_numpy(lab)
        features = {m: x.transpose(1, 2).contiguous() for m, x in padded.items()}
        if self.head == "sigmoid":
            labels = labels.transpose(1, 2).contiguous()
        return Batch([vid for vid, _, _ in samples], features, mask, labels)


class ShardedBatchSampler(Sampler[list[int]]):
    """Seeded shuffled batches, split across ``world_size`` processes without padding or overlap.

    Each epoch a permutation (seed, epoch) is dealt round-robin: rank r gets ``perm[r::world]``, so
    the shards are disjoint and together cover every video once. Every rank runs the same number
    of steps, ``ceil(ceil(n / world) / batch_size)``, its shard cut into that many near-equal batches
    (sizes differ by at most one), which DDP needs to stay in lock-step.
    """

    def __init__(self, num_items: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True) -> None:
        if num_items < world_size:
            raise InputError("training set", f"{num_items} video(s) cannot feed {world_size} processes")
        if batch_size == 1 and num_items % world_size:
            raise InputError("batch_size 1", f"{num_items} videos over {world_size} processes would leave one idle "
                                              "in the last step; use batch_size >= 2")
        self.num_items, self.batch_size = num_items, batch_size
        self.world_size, self.rank, self.seed, self.shuffle = world_size, rank, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.num_items / self.world_size) / self.batch_size)

    def shard(self) -> np.ndarray:
        """This rank's video indices for the current epoch."""
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.num_items)
        else:
            order = np.arange(self.num_items)
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in np.array_split(self.shard(), len(self)):
            yield batch.tolist()


def evaluation_batches(items: Sequence[VideoItem], batch_size: int) -> list[list[int]]:
    """Whole videos sorted by length, so each batch pads little."""
    order = sorted(range(len(items)), key=lambda i: items[i].length)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
