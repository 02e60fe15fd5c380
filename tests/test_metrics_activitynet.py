"""ActivityNet event mAP (eval_detection.py rules), its file formats and ``augrgb evaluate event-map``."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augrgb.annotations import Annotations, Segment, VideoAnnotation
from augrgb.cli import main
from augrgb.metrics import ACTIVITYNET_TIOU, activitynet_event_map, interpolated_average_precision, segment_iou
from augrgb.metrics.detections import Detection, read_activitynet_results, write_activitynet_results


def gt_one_class():
    return Annotations(
        ["jump", "run"],
        {
            "v1": VideoAnnotation("v1", 60.0, "validation", [Segment(0, 0, 10), Segment(0, 20, 30)]),
            "v2": VideoAnnotation("v2", 60.0, "validation", [Segment(0, 0, 10)]),
        },
    )


HAND_DETECTIONS = [
    Detection("v1", 0, 0, 10, 0.9),  # tIoU 1 with v1[0,10]: TP
    Detection("v1", 0, 1, 10, 0.8),  # best GT (tIoU 0.9) taken, next has tIoU 0: FP
    Detection("v2", 0, 0, 5, 0.7),  # tIoU 0.5 with v2[0,10]: TP at 0.5 (>=), FP at 0.75
    Detection("v1", 0, 20, 29, 0.6),  # tIoU 0.9 with v1[20,30]: TP
]


def test_segment_iou_and_interpolated_ap():
    assert segment_iou(np.array([0.0, 5.0]), np.array([[0.0, 10.0], [5.0, 10.0], [2.0, 7.0]])).tolist() == [0.5, 0.0, 3 / 7]
    # precisions 1, .5, 2/3, 3/4 at recalls 1/3, 1/3, 2/3, 1: envelope 1, .75, .75 over three 1/3 steps
    ap = interpolated_average_precision(np.array([1, 0.5, 2 / 3, 0.75]), np.array([1, 1, 2, 3]) / 3)
    assert ap == pytest.approx(1 / 3 + 0.75 / 3 + 0.75 / 3, abs=1e-15)


def test_hand_computed_two_thresholds():
    result = activitynet_event_map(gt_one_class(), HAND_DETECTIONS, [0.5, 0.75])
    # θ=0.5: TP FP TP TP -> P 1, 1/2, 2/3, 3/4; R 1/3, 1/3, 2/3, 1 -> AP = 1/3 + 0.75/3 + 0.75/3 = 5/6
    # θ=0.75: TP FP FP TP -> P 1, 1/2, 1/3, 1/2; R 1/3, 1/3, 1/3, 2/3 -> AP = 1/3 * 1 + 1/3 * 0.5 = 1/2
    assert result.mAP.tolist() == pytest.approx([5 / 6, 0.5], abs=1e-15)
    assert result.average_mAP == pytest.approx((5 / 6 + 0.5) / 2, abs=1e-15)
    assert result.classes == [0]  # "run" has no ground truth: not in the mean
    assert result.to_dict()["tiou"] == [0.5, 0.75]


def test_class_without_predictions_scores_zero():
    gt = gt_one_class()
    gt.videos["v2"].segments.append(Segment(1, 30, 40))
    result = activitynet_event_map(gt, HAND_DETECTIONS, [0.5])
    assert result.ap[:, 1].tolist() == [0.0] and result.mAP[0] == pytest.approx((5 / 6 + 0) / 2)


def test_unknown_videos_are_false_positives_and_unknown_classes_ignored(caplog):
    gt = gt_one_class()
    extra = [Detection("elsewhere", 0, 0, 10, 0.95), Detection("v1", 1, 0, 10, 0.99)]
    result = activitynet_event_map(gt, HAND_DETECTIONS + extra, [0.5])
    # "elsewhere" ranks first as a FP: P 0, 1/2, 1/3, 1/2, 3/5 at R 0, 1/3, 1/3, 2/3, 1 -> envelope 0.6 everywhere
    assert result.mAP[0] == pytest.approx(0.6, abs=1e-15)
    assert "count as false positives" in caplog.text and "classes without ground truth" in caplog.text


def test_ties_follow_the_official_reversed_argsort():
    gt = Annotations(["a"], {"v": VideoAnnotation("v", 9.0, "testing", [Segment(0, 0, 4)])})
    # Equal scores: argsort()[::-1] on a tie of two puts the later prediction first, so the TP ranks first.
    dets = [Detection("v", 0, 5, 9, 0.5), Detection("v", 0, 0, 4, 0.5)]
    assert activitynet_event_map(gt, dets, [0.5]).mAP[0] == 1.0


def test_zero_length_and_out_of_video_predictions():
    gt = Annotations(["a"], {"v": VideoAnnotation("v", 10.0, "testing", [Segment(0, 2, 6)])})
    dets = [Detection("v", 0, 4, 4, 0.9), Detection("v", 0, 50, 60, 0.8), Detection("v", 0, 2, 6, 0.1)]
    # zero-length: tIoU 0 -> FP; outside the video: FP; exact: TP at rank 3 -> P = 1/3 over the single recall step
    assert activitynet_event_map(gt, dets, [0.5]).mAP[0] == pytest.approx(1 / 3, abs=1e-15)


def test_subset_selection():
    gt = gt_one_class()
    gt.videos["t"] = VideoAnnotation("t", 5.0, "training", [Segment(1, 0, 5)])
    result = activitynet_event_map(gt, HAND_DETECTIONS, [0.5], subset="validation")
    assert result.classes == [0] and result.mAP[0] == pytest.approx(5 / 6)


def test_default_thresholds_are_the_official_linspace():
    assert np.array_equal(ACTIVITYNET_TIOU, np.linspace(0.5, 0.95, 10))


# ---------------------------------------------------------------- files and CLI


def write_files(tmp_path, wrapped=True):
    database = {
        "v1": {"subset": "validation", "duration": 60.0, "annotations": [{"segment": [0, 10], "label": "jump"}, {"segment": [20, 30], "label": "jump"}]},
        "v2": {"subset": "validation", "duration": 60.0, "annotations": [{"segment": [0, 10], "label": "jump"}]},
        "t1": {"subset": "training", "duration": 60.0, "annotations": [{"segment": [0, 10], "label": "run"}]},
    }
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"version": "1.3", "taxonomy": [], "database": database} if wrapped else database))
    pred = write_activitynet_results(tmp_path / "results.json", HAND_DETECTIONS + [Detection("v1", 1, 0, 1, 0.1)], ["jump", "run"])
    return gt, pred


def test_results_round_trip(tmp_path):
    _, pred = write_files(tmp_path)
    # the format groups detections by video; within a video the order is kept
    expected = sorted(HAND_DETECTIONS + [Detection("v1", 1, 0, 1, 0.1)], key=lambda d: d.video_id)
    assert read_activitynet_results(pred, ["jump", "run"]) == expected


def test_results_unknown_label_is_dropped_with_warning(tmp_path, caplog):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"results": {"v": [{"label": "fly", "score": 1, "segment": [0, 1]}, {"label": "jump", "score": 0.5, "segment": [0, 1]}]}}))
    assert read_activitynet_results(path, ["jump"]) == [Detection("v", 0, 0.0, 1.0, 0.5)]
    assert "'fly' (1)" in caplog.text
    path.write_text(json.dumps({"results": {"v": [{"label": "jump", "segment": [0, 1]}]}}))
    with pytest.raises(Exception, match=r"video 'v' result 0: is not"):
        read_activitynet_results(path, ["jump"])


@pytest.mark.parametrize("wrapped", [True, False])
def test_cli_event_map_activitynet_json(tmp_path, capsys, wrapped):
    gt, pred = write_files(tmp_path, wrapped)
    argv = ["evaluate", "event-map", "--protocol", "activitynet", "--gt", str(gt), "--pred", str(pred)]
    assert main(argv + ["--tiou", "0.5", "0.75", "0.95", "--subset", "validation", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # 0.95: only the exact match ranks first -> P 1 at R 1/3, then FPs -> AP 1/3
    assert out["protocol"] == "activitynet" and out["tiou"] == [0.5, 0.75, 0.95]
    assert out["mAP"] == pytest.approx([5 / 6, 0.5, 1 / 3], abs=1e-15)
    assert out["average_mAP"] == pytest.approx((5 / 6 + 0.5 + 1 / 3) / 3, abs=1e-15)
    assert main(argv + ["--subset", "validation"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("protocol: activitynet\n") and "average_mAP: " in text


def test_cli_event_map_reports_bad_files_in_one_line(tmp_path, capsys):
    gt, _ = write_files(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": [1, 2]}')
    assert main(["evaluate", "event-map", "--protocol", "activitynet", "--gt", str(gt), "--pred", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == f"error: {bad}: no 'results' object: not an ActivityNet results file"
    assert main(["evaluate", "event-map", "--protocol", "activitynet", "--gt", str(gt), "--pred", str(bad), "--tiou", "0"]) == 1
    assert "threshold 0.0 outside (0, 1]" in capsys.readouterr().err


# ---------------------------------------------------------------- properties


@st.composite
def event_problem(draw):
    n_videos, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    videos = {}
    for i in range(n_videos):
        segs = [Segment(draw(st.integers(0, k - 1)), s, s + draw(st.integers(1, 20))) for s in draw(st.lists(st.integers(0, 80), max_size=4))]
        videos[f"v{i}"] = VideoAnnotation(f"v{i}", 100.0, "testing", segs)
    videos["v0"].segments.append(Segment(0, 0, 5))
    dets = []
    for _ in range(draw(st.integers(0, 12))):
        s = draw(st.integers(0, 90))
        dets.append((f"v{draw(st.integers(0, n_videos - 1))}", draw(st.integers(0, k - 1)), s, s + draw(st.integers(0, 20))))
    scores = draw(st.permutations(range(1, len(dets) + 1)))
    detections = [Detection(v, c, float(s), float(e), score / (len(dets) + 1)) for (v, c, s, e), score in zip(dets, scores)]
    return Annotations([str(c) for c in range(k)], videos), detections


THRESHOLDS = [0.3, 0.5, 0.7]


@settings(max_examples=40)
@given(event_problem())
def test_property_perfect_predictions_give_one(problem):
    ann, _ = problem
    perfect = [Detection(v.video_id, s.label, s.start, s.end, 1 - i / 100) for i, (v, s) in enumerate((v, s) for v in ann for s in v.segments)]
    assert activitynet_event_map(ann, perfect, THRESHOLDS).mAP.tolist() == [1.0, 1.0, 1.0]


@settings(max_examples=40)
@given(event_problem(), st.randoms(use_true_random=False))
def test_property_video_order_does_not_matter(problem, rnd):
    ann, dets = problem
    ids = list(ann.videos)
    rnd.shuffle(ids)
    shuffled = list(dets)
    rnd.shuffle(shuffled)
    first = activitynet_event_map(ann, dets, THRESHOLDS)
    second = activitynet_event_map(ann.select(ids), shuffled, THRESHOLDS)
    assert second.mAP == pytest.approx(first.mAP, abs=1e-12)


@settings(max_examples=40)
@given(event_problem(), st.integers(0, 90))
def test_property_a_lower_scored_false_positive_never_raises_ap(problem, start):
    ann, dets = problem
    before = activitynet_event_map(ann, dets, THRESHOLDS).ap
    # a detection in a video without ground truth is always a false positive
    after = activitynet_event_map(ann, dets + [Detection("nowhere", 0, start, start + 5.0, 0.0)], THRESHOLDS).ap
    assert np.all(after <= before + 1e-12)
