"""Stage-2 data: snippet labels by the grid rule, modality alignment, float16 storage, masks, crops, sampler."""

import numpy as np
import pytest
import torch

from augrgb.annotations import Annotations, Segment, VideoAnnotation
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.distill.data import (
    FeatureSource,
    ShardedBatchSampler,
    SnippetDataset,
    evaluation_batches,
    load_video,
    load_videos,
    merge_annotations,
    snippet_labels,
)
from augrgb.extract.store import FeatureStore

GRID = {"fps": 16.0, "snippet": 16, "stride": 16}


def _video(vid="v", segments=(), duration=None):
    return VideoAnnotation(vid, duration, "training", [Segment(*s) for s in segments])


def _store(tmp_path, arrays, attrs=GRID):
    store = FeatureStore(tmp_path / "store")
    for (vid, modality), array in arrays.items():
        store.write(vid, modality, np.asarray(array, dtype=np.float32), attrs)
    return FeatureSource(store.root, SnippetGrid.of(GRID))


# ------------------------------------------------------------------------------ labels

def test_dense_snippet_labels_at_centres_inclusive():
    # centres (16 i + 7.5) / 16: 0.46875, 1.46875, 2.46875, 3.46875 s; [1.46875, 2.46875] covers exactly
    # snippets 1 and 2 (inclusive ends)
    video = _video(segments=[(0, 1.46875, 2.46875), (2, 0.0, 0.4), (1, 3.0, 9.0)])
    labels = snippet_labels(video, 3, 4, 16, 16, 16.0, "sigmoid")
    assert labels.dtype == bool and labels.shape == (4, 3)
    assert labels[:, 0].tolist() == [False, True, True, False]
    assert labels[:, 1].tolist() == [False, False, False, True]
    assert not labels[:, 2].any()           # ends before the first centre


def test_sparse_snippet_labels_background_is_k_and_later_start_wins():
    video = _video(segments=[(1, 0.0, 2.0), (0, 1.0, 1.6)])
    labels = snippet_labels(video, 2, 4, 16, 16, 16.0, "softmax")
    assert labels.tolist() == [1, 0, 2, 2]     # 0.47 -> 1; 1.47 in both, the later start (class 0) wins; then background


def test_snippet_labels_respect_stride_and_fps():
    # stride 8 at 24 fps, snippet 16: centres (8 i + 7.5) / 24 = 0.3125, 0.646, 0.979, 1.3125 s
    labels = snippet_labels(_video(segments=[(0, 0.6, 1.0)]), 1, 4, 16, 8, 24.0, "sigmoid")
    assert labels[:, 0].tolist() == [False, True, True, False]


def test_label_outside_classes_is_an_error():
    with pytest.raises(InputError, match="label 5 outside 0..2"):
        snippet_labels(_video(segments=[(5, 0, 1)]), 3, 4, 16, 16, 16.0, "sigmoid")


# ------------------------------------------------------------------------------ alignment and storage

def test_modalities_one_snippet_apart_are_trimmed_and_stored_float16(tmp_path):
    source = _store(tmp_path, {("v", "rgb"): np.arange(30).reshape(10, 3) / 7, ("v", "pose"): np.ones((11, 2))})
    item = load_video(source, _video(duration=10.0), ["rgb", "pose"], 2, "sigmoid")
    assert item.length == 10
    assert item.features["rgb"].dtype == np.float16 and item.features["rgb"].shape == (10, 3)
    assert item.features["pose"].shape == (10, 2)
    np.testing.assert_allclose(item.features["rgb"], np.arange(30).reshape(10, 3) / 7, rtol=1e-3)
    assert item.labels.shape == (10, 2)


def test_modalities_more_than_one_snippet_apart_name_video_and_modalities(tmp_path):
    source = _store(tmp_path, {("clip7", "rgb"): np.zeros((10, 3)), ("clip7", "flow"): np.zeros((13, 3))})
    with pytest.raises(InputError) as err:
        load_video(source, _video("clip7"), ["rgb", "flow"], 2, "sigmoid")
    assert str(err.value) == "clip7: modalities differ by more than one snippet: rgb T=10, flow T=13"


def test_modalities_on_different_grids_are_refused(tmp_path):
    store = FeatureStore(tmp_path / "store")
    store.write("v", "rgb", np.zeros((4, 3), np.float32), GRID)
    store.write("v", "pose", np.zeros((4, 3), np.float32), {**GRID, "stride": 8})
    with pytest.raises(InputError, match="different snippet grids"):
        load_video(FeatureSource(store.root, SnippetGrid.of(GRID)), _video(), ["rgb", "pose"], 2, "sigmoid")


def test_float16_overflow_is_an_error(tmp_path):
    source = _store(tmp_path, {("v", "rgb"): np.full((3, 2), 1e6)})
    with pytest.raises(InputError, match="overflow float16"):
        load_video(source, _video(), ["rgb"], 2, "sigmoid")


