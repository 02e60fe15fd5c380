"""``augrgb plot``: the plotted numbers on hand-made cases, every figure written as a PNG of the expected
size from tiny random streams and stores, and bad inputs giving one-line errors."""

import json
import struct

import numpy as np
import pytest
import torch
from synthetic_features import GRID, make_store

from augrgb.cli import main
from augrgb.core.errors import InputError
from augrgb.detect.probabilities import VideoProbabilities, write_probabilities
from augrgb.experiments.runner import read_results
from augrgb.extract.store import FeatureStore
from augrgb.metrics.detections import Detection, write_activitynet_results
from augrgb.models.checkpoint import save_stream
from augrgb.models.stream import Stream
from augrgb.plot.figure import DPI
from augrgb.plot.relations import relation, relation_panels, two_stream_features
from augrgb.plot.saliency import saliency_curve, saliency_curves
from augrgb.plot.sensitivity import log_axis, sensitivity_table
from augrgb.plot.tsne import BACKGROUND, MULTI_LABEL, silhouette, snippet_classes

CLASSES = 3


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def stream_file(path, in_dim, modality, classes=CLASSES, seed=0):
    torch.manual_seed(seed)
    stream = Stream(in_dim, classes, hidden=6, dropout=0.0, filter_options={"layers": 2})
    return save_stream(path, stream, classes=[f"action{c}" for c in range(classes)], modality=modality, features=GRID)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot")
    store, annotations = make_store(root, videos=1, test_videos=3, classes=CLASSES, length=(12, 16))
    rgb = stream_file(root / "rgb" / "best.pt", 12, "rgb")
    pose = stream_file(root / "pose" / "best.pt", 8, "pose", seed=1)
    return root, store, annotations, rgb, pose


# ------------------------------------------------------------------------------ plotted numbers
def test_identical_snippets_relate_with_one_and_opposite_ones_with_minus_one():
    column = np.array([1.0, 2.0, -0.5, 4.0])
    assert np.allclose(relation(np.repeat(column[:, None], 5, axis=1)), np.ones((5, 5)), atol=1e-6)
    flipped = relation(np.stack([column, -column], axis=1))
    assert np.allclose(flipped, [[1, -1], [-1, 1]], atol=1e-6)


def test_two_stream_relation_is_of_channel_concatenation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    joint = two_stream_features(a, b)
    assert joint.shape == (7, 6) and np.array_equal(joint[:4], a) and np.array_equal(joint[4:], b)
    assert np.allclose(relation(two_stream_features(a, a)), relation(a), atol=1e-6)


def test_a_step_in_the_features_has_saliency_one_at_the_step():
    h = np.zeros((4, 7))
    h[:, 3:] = 2.0
    assert np.allclose(saliency_curve(h), [0, 0, 1, 0, 0, 0], atol=1e-6)


def test_snippet_classes_single_label_background_and_multi_label():
    dense = np.array([[0, 1, 0], [0, 0, 0], [1, 0, 1], [0, 0, 1]], dtype=bool)
    assert snippet_classes(dense, 3).tolist() == [1, BACKGROUND, MULTI_LABEL, 2]
    assert snippet_classes(np.array([2, 3, 0]), 3).tolist() == [2, BACKGROUND, 0]


def test_silhouette_of_separate_clusters_is_near_one_and_needs_two_classes():
    points = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1], [5, 5]], dtype=float)
    score = silhouette(points, np.array([0, 0, 1, 1, BACKGROUND]))  # the background point is left out
    b0 = (np.hypot(10, 10) + np.hypot(10, 10.1)) / 2      # (0, 0) and (10, 10.1) to the other cluster
    b1 = (np.hypot(10, 9.9) + np.hypot(10, 10)) / 2       # (0, 0.1) and (10, 10) to the other cluster
    assert score == pytest.approx(np.mean([1 - 0.1 / b0, 1 - 0.1 / b1, 1 - 0.1 / b1, 1 - 0.1 / b0]), abs=1e-9)
    assert silhouette(points, np.array([0, 0, 0, BACKGROUND, BACKGROUND])) is None


