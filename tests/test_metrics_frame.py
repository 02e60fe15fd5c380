"""Per-frame mAP, the snippet-to-frame upsampling used for validation, and ``augrgb evaluate frame-map``."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from augrgb.annotations import Annotations, Segment, VideoAnnotation, label_times, read_annotations
from augrgb.cli import main
from augrgb.core.config import load_config
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.detect.probabilities import VideoProbabilities, write_probabilities
from augrgb.distill.settings import DatasetConfig
from augrgb.metrics import frame_average_precision, frame_map, frame_map_from_scores, upsample_scores


def test_ap_hand_computed():
    # ranks: 0.9 pos (P=1/1), 0.8 neg, 0.7 pos (P=2/3), 0.6 neg -> AP = (1 + 2/3) / 2 = 5/6
    ap = frame_average_precision(np.array([[0.9], [0.8], [0.7], [0.6]]), np.array([[1], [0], [1], [0]]))
    assert ap[0] == pytest.approx(5 / 6, abs=1e-15)


def test_ap_ties_share_the_precision_of_their_group():
    # 0.9 neg | 0.5 pos, 0.5 neg (one threshold: P = 1/3 after the group) | 0.1 pos (P = 2/4)
    # AP = (1/3 + 1/2) / 2 = 5/12, whatever the order of the tied frames.
    scores = np.array([[0.9], [0.5], [0.5], [0.1]])
    for labels in ([0, 1, 0, 1], [0, 0, 1, 1]):
        ap = frame_average_precision(scores, np.array(labels)[:, None])
        assert ap[0] == pytest.approx(5 / 12, abs=1e-15)


def test_ap_matches_scikit_learn_with_ties_and_infinities():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((400, 6)), 1)
    scores[rng.random((400, 6)) < 0.05] = -np.inf
    labels = rng.random((400, 6)) < 0.3
    ours = frame_average_precision(scores, labels)
    finite = np.where(np.isfinite(scores), scores, -1.0)  # same order, scikit-learn refuses inf
    reference = [average_precision_score(labels[:, k], finite[:, k]) for k in range(6)]
    assert ours == pytest.approx(reference, abs=1e-12)


def test_classes_without_positives_are_nan_and_left_out_of_the_mean():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4]])
    labels = np.array([[1, 0, 0], [0, 1, 0]])
    result = frame_map(scores, labels)
    assert np.isnan(result.ap[2]) and result.ap[:2].tolist() == [1.0, 1.0]
    assert result.mAP == 1.0 and result.num_positives.tolist() == [1, 1, 0]
    assert result.to_dict()["ap"] == [1.0, 1.0, None]


def test_legacy_nonzero_average_is_an_explicit_option():
    # class 0: positive ranked 2nd -> AP 1/2; class 1: AP 1; class 2: no positive (AP 0 for the legacy meter).
    scores = np.array([[0.9, 0.8, 0.5], [0.7, 0.1, 0.5]])
    labels = np.array([[0, 1, 0], [1, 0, 0]])
    present = frame_map(scores, labels)
    legacy = frame_map(scores, labels, average="nonzero")
    assert present.mAP == legacy.mAP == pytest.approx(0.75)
    assert legacy.average == "nonzero" and present.average == "present"
    # on the same data the TGM average counts class 2 as 0: (1/2 + 1 + 0) / 3 = 1/2, so the modes are told apart
    assert frame_map(scores, labels, average="all").mAP == pytest.approx(0.5, abs=1e-15)
    with pytest.raises(InputError, match="must be 'present', 'nonzero' or 'all'"):
        frame_map(scores, labels, average="mean")


def test_all_classes_average_counts_classes_without_positives_as_zero(caplog):
    # 2 classes, 6 frames. Class 0 positives at scores 0.9, 0.7, 0.4:
    #   ranks 0.9 pos (P 1/1), 0.8 neg, 0.7 pos (P 2/3), 0.6 neg, 0.5 neg, 0.4 pos (P 3/6)
    #   AP = (1 + 2/3 + 1/2) / 3 = 13/18. Class 1 has no positive frame.
    # present: mean over class 0 only = 13/18. nonzero: classes with AP > 0 = class 0 = 13/18 (a class with
    # a positive frame always has AP > 0, so nonzero equals present). all (TGM): (13/18 + 0) / 2 = 13/36.
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.5, 0.5], [0.4, 0.6]])
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0], [0, 0], [1, 0]])
    assert frame_map(scores, labels, average="present").mAP == pytest.approx(13 / 18, abs=1e-15)
    assert frame_map(scores, labels, average="nonzero").mAP == pytest.approx(13 / 18, abs=1e-15)
    every = frame_map(scores, labels, average="all")
    assert every.mAP == pytest.approx(13 / 36, abs=1e-15) and every.average == "all"
    assert np.isnan(every.ap[1]) and every.to_dict()["ap"][1] is None  # reported as "no positive", averaged as 0
    assert "1 of 2 classes have no positive frame and count as AP 0" in caplog.text
    with pytest.raises(InputError, match="no class has a positive frame"):
        frame_map(scores, np.zeros_like(labels), average="all")


def test_frame_map_concatenates_videos_and_rejects_bad_input():
    a = (np.array([[0.9], [0.1]]), np.array([[1], [0]]))
    b = (np.array([[0.8]]), np.array([[0]]))
    # all frames pooled: 0.9 pos, 0.8 neg, 0.1 neg -> AP 1
    assert frame_map([a[0], b[0]], [a[1], b[1]]).mAP == 1.0
    with pytest.raises(InputError, match="contain NaN"):
        frame_map(np.array([[np.nan]]), np.array([[1]]))
    with pytest.raises(InputError, match="no class has a positive frame"):
        frame_map(np.array([[0.3]]), np.array([[0]]))
    with pytest.raises(InputError, match="does not match labels"):
        frame_map(np.zeros((3, 2)), np.zeros((3, 1)))


# ---------------------------------------------------------------- upsampling and validation entry point


def test_non_overlapping_snippets_map_each_frame_to_its_own_snippet():
    timing = SnippetGrid(fps=25.0, snippet=16, stride=16)
    # centres at (16 i + 7.5) / 25 s = 0.3, 0.94, 1.58: frame t takes snippet t // 16
    assert timing.centres(3) == pytest.approx([0.3, 0.94, 1.58])
    scores = np.arange(3, dtype=float)[:, None]
    up = upsample_scores(scores, timing, np.arange(48) / 25.0)
    assert up[:, 0].tolist() == [t // 16 for t in range(48)]


def test_upsampling_nearest_centre_with_overlap_and_halfway_ties():
    timing = SnippetGrid(fps=8.0, snippet=4, stride=2)  # centres (2i + 1.5)/8 = 0.1875, 0.4375, 0.6875
    scores = np.array([[0.0], [1.0], [2.0]])
    times = np.array([0.0, 0.3125, 0.32, 0.5625, 0.9])
    # 0.3125 and 0.5625 are halfway between two centres: the earlier snippet wins; beyond the last centre, the last.
    assert upsample_scores(scores, timing, times)[:, 0].tolist() == [0.0, 0.0, 1.0, 1.0, 2.0]


def test_halfway_frames_take_the_earlier_snippet_whatever_the_rounding():
    # docs/metrics.md: halfway between two centres, the earlier snippet. Centres and frame times are ratios whose
    # floating-point differences round either way, so a tie must not be decided by the last bit:
    # 24 fps, snippet 3, stride 2: centres (2 i + 1)/24 = 1/24, 3/24, 5/24, ...; frame 2 (2/24 s) is halfway between
    # snippets 0 and 1, frame 4 between 1 and 2, frame 16 between 7 and 8 -> 0, 1, 7
    grid = SnippetGrid(fps=24.0, snippet=3, stride=2)
    up = upsample_scores(np.arange(12.0)[:, None], grid, np.array([2, 4, 16]) / 24.0)
    assert up[:, 0].tolist() == [0.0, 1.0, 7.0]
    # 25 fps, snippet 17, stride 16: centres (16 i + 8)/25 = 0.32, 0.96, 1.6; frame 16 (0.64 s) and frame 32 (1.28 s)
    # are halfway -> snippets 0 and 1
    grid = SnippetGrid(fps=25.0, snippet=17, stride=16)
    up = upsample_scores(np.arange(3.0)[:, None], grid, np.array([15, 16, 17, 31, 32, 33]) / 25.0)
    assert up[:, 0].tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 2.0]


@pytest.mark.parametrize("fps,rate", [(24, 24), (25, 25), (30, 10), (12.5, 25), (10, 30)])
def test_upsampling_equals_the_rule_in_exact_arithmetic(fps, rate):
    # every frame j (time j/rate) against every centre (i stride + (L - 1)/2)/fps in fractions: nearest, the earlier on a tie
    from fractions import Fraction

    for length in range(1, 18, 2):
        for stride in (s for s in (1, 2, 3, 8, 16) if s <= length):  # a grid never skips frames
            timing = SnippetGrid(fps=float(fps), snippet=length, stride=stride)
            n, frames = 6, 120
            got = upsample_scores(np.arange(float(n))[:, None], timing, np.arange(frames) / rate)[:, 0]
            centres = [(Fraction(i * stride) + Fraction(length - 1, 2)) / Fraction(fps) for i in range(n)]
            for j in range(frames):
                distances = [abs(Fraction(j) / Fraction(rate) - c) for c in centres]
                assert got[j] == distances.index(min(distances)), (fps, rate, length, stride, j)


def test_frame_map_from_scores_hand_computed():
    timing = SnippetGrid(fps=25.0, snippet=16, stride=16)
    video = VideoAnnotation("v", 1.6, "validation", [Segment(0, 0.6, 1.0)])
    ann = Annotations(["act"], {"v": video})
    # 40 frames at 25 fps. Positive frames 15..25 (0.6 s .. 1.0 s). Frame scores by snippet:
    # frames 0-15 -> 0.1, 16-31 -> 0.9, 32-39 -> 0.2.
    # group 0.9: 16 frames, 10 positive -> P = 10/16 for each of them
    # group 0.2: 8 negatives; group 0.1: 16 frames incl. positive frame 15 -> P = 11/40
    # AP = (10 * 10/16 + 11/40) / 11
    result = frame_map_from_scores({"v": np.array([[0.1], [0.9], [0.2]])}, ann, timing)
    assert result.mAP == pytest.approx((10 * 10 / 16 + 11 / 40) / 11, abs=1e-15)
    # A finer ground-truth grid changes the frames, not the rule.
    at50 = frame_map_from_scores({"v": np.array([[0.1], [0.9], [0.2]])}, ann, timing, fps=50.0)
    # 80 frames at 50 fps; positives 0.6 <= t/50 <= 1.0: frames 30..50 (21). Frame 31 (0.62 s) is halfway between the
    # centres 0.3 and 0.94 (the earlier snippet), frame 63 (1.26 s) between 0.94 and 1.58. Scores: frames 0-31 -> 0.1,
    # 32-63 -> 0.9, 64-79 -> 0.2. Group 0.9: 32 frames, 19 positive (32..50) -> P = 19/32 each; group 0.2: 16
    # negatives; group 0.1: the other 2 positives (30, 31) -> P = 21/80. AP = (19 * 19/32 + 2 * 21/80) / 21
    assert at50.mAP == pytest.approx((19 * 19 / 32 + 2 * 21 / 80) / 21, abs=1e-15)


def test_frame_map_from_scores_refuses_unknown_videos_and_shapes():
    ann = Annotations(["a", "b"], {"v": VideoAnnotation("v", 1.0, "validation", [Segment(0, 0, 1)])})
    timing = SnippetGrid(25.0)
    with pytest.raises(InputError, match="video 'w': has scores but no annotation"):
        frame_map_from_scores({"w": np.zeros((2, 2))}, ann, timing)
    with pytest.raises(InputError, match=r"expected \(T_snippets, 2\)"):
        frame_map_from_scores({"v": np.zeros((2, 3))}, ann, timing)


# ---------------------------------------------------------------- properties


@st.composite
def frame_problem(draw):
    n = draw(st.integers(2, 30))
    k = draw(st.integers(1, 4))
    labels = np.array(draw(st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=n, max_size=n)))
    labels[draw(st.integers(0, n - 1)), :] = True  # every class has a positive
    scores = np.array(draw(st.permutations(range(n * k)))).reshape(n, k) / (n * k)
    return scores, labels


@settings(max_examples=40)
@given(frame_problem())
def test_property_perfect_scores_give_one(problem):
    _, labels = problem
    assert frame_map(labels.astype(float), labels).mAP == 1.0


@settings(max_examples=40)
@given(frame_problem(), st.randoms(use_true_random=False))
def test_property_frame_order_does_not_matter(problem, rnd):
    scores, labels = problem
    order = list(range(len(scores)))
    rnd.shuffle(order)
    assert frame_map(scores[order], labels[order]).ap == pytest.approx(frame_map(scores, labels).ap, abs=1e-12)


@settings(max_examples=40)
@given(frame_problem())
def test_property_a_lower_scored_negative_never_raises_ap(problem):
    scores, labels = problem
    before = frame_average_precision(scores, labels)
    after = frame_average_precision(np.vstack([scores, scores.min(axis=0) - 1]), np.vstack([labels, np.zeros((1, labels.shape[1]), bool)]))
    assert np.all(after <= before + 1e-12)


# ---------------------------------------------------------------- augrgb evaluate frame-map: the peers' conventions


def write_case(folder, actions, scores, duration=1.0, fps=4.0, classes=("a", "b", "c")):
    """A dense JSON ground truth (video "v", classes.txt beside it) and one probabilities file; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    gt = folder / "gt.json"
    gt.write_text(json.dumps({"v": {"subset": "testing", "duration": duration, "actions": actions}}))
    scores = np.asarray(scores, dtype=np.float32)
    pred = write_probabilities(folder / "v.h5", VideoProbabilities("v", scores, scores, fps, list(classes), "sigmoid"))
    return gt, pred