def test_bad_videos_are_skipped_and_reported(tmp_path):
    source = _store(tmp_path, {("good", "rgb"): np.zeros((4, 2)), ("short", "rgb"): np.zeros((4, 2))})
    h5 = FeatureStore(tmp_path / "store").path("short")
    h5.write_bytes(b"not hdf5")                                       # a corrupt file
    ann = Annotations(["a"], {v: _video(v) for v in ("good", "short", "missing")})
    items, report = load_videos(source, ann, ["rgb"], "sigmoid")
    assert [i.video_id for i in items] == ["good"]
    assert len(report.skipped) == 2 and any("short" in s for s in report.skipped)
    with pytest.raises(InputError, match="no usable video"):
        load_videos(source, ann.select(["missing"]), ["rgb"], "sigmoid")


def test_released_npy_folder_with_modality_subfolders(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "flow").mkdir()
    np.save(tmp_path / "rgb" / "v.npy", np.ones((5, 1, 1, 4), np.float32))
    np.save(tmp_path / "flow" / "v.npy", np.ones((5, 4), np.float32))
    item = load_video(FeatureSource(tmp_path, SnippetGrid.of(GRID)), _video(), ["rgb", "flow"], 1, "softmax")
    assert item.features["rgb"].shape == (5, 4) and item.labels.tolist() == [1] * 5
    assert item.provenance["rgb"] == GRID
    assert item.duration == pytest.approx((4 * 16 + 16) / 16.0)        # from the grid when not annotated


def test_merge_annotations_refuses_a_video_twice():
    a = Annotations(["x"], {"v": _video("v")})
    with pytest.raises(InputError, match="more than one annotation file"):
        merge_annotations([a, a])


# ------------------------------------------------------------------------------ batches

def _items(lengths, dim=2, head="sigmoid", k=2):
    from augrgb.distill.data import VideoItem

    items = []
    for n, length in enumerate(lengths):
        t = np.arange(length, dtype=np.float16)
        feats = {"rgb": np.stack([t, np.full(length, n, np.float16)], 1)[:, :dim]}
        labels = (np.arange(length)[:, None] % 2 == np.arange(k)).astype(bool) if head == "sigmoid" \
            else np.arange(length) % (k + 1)
        items.append(VideoItem(f"v{n}", feats, labels, length))
    return items


def test_collate_pads_with_masks_and_background():
    ds = SnippetDataset(_items([3, 5], head="softmax"), ["rgb"], "softmax", 2)
    batch = ds.collate([ds[0], ds[1]])
    assert batch.features["rgb"].shape == (2, 2, 5) and batch.features["rgb"].dtype == torch.float16
    assert batch.to("cpu").features["rgb"].dtype == torch.float32
    assert batch.mask[:, 0].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch.features["rgb"][0, 0].tolist() == [0, 1, 2, 0, 0]
    assert batch.labels.tolist() == [[0, 1, 2, 2, 2], [0, 1, 2, 0, 1]]     # padding = background (2)
    dense = SnippetDataset(_items([2, 3]), ["rgb"], "sigmoid", 2)
    b = dense.collate([dense[0], dense[1]])
    assert b.labels.shape == (2, 2, 3) and b.labels[0, :, 2].tolist() == [0, 0]


def test_training_crops_are_seeded_windows_with_matching_labels():
    ds = SnippetDataset(_items([40, 6]), ["rgb"], "sigmoid", 2, max_length=8, seed=3)
    _, feats, labels = ds[0]
    assert feats["rgb"].shape == (8, 2) and labels.shape == (8, 2)
    start = int(feats["rgb"][0, 0])
    np.testing.assert_array_equal(feats["rgb"][:, 0], np.arange(start, start + 8))   # a contiguous window
    np.testing.assert_array_equal(labels[:, 0], (np.arange(start, start + 8) % 2 == 0))
    assert int(ds[0][1]["rgb"][0, 0]) == start                                         # same epoch, same window
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        starts.add(int(ds[0][1]["rgb"][0, 0]))
    assert len(starts) > 1
    assert ds[1][2].shape[0] == 6                                                      # short videos stay whole


def test_sharded_sampler_is_disjoint_covering_and_in_lock_step():
    n, world = 11, 3
    samplers = [ShardedBatchSampler(n, 2, world, rank, seed=5) for rank in range(world)]
    batches = [list(s) for s in samplers]
    assert len({len(b) for b in batches}) == 1 and len(batches[0]) == len(samplers[0]) == 2
    flat = [i for b in batches for batch in b for i in batch]
    assert sorted(flat) == list(range(n))                           # every video once, no padding duplicates
    assert all(len(batch) >= 1 for b in batches for batch in b)
    first = [list(s) for s in samplers]
    assert first == batches                                          # same epoch, same order
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != batches


def test_sampler_refuses_an_idle_process():
    with pytest.raises(InputError, match="cannot feed"):
        ShardedBatchSampler(1, 4, world_size=2)
    with pytest.raises(InputError, match="batch_size >= 2"):
        ShardedBatchSampler(3, 1, world_size=2)


def test_evaluation_batches_sort_by_length_and_cover():
    items = _items([5, 2, 9, 3])
    assert evaluation_batches(items, 3) == [[1, 3, 0], [2]]
