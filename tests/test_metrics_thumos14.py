"""THUMOS14 event mAP (TH14evalDet.m rules) and ``augrgb evaluate event-map --protocol thumos14``."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augrgb.annotations import Annotations, Segment, VideoAnnotation
from augrgb.cli import main
from augrgb.metrics import activitynet_event_map, thumos14_event_map
from augrgb.metrics.detections import Detection, read_thumos14_detections
from augrgb.metrics.thumos14 import interval_overlap

V = "video_test_0000004"


def hand_gt():
    video = VideoAnnotation(V, None, "testing", [Segment(0, 10, 20), Segment(0, 30, 40)], ambiguous=[(50.0, 60.0)])
    return Annotations(["BaseballPitch", "BasketballDunk"], {V: video})


HAND = [
    Detection(V, 0, 52, 58, 0.95),  # no GT overlap, inside Ambiguous: dropped
    Detection(V, 0, 10, 20, 0.9),  # GT [10,20] overlap 1: TP
    Detection(V, 0, 70, 80, 0.85),  # nothing: FP
    Detection(V, 0, 31, 40, 0.8),  # GT [30,40] overlap 0.9: TP
    Detection(V, 0, 30, 35, 0.5),  # GT [30,40] already taken: FP
]


def test_interval_overlap_orders_endpoints_and_needs_positive_width():
    ov = interval_overlap(np.array([[10.0, 20.0]]), np.array([[20.0, 10.0], [20.0, 30.0], [15.0, 25.0]]))
    assert ov.tolist() == [[1.0, 0.0, 5 / 15]]


def test_hand_computed_with_ambiguous():
    # kept ranking: TP (0.9), FP (0.85), TP (0.8), FP (0.5) -> precisions at TPs 1 and 2/3
    # AP = (1 + 2/3) / 2 GT = 5/6. Counting the ambiguous detection as FP would give (1/2 + 2/4) / 2 = 1/2.
    result = thumos14_event_map(hand_gt(), HAND, [0.5])
    assert result.ap[0, 0] == pytest.approx(5 / 6, abs=1e-15)
    assert result.classes == [0] and result.mAP[0] == pytest.approx(5 / 6, abs=1e-15)
    no_amb = hand_gt()
    no_amb.videos[V].ambiguous = []
    assert thumos14_event_map(no_amb, HAND, [0.5]).ap[0, 0] == pytest.approx(0.5, abs=1e-15)


def test_match_needs_overlap_strictly_above_the_threshold():
    gt = Annotations(["a"], {"v": VideoAnnotation("v", None, "testing", [Segment(0, 0, 10)])})
    dets = [Detection("v", 0, 0, 5, 0.9)]  # overlap exactly 0.5
    assert thumos14_event_map(gt, dets, [0.5]).mAP[0] == 0.0
    assert activitynet_event_map(gt, dets, [0.5]).mAP[0] == 1.0  # ActivityNet uses >=
    assert thumos14_event_map(gt, dets, [0.49]).mAP[0] == 1.0


def test_ground_truth_takes_its_best_overlapping_detection_whatever_the_score():
    gt = Annotations(["a"], {"v": VideoAnnotation("v", None, "testing", [Segment(0, 0, 10)])})
    dets = [Detection("v", 0, 0, 8, 0.9), Detection("v", 0, 0, 10, 0.5)]
    # THUMOS14: the GT takes the 0.5-scored exact detection; the 0.9 one is a FP ranked first -> AP = 1/2
    assert thumos14_event_map(gt, dets, [0.5]).mAP[0] == pytest.approx(0.5)
    # ActivityNet: the 0.9 detection (tIoU 0.8) takes the GT first -> AP = 1
    assert activitynet_event_map(gt, dets, [0.5]).mAP[0] == 1.0


def test_class_without_detections_scores_zero_and_classes_without_gt_are_left_out(caplog):
    gt = hand_gt()
    gt.videos[V].segments.append(Segment(1, 0, 5))
    result = thumos14_event_map(gt, HAND, [0.5])
    assert result.ap[0].tolist() == pytest.approx([5 / 6, 0.0]) and result.mAP[0] == pytest.approx(5 / 12)
    empty_class = Annotations(["a", "b", "c"], hand_gt().videos)
    assert thumos14_event_map(empty_class, HAND, [0.5]).classes == [0]
    assert "left out of the mean" in caplog.text


def test_ties_are_ranked_by_video_name_then_file_order():
    gt = Annotations(["a"], {n: VideoAnnotation(n, None, "testing", [Segment(0, 0, 10)]) for n in ("vb", "va")})
    # equal scores: the official ranking walks videos in sorted name order: va's FP before vb's TP
    dets = [Detection("vb", 0, 0, 10, 0.5), Detection("va", 0, 50, 60, 0.5)]
    assert thumos14_event_map(gt, dets, [0.5]).mAP[0] == pytest.approx((1 / 2) / 2)


# ---------------------------------------------------------------- files and CLI


def write_thumos(tmp_path):
    gt = tmp_path / "annotation"
    gt.mkdir()
    (gt / "detclasslist.txt").write_text("7 BaseballPitch\n9 BasketballDunk\n")
    (gt / "BaseballPitch_test.txt").write_text(f"{V} 10.0 20.0\n{V} 30.0 40.0\n")
    (gt / "BasketballDunk_test.txt").write_text(f"{V} 100 110\n")
    (gt / "Ambiguous_test.txt").write_text(f"{V} 50 60\n")
    det = tmp_path / "det.txt"
    lines = [f"{d.video_id}.mp4 {d.start} {d.end} 7 {d.score}" for d in HAND] + [f"{V} 100 110 9 0.3", f"{V} 0 1 4 0.9"]
    det.write_text("\n".join(lines) + "\n")
    return gt, det


def test_detection_file_reader_maps_class_ids(tmp_path, caplog):
    _, det = write_thumos(tmp_path)
    dets = read_thumos14_detections(det, {7: 0, 9: 1})
    assert dets[:5] == HAND and dets[5] == Detection(V, 1, 100.0, 110.0, 0.3)
    assert "ignored 1 detection" in caplog.text  # class id 4 is not a detection class


def test_cli_thumos14_json(tmp_path, capsys):
    gt, det = write_thumos(tmp_path)
    argv = ["evaluate", "event-map", "--protocol", "thumos14", "--gt", str(gt), "--pred", str(det), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    # BaseballPitch 5/6 at every default threshold (overlaps 1 and 0.9); BasketballDunk: exact -> 1
    assert out["protocol"] == "thumos14" and out["tiou"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert out["mAP"] == pytest.approx([(5 / 6 + 1) / 2] * 5, abs=1e-15)
    assert main(argv + ["--tiou", "0.95"]) == 0
    # at 0.95 the 0.9-overlap detection is a FP: TP, FP, FP, FP -> AP 1/2 for BaseballPitch
    assert json.loads(capsys.readouterr().out)["mAP"] == pytest.approx([(0.5 + 1) / 2], abs=1e-15)


def test_only_mp4_is_stripped_from_video_names_as_in_the_2015_kit(tmp_path, capsys, caplog):
    # One ground truth [10, 20] in video "v". Two detections, both exactly on it:
    #   "v.mpeg 10 20 7 0.95": the 2015 kit keeps the name "v.mpeg", a video without ground truth -> FP
    #   "v.mp4  10 20 7 0.9" : ".mp4" removed -> video "v", overlap 1 -> TP
    # ranking FP (0.95), TP (0.9): precision at the TP = 1/2 -> AP = 1/2 (1 GT).
    # (Stripping ".mpeg" too, as the 2014 kit did, puts both in "v": the GT takes the first of the two
    # equal overlaps in confidence order, the 0.95 one -> TP then FP -> AP 1.)
    gt = tmp_path / "annotation"
    gt.mkdir()
    (gt / "detclasslist.txt").write_text("7 BaseballPitch\n")
    (gt / "BaseballPitch_test.txt").write_text("v 10 20\n")
    (gt / "Ambiguous_test.txt").write_text("")
    det = tmp_path / "det.txt"
    det.write_text("v.mpeg 10 20 7 0.95\nv.mp4 10 20 7 0.9\n")
    assert [d.video_id for d in read_thumos14_detections(det, {7: 0})] == ["v.mpeg", "v"]
    argv = ["evaluate", "event-map", "--protocol", "thumos14", "--gt", str(gt), "--pred", str(det), "--tiou", "0.5", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] == [0.5]
    assert "detections in 1 video(s) without ground truth (first: 'v.mpeg') count as false positives" in caplog.text
    # The .mpeg detection alone scores 0 (the single-detection case); the .mp4 one alone scores 1.
    det.write_text("v.mpeg 10 20 7 0.95\n")
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["mAP"] == [0.0]
    det.write_text("v.mp4 10 20 7 0.9\n")
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["mAP"] == [1.0]


def test_cli_thumos14_needs_a_numbered_class_list(tmp_path, capsys):
    gt, det = write_thumos(tmp_path)
    (gt / "detclasslist.txt").unlink()
    assert main(["evaluate", "event-map", "--protocol", "thumos14", "--gt", str(gt), "--pred", str(det)]) == 1
    assert "no numbered class list" in capsys.readouterr().err


# ---------------------------------------------------------------- properties


@st.composite
def thumos_problem(draw):
    videos, dets = {}, []
    scores = iter(draw(st.permutations(range(1, 100))))
    for i in range(draw(st.integers(1, 3))):
        starts = draw(st.lists(st.integers(0, 20), min_size=1, max_size=3, unique=True))
        segs = [Segment(draw(st.integers(0, 1)), 10.0 * s, 10.0 * s + draw(st.integers(1, 9))) for s in starts]
        amb = [(10.0 * s + 5, 10.0 * s + 8) for s in draw(st.lists(st.integers(21, 30), max_size=2))]
        videos[f"v{i}"] = VideoAnnotation(f"v{i}", None, "testing", segs, ambiguous=amb)
        for _ in range(draw(st.integers(0, 4))):
            s = draw(st.integers(0, 300))
            dets.append(Detection(f"v{i}", draw(st.integers(0, 1)), float(s), float(s + draw(st.integers(0, 15))), next(scores) / 100))
    return Annotations(["a", "b"], videos), dets


@settings(max_examples=40)
@given(thumos_problem())
def test_property_perfect_predictions_give_one(problem):
    ann, _ = problem
    perfect = [Detection(v.video_id, s.label, s.start, s.end, 1 - i / 100) for i, (v, s) in enumerate((v, s) for v in ann for s in v.segments)]
    assert thumos14_event_map(ann, perfect, [0.1, 0.5, 0.9]).mAP.tolist() == [1.0, 1.0, 1.0]


@settings(max_examples=40)
@given(thumos_problem(), st.randoms(use_true_random=False))
def test_property_video_order_does_not_matter(problem, rnd):
    ann, dets = problem
    ids = list(ann.videos)
    rnd.shuffle(ids)
    shuffled = list(dets)
    rnd.shuffle(shuffled)
    first = thumos14_event_map(ann, dets, [0.1, 0.5])
    assert thumos14_event_map(ann.select(ids), shuffled, [0.1, 0.5]).mAP == pytest.approx(first.mAP, abs=1e-12)


@settings(max_examples=40)
@given(thumos_problem(), st.integers(0, 100))
def test_property_a_lower_scored_false_positive_never_raises_ap(problem, start):
    ann, dets = problem
    before = thumos14_event_map(ann, dets, [0.1, 0.5]).ap
    after = thumos14_event_map(ann, dets + [Detection("v0", 0, 1000.0 + start, 1005.0 + start, 0.0)], [0.1, 0.5]).ap
    assert np.all(after <= before + 1e-12)
