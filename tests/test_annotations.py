"""Annotation readers, class lists, splits and the one frame-labelling rule."""

import json

import numpy as np
import pytest

from augrgb.annotations import (
    Annotations,
    Segment,
    VideoAnnotation,
    carve_validation,
    detect_format,
    label_grid,
    num_frames_at,
    read_annotations,
    read_charades_csv,
    read_class_ids,
    read_class_list,
    read_dense_json,
    read_label_rows,
    read_label_txt,
    read_thumos_txt,
    write_dense_json,
)
from augrgb.core.errors import InputError

CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- Charades


def test_charades_csv_reads_actions_lengths_and_subset(tmp_path):
    csv = write(
        tmp_path / "Charades_v1_test.csv",
        CHARADES_HEADER
        + 'YSKX3,HR43,Kitchen,6,7,Yes,"A person, cooking.",food,"Walks, then cooks.","c092 11.90 21.20;c147 0.00 12.60",30.25\n'
        + "ABC12,HR44,Bedroom,5,6,Yes,script,bed,desc,,12.5\n",
    )
    ann = read_charades_csv(csv)
    assert ann.num_classes == 157 and ann.classes[92] == "c092"
    assert list(ann.videos) == ["YSKX3", "ABC12"]
    video = ann.videos["YSKX3"]
    assert video.subset == "testing" and video.duration == 30.25
    assert video.segments == [Segment(92, 11.90, 21.20), Segment(147, 0.0, 12.6)]
    assert ann.videos["ABC12"].segments == []
    assert read_annotations(csv).videos.keys() == ann.videos.keys()  # .csv is auto-detected


