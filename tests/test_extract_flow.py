"""`augrgb extract flow`: flow features on the same snippet grid as RGB, flow images, weights provenance."""

import json

import numpy as np
import pytest

from augrgb.cli import main
from augrgb.extract.store import FeatureStore
from videos import smooth_frame, write_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("flowvids")
    write_video(d / "move.mp4", [smooth_frame(3 * i, 96, 72) for i in range(40)], fps=25)   # 40 frames -> 3 snippets
    write_video(d / "tiny.mp4", [smooth_frame(i, 64, 48) for i in range(6)], fps=25)       # shorter than a snippet
    return d


def test_flow_and_rgb_share_the_snippet_grid(videos, tmp_path, i3d_rgb_weights, capsys):
    store = tmp_path / "store"
    common = ["--out", str(store), "--quiet", "--stride", "8"]
    assert main(["extract", "rgb", str(videos), *common, "--weights", str(i3d_rgb_weights)]) == 0
    assert main(["extract", "flow", str(videos), *common, "--method", "dis", "--flow-workers", "1",
                 "--cache-dir", str(i3d_rgb_weights.parent.parent), "--save-flow-images", str(tmp_path / "img")]) == 0
    err = capsys.readouterr().err
    assert "cross-modality initialisation" in err  # no flow weights: warned once
    fs = FeatureStore(store)
    for vid in ("move", "tiny"):
        rgb, rgb_attrs = fs.read(vid, "rgb")
        flow, flow_attrs = fs.read(vid, "flow")
        assert rgb.shape == flow.shape  # snippet i of rgb and of flow cover the same frames
        for key in ("fps", "snippet", "stride", "crop", "frame_count", "padded_frames"):
            assert rgb_attrs[key] == flow_attrs[key], key
    _, attrs = fs.read("move", "flow")
    assert attrs["flow_method"] == "dis" and "cross-modality" in attrs["weights_source"]
    assert attrs["encoder"].endswith("flow") and fs.read("move", "rgb")[0].shape == (4, 1024)
    # 40 frames -> 39 pairs saved as x_00001..x_00039 / y_...
    saved = sorted(p.name for p in (tmp_path / "img" / "move").iterdir())
    assert saved[0] == "x_00001.jpg" and len(saved) == 2 * 39


def test_flow_images_read_back_give_the_same_features(videos, tmp_path, i3d_rgb_weights):
    store = tmp_path / "store"
    cache = str(i3d_rgb_weights.parent.parent)
    assert main(["extract", "flow", str(videos / "move.mp4"), "--out", str(store), "--quiet", "--method", "dis",
                 "--flow-workers", "1", "--cache-dir", cache, "--save-flow-images", str(tmp_path / "img")]) == 0
    again = tmp_path / "again"
    assert main(["extract", "flow", str(tmp_path / "img" / "move"), "--from-flow-images", "--out", str(again),
                 "--quiet", "--cache-dir", cache]) == 0
    a = FeatureStore(store).read("move", "flow")[0]
    b = FeatureStore(again).read("move", "flow")[0]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert a.shape == b.shape and cos.min() > 0.995  # JPEG quantisation of the flow only


def test_tvl1_default_runs_with_parallel_pairs(videos, tmp_path, i3d_rgb_weights):
    store = tmp_path / "store"
    assert main(["extract", "flow", str(videos / "tiny.mp4"), "--out", str(store), "--quiet", "--flow-workers", "2",
                 "--cache-dir", str(i3d_rgb_weights.parent.parent)]) == 0
    flow, attrs = FeatureStore(store).read("tiny", "flow")
    assert flow.shape == (1, 1024) and attrs["flow_method"] == "tvl1" and np.isfinite(flow).all()
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["videos"]["tiny"]["modalities"]["flow"]["status"] == "done"