def frame_map_cli(capsys, gt, pred, *options):
    code = main(["evaluate", "frame-map", "--gt", str(gt), "--pred", str(pred), "--json", *options])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.err)


# frames t = 0..3 at 4 fps (t/fps = 0, 0.25, 0.5, 0.75), classes a, b, c
LABEL_BASE_SCORES = [[0.9, 0.5, 0.3], [0.2, 0.5, 0.4], [0.8, 0.5, 0.6], [0.1, 0.5, 0.5]]


def test_one_based_json_with_label_base_equals_the_zero_based_file(tmp_path, capsys):
    # multithumos.json numbers classes from 1: [1, 0, 0.25] is class a on frames 0, 1; [3, 0.5, 1.0] class c on 2, 3.
    # a: 0.9 pos (P 1/1), 0.8 neg, 0.2 pos (P 2/3), 0.1 neg -> AP 5/6; c: 0.6 pos, 0.5 pos ranked first -> AP 1;
    # b: no positive. present mAP = (5/6 + 1) / 2 = 11/12.
    class_list = tmp_path / "class_list.txt"
    class_list.write_text("1 a\n2 b\n3 c\n")
    one, pred = write_case(tmp_path / "one", [[1, 0.0, 0.25], [3, 0.5, 1.0]], LABEL_BASE_SCORES)
    zero, _ = write_case(tmp_path / "zero", [[0, 0.0, 0.25], [2, 0.5, 1.0]], LABEL_BASE_SCORES)
    code, err = frame_map_cli(capsys, one, pred, "--classes", str(class_list))
    assert code == 1 and "video 'v' action 1: class 3 outside 0..2" in err
    code, shipped = frame_map_cli(capsys, one, pred, "--classes", str(class_list), "--label-base", "1")
    assert code == 0 and shipped["mAP"] == pytest.approx(11 / 12, abs=1e-15)
    code, reference = frame_map_cli(capsys, zero, pred, "--classes", str(class_list))
    assert code == 0 and shipped == reference


