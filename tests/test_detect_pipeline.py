"""``augrgb detect`` end to end: output formats, resume, re-decoding, bad inputs, refusals, and
``augrgb evaluate`` on detect's outputs (a perfect model scores 1)."""

import csv
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from augrgb.cli import main
from augrgb.detect.probabilities import read_probabilities
from tests.detect_helpers import (
    FEATURES,
    activity_features,
    perfect_stream,
    random_stream,
    write_checkpoint,
    write_dense_json,
    write_store,
)

CLASSES = ["a", "b", "c"]
FPS = 25.0
# video -> (snippets, frames, [(class, first snippet, last snippet)]); v2's last snippet is padded (frames 80..89)
VIDEOS = {"v1": (10, 160, [(0, 2, 4), (1, 3, 8)]), "v2": (6, 90, [(2, 4, 5)])}


def seconds(first, last, frames):
    return first * 16 / FPS, min(last * 16 + 16, frames) / FPS


@pytest.fixture()
def dense_case(tmp_path):
    """A perfect sigmoid model, a store of one-hot activity features, and the matching ground truth."""
    model = write_checkpoint(tmp_path / "student.pt", perfect_stream(3, "sigmoid"), CLASSES)
    features = {v: activity_features(segs, t, 3, "sigmoid") for v, (t, _, segs) in VIDEOS.items()}
    store = write_store(tmp_path / "store", features, frames={v: f for v, (_, f, _) in VIDEOS.items()})
    truth = {}
    for v, (_, frames, segs) in VIDEOS.items():
        # ground-truth ends just before the next snippet: the frame rule counts a frame at t/fps <= end
        actions = [[c, seconds(a, b, frames)[0], seconds(a, b, frames)[1] - 0.01] for c, a, b in segs]
        truth[v] = {"subset": "testing", "duration": frames / FPS, "actions": actions}
    (tmp_path / "gt").mkdir()
    gt = write_dense_json(tmp_path / "gt" / "gt.json", truth, CLASSES)
    return tmp_path, model, store, gt


def run_detect(*args):
    return main(["detect", *map(str, args), "--quiet"])