def test_charades_class_file_gives_names(tmp_path):
    classes = write(tmp_path / "Charades_v1_classes.txt", "c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    csv = write(tmp_path / "Charades_v1_train.csv", CHARADES_HEADER + "V1,s,k,1,1,Yes,x,y,z,c001 1.0 2.0,5\n")
    ann = read_charades_csv(csv, classes=classes)
    assert ann.classes == ["Holding some clothes", "Putting clothes somewhere"]
    assert ann.videos["V1"].subset == "training" and ann.videos["V1"].segments == [Segment(1, 1.0, 2.0)]


@pytest.mark.parametrize(
    "row, reason",
    [
        ("V1,s,k,1,1,Yes,x,y,z,c001 1.0,5\n", "is not 'cNNN start end'"),
        ("V1,s,k,1,1,Yes,x,y,z,c200 1.0 2.0,5\n", "outside c000..c156"),
        ("V1,s,k,1,1,Yes,x,y,z,c001 one 2.0,5\n", "start 'one' is not a number"),
        ("V1,s,k,1,1,Yes,x,y,z,,long\n", "length 'long' is not a number"),
    ],
)
def test_charades_malformed_line_names_file_and_line(tmp_path, row, reason):
    csv = write(tmp_path / "Charades_v1_test.csv", CHARADES_HEADER + "V0,s,k,1,1,Yes,x,y,z,,5\n" + row)
    with pytest.raises(InputError) as err:
        read_charades_csv(csv)
    assert str(err.value).startswith(f"{csv}:3: ") and reason in str(err.value)


def test_charades_needs_columns_and_a_subset(tmp_path):
    with pytest.raises(InputError, match="missing column"):
        read_charades_csv(write(tmp_path / "Charades_v1_test.csv", "id,length\nV1,3\n"))
    with pytest.raises(InputError, match="cannot tell the subset"):
        read_charades_csv(write(tmp_path / "gt.csv", CHARADES_HEADER))


# ---------------------------------------------------------------- dense JSON


def test_dense_json_seconds_zero_based_with_classes_txt(tmp_path):
    write(tmp_path / "classes.txt", "walk\nwave\nsit\n")
    path = write(
        tmp_path / "bench.json",
        json.dumps({"v1": {"subset": "training", "duration": 10.0, "actions": [[2, 1.5, 3.0], [0, 0, 10]]}, "v2": {"subset": "testing", "duration": 4, "actions": []}}),
    )
    ann = read_annotations(path)
    assert ann.classes == ["walk", "wave", "sit"]
    assert ann.videos["v1"].segments == [Segment(2, 1.5, 3.0), Segment(0, 0.0, 10.0)]
    assert ann.subsets() == ["training", "testing"]
    assert list(ann.subset("testing").videos) == ["v2"]


def test_dense_json_one_based_classes_and_frames(tmp_path):
    path = write(tmp_path / "multithumos.json", json.dumps({"v": {"subset": "testing", "duration": 300, "actions": [[1, 30, 60], [65, 0, 3]]}}))
    ann = read_dense_json(path, label_base=1, num_classes=65)
    assert ann.num_classes == 65 and ann.classes[0] == "1"
    assert ann.videos["v"].segments == [Segment(0, 30.0, 60.0), Segment(64, 0.0, 3.0)]
    tsu = read_dense_json(path, label_base=1, time_unit="frames", fps=30.0, num_classes=65)
    # 300 frames at 30 fps = 10 s; frame 30 -> 1 s.
    assert tsu.videos["v"].duration == 10.0 and tsu.videos["v"].segments[0] == Segment(0, 1.0, 2.0)
    assert tsu.videos["v"].fps == 30.0


def test_dense_json_errors(tmp_path):
    path = write(tmp_path / "a.json", json.dumps({"v": {"subset": "testing", "actions": [[0, 1.0]]}}))
    with pytest.raises(InputError, match=r"video 'v' action 0: \[0, 1.0\] is not \[class, start, end\]"):
        read_dense_json(path)
    path = write(tmp_path / "b.json", json.dumps({"v": {"subset": "testing", "actions": [[0, 1, 2]]}}))
    with pytest.raises(InputError, match="class 0 outside 1"):
        read_dense_json(path, label_base=1)
    with pytest.raises(InputError, match="no positive fps"):
        read_dense_json(path, time_unit="frames")
    with pytest.raises(InputError, match=r"c\.json:1: not valid JSON"):
        read_dense_json(write(tmp_path / "c.json", "{oops"))


def test_dense_json_round_trip(tmp_path):
    ann = Annotations(
        ["a", "b"],
        {"x": VideoAnnotation("x", 8.0, "training", [Segment(1, 0.25, 2.5)], fps=25.0), "y": VideoAnnotation("y", 3.0, "testing", [])},
    )
    path = write_dense_json(ann, tmp_path / "out" / "gt.json")
    assert (tmp_path / "out" / "classes.txt").read_text() == "a\nb\n"
    assert read_dense_json(path) == ann


# ---------------------------------------------------------------- THUMOS / MultiTHUMOS txt


def test_thumos_txt_per_class_files_and_ambiguous(tmp_path):
    write(tmp_path / "detclasslist.txt", "7 BaseballPitch\n9 BasketballDunk\n")
    write(tmp_path / "BaseballPitch_test.txt", "video_test_0000004 1.0 2.5\nvideo_test_0000007 3 4\n")
    write(tmp_path / "BasketballDunk_test.txt", "video_test_0000004  10.2  11.0 \n\n")
    write(tmp_path / "Ambiguous_test.txt", "video_test_0000004 20 25\n")
    assert detect_format(tmp_path) == "thumos-txt"
    ann = read_annotations(tmp_path, subset="test")
    assert ann.classes == ["BaseballPitch", "BasketballDunk"]
    v4 = ann.videos["video_test_0000004"]
    assert v4.subset == "testing" and v4.duration is None
    assert v4.segments == [Segment(0, 1.0, 2.5), Segment(1, 10.2, 11.0)]
    assert v4.ambiguous == [(20.0, 25.0)]
    assert read_class_ids(tmp_path / "detclasslist.txt") == {7: 0, 9: 1}


def test_thumos_txt_without_subset_guesses_it_from_video_names(tmp_path):
    write(tmp_path / "class_list.txt", "1 Jump\n")
    write(tmp_path / "Jump.txt", "video_validation_0000051 1 2\nvideo_test_0000004 3 4\n")
    ann = read_thumos_txt(tmp_path)
    assert [v.subset for v in ann] == ["validation", "testing"]


def test_thumos_txt_bad_line_and_missing_file(tmp_path):
    write(tmp_path / "detclasslist.txt", "7 BaseballPitch\n9 BasketballDunk\n")
    write(tmp_path / "BaseballPitch_test.txt", "v 1 2\n")
    with pytest.raises(InputError, match=r"BasketballDunk_test.txt: missing"):
        read_thumos_txt(tmp_path, subset="test")
    write(tmp_path / "BasketballDunk_test.txt", "")
    write(tmp_path / "BaseballPitch_test.txt", "v 1 2\nv 3\n")
    with pytest.raises(InputError) as err:
        read_thumos_txt(tmp_path, subset="test")
    assert str(err.value) == f"{tmp_path / 'BaseballPitch_test.txt'}:2: expected 'video start end', got 2 field(s)"


# ---------------------------------------------------------------- PKU-MMD / TSU label txt


def test_label_txt_pku_mmd_frames_at_30fps_one_based(tmp_path):
    write(tmp_path / "0002-L.txt", "41,43,115,2\n1, 150 ,300,1\n")
    write(tmp_path / "0003-M.txt", "")
    ann = read_annotations(tmp_path)  # a folder without THUMOS files is label-txt
    assert list(ann.videos) == ["0002-L", "0003-M"]
    assert ann.videos["0002-L"].segments == [Segment(40, 43 / 30, 115 / 30), Segment(0, 5.0, 10.0)]
    assert ann.num_classes == 41 and ann.videos["0003-M"].segments == []
    tsu = read_label_txt(tmp_path, fps=25.0, label_base=0, num_classes=51)
    assert tsu.num_classes == 51 and tsu.videos["0002-L"].segments[1] == Segment(1, 6.0, 12.0)
    with pytest.raises(InputError) as err:
        read_label_txt(tmp_path, num_classes=40)  # PKU-MMD labels 1..40 here: 41 is out
    assert str(err.value) == f"{tmp_path / '0002-L.txt'}:1: class 41 outside 1..40"
    write(tmp_path / "0004-R.txt", "\n0,1,2,1\n")
    with pytest.raises(InputError, match=r"0004-R.txt:2: class 0 outside 1 or more"):
        read_label_txt(tmp_path)


def test_label_rows_raw_and_errors(tmp_path):
    rows = read_label_rows(write(tmp_path / "a.txt", "3,1,5\n2 7 9 0.5\n"))
    assert np.array_equal(rows[:, :3], [[3, 1, 5], [2, 7, 9]]) and np.isnan(rows[0, 3]) and rows[1, 3] == 0.5
    with pytest.raises(InputError, match=r"b\.txt:2: expected label,start,end,confidence, got 3"):
        read_label_rows(write(tmp_path / "b.txt", "1,2,3,4\n1,2,3\n"), require_confidence=True)
    with pytest.raises(InputError, match=r"c\.txt:1: class '1.5' is not an integer"):
        read_label_rows(write(tmp_path / "c.txt", "1.5,2,3,4\n"))
    with pytest.raises(InputError, match=r"d\.txt:1: end 'nan' is not finite"):
        read_label_rows(write(tmp_path / "d.txt", "1,2,nan,4\n"))


# ---------------------------------------------------------------- ActivityNet


@pytest.mark.parametrize("wrapped", [True, False])
def test_activitynet_json_with_and_without_database(tmp_path, wrapped):
    database = {
        "vA": {"subset": "validation", "duration": 100.0, "annotations": [{"segment": [1.0, 5.5], "label": "Surfing"}, {"segment": [7, 9], "label": "Diving"}]},
        "vB": {"subset": "training", "duration": 50.0, "annotations": [{"segment": [0, 2], "label": "Diving"}]},
    }
    data = {"version": "1.3", "taxonomy": [], "database": database} if wrapped else database
    path = write(tmp_path / "gt.json", json.dumps(data))
    ann = read_annotations(path)
    assert ann.classes == ["Surfing", "Diving"]
    assert ann.videos["vA"].segments == [Segment(0, 1.0, 5.5), Segment(1, 7.0, 9.0)]
    assert ann.class_index("Diving") == 1
    with pytest.raises(InputError, match="not among the 2 classes"):
        ann.class_index("Bowling")


def test_activitynet_label_outside_given_classes(tmp_path):
    path = write(tmp_path / "gt.json", json.dumps({"v": {"subset": "validation", "annotations": [{"segment": [0, 1], "label": "X"}]}}))
    with pytest.raises(InputError, match="annotation 0: label 'X' is not in the class list"):
        read_annotations(path, classes=["Y"])


# ---------------------------------------------------------------- class lists


def test_class_list_formats(tmp_path):
    assert read_class_list(write(tmp_path / "a.txt", "walk\nwave hand\n\n")) == ["walk", "wave hand"]
    assert read_class_list(write(tmp_path / "b.txt", "c000 Holding some clothes\nc001 Putting\n")) == ["Holding some clothes", "Putting"]
    assert read_class_list(write(tmp_path / "c.txt", "7 BaseballPitch\n9 BasketballDunk\n")) == ["BaseballPitch", "BasketballDunk"]
    with pytest.raises(InputError, match=r"d\.txt:2: class id c005 is not c001"):
        read_class_list(write(tmp_path / "d.txt", "c000 A\nc005 B\n"))
    with pytest.raises(InputError, match=r"e\.txt:2: class 'a' repeats line 1"):
        read_class_list(write(tmp_path / "e.txt", "a\na\n"))


# ---------------------------------------------------------------- label grid


def test_label_grid_rule_is_inclusive_at_both_ends():
    video = VideoAnnotation("v", 2.0, "testing", [Segment(1, 0.6, 1.0), Segment(0, 0.6, 0.6)])
    grid = label_grid(video, 2, fps=25.0)
    assert grid.shape == (50, 2) and grid.dtype == bool
    # frame t at t/25 s: 0.6 s is frame 15, 1.0 s is frame 25; both ends count.
    assert np.nonzero(grid[:, 1])[0].tolist() == list(range(15, 26))
    assert np.nonzero(grid[:, 0])[0].tolist() == [15]  # a zero-length segment marks the frame at its instant
    at10 = label_grid(video, 2, fps=10.0, num_frames=12)
    assert np.nonzero(at10[:, 1])[0].tolist() == [6, 7, 8, 9, 10]


def test_label_grid_matches_brute_force_at_any_fps():
    rng = np.random.default_rng(3)
    for fps in (1.0, 7.5, 24.0, 29.97, 30.0):
        segs = [Segment(int(rng.integers(3)), *sorted(rng.uniform(0, 20, 2))) for _ in range(6)]
        video = VideoAnnotation("v", 20.0, "testing", segs)
        grid = label_grid(video, 3, fps)
        expected = np.zeros_like(grid)
        for t in range(len(grid)):
            for s in segs:
                expected[t, s.label] |= s.start <= t / fps <= s.end
        assert np.array_equal(grid, expected)
        assert len(grid) == num_frames_at(20.0, fps)


def test_frame_count_is_floor_of_duration_times_fps_plus_a_millionth():
    # 1.16 s at 25 fps is 29 frames (t = 0..28, t/25 < 1.16), but 1.16 * 25 is 28.999999999999996 in binary:
    # a plain floor would give 28; floor(x + 1e-6) gives 29. 20 s at 29.97 fps: floor(599.4) = 599.
    assert 1.16 * 25 < 29 and num_frames_at(1.16, 25.0) == 29
    assert num_frames_at(4.1, 30.0) == 123 and num_frames_at(20.0, 29.97) == 599
    assert num_frames_at(1.0 - 2e-8, 25.0) == 25  # the price: 24.9999995 is within 1e-6 of 25
    assert num_frames_at(0.0, 25.0) == 0


def test_label_grid_needs_a_duration_or_frame_count():
    video = VideoAnnotation("v", None, "testing", [Segment(0, 0, 1)])
    with pytest.raises(InputError, match="duration unknown"):
        label_grid(video, 1, 25.0)
    assert label_grid(video, 1, 25.0, num_frames=3).all()
    with pytest.raises(InputError, match="label 0 outside 0..-1"):
        label_grid(video, 0, 25.0, num_frames=3)


# ---------------------------------------------------------------- splits


def _many(n):
    videos = {f"v{i:02d}": VideoAnnotation(f"v{i:02d}", 5.0, "training" if i < n else "testing", []) for i in range(n + 3)}
    return Annotations(["a"], videos)


def test_carve_validation_is_seeded_disjoint_and_order_independent():
    ann = _many(20)
    train, val = carve_validation(ann, 0.25, seed=7)
    assert len(val) == 5 and len(train) == 15
    assert not set(train.videos) & set(val.videos)
    assert set(train.videos) | set(val.videos) == set(ann.subset("training").videos)
    assert all(v.subset == "validation" for v in val) and all(v.subset == "training" for v in train)
    shuffled = Annotations(ann.classes, dict(reversed(list(ann.videos.items()))))
    assert set(carve_validation(shuffled, 0.25, seed=7)[1].videos) == set(val.videos)
    assert set(carve_validation(ann, 0.25, seed=8)[1].videos) != set(val.videos)


def test_carve_validation_refuses_bad_fractions():
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        carve_validation(_many(4), 1.0, seed=0)
    with pytest.raises(InputError, match="subset 'validation'"):
        carve_validation(_many(4), 0.5, seed=0, source_subset="validation")
