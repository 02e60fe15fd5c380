"""The official Charades localisation protocol, its submission format and ``augrgb evaluate charades``."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augrgb.annotations import Annotations, Segment, VideoAnnotation
from augrgb.cli import main
from augrgb.core.errors import InputError
from augrgb.metrics import charades_localize_map, charades_point_labels, charades_time_points
from augrgb.metrics.detections import read_charades_submission, write_charades_submission

HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"


def one_video(segments, length=25.0, k=2):
    return Annotations([f"c{i:03d}" for i in range(k)], {"A": VideoAnnotation("A", length, "testing", segments)})


def test_time_points_and_inclusive_rule():
    t = charades_time_points(50.0)
    assert len(t) == 25 and t[0] == 0.0 and t[1] == pytest.approx(2.0) and t[-1] == pytest.approx(48.0)
    video = VideoAnnotation("A", 50.0, "testing", [Segment(1, t[3], t[5]), Segment(0, t[24] + 0.01, 60.0)])
    labels = charades_point_labels(video, 2)
    assert np.nonzero(labels[:, 1])[0].tolist() == [3, 4, 5]  # both ends count
    assert not labels[:, 0].any()  # starts after the last point (0.96 of the length)


def hand_scores():
    # Video A, length 25: points t_j ~ j. c000 on [0.5, 2.5] -> rows 1, 2; c001 on [10.5, 11.5] -> row 11.
    scores = np.zeros((25, 2))
    scores[:, 0] = (25 - np.arange(25)) / 25  # decreasing with the row
    scores[11, 1] = 1.0
    scores[2] = -np.inf  # frame 3 missing from the submission
    return scores


def test_hand_computed_map_and_wap():
    ann = one_video([Segment(0, 0.5, 2.5), Segment(1, 10.5, 11.5)])
    result = charades_localize_map(ann, {"A": hand_scores()})
    # class 0 ranking: row0 (neg), row1 (pos, P=1/2), rows 3..24 (neg), row2 (-inf, pos, P=2/25)
    ap0 = (1 / 2 + 2 / 25) / 2
    # class 1: row 11 ranked first -> AP 1
    assert result.ap.tolist() == pytest.approx([ap0, 1.0], abs=1e-15)
    assert result.mAP == pytest.approx((ap0 + 1) / 2, abs=1e-15)
    assert result.wAP == pytest.approx((2 * ap0 + 1 * 1) / 3, abs=1e-15)  # weights: 2 and 1 positive points
    assert result.num_positives.tolist() == [2, 1]


def test_ties_keep_row_order_like_matlab():
    ann = one_video([Segment(1, 10.5, 11.5)])
    scores = np.full((25, 2), 0.5)
    # All rows tie for class 1: the stable order puts the positive row 11 at rank 12 -> AP = 1/12.
    result = charades_localize_map(ann, {"A": scores})
    assert result.ap[1] == pytest.approx(1 / 12, abs=1e-15)


def test_class_without_positives_makes_map_nan_as_the_official_script(caplog):
    ann = one_video([Segment(0, 0.5, 2.5)])
    result = charades_localize_map(ann, {"A": hand_scores()})
    assert np.isnan(result.ap[1]) and np.isnan(result.mAP) and np.isnan(result.wAP)
    assert result.to_dict() == {"protocol": "charades-localize", "mAP": None, "wAP": None}
    assert "no positive point" in caplog.text


def test_missing_video_scores_minus_infinity(caplog):
    ann = Annotations(["c000"], {v: VideoAnnotation(v, 25.0, "testing", [Segment(0, 0.5, 1.5)]) for v in ("A", "B")})
    # B has no predictions: its positive row 1 ranks after all of A's 25 rows.
    # ranks: A row1 first (P=1/1) ... B row1 at rank 25 + 2 (stable: B row0 before it) -> P = 2/27
    scores = {"A": np.linspace(1, 0, 25)[:, None] + (np.arange(25) == 1)[:, None] * 5, "ghost": np.zeros((25, 1))}
    result = charades_localize_map(ann, scores)
    assert result.ap[0] == pytest.approx((1 + 2 / 27) / 2, abs=1e-15)
    assert "no predictions" in caplog.text and "not in the ground truth" in caplog.text


# ---------------------------------------------------------------- submission files and the CLI


def test_submission_round_trip_and_zero_based_frames(tmp_path, caplog):
    scores = {"A": hand_scores()}
    path = write_charades_submission(tmp_path / "sub.txt", scores)
    back = read_charades_submission(path, 2)
    assert np.array_equal(back["A"], scores["A"])
    zero = tmp_path / "zero.txt"
    zero.write_text("A 0 0.5 0.25\nA 24 1 2\nA 30 1 1\n")
    grid = read_charades_submission(zero, 2)["A"]
    assert grid[0].tolist() == [0.5, 0.25] and grid[24].tolist() == [1.0, 2.0] and np.isinf(grid[1]).all()
    assert "adding 1" in caplog.text and "outside 1..25" in caplog.text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("A 1 0.5\n", "expected 'id framenr' and 2 scores, got 1"),
        ("A 1 0.5 nan\n", "a score is NaN"),
        ("A 1 0.5 x\n", "a score is not a number"),
        ("A 1.5 0.5 0.5\n", "frame number '1.5' is not an integer"),
        ("A 1 0 0\nA 1 1 1\n", "frame 1 of video A appears twice"),
    ],
)
def test_submission_errors_name_the_line(tmp_path, text, reason):
    path = tmp_path / "sub.txt"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_charades_submission(path, 2)
    assert reason in str(err.value) and str(err.value).startswith(f"{path}:")


def test_cli_charades_json(tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    gt = tmp_path / "Charades_v1_test.csv"
    gt.write_text(HEADER + 'A,s,k,1,1,Yes,"x, y",o,d,"c000 0.5 2.5;c001 10.5 11.5",25\n')
    lines = [f"A {j + 1} " + " ".join(repr(v) for v in row) for j, row in enumerate(hand_scores().tolist()) if j != 2]
    sub = tmp_path / "sub.txt"
    sub.write_text("\n".join(lines) + "\n")
    assert main(["evaluate", "charades", "--gt", str(gt), "--pred", str(sub), "--classes", str(classes), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ap0 = (1 / 2 + 2 / 25) / 2
    assert out["protocol"] == "charades-localize"
    assert out["mAP"] == pytest.approx((ap0 + 1) / 2, abs=1e-15) and out["wAP"] == pytest.approx((2 * ap0 + 1) / 3, abs=1e-15)


def test_cli_charades_bad_submission_is_one_line_error(tmp_path, capsys):
    gt = tmp_path / "Charades_v1_test.csv"
    gt.write_text(HEADER + "A,s,k,1,1,Yes,x,o,d,,25\n")
    sub = tmp_path / "sub.txt"
    sub.write_text("A 1 0.5\n")  # 1 score instead of 157
    assert main(["evaluate", "charades", "--gt", str(gt), "--pred", str(sub)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {sub}:1: expected 'id framenr' and 157 scores, got 1 score(s)"


# ---------------------------------------------------------------- properties


@st.composite
def charades_problem(draw):
    n = draw(st.integers(1, 4))
    videos = {}
    for i in range(n):
        segs = [Segment(draw(st.integers(0, 1)), s, s + draw(st.floats(0, 10))) for s in draw(st.lists(st.floats(0, 20), max_size=3))]
        videos[f"v{i}"] = VideoAnnotation(f"v{i}", 20.0, "testing", segs + [Segment(0, 0, 20), Segment(1, 0, 1)])
    return Annotations(["a", "b"], videos)


@settings(max_examples=30)
@given(charades_problem(), st.integers(0, 2**32 - 1))
def test_property_perfect_and_permutation(ann, seed):
    """Perfect scores give 1; reordering the videos changes nothing when scores are distinct (ties follow row order)."""
    perfect = {v.video_id: charades_point_labels(v, 2).astype(float) for v in ann}
    assert charades_localize_map(ann, perfect).mAP == 1.0
    rng = np.random.default_rng(seed)
    scores = {v: rng.random((25, 2)) for v in ann.videos}
    ids = list(rng.permutation(list(ann.videos)))
    assert charades_localize_map(ann.select(ids), scores).mAP == pytest.approx(charades_localize_map(ann, scores).mAP, abs=1e-12)
