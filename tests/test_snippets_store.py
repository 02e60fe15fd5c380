"""The snippet grid and the feature store."""

import json

import h5py
import numpy as np
import pytest

from augrgb.core.errors import InputError
from augrgb.core.grid import iter_snippets, num_snippets, snippet_centers
from augrgb.extract.store import FeatureStore, read_features


def _frames(n):
    return (np.full((2, 2, 3), i, dtype=np.uint8) for i in range(n))


@pytest.mark.parametrize("n,snippet,stride,count,last_start,last_padded", [
    (100, 16, 16, 7, 96, 12),   # 6 full snippets cover 0..95; frames 96..99 + 12 repeats
    (100, 16, 8, 12, 88, 4),    # 1 + ceil(84/8) = 12; last covers 88..99 + 4 repeats
    (16, 16, 16, 1, 0, 0),
    (5, 16, 16, 1, 0, 11),      # shorter than a snippet: padded, not dropped
    (32, 16, 8, 3, 16, 0),
])
def test_grid_counts_and_padding(n, snippet, stride, count, last_start, last_padded):
    snips = list(iter_snippets(_frames(n), snippet, stride))
    assert len(snips) == count == num_snippets(n, snippet, stride)
    assert [s.start for s in snips] == [i * stride for i in range(count)]
    last = snips[-1]
    assert (last.start, last.padded) == (last_start, last_padded)
    values = last.frames[:, 0, 0, 0].tolist()
    real = list(range(last_start, min(last_start + snippet, n)))
    assert values == real + [n - 1] * last_padded
    for s in snips:  # every snippet holds exactly its frames
        assert s.frames[0, 0, 0, 0] == s.start and s.frames.shape[0] == snippet


def test_grid_edge_cases():
    assert list(iter_snippets(_frames(0))) == [] and num_snippets(0, 16, 16) == 0
    with pytest.raises(ValueError, match="stride"):
        list(iter_snippets(_frames(40), 16, 20))
    assert snippet_centers(3, 16, 16, 25.0).tolist() == pytest.approx([7.5 / 25, 23.5 / 25, 39.5 / 25])


def test_store_writes_atomically_and_keeps_other_modalities(tmp_path):
    store = FeatureStore(tmp_path / "store")
    rgb = np.random.default_rng(0).normal(size=(7, 1024)).astype(np.float32)
    store.write("v1", "rgb", rgb, {"fps": 25.0, "flags": ["short"], "weights_sha256": "ab"})
    store.write("v1", "flow", rgb * 2, {"flow_method": "tvl1"})
    data, attrs = store.read("v1", "rgb")
    assert np.array_equal(data, rgb) and attrs["fps"] == 25.0 and json.loads(attrs["flags"]) == ["short"]
    assert store.has("v1", "flow") and not store.has("v1", "pose") and not store.has("v2", "rgb")
    assert store.video_ids() == ["v1"]
    assert not list((tmp_path / "store").glob("*.tmp"))
    with pytest.raises(InputError, match="NaN or Inf"):
        store.write("v1", "rgb", np.full((2, 3), np.nan, np.float32))
    assert np.array_equal(store.read("v1", "rgb")[0], rgb)  # the failed write lost nothing


def test_store_refuses_escaping_ids(tmp_path):
    store = FeatureStore(tmp_path / "store")
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(InputError):
            store.write(bad, "rgb", np.zeros((1, 4), np.float32))
    assert not (tmp_path / "x.h5").exists()


def test_manifest_records_status_and_reason(tmp_path):
    store = FeatureStore(tmp_path)
    store.record("a", "rgb", "done", "/v/a.mp4", snippets=3)
    store.record("b", "rgb", "failed", "/v/b.mp4", "no video stream")
    store.record("a", "flow", "done")
    m = store.manifest()["videos"]
    assert m["a"]["modalities"]["rgb"]["snippets"] == 3 and m["a"]["modalities"]["flow"]["status"] == "done"
    assert m["b"]["modalities"]["rgb"] == {**m["b"]["modalities"]["rgb"], "status": "failed", "reason": "no video stream"}


def test_released_npy_features_are_read(tmp_path):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(tmp_path / "a.npy", a.reshape(2, 1, 1, 4))
    np.save(tmp_path / "b.npy", a)
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 4)))
    assert np.array_equal(read_features(tmp_path / "a.npy"), a)
    assert np.array_equal(read_features(tmp_path / "b.npy"), a)
    with pytest.raises(InputError, match=r"c.npy: expected features of shape"):
        read_features(tmp_path / "c.npy")
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["rgb"] = np.array([[np.inf, 0.0]], np.float32)
    with pytest.raises(InputError, match="NaN or Inf"):
        read_features(tmp_path / "d.h5")