def test_outputs_of_a_perfect_dense_model(dense_case, capsys):
    tmp, model, store, gt = dense_case
    out = tmp / "out"
    assert run_detect("--features", store, "--model", model, "--out", out, "--plot", "--annotations", gt) == 0
    assert "2 detected, 0 already done, 0 re-decoded, 0 failed; 3 intervals" in capsys.readouterr().out

    results = json.loads((out / "detections.json").read_text())["results"]
    expected = {v: sorted((CLASSES[c], *seconds(a, b, f)) for c, a, b in segs) for v, (_, f, segs) in VIDEOS.items()}
    for video, items in results.items():
        found = sorted((d["label"], *d["segment"]) for d in items)
        assert [f[0] for f in found] == [e[0] for e in expected[video]]
        np.testing.assert_allclose([f[1:] for f in found], [e[1:] for e in expected[video]], atol=1e-9)
        assert all(d["score"] > 0.999 for d in items)

    with open(out / "detections.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["video"], r["label"], float(r["start"]), float(r["end"])) for r in rows] == [
        ("v1", "a", 1.28, 3.2), ("v1", "b", 1.92, 5.76), ("v2", "c", 2.56, 3.6)]

    # txt: label,start,end,score with frames at the source fps (25)
    lines = (out / "txt" / "v1.txt").read_text().splitlines()
    assert [tuple(float(x) for x in line.split(",")[:3]) for line in lines] == [(0, 32, 80), (1, 48, 144)]

    with h5py.File(out / "probabilities" / "v2.h5") as h5:
        assert h5["frames"].shape == (90, 3) and h5["snippets"].shape == (6, 3)
        assert h5.attrs["fps"] == FPS and json.loads(h5.attrs["classes"]) == CLASSES
        frames = h5["frames"][()]
    assert (frames[64:90, 2] > 0.999).all() and (frames[:64, 2] < 0.001).all()

    for video in VIDEOS:
        assert (out / "plots" / f"{video}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads((out / "videos" / f"{video}.json").read_text())["model_sha256"]
    assert (out / "failed.txt").read_text() == ""


def test_evaluate_runs_on_detect_outputs(dense_case, capsys):
    tmp, model, store, gt = dense_case
    out = tmp / "out"
    assert run_detect("--features", store, "--model", model, "--out", out) == 0
    capsys.readouterr()

    assert main(["evaluate", "event-map", "--protocol", "activitynet", "--gt", str(gt), "--pred", str(out / "detections.json"),
                 "--json"]) == 0
    activitynet = json.loads(capsys.readouterr().out)
    assert activitynet["mAP"] == pytest.approx([1.0] * 10) and activitynet["average_mAP"] == pytest.approx(1.0)

    gt_txt = tmp / "gt_txt"
    gt_txt.mkdir()
    for v, (_, frames, segs) in VIDEOS.items():
        (gt_txt / f"{v}.txt").write_text("".join(f"{c},{a * 16},{min(b * 16 + 16, frames)},1\n" for c, a, b in segs))
    assert main(["evaluate", "event-map", "--protocol", "pku-mmd", "--gt", str(gt_txt), "--pred", str(out / "txt"),
                 "--num-classes", "3", "--json"]) == 0
    pku = json.loads(capsys.readouterr().out)
    assert pku["mAP_action"] == pytest.approx([1.0, 1.0]) and pku["mAP_video"] == pytest.approx([1.0, 1.0])

    assert main(["evaluate", "frame-map", "--gt", str(gt), "--pred", str(out / "probabilities"), "--json"]) == 0
    frame = json.loads(capsys.readouterr().out)
    assert frame["mAP"] == pytest.approx(1.0) and frame["num_positives"] == [48, 96, 26]


def test_frame_map_of_an_imperfect_model_is_the_hand_computed_value(dense_case, capsys):
    tmp, model, store, gt = dense_case
    out = tmp / "out"
    assert run_detect("--features", store, "--model", model, "--out", out, "v2") == 0
    capsys.readouterr()
    # class c of v2: frames 64..89 positive; shift the predictions of frames 80..89 below every negative frame
    path = out / "probabilities" / "v2.h5"
    with h5py.File(path, "r+") as h5:
        h5["frames"][80:90, 2] = -1.0 - 0.01 * np.arange(10)  # distinct: no tie group
    assert main(["evaluate", "frame-map", "--gt", str(gt), "--pred", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # 16 positives ranked first (precision 1), then 64 negatives, then 10 positives at ranks 81..90
    expected_c = (16 + sum((16 + i) / (80 + i) for i in range(1, 11))) / 26
    assert result["ap"][2] == pytest.approx(expected_c)
    assert result["ap"][:2] == [None, None] and result["mAP"] == pytest.approx(expected_c)


def test_resume_skips_done_videos_and_redecodes_when_only_interval_options_change(dense_case, capsys):
    tmp, model, store, _ = dense_case
    out = tmp / "out"
    assert run_detect("--features", store, "--model", model, "--out", out, "v1") == 0
    first = (out / "videos" / "v1.json").read_text()
    capsys.readouterr()
    assert run_detect("--features", store, "--model", model, "--out", out, "v1", "v2") == 0
    assert "1 detected, 1 already done" in capsys.readouterr().out
    assert (out / "videos" / "v1.json").read_text() == first
    assert set(json.loads((out / "detections.json").read_text())["results"]) == {"v1", "v2"}

    # no features and no video files: only the saved probabilities can serve
    assert run_detect("--model", model, "--out", out, "v1", "v2", "--min-length", "2") == 0
    assert "0 detected, 0 already done, 2 re-decoded, 0 failed; 1 intervals" in capsys.readouterr().out
    results = json.loads((out / "detections.json").read_text())["results"]
    assert list(results) == ["v1"] and [d["label"] for d in results["v1"]] == ["b"]
    np.testing.assert_allclose(results["v1"][0]["segment"], [1.92, 5.76], atol=1e-9)
    assert (out / "txt" / "v2.txt").read_text() == ""  # written even when empty (the PKU-MMD protocol needs it)


def test_another_model_recomputes(dense_case, capsys):
    tmp, model, store, _ = dense_case
    out = tmp / "out"
    assert run_detect("--features", store, "--model", model, "--out", out, "v1") == 0
    other = write_checkpoint(tmp / "other.pt", random_stream(3), CLASSES)
    capsys.readouterr()
    assert run_detect("--features", store, "--model", other, "--out", out, "v1") == 0
    assert "1 detected, 0 already done" in capsys.readouterr().out
    # the probabilities now name the other checkpoint: its content hash, not the first model's
    from augrgb.models.checkpoint import load_stream
    recorded = read_probabilities(out / "probabilities")["v1"].attrs["model_sha256"]
    assert recorded == load_stream(other)[1].sha256 != load_stream(model)[1].sha256


def test_mismatched_store_features_are_refused_and_the_batch_goes_on(dense_case, capsys):
    tmp, model, store, _ = dense_case
    write_store(store, {"v3": np.zeros((4, 1024), np.float32)}, attrs={"fps": 30.0, "stride": 8})
    out = tmp / "out"
    assert run_detect("--features", store, "--model", model, "--out", out) == 0  # all videos of the store
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() + captured.err.splitlines() if "v3" in line]
    assert len(lines) == 1 and "features made with other settings" in lines[0]
    assert "fps 30.0 (model: 25.0)" in lines[0] and "stride 8 (model: 16)" in lines[0]
    assert "2 detected" in captured.out and "1 failed" in captured.out
    assert set(json.loads((out / "detections.json").read_text())["results"]) == {"v1", "v2"}
    assert "v3" in (out / "failed.txt").read_text()
    assert not (out / "videos" / "v3.json").exists()


def test_odd_file_names_are_printed_escaped_on_one_line_and_the_batch_goes_on(dense_case, capsys):
    tmp, model, store, _ = dense_case
    newline = tmp / "two\nlines.mp4"
    latin1 = Path(os.fsdecode(os.fsencode(tmp) + b"/caf\xe9.mp4"))
    for path in (newline, latin1):
        path.write_bytes(b"")
    out = tmp / "out"
    assert run_detect("v1", "v2", newline, latin1, "--features", store, "--model", model, "--out", out) == 0
    captured = capsys.readouterr()
    expected = [f"{tmp}/two\\nlines.mp4: video id contains control characters such as a newline (refused: rename the file)",
                f"{tmp}/caf\\xe9.mp4: video id is not valid UTF-8 (refused: rename the file)"]
    assert [line for line in captured.out.splitlines() + captured.err.splitlines() if "lines.mp4" in line or "caf" in line] \
        == expected
    assert "2 detected, 0 already done, 0 re-decoded, 2 failed" in captured.out
    assert (out / "failed.txt").read_text(encoding="utf-8").splitlines() == expected
    assert set(json.loads((out / "detections.json").read_text())["results"]) == {"v1", "v2"}


def test_sparse_model_and_txt_label_base(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "student.pt", perfect_stream(2, "softmax"), ["x", "y"])
    store = write_store(tmp_path / "store", {"s1": activity_features([(1, 1, 2), (0, 4, 4)], 6, 2, "softmax")})
    out = tmp_path / "out"
    assert run_detect("--features", store, "--model", model, "--out", out, "--txt-label-base", "1") == 0
    results = json.loads((out / "detections.json").read_text())["results"]["s1"]
    assert [d["label"] for d in results] == ["y", "x"]
    np.testing.assert_allclose([d["segment"] for d in results], [[0.64, 1.92], [2.56, 3.2]], atol=1e-9)
    rows = [line.split(",")[:3] for line in (out / "txt" / "s1.txt").read_text().splitlines()]
    assert [[float(x) for x in r] for r in rows] == [[2, 16, 48], [1, 64, 80]]
    with h5py.File(out / "probabilities" / "s1.h5") as h5:
        assert h5["frames"].shape == (96, 2) and h5["snippets"].shape == (6, 3)  # background kept per snippet


def test_detect_refuses_without_inputs_and_with_bad_options(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "student.pt", random_stream(2), ["a", "b"])
    assert run_detect("--model", model, "--out", tmp_path / "out") == 1
    assert "VIDEO: give videos" in capsys.readouterr().err
    assert run_detect("v.mp4", "--model", model, "--out", tmp_path / "out", "--levels", "0.5") == 1
    assert "--levels: does not apply to the dense decoder" in capsys.readouterr().err
    assert run_detect("v.mp4", "--model", model, "--out", tmp_path / "out", "--format", "onnx") == 1
    assert "--format: belongs to" in capsys.readouterr().err
    assert run_detect("v.mp4", "--model", tmp_path / "missing.pt", "--out", tmp_path / "out") == 1
    assert "missing.pt: checkpoint not found" in capsys.readouterr().err
    assert run_detect("v.mp4", "--model", model, "--out", tmp_path / "out", "--annotations", "gt.json") == 1
    assert "--annotations: is only drawn in the --plot timelines" in capsys.readouterr().err


def test_frame_map_refuses_probabilities_over_other_classes(dense_case, capsys):
    tmp, _, store, gt = dense_case
    two = write_checkpoint(tmp / "two.pt", random_stream(2), ["a", "b"])
    assert run_detect("--features", store, "--model", two, "--out", tmp / "out", "v1") == 0
    capsys.readouterr()
    assert main(["evaluate", "frame-map", "--gt", str(gt), "--pred", str(tmp / "out" / "probabilities")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "probabilities over 2 classes, ground truth has 3" in error
    assert main(["evaluate", "frame-map", "--gt", str(gt), "--pred", str(tmp / "nothing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_on_a_generated_video_with_real_i3d(tmp_path, i3d_rgb_weights, capsys):
    from augrgb.core.files import state_sha256
    from augrgb.extract.weights import read_weights_file
    from augrgb.synth.generator import generate

    bench = generate(tmp_path / "bench", videos=1, seconds=2.0, size=64)
    video = next((bench / "videos").glob("*.mp4"))
    classes = (bench / "classes.txt").read_text().split("\n")[:-1]
    features = {**FEATURES, "weights_sha256": state_sha256(read_weights_file(i3d_rgb_weights))}
    model = write_checkpoint(tmp_path / "student.pt", random_stream(len(classes), "softmax"), classes, features=features)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    (tmp_path / "again").mkdir()
    twin = shutil.copy(video, tmp_path / "again" / video.name)
    out = tmp_path / "out"
    assert main(["detect", str(video), str(tmp_path / "missing.mp4"), str(broken), str(twin), "--model", str(model),
                 "--out", str(out), "--weights", str(i3d_rgb_weights), "--plot", "--annotations",
                 str(bench / "annotations.json"), "--runtime", "torch", "--precision", "bf16", "--quiet"]) == 0
    captured = capsys.readouterr()
    failures = [line for line in captured.out.splitlines() if line.startswith(str(tmp_path))]
    assert len(failures) == 3 and all(line.count("\n") == 0 for line in failures)
    assert any("missing.mp4" in line for line in failures) and any("already used" in line for line in failures)
    vid = video.stem
    record = json.loads((out / "videos" / f"{vid}.json").read_text())
    assert (record["frames"], record["snippets"], record["features"], record["precision"]) == (50, 4, "decoded", "bf16")
    with h5py.File(out / "probabilities" / f"{vid}.h5") as h5:
        assert h5["frames"].shape == (50, len(classes)) and h5["snippets"].shape == (4, len(classes) + 1)
    assert (out / "plots" / f"{vid}.png").is_file() and (out / "txt" / f"{vid}.txt").is_file()
    assert len((out / "failed.txt").read_text().splitlines()) == 3

    # a model trained on other I3D weights is refused before any video is scored
    other = write_checkpoint(tmp_path / "other.pt", random_stream(len(classes), "softmax"), classes)
    assert main(["detect", str(video), "--model", str(other), "--out", str(tmp_path / "out2"), "--weights",
                 str(i3d_rgb_weights), "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "weights_sha256" in error and "features made with other settings" in error