def test_multithumos_preset_reads_the_one_based_json(tmp_path):
    # As shipped: no class list beside the file, classes 1..65 (65 = the last one, index 64).
    one, zero = tmp_path / "multithumos.json", tmp_path / "zero_based.json"
    one.write_text(json.dumps({"v": {"subset": "testing", "duration": 1.0, "actions": [[1, 0.0, 0.25], [65, 0.5, 1.0]]}}))
    zero.write_text(json.dumps({"v": {"subset": "testing", "duration": 1.0, "actions": [[0, 0.0, 0.25], [64, 0.5, 1.0]]}}))
    preset = load_config(DatasetConfig, "multithumos")
    shipped = read_annotations(one, preset.annotation_format, num_classes=preset.num_classes, **preset.annotation_options)
    assert shipped.videos["v"].segments == read_annotations(zero, num_classes=65).videos["v"].segments
    assert shipped.videos["v"].segments[1] == Segment(64, 0.5, 1.0)


def test_label_base_on_a_format_without_class_ids_is_one_clear_error(tmp_path, capsys):
    gt = tmp_path / "Charades_v1_test.csv"
    gt.write_text("id,actions,length\nv,c000 0.0 0.5,1.0\n")
    _, pred = write_case(tmp_path, [], LABEL_BASE_SCORES)
    code, err = frame_map_cli(capsys, gt, pred, "--label-base", "1")
    assert code == 1 and err.strip() == f"error: {gt}: the charades format takes no option 'label_base' (its options: classes, subset)"


