"""`augrgb extract pose` and `augrgb extract pose-encoder train`: skeleton formats through the CLI, frame-rate
resampling by the decoder's index rule, gaps without a person, pose features on the RGB snippet grid, encoder
training from a store, and MediaPipe on the NTU clip (with the `pose` extra)."""

from __future__ import annotations

import builtins
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pose_fixtures import STANDING, ntu_text, pku_line
from videos import index_frame, read_index, shared_video, smooth_frame, write_video

from augrgb.annotations import Annotations, Segment, VideoAnnotation
from augrgb.cli import main
from augrgb.core.errors import InputError
from augrgb.core.grid import iter_snippets, num_snippets, snippet_frame_indices
from augrgb.core.inputs import video_id_of
from augrgb.extract import decode
from augrgb.extract.agcn import AGCN, TwoStreamAGCN
from augrgb.extract.pose_encoder_store import training_set
from augrgb.extract.pose_encoder_training import load_pose_encoder, save_pose_encoder
from augrgb.extract.pose_snippets import encode_snippets
from augrgb.extract.skeletons import resample_frames
from augrgb.extract.store import FeatureStore
from augrgb.synth.generator import generate

SMALL = (8, 8, 16)  # AGCN widths that keep the tests fast; features are 16-d


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The models here are tiny: intra-op threads only add synchronisation on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shifted(offset: float) -> np.ndarray:
    """The standing body moved ``offset`` metres along x: frame i of a test file carries offset i/100."""
    return STANDING + np.array([offset, 0, 0], np.float32)


def write_encoder(path: Path, arch=AGCN, fps: float = 25.0, snippet: int = 16, seed: int = 0) -> Path:
    """A (randomly initialised) pose-encoder checkpoint as `pose-encoder train` writes them."""
    torch.manual_seed(seed)
    model = arch(num_classes=3, widths=SMALL).eval()
    save_pose_encoder(path, model, {"kind": "sigmoid", "class_names": ["a", "b", "c"], "fps": fps,
                                    "snippet": snippet, "stride": 16})
    return path


@pytest.fixture(scope="module")
def skeleton_files(tmp_path_factory) -> Path:
    """One file of every format: NTU (40 frames at 30 fps, frames 12-13 without a body), PKU-MMD (30 frames),
    .npy (20 frames of one body)."""
    d = tmp_path_factory.mktemp("skeletons")
    frames = [[] if i in (12, 13) else [("72057594037931101", shifted(i / 100))] for i in range(40)]
    (d / "S001C001P001R001A001.skeleton").write_text(ntu_text(frames))
    (d / "0002-L.txt").write_text("\n".join(pku_line(shifted(i / 100), np.zeros_like(STANDING)) for i in range(30)) + "\n")
    np.save(d / "walk.npy", np.stack([shifted(i / 100) for i in range(20)]))
    return d


def offsets(joints: np.ndarray) -> np.ndarray:
    """The per-frame x offset of body 0 that :func:`shifted` put there."""
    return np.round((joints[:, 0, 0, 0] - STANDING[0, 0]) * 100, 3)