def test_plotted_relations_and_saliency_are_those_of_the_streams_on_the_stored_features(run):
    root, store, annotations, rgb, pose = run
    panels, times, _, _ = relation_panels([rgb, pose], store, "vid001", two_stream=[rgb, pose])
    x, _ = FeatureStore(store).read("vid001", "rgb")
    stream = Stream(12, CLASSES, hidden=6, dropout=0.0, filter_options={"layers": 2})
    stream.load_state_dict(torch.load(rgb, weights_only=True)["state_dict"])
    stream.eval()
    with torch.no_grad():
        h = stream(torch.from_numpy(np.asarray(x, np.float16).astype(np.float32)).T[None], torch.ones(1, 1, len(x))).features[0].numpy()
    assert [p[0] for p in panels] == ["rgb (rgb)", "pose (pose)", "two-stream: rgb (rgb) + pose (pose)"]
    assert np.allclose(panels[0][1], relation(h), atol=1e-5)
    assert np.allclose(times, np.arange(len(x)) + 7.5 / 16)
    curves, curve_times, _, _ = saliency_curves([rgb], store, "vid001", labels=["RGB"])
    assert curves[0][0] == "RGB" and np.allclose(curves[0][1], saliency_curve(h), atol=1e-5)
    assert np.allclose(curve_times, (times[1:] + times[:-1]) / 2)


