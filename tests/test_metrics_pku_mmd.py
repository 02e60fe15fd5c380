"""PKU-MMD / TSU event mAP (evaluate.py rules) and ``augrgb evaluate event-map --protocol pku-mmd``."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augrgb.cli import main
from augrgb.core.errors import InputError
from augrgb.metrics import pku_average_precision, pku_mmd_event_map
from augrgb.metrics.detections import read_label_dir, write_label_txt


def rows(*items):
    return np.array(items, dtype=np.float64).reshape(-1, 4)


# One video, label 1: ground truth [0,10] and [20,30].
GT = {"0001-L.txt": rows([1, 0, 10, 1], [1, 20, 30, 1])}
# a: exact on [0,10] (conf .9, TP); b: nowhere (conf .8, FP); c: exact on [20,30] (conf .7, TP)
PRED = {"0001-L.txt": rows([1, 0, 10, 0.9], [1, 40, 50, 0.8], [1, 20, 30, 0.7])}


def test_hand_computed_ap_shows_the_official_recursion():
    # Removing from the lowest confidence: start P=2/3, R=1.
    # remove c (matched): 2 left, 1 positive -> P=1/2, R=1/2; max P = 2/3; AP += 2/3 * (1 - 1/2)
    # remove b (unmatched): skipped
    # remove a (matched): 0 left -> P=R=0; AP += 2/3 * (1/2 - 0)          => AP = 2/3
    # (the usual interpolated AP of this ranking, TP FP TP, would be 5/6)
    result = pku_mmd_event_map(GT, PRED, num_classes=2, first_label=1, tiou=[0.5])
    assert result.ap_action[0].tolist() == pytest.approx([2 / 3], abs=1e-15)
    assert result.mAP_action[0] == pytest.approx(2 / 3, abs=1e-15)
    assert result.mAP_video[0] == pytest.approx(2 / 3, abs=1e-15)


def test_label_set_average_pku_versus_tsu():
    # PKU-MMD master: labels 1..K-1 over K-1. TSU: labels 0..K-1 over K (empty labels score 0).
    pku = pku_mmd_event_map(GT, PRED, num_classes=3, first_label=1, tiou=[0.5])
    tsu = pku_mmd_event_map(GT, PRED, num_classes=3, first_label=0, tiou=[0.5])
    assert pku.labels == [1, 2] and pku.mAP_action[0] == pytest.approx((2 / 3 + 0) / 2, abs=1e-15)
    assert tsu.labels == [0, 1, 2] and tsu.mAP_action[0] == pytest.approx((0 + 2 / 3 + 0) / 3, abs=1e-15)


def test_duplicate_matches_count_one_ground_truth():
    # Both proposals match [0,10]; the GT counts once. Ascending: b (.8) then a (.9).
    # start P = 1/2, R = 1; remove b: GT still matched by a, 1 left -> P = 1, R = 1: AP += 1 * 0
    # remove a: P = R = 0: AP += 1 * (1 - 0) => AP = 1
    gt = {"v.txt": rows([2, 0, 10, 1])}
    pred = {"v.txt": rows([2, 0, 10, 0.9], [2, 0, 9, 0.8])}
    assert pku_mmd_event_map(gt, pred, 3, 0, [0.5]).ap_action[0, 2] == 1.0


def test_best_overlap_wins_and_equal_overlaps_take_the_later_ground_truth():
    # proposal [0,10] overlaps GT0 [0,8] (0.8) and GT1 [2,10] (0.8): the later one, GT1, is taken.
    gt = {"v.txt": rows([0, 0, 8, 1], [0, 2, 10, 1])}
    pred = {"v.txt": rows([0, 0, 10, 0.9], [0, 2, 10, 0.5])}
    # the second proposal is exact on GT1 too: both match GT1, GT0 stays unmatched.
    # start: 2 proposals, 1 positive: P = 1/2, R = 1/2; remove [2,10]: P = 1, R = 1/2: AP += 1 * 0
    # remove [0,10]: P = R = 0: AP += 1 * 1/2 => AP = 1/2
    assert pku_mmd_event_map(gt, pred, 1, 0, [0.5]).ap_action[0, 0] == pytest.approx(0.5)
    # so two identical ground truths can never both be matched: perfect proposals reach only AP 1/2
    twin = {"v.txt": rows([0, 0, 8, 1], [0, 0, 8, 1])}
    assert pku_mmd_event_map(twin, {"v.txt": rows([0, 0, 8, 0.9], [0, 0, 8, 0.8])}, 1, 0, [0.5]).ap_action[0, 0] == pytest.approx(0.5)


def test_edge_cases_zero_length_no_predictions_and_threshold_inclusive():
    gt = {"v.txt": rows([0, 5, 5, 1], [1, 0, 10, 1])}
    # identical zero-length segments: the hull is 0 -> overlap 0 (the official script divides by zero)
    # label 1 proposal [0,5]: overlap exactly 0.5 -> matched at θ=0.5 (>=)
    pred = {"v.txt": rows([0, 5, 5, 0.9], [1, 0, 5, 0.8])}
    result = pku_mmd_event_map(gt, pred, 3, 0, [0.5])
    assert result.ap_action[0].tolist() == [0.0, 1.0, 0.0]  # label 2: no GT, no predictions -> 0
    assert pku_average_precision(np.array([]), np.array([], dtype=int), 3) == 0.0


def test_videos_follow_the_prediction_folder(caplog):
    gt = dict(GT, **{"0002-M.txt": rows([1, 0, 5, 1])})
    pred = dict(PRED, **{"9999-R.txt": rows([1, 0, 5, 0.5])})
    result = pku_mmd_event_map(gt, pred, 2, 1, [0.5])
    # 0002-M has no prediction file: left out (its GT is not counted); 9999-R has no GT: ignored.
    assert result.videos == ["0001-L.txt"] and result.mAP_action[0] == pytest.approx(2 / 3)
    assert "left out" in caplog.text and "without ground truth" in caplog.text


def test_labels_outside_the_label_set_are_errors():
    with pytest.raises(InputError, match=r"predictions of '0001-L.txt' row 1: label 1 outside 0..0"):
        pku_mmd_event_map(GT, PRED, 1, 0, [0.5])
    with pytest.raises(InputError, match="first-label"):
        pku_mmd_event_map(GT, PRED, 2, 2, [0.5])


# ---------------------------------------------------------------- files and CLI


def write_dirs(tmp_path, gt, pred):
    for name, r in gt.items():
        write_label_txt(tmp_path / "gt" / name, r)
    for name, r in pred.items():
        write_label_txt(tmp_path / "pred" / name, r)
    return tmp_path / "gt", tmp_path / "pred"


def test_label_files_round_trip(tmp_path):
    _, pred_dir = write_dirs(tmp_path, GT, PRED)
    assert np.array_equal(read_label_dir(pred_dir, require_confidence=True)["0001-L.txt"], PRED["0001-L.txt"])


def test_cli_pku_mmd_json(tmp_path, capsys):
    gt_dir, pred_dir = write_dirs(tmp_path, GT, PRED)
    argv = ["evaluate", "event-map", "--protocol", "pku-mmd", "--gt", str(gt_dir), "--pred", str(pred_dir), "--json"]
    assert main(argv + ["--num-classes", "52", "--first-label", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    # default thresholds 0.1 and 0.5 (the paper's); one label with AP 2/3 among 51 -> 2/3/51
    assert out["protocol"] == "pku-mmd" and out["tiou"] == [0.1, 0.5]
    assert out["mAP_action"] == pytest.approx([2 / 3 / 51] * 2, abs=1e-15)
    assert out["mAP_video"] == pytest.approx([2 / 3] * 2, abs=1e-15)
    assert main(argv) == 2  # --num-classes is required
    assert "required by the pku-mmd protocol" in capsys.readouterr().err


def test_cli_pku_mmd_bad_prediction_line(tmp_path, capsys):
    gt_dir, pred_dir = write_dirs(tmp_path, GT, PRED)
    argv = ["evaluate", "event-map", "--protocol", "pku-mmd", "--gt", str(gt_dir), "--pred", str(pred_dir), "--num-classes", "1"]
    assert main(argv) == 1  # label 1 is outside the label set 0..0
    assert capsys.readouterr().err.strip() == f"error: {gt_dir / '0001-L.txt'}:1: class 1 outside 0..0"
    (pred_dir / "0001-L.txt").write_text("1,0,10\n")
    argv = ["evaluate", "event-map", "--protocol", "pku-mmd", "--gt", str(gt_dir), "--pred", str(pred_dir), "--num-classes", "52"]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == f"error: {pred_dir / '0001-L.txt'}:1: expected label,start,end,confidence, got 3 field(s)"


# ---------------------------------------------------------------- properties


@st.composite
def pku_problem(draw):
    gt, pred = {}, {}
    conf = iter(draw(st.permutations(range(1, 200))))
    for v in range(draw(st.integers(1, 3))):
        name = f"{v:04d}.txt"
        # distinct starts: identical ground truths could never both be matched (see the test above)
        starts = draw(st.lists(st.integers(0, 100), min_size=1, max_size=4, unique=True))
        g = [[draw(st.integers(0, 2)), s, s + draw(st.integers(1, 30)), 1] for s in starts]
        p = []
        for _ in range(draw(st.integers(0, 6))):
            s = draw(st.integers(0, 120))
            p.append([draw(st.integers(0, 2)), s, s + draw(st.integers(0, 30)), next(conf) / 200])
        gt[name], pred[name] = rows(*g), rows(*p)
    return gt, pred


@settings(max_examples=40)
@given(pku_problem())
def test_property_perfect_predictions_give_one(problem):
    gt, _ = problem
    perfect = {v: np.column_stack([r[:, :3], 1 - np.arange(len(r)) / 100]) for v, r in gt.items()}
    result = pku_mmd_event_map(gt, perfect, 3, 0, [0.1, 0.5, 0.9])
    present = [label for label in range(3) if any((r[:, 0] == label).any() for r in gt.values())]
    # 1 up to rounding: the official recursion sums recall differences (1 - 6/7) + (6/7 - 5/7) + ...
    assert result.ap_action[:, present] == pytest.approx(1.0, abs=1e-12)
    assert result.mAP_video == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=40)
@given(pku_problem(), st.randoms(use_true_random=False))
def test_property_video_order_does_not_matter(problem, rnd):
    gt, pred = problem
    names = list(pred)
    rnd.shuffle(names)
    first = pku_mmd_event_map(gt, pred, 3, 0, [0.1, 0.5])
    second = pku_mmd_event_map(gt, {n: pred[n] for n in names}, 3, 0, [0.1, 0.5])
    assert second.mAP_action == pytest.approx(first.mAP_action, abs=1e-12)
    assert second.mAP_video == pytest.approx(first.mAP_video, abs=1e-12)


@settings(max_examples=40)
@given(pku_problem(), st.integers(0, 120))
def test_property_a_lower_scored_false_positive_never_raises_ap(problem, start):
    gt, pred = problem
    name = next(iter(pred))
    # far from every ground truth and below every confidence: always unmatched
    extra = dict(pred, **{name: np.vstack([pred[name], rows([0, 1000 + start, 1010 + start, 0.0])])})
    before = pku_mmd_event_map(gt, pred, 3, 0, [0.1, 0.5])
    after = pku_mmd_event_map(gt, extra, 3, 0, [0.1, 0.5])
    assert np.all(after.ap_action <= before.ap_action + 1e-12) and np.all(after.ap_video <= before.ap_video + 1e-12)