def test_every_skeleton_format_through_the_cli(skeleton_files, tmp_path, capsys):
    store_dir = tmp_path / "store"
    listing = tmp_path / "list.txt"  # a list file, told apart from a PKU-MMD .txt by its content
    listing.write_text(f"{skeleton_files / '0002-L.txt'}\n")
    code = main(["extract", "pose", str(skeleton_files / "S001C001P001R001A001.skeleton"), str(skeleton_files / "walk.npy"),
                 str(listing), "--out", str(store_dir), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "3 extracted, 0 already done, 0 failed" in out
    assert "Pose features need a trained encoder" in out and "augrgb extract pose-encoder train --poses" in out
    store = FeatureStore(store_dir)
    assert not any(store.has(v, "pose") for v in store.video_ids())

    # NTU, 30 fps -> 25 fps: ceil(40 * 25 / 30) = 34 frames, output frame k shows source frame floor(6k / 5)
    joints, attrs = store.read("S001C001P001R001A001", "skeleton")
    assert joints.shape == (34, 2, 25, 3) and joints.dtype == np.float32 and not joints[:, 1].any()
    assert (attrs["fps"], attrs["source_fps"], attrs["frame_count"], attrs["source_frames"]) == (25.0, 30.0, 34, 40)
    source = [6 * k // 5 for k in range(34)]
    present, _ = store.read("S001C001P001R001A001", "skeleton_present")
    assert present.dtype == bool and list(np.flatnonzero(~present)) == [10, 11]  # source frames 12 and 13
    expected = np.array(source, np.float64)
    expected[[10, 11]] = [10 + 4 / 3, 10 + 8 / 3]  # interpolated between output frames 9 (source 10) and 12 (source 14)
    np.testing.assert_allclose(offsets(joints), expected, atol=2e-3)
    assert attrs["interpolated_frames"] == 2 and attrs["zero_frames"] == 0 and attrs["present_frames"] == 32
    assert json.loads(attrs["flags"]) == ["frames without a person: 2 interpolated, 0 zero"]

    pku, attrs = store.read("0002-L", "skeleton")  # 30 frames at 30 fps -> 25
    assert pku.shape == (25, 2, 25, 3) and attrs["source_fps"] == 30.0
    np.testing.assert_allclose(offsets(pku), [6 * k // 5 for k in range(25)], atol=2e-3)

    npy, attrs = store.read("walk", "skeleton")  # no fps in a .npy: the grid's, no resampling
    assert npy.shape == (20, 2, 25, 3) and attrs["source_fps"] == 25.0
    np.testing.assert_allclose(offsets(npy), np.arange(20), atol=2e-3)
    manifest = json.loads((store_dir / "manifest.json").read_text())["videos"]
    assert manifest["walk"]["modalities"]["skeleton"] == {**manifest["walk"]["modalities"]["skeleton"], "status": "done",
                                                          "frames": 20, "snippets": 2}


def test_npy_frame_rate_option_and_folder_inputs(skeleton_files, tmp_path, capsys):
    store_dir = tmp_path / "store"
    assert main(["extract", "pose", str(skeleton_files), "--out", str(store_dir), "--quiet", "--skeleton-fps", "50"]) == 0
    assert "3 extracted" in capsys.readouterr().out  # the folder's PKU .txt is a skeleton file
    npy, attrs = FeatureStore(store_dir).read("walk", "skeleton")
    assert npy.shape[0] == 10 and attrs["source_fps"] == 50.0  # ceil(20 * 25 / 50); frame k is source 2k
    np.testing.assert_allclose(offsets(npy), 2 * np.arange(10), atol=2e-3)
    assert main(["extract", "pose", str(skeleton_files), "--out", str(store_dir), "--quiet"]) == 0
    assert "0 extracted, 3 already done" in capsys.readouterr().out
    assert main(["extract", "pose", str(skeleton_files / "walk.npy"), "--out", str(store_dir), "--quiet",
                 "--fps", "10", "--skeleton-fps", "20"]) == 0  # another grid fps is not "already done"
    assert FeatureStore(store_dir).read("walk", "skeleton")[0].shape[0] == 10


def test_resampling_is_the_decoders_frame_index_rule(tmp_path):
    video = write_video(tmp_path / "count.mp4", [index_frame(i) for i in range(47)], fps=30)
    decoded = [read_index(frame) for frame in decode.iter_frames(video, fps=25)]
    stored = resample_frames(np.arange(47), 30, 25)
    assert list(stored) == decoded and len(decoded) == math.ceil(47 * 25 / 30)


@settings(max_examples=60)
@given(frames=st.integers(1, 70), snippet=st.integers(1, 20), data=st.data())
def test_pose_snippet_indices_are_the_stream_grid(frames, snippet, data):
    stride = data.draw(st.integers(1, snippet))
    indices = snippet_frame_indices(frames, snippet, stride)
    streamed = [s.frames for s in iter_snippets(iter(np.arange(frames)), snippet, stride)]
    assert len(indices) == num_snippets(frames, snippet, stride) == len(streamed)
    np.testing.assert_array_equal(indices, np.stack(streamed))


def test_bad_inputs_fail_one_line_each_and_the_batch_goes_on(skeleton_files, tmp_path, capsys, monkeypatch):
    for name in ("mediapipe", "mediapipe.python", "mediapipe.python.solutions", "mediapipe.python.solutions.pose"):
        monkeypatch.setitem(sys.modules, name, None)  # as if the pose extra were not installed
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = ntu_text([[("1", STANDING)]] * 3).splitlines()  # 1 + 3 x 28 lines: frame 3's joints are lines 61-85
    (bad / "cut.skeleton").write_text("\n".join(lines[:-3]) + "\n")
    np.save(bad / "nan.npy", np.full((5, 25, 3), np.nan, np.float32))
    write_video(bad / "clip.mp4", [smooth_frame(i, 64, 48) for i in range(8)], fps=25)
    (bad / "notes.txt").write_text("1 2 3\n")  # not a PKU skeleton: read as a list naming a missing file
    store_dir = tmp_path / "store"
    code = main(["extract", "pose", str(bad), str(skeleton_files / "walk.npy"), str(bad / "notes.txt"),
                 "--out", str(store_dir), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and "1 extracted, 0 already done, 4 failed" in captured.out
    manifest = json.loads((store_dir / "manifest.json").read_text())["videos"]
    reasons = {vid: entry["modalities"]["skeleton"]["reason"] for vid, entry in manifest.items()}
    assert reasons["clip"] == "pose estimation needs MediaPipe: pip install 'augrgb[pose]'"
    assert reasons["cut"] == "line 82: file ends early: expected joint 23" and "NaN" in reasons["nan"]
    assert reasons["1 2 3"] == "no such file"
    for vid in ("clip", "cut", "nan"):
        lines = [line for line in captured.out.splitlines() if line.startswith(str(bad / vid))]
        assert len(lines) == 1 and reasons[vid] in lines[0]
    assert manifest["walk"]["modalities"]["skeleton"]["status"] == "done"


def test_a_skeleton_file_wins_over_the_video_of_the_same_id(skeleton_files, tmp_path, capsys):
    video = write_video(tmp_path / "S001C001P001R001A001_rgb.mp4", [smooth_frame(i, 64, 48) for i in range(4)], fps=30)
    assert video_id_of(video, "_rgb") == "S001C001P001R001A001" and video_id_of(video) == "S001C001P001R001A001_rgb"
    store_dir = tmp_path / "store"
    assert main(["extract", "pose", str(video), str(skeleton_files / "S001C001P001R001A001.skeleton"), "--out",
                 str(store_dir), "--quiet", "--id-suffix-strip", "_rgb"]) == 0
    assert "1 extracted, 0 already done, 0 failed" in capsys.readouterr().out  # no MediaPipe run on the video
    _, attrs = FeatureStore(store_dir).read("S001C001P001R001A001", "skeleton")
    assert attrs["source"].endswith(".skeleton")


@pytest.fixture(scope="module")
def synthetic_pair(tmp_path_factory) -> Path:
    """One generated video with its skeleton file (same id), 2 s at 25 fps."""
    return generate(tmp_path_factory.mktemp("pair"), videos=1, seconds=2, size=112, seed=3)


@pytest.mark.parametrize("stride", [16, 8])
def test_pose_features_lie_on_the_video_frame_grid(synthetic_pair, tmp_path, stride):
    encoder = write_encoder(tmp_path / "enc.pt", TwoStreamAGCN)
    store_dir = tmp_path / "store"
    assert main(["extract", "pose", str(synthetic_pair / "skeletons"), "--out", str(store_dir), "--quiet",
                 "--encoder", str(encoder), "--stride", str(stride), "--batch-size", "3"]) == 0
    store = FeatureStore(store_dir)
    pose, attrs = store.read("synth_00000", "pose")
    frames = sum(1 for _ in decode.iter_frames(synthetic_pair / "videos" / "synth_00000.mp4", fps=25))
    assert attrs["frame_count"] == frames == 50
    assert pose.shape == (num_snippets(frames, 16, stride), 16) and (attrs["stride"], attrs["snippet"]) == (stride, 16)
    model, _ = load_pose_encoder(encoder)
    skeleton, _ = store.read("synth_00000", "skeleton")
    np.testing.assert_allclose(pose, encode_snippets(model, skeleton, 16, stride, batch_size=64), rtol=1e-4, atol=1e-5)
    assert attrs["encoder"] == "2s-agcn" and len(attrs["weights_sha256"]) == 64 and attrs["padded_frames"] == (
        (len(pose) - 1) * stride + 16 - frames)


@pytest.mark.slow
def test_pose_and_rgb_features_have_the_same_snippets(synthetic_pair, tmp_path, i3d_rgb_weights):
    store_dir = tmp_path / "store"
    assert main(["extract", "rgb", str(synthetic_pair / "videos"), "--out", str(store_dir), "--quiet",
                 "--weights", str(i3d_rgb_weights)]) == 0
    assert main(["extract", "pose", str(synthetic_pair / "skeletons"), "--out", str(store_dir), "--quiet",
                 "--encoder", str(write_encoder(tmp_path / "enc.pt"))]) == 0
    store = FeatureStore(store_dir)
    rgb, rgb_attrs = store.read("synth_00000", "rgb")
    pose, pose_attrs = store.read("synth_00000", "pose")
    assert len(pose) == len(rgb) == 4
    for key in ("fps", "snippet", "stride", "frame_count", "padded_frames"):
        assert pose_attrs[key] == rgb_attrs[key], key


@pytest.mark.slow
def test_the_ray_engine_stores_what_the_local_engine_stores(skeleton_files, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is the optional extra augrgb[distributed]")
    monkeypatch.setattr(builtins, "print", builtins.print)  # a Ray driver swaps in its own print: restore it afterwards
    encoder = write_encoder(tmp_path / "enc.pt", TwoStreamAGCN)
    local, distributed = tmp_path / "local", tmp_path / "ray"
    for store, engine in ((local, []), (distributed, ["--engine", "ray", "--ray-cpus-per-task", "1"])):
        assert main(["extract", "pose", str(skeleton_files), "--out", str(store), "--quiet", "--encoder", str(encoder),
                     *engine]) == 0
    for vid in ("S001C001P001R001A001", "0002-L", "walk"):
        for name in ("skeleton", "skeleton_present", "pose"):
            ours, theirs = FeatureStore(distributed).read(vid, name)[0], FeatureStore(local).read(vid, name)[0]
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_an_encoder_for_another_snippet_length_is_refused(synthetic_pair, tmp_path, capsys):
    encoder = write_encoder(tmp_path / "enc.pt", snippet=32)
    code = main(["extract", "pose", str(synthetic_pair / "skeletons"), "--out", str(tmp_path / "s"), "--quiet",
                 "--encoder", str(encoder)])
    err = capsys.readouterr().err
    assert code == 1 and "enc.pt: trained on 32-frame snippets at 25 fps but this run uses 16 at 25 fps" in err


def test_training_labels_are_the_actions_at_snippet_centres(tmp_path):
    store = FeatureStore(tmp_path / "store")
    joints = np.repeat(STANDING[None, None], 48, axis=0).repeat(2, axis=1)  # 48 frames: middle frames 7.5, 23.5, 39.5
    store.write("v", "skeleton", joints, {"fps": 25.0, "snippet": 16, "stride": 16})  # -> centres 0.30, 0.94, 1.58 s
    video = VideoAnnotation("v", 1.92, "training", [Segment(0, 0.0, 0.30), Segment(1, 0.94, 1.2), Segment(2, 1.59, 1.9)])
    data = training_set(store, Annotations(["a", "b", "c"], {"v": video, "absent": VideoAnnotation("absent", 1, "training")}))
    assert data.snippets.shape == (3, 16, 2, 25, 3) and data.videos == ["v"]
    np.testing.assert_array_equal(data.labels, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])  # ends inclusive; 1.58 < 1.59


def test_skeletons_stored_on_different_grids_are_refused_for_training(tmp_path):
    store = FeatureStore(tmp_path / "store")
    joints = np.repeat(STANDING[None, None], 20, axis=0).repeat(2, axis=1)
    store.write("a", "skeleton", joints, {"fps": 25.0, "snippet": 16, "stride": 16})
    store.write("b", "skeleton", joints, {"fps": 25.0, "snippet": 16, "stride": 8})
    videos = {v: VideoAnnotation(v, 0.8, "training") for v in ("a", "b")}
    with pytest.raises(InputError, match="stored skeletons are on different grids .*stride 8"):
        training_set(store, Annotations(["x"], videos))


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """A tiny synthetic benchmark (5 videos of 3 s, 4 of them training) with its skeletons stored."""
    root = generate(tmp_path_factory.mktemp("bench"), videos=5, seconds=3, size=64, seed=5)
    assert main(["extract", "pose", str(root / "skeletons"), "--out", str(root / "store"), "--quiet"]) == 0
    return root


def test_train_an_encoder_then_extract_with_it(bench, tmp_path, capsys):
    store, ckpt = bench / "store", tmp_path / "enc.pt"
    assert main(["extract", "pose-encoder", "train", "--poses", str(store), "--annotations", str(bench / "annotations.json"),
                 "--out", str(ckpt), "--arch", "agcn", "--widths", "8,8,16", "--epochs", "2", "--batch-size", "8",
                 "--val-fraction", "0.25"]) == 0
    out = capsys.readouterr().out
    model, meta = load_pose_encoder(ckpt)
    classes = (bench / "classes.txt").read_text().split()
    assert meta["class_names"] == classes and (meta["fps"], meta["snippet"], meta["stride"]) == (25.0, 16, 16)
    assert len(meta["val_videos"]) == 1 and len(meta["train_videos"]) == 3 and not set(meta["val_videos"]) & set(meta["train_videos"])
    # the synthetic benchmark is dense (an actor does two things at once in some snippet): a sigmoid head, not softmax
    assert meta["kind"] == "sigmoid" and model.arch == "agcn" and model.feature_dim == 16
    assert model.num_person == 1  # the generated actors are alone: the always-empty second body is not modelled
    assert meta["metrics"]["num_train"] == 15 and meta["metrics"]["num_val"] == 5  # 75 frames: 5 snippets a video
    assert "val: 5 snippets of 1 videos" in out and f"saved {ckpt}" in out
    assert meta["torch_threads"] == torch.get_num_threads() and f"trained with {meta['torch_threads']} torch" in out

    skeletons = bench / "skeletons"
    first = FeatureStore(store).read("synth_00000", "skeleton")[0]
    moved = tmp_path / "gone"
    skeletons.rename(moved)  # the stored skeletons are reused: the source files are not needed any more
    try:
        inputs = [str(skeletons / f"synth_0000{i}.npy") for i in range(5)]
        assert main(["extract", "pose", *inputs, "--out", str(store), "--quiet", "--encoder", str(ckpt)]) == 0
        assert "5 extracted" in capsys.readouterr().out
        pose, attrs = FeatureStore(store).read("synth_00000", "pose")
        assert pose.shape == (5, 16) and attrs["weights_source"] == str(ckpt)
        np.testing.assert_array_equal(FeatureStore(store).read("synth_00000", "skeleton")[0], first)
        assert main(["extract", "pose", *inputs, "--out", str(store), "--quiet", "--encoder", str(ckpt)]) == 0
        assert "0 extracted, 5 already done" in capsys.readouterr().out
        other = write_encoder(tmp_path / "other.pt")  # another encoder: its features are not "already done"
        assert main(["extract", "pose", *inputs, "--out", str(store), "--quiet", "--encoder", str(other)]) == 0
        assert "5 extracted" in capsys.readouterr().out
    finally:
        moved.rename(skeletons)


def test_training_needs_annotations_of_the_stored_videos(bench, tmp_path, capsys):
    common = ["extract", "pose-encoder", "train", "--poses", str(bench / "store"), "--out", str(tmp_path / "e.pt")]
    assert main(common) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs annotations" in err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"elsewhere": {"subset": "training", "duration": 2.0, "actions": [[0, 0.1, 1.0]]}}))
    assert main(common + ["--annotations", str(other)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of its 1 'training' videos has skeletons" in err and "needs annotations" in err
    assert not (tmp_path / "e.pt").exists()


def test_mediapipe_poses_of_the_ntu_clip_through_the_cli(tmp_path, capsys):
    pytest.importorskip("mediapipe", reason="MediaPipe is the optional extra augrgb[pose]")
    clip = shared_video("ntu_S001C001P001R001A001_rgb.avi")
    blank = write_video(tmp_path / "empty_room.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 10, fps=25)
    store_dir = tmp_path / "store"
    assert main(["extract", "pose", str(clip), str(blank), "--out", str(store_dir), "--quiet",
                 "--id-suffix-strip", "_rgb"]) == 0
    assert "2 extracted" in capsys.readouterr().out
    store = FeatureStore(store_dir)
    joints, attrs = store.read("ntu_S001C001P001R001A001", "skeleton")
    present, _ = store.read("ntu_S001C001P001R001A001", "skeleton_present")
    assert joints.shape == (86, 2, 25, 3) and attrs["source_fps"] == pytest.approx(30.0)  # 103 frames at 30 fps -> 25
    assert present.mean() > 0.8 and attrs["estimator"].startswith("mediapipe") and not joints[:, 1].any()
    empty, attrs = store.read("empty_room", "skeleton")
    assert empty.shape == (10, 2, 25, 3) and not empty.any() and attrs["zero_frames"] == 10
    assert json.loads(attrs["flags"]) == ["no person on any frame: the skeleton is all zeros", "short: 10 frames < one 16-frame snippet, padded"]