def write_results(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def toy_results(tmp_path):
    rows = []
    for seed, (a, b, c) in enumerate([(0.50, 0.60, 0.40), (0.52, 0.62, 0.41), (0.54, 0.61, 0.42)]):
        for value, score in ((1.0, a), (100.0, b)):
            rows.append({"group": "sensitivity", "name": f"alpha1={value:g}", "teacher": "pose", "param": "alpha1",
                         "value": value, "seed": seed, "metric": "frame_mAP", "score": score})
        rows.append({"group": "main", "name": "vanilla", "teacher": "pose", "param": None, "value": None,
                     "seed": seed, "metric": "frame_mAP", "score": c})
        rows.append({"group": "main", "name": "augmented", "teacher": "pose", "param": None, "value": None,
                     "seed": seed, "metric": "frame_mAP", "score": c + 0.2})
    return write_results(tmp_path / "results.jsonl", rows)


def test_sensitivity_mean_and_std_over_three_seeds(tmp_path):
    records = read_results(toy_results(tmp_path))
    curves, baselines = sensitivity_table(records, "alpha1")
    (v1, s1), (v2, s2) = curves["pose"]
    assert (v1, v2) == (1.0, 100.0) and s1.seeds == s2.seeds == 3
    assert s1.mean == pytest.approx(0.52) and s1.std == pytest.approx(np.sqrt(8e-4 / 3))
    assert s2.mean == pytest.approx(0.61) and s2.std == pytest.approx(np.sqrt(2e-4 / 3))
    assert baselines[("vanilla", "pose")].mean == pytest.approx(0.41)
    with_reference, _ = sensitivity_table(records, "alpha1", reference=10.0)
    assert [v for v, _ in with_reference["pose"]] == [1.0, 10.0, 100.0]
    assert with_reference["pose"][1][1].mean == pytest.approx(0.61)
    assert log_axis([1.0, 100.0]) and not log_axis([1.0, 5.0]) and not log_axis([0.0, 100.0])


def test_malformed_results_lines_name_file_and_line(tmp_path):
    good = {"group": "main", "name": "vanilla", "teacher": "pose", "seed": 0, "metric": "frame_mAP", "score": 0.4}
    for bad, reason in (("{not json", "not valid JSON"), ({**good, "score": "high"}, "'score' is 'high'"),
                        ({"group": "main", "name": "x", "score": 0.1}, "no 'seed'")):
        path = write_results(tmp_path / "r.jsonl", [good, "", bad])
        with pytest.raises(InputError, match=reason) as err:
            read_results(path)
        assert str(err.value).startswith(f"{path}:3: ")


# ------------------------------------------------------------------------------ figures through the CLI
def test_relations_and_saliency_pngs(run, tmp_path):
    root, store, annotations, rgb, pose = run
    out = tmp_path / "relations.png"
    assert main(["plot", "relations", "--features", str(store), "--video", "vid001", "--checkpoint", str(rgb),
                 "--checkpoint", str(pose), "--two-stream", str(rgb), str(pose), "--out", str(out)]) == 0
    assert png_size(out) == (round((3.6 * 3 + 0.8) * DPI), round(4.2 * DPI))
    out = tmp_path / "saliency.png"
    assert main(["plot", "saliency", "--features", str(store), "--video", "vid002", "--checkpoint", str(rgb),
                 "--checkpoint", str(pose), "--annotations", str(annotations), "--out", str(out)]) == 0
    assert png_size(out)[0] == 11 * DPI and png_size(out)[1] > 3.4 * DPI


def test_tsne_png(run, tmp_path):
    root, store, annotations, rgb, pose = run
    out = tmp_path / "tsne.png"
    assert main(["plot", "tsne", "--features", str(store), "--annotations", str(annotations), "--checkpoint", str(rgb),
                 "--checkpoint", str(pose), "--label", "RGB", "--label", "pose teacher", "--max-snippets", "30",
                 "--out", str(out)]) == 0
    assert png_size(out) == (round((4.2 * 2 + 2.2) * DPI), round(4.6 * DPI))


def test_timeline_png_from_results_json(run, tmp_path):
    root, store, annotations, rgb, pose = run
    names = [f"action{c}" for c in range(CLASSES)]
    results = write_activitynet_results(tmp_path / "det.json", [Detection("vid001", 1, 2.0, 6.5, 0.8),
                                                                Detection("vid002", 0, 1.0, 3.0, 0.9)], names)
    out = tmp_path / "timeline.png"
    assert main(["plot", "timeline", "--detections", str(results), "--annotations", str(annotations),
                 "--video", "vid001", "--out", str(out)]) == 0
    assert png_size(out)[0] == 12 * DPI
    folder = tmp_path / "detect"                     # an `augrgb detect` folder: probabilities add a third panel
    write_activitynet_results(folder / "detections.json", [Detection("vid001", 1, 2.0, 6.5, 0.8)], names)
    frames = np.random.default_rng(0).random((16 * 14, CLASSES)).astype(np.float32)
    write_probabilities(folder / "probabilities" / "vid001.h5",
                        VideoProbabilities("vid001", frames, frames[::16], 16.0, names, "sigmoid"))
    with_probs = tmp_path / "timeline_probs.png"
    assert main(["plot", "timeline", "--detections", str(folder), "--annotations", str(annotations),
                 "--video", "vid001", "--out", str(with_probs)]) == 0
    assert png_size(with_probs)[1] > png_size(out)[1] * 1.3


def test_sensitivity_png(tmp_path):
    out = tmp_path / "sens.png"
    assert main(["plot", "sensitivity", "--results", str(toy_results(tmp_path)), "--param", "alpha1",
                 "--reference", "alpha1=10", "--out", str(out)]) == 0
    assert png_size(out) == (round((4.6 + 2.4) * DPI), round(4.0 * DPI))


# ------------------------------------------------------------------------------ bad inputs
def one_line_error(capsys, argv, *needles):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    for needle in needles:
        assert needle in err


def test_bad_inputs_give_one_line_errors(run, tmp_path, capsys):
    root, store, annotations, rgb, pose = run
    out = str(tmp_path / "x.png")
    one_line_error(capsys, ["plot", "saliency", "--features", str(store), "--video", "nope", "--checkpoint", str(rgb),
                            "--annotations", str(annotations), "--out", out], "video 'nope'", "not in the annotations")
    one_line_error(capsys, ["plot", "relations", "--features", str(store), "--video", "nope", "--checkpoint", str(rgb),
                            "--out", out], "nope.h5", "not found")
    wrong = stream_file(tmp_path / "five.pt", 12, "rgb", classes=5)
    one_line_error(capsys, ["plot", "tsne", "--features", str(store), "--annotations", str(annotations),
                            "--checkpoint", str(wrong), "--out", out], "3 classes", "has 5")
    one_line_error(capsys, ["plot", "relations", "--features", str(store), "--video", "vid001", "--checkpoint", str(rgb),
                            "--checkpoint", str(wrong), "--out", out], "five.pt", "classes differ")
    bad = write_results(tmp_path / "bad.jsonl", ['{"group": "main"'])
    one_line_error(capsys, ["plot", "sensitivity", "--results", str(bad), "--param", "alpha1", "--out", out],
                   f"{bad}:1", "not valid JSON")
    one_line_error(capsys, ["plot", "sensitivity", "--results", str(toy_results(tmp_path)), "--param", "alpha9",
                            "--out", out], "parameter 'alpha9'", "alpha1")
    no_value = write_results(tmp_path / "nv.jsonl", [{"group": "sensitivity", "name": "alpha1=?", "param": "alpha1",
                                                      "value": None, "seed": 0, "score": 0.1}])
    one_line_error(capsys, ["plot", "sensitivity", "--results", str(no_value), "--param", "alpha1", "--out", out],
                   "'alpha1=?' (seed 0) has value None")
    one_line_error(capsys, ["plot", "timeline", "--detections", str(tmp_path), "--annotations", str(annotations),
                            "--video", "vid001", "--out", out], "detections.json")
    assert not (tmp_path / "x.png").exists()
