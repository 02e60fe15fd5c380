"""`augrgb extract rgb/classify` end to end with the real I3D weights, good and bad inputs in one batch."""

import importlib.util
import json

import numpy as np
import pytest

from augrgb.cli import main
from augrgb.extract.store import FeatureStore
from videos import noise_frames, shared_video, smooth_frame, truncate, write_audio, write_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A folder mixing good videos and every kind of bad input the issue lists."""
    d = tmp_path_factory.mktemp("videos")
    write_video(d / "good.mp4", [smooth_frame(i, 96, 64) for i in range(40)], fps=25)        # 40 frames -> 3 snippets
    write_video(d / "short.mp4", [smooth_frame(i, 96, 64) for i in range(5)], fps=25)        # < one snippet
    write_video(d / "portrait_odd.mp4", [smooth_frame(i, 46, 82) for i in range(20)], fps=25, pix_fmt="yuv444p")
    write_video(d / "gray.mp4", [smooth_frame(i, 64, 48, gray=True) for i in range(20)], fps=25, pix_fmt="gray", codec="ffv1")
    write_video(d / "vfr.mkv", [smooth_frame(i, 64, 48) for i in range(30)], fps=25,
                pts_ms=[int(i * 40 + (15 if i % 3 == 0 else 0)) for i in range(30)])
    (d / "notes.mp4").write_text("this is a text file renamed to .mp4\n")
    write_audio(d / "voice.m4a")
    full = write_video(d.parent / "full.mp4", noise_frames(60, 64, 48), fps=25)
    truncate(full, d / "cut.mp4", keep=0.3)
    return d


def test_batch_extracts_good_videos_and_reports_each_bad_one(batch, tmp_path, i3d_rgb_weights, capsys):
    store_dir = tmp_path / "store"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{batch / 'voice.m4a'}\n# a comment\n")
    code = main(["extract", "rgb", str(batch), str(listing), "--out", str(store_dir), "--quiet", "--batch-size", "2",
                 "--weights", str(i3d_rgb_weights)])
    captured = capsys.readouterr()
    assert code == 0
    manifest = json.loads((store_dir / "manifest.json").read_text())["videos"]
    status = {vid: entry["modalities"]["rgb"]["status"] for vid, entry in manifest.items()}
    assert status["good"] == status["short"] == status["portrait_odd"] == status["gray"] == status["vfr"] == "done"
    for bad in ("notes", "voice", "cut"):
        entry = manifest[bad]["modalities"]["rgb"]
        if entry["status"] == "done":  # a truncated file may still decode its first frames: then it is flagged
            assert any("truncat" in f for f in entry["flags"]), entry
            continue
        assert entry["status"] == "failed" and entry["reason"]
        # one line on stderr/stdout names the file and the reason
        lines = [l for l in (captured.out + captured.err).splitlines() if bad in l]
        assert lines and entry["reason"] in lines[0]
    store = FeatureStore(store_dir)
    feats, attrs = store.read("good", "rgb")
    assert feats.shape == (3, 1024) and feats.dtype == np.float32 and np.isfinite(feats).all()
    for key in ("fps", "snippet", "stride", "frame_count", "crop", "encoder", "weights_sha256", "augrgb_version"):
        assert key in attrs
    assert attrs["frame_count"] == 40 and attrs["stride"] == 16 and len(attrs["weights_sha256"]) == 64
    short, short_attrs = store.read("short", "rgb")
    assert short.shape == (1, 1024) and short_attrs["padded_frames"] == 11
    assert any(f.startswith("short") for f in manifest["short"]["modalities"]["rgb"]["flags"])
    assert any("variable frame rate" in f for f in manifest["vfr"]["modalities"]["rgb"]["flags"])


def test_rerun_skips_and_overwrite_redoes(batch, tmp_path, i3d_rgb_weights, capsys):
    store_dir = tmp_path / "store"
    args = ["extract", "rgb", str(batch / "good.mp4"), "--out", str(store_dir), "--quiet", "--weights", str(i3d_rgb_weights)]
    assert main(args) == 0
    first = (store_dir / "good.h5").stat().st_mtime_ns
    assert main(args) == 0
    assert "0 extracted, 1 already done" in capsys.readouterr().out
    assert (store_dir / "good.h5").stat().st_mtime_ns == first
    assert main(args + ["--overwrite"]) == 0
    assert "1 extracted" in capsys.readouterr().out


def test_workers_and_stride_options(batch, tmp_path, i3d_rgb_weights):
    one, two = tmp_path / "one", tmp_path / "two"
    videos = [str(batch / "good.mp4"), str(batch / "portrait_odd.mp4")]
    common = ["--quiet", "--weights", str(i3d_rgb_weights), "--stride", "8", "--crop", "resize"]
    assert main(["extract", "rgb", *videos, "--out", str(one), *common]) == 0
    assert main(["extract", "rgb", *videos, "--out", str(two), "--workers", "2", *common]) == 0
    a, attrs = FeatureStore(one).read("good", "rgb")
    b, _ = FeatureStore(two).read("good", "rgb")
    assert a.shape == (4, 1024) and attrs["stride"] == 8 and attrs["crop"] == "resize"  # 1 + ceil((40-16)/8)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_config_preset_and_bad_config(tmp_path, batch, i3d_rgb_weights, capsys):
    assert main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "s"), "--quiet",
                 "--config", "i3d_rgb_charades_stride8", "--weights", str(i3d_rgb_weights)]) == 0
    _, attrs = FeatureStore(tmp_path / "s").read("good", "rgb")
    assert attrs["stride"] == 8 and attrs["fps"] == 24
    bad = tmp_path / "bad.yaml"
    bad.write_text("stride: 32\nsnippet: 16\n")
    assert main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "t"), "--config", str(bad)]) == 1
    assert "bad.yaml: invalid config" in capsys.readouterr().err


def test_classify_arm_wrestling(i3d_rgb_weights, capsys):
    video = shared_video("kinetics_arm_wrestling.mp4")
    assert main(["extract", "classify", str(video), "--top", "3", "--weights", str(i3d_rgb_weights)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    label, prob = lines[0].split("\t")
    assert label == "arm wrestling" and float(prob) > 0.9
    probs = [float(l.split("\t")[1]) for l in lines]
    assert probs == sorted(probs, reverse=True)


def test_missing_weights_are_a_clear_error(tmp_path, batch, capsys):
    code = main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "s"), "--cache-dir", str(tmp_path / "empty")])
    assert code == 1
    assert "augrgb weights fetch i3d-rgb" in capsys.readouterr().err


NO_DECORD = "decord is not installed (its wheels are for x86-64 Linux only)"


@pytest.mark.parametrize("backend", [
    pytest.param("decord", marks=pytest.mark.skipif(importlib.util.find_spec("decord") is None, reason=NO_DECORD)),
    "pyav", "opencv"])
def test_features_of_a_fixed_clip_are_stable(i3d_rgb_model, backend):
    """Regression pin: the arm-wrestling clip's features (decode, resample, crop, I3D) do not drift."""
    from augrgb.extract.encoder import SnippetEncoder
    from augrgb.extract.pipeline import encode_video
    from augrgb.extract.settings import ExtractConfig

    video = shared_video("kinetics_arm_wrestling.mp4")
    feats, meta = encode_video(video, SnippetEncoder(i3d_rgb_model), ExtractConfig(backend=backend))
    assert feats.shape == (16, 1024) and meta["frames"] == 250  # 10 s at 25 fps -> 1 + ceil((250-16)/16)
    np.testing.assert_allclose(feats[0, :6], [0.4992, 0.4423, 0.1342, 0.2667, 0.1358, 0.2179], atol=5e-3)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1)[:4], [9.07, 8.372, 10.842, 7.44], rtol=5e-3)
    assert feats.mean() == pytest.approx(0.19962, abs=1e-3)