def test_open_interval_excludes_frames_exactly_on_a_boundary():
    video = VideoAnnotation("v", 1.0, "testing", [Segment(0, 0.2, 0.6)])
    times = np.arange(5) / 5.0  # 0, 0.2, 0.4, 0.6, 0.8: the frames at 0.2 and 0.6 sit on the boundaries
    assert label_times(video, 1, times)[:, 0].tolist() == [False, True, True, True, False]  # start <= t <= end
    assert label_times(video, 1, times, "open")[:, 0].tolist() == [False, False, True, False, False]  # start < t < end
    with pytest.raises(InputError, match="must be 'closed' or 'open'"):
        label_times(video, 1, times, "strict")


def test_tgm_protocol_open_frame_rule_and_all_classes_hand_computed(tmp_path, capsys):
    # Classes a, b; action a over [0.2, 0.6] s of a 1.0 s video; b never occurs.
    # 5 predicted frames stored at 4 fps, class a scores 0.1, 0.9, 0.6, 0.8, 0.7.
    # closed (default): floor(1.0 * 4) = 4 frames at 0, 0.25, 0.5, 0.75 (the 5th prediction is cut);
    #   positives 0.25, 0.5 (scores 0.9, 0.6). Ranks 0.9 pos (P 1/1), 0.8 neg, 0.6 pos (P 2/3) -> AP 5/6.
    # open (TGM): all 5 frames, fps = 5 / 1.0 = 5, times 0, 0.2, 0.4, 0.6, 0.8; start < t < end keeps only
    #   0.4 (score 0.6). Ranks 0.9 neg, 0.8 neg, 0.7 neg, 0.6 pos (P 1/4) -> AP 1/4.
    # average all (TGM): b counts 0 -> 5/12 closed, 1/8 open; present: 5/6 and 1/4.
    scores = [[0.1, 0.5], [0.9, 0.5], [0.6, 0.5], [0.8, 0.5], [0.7, 0.5]]
    gt, pred = write_case(tmp_path, [[0, 0.2, 0.6]], scores, duration=1.0, fps=4.0, classes=("a", "b"))
    expected = {("present", "closed"): 5 / 6, ("all", "closed"): 5 / 12, ("present", "open"): 1 / 4, ("all", "open"): 1 / 8}
    for (average, rule), value in expected.items():
        code, result = frame_map_cli(capsys, gt, pred, "--average", average, "--frame-rule", rule)
        assert code == 0 and result["mAP"] == pytest.approx(value, abs=1e-15)
        assert result["average"] == average and result["frame_rule"] == rule
    assert result["num_positives"] == [1, 0] and result["ap"] == [pytest.approx(0.25, abs=1e-15), None]
    assert frame_map_cli(capsys, gt, pred)[1]["frame_rule"] == "closed"  # the default is augrgb's rule


def test_open_frame_rule_needs_the_annotated_duration(tmp_path, capsys):
    gt, pred = write_case(tmp_path, [[0, 0.2, 0.6]], [[0.1, 0.5]] * 4, classes=("a", "b"))
    gt.write_text(json.dumps({"v": {"subset": "testing", "actions": [[0, 0.2, 0.6]]}}))
    assert frame_map_cli(capsys, gt, pred)[0] == 0  # closed: the predictions' frames stand in for the duration
    code, err = frame_map_cli(capsys, gt, pred, "--frame-rule", "open")
    assert code == 1 and err.strip() == "error: video 'v': the open frame rule needs a positive annotated duration (fps = frames / duration)"
