"""Skeleton readers: NTU .skeleton, PKU-MMD .txt and .npy, on hand-written files including malformed ones."""

from __future__ import annotations

import numpy as np
import pytest
from pose_fixtures import STANDING, ntu_text, pku_line

from augrgb.core.errors import InputError
from augrgb.extract.skeletons import body_activity, pack_bodies, read_skeleton


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ntu_reader_reads_xyz_and_pads_the_second_body(tmp_path):
    second = STANDING + np.float32(0.1)
    path = write(tmp_path, "S001C001P001R001A001.skeleton", ntu_text([[("72057594037931101", STANDING)],
                                                                      [("72057594037931101", second)]]))
    skeleton = read_skeleton(path)
    assert skeleton.joints.shape == (2, 2, 25, 3) and skeleton.joints.dtype == np.float32
    np.testing.assert_allclose(skeleton.joints[0, 0], STANDING, atol=1e-6)
    np.testing.assert_allclose(skeleton.joints[1, 0], second, atol=1e-6)
    assert not skeleton.joints[:, 1].any()
    assert skeleton.fps == 30.0 and skeleton.source == str(path)


def test_ntu_reader_keeps_the_two_most_active_of_three_bodies(tmp_path):
    t = np.arange(6, dtype=np.float32)
    frames = []
    for i in range(6):
        mover = STANDING.copy()
        mover[:, 1] += 0.2 * np.sin(t[i])  # jumps: the most active
        still = STANDING + np.array([1.0, 0, 0], np.float32)  # a still person
        clutter = np.full((25, 3), 0.01, np.float32) + np.array([-1.0, 0.5, 3.0], np.float32)  # tiny, still blob
        frames.append([("3", clutter), ("1", still), ("2", mover)])
    joints = read_skeleton(write(tmp_path, "three.skeleton", ntu_text(frames))).joints
    assert joints.shape == (6, 2, 25, 3)
    np.testing.assert_allclose(joints[:, 0, 0, 1], STANDING[0, 1] + 0.2 * np.sin(t), atol=1e-5)  # mover first
    np.testing.assert_allclose(joints[:, 1], np.repeat((STANDING + [1.0, 0, 0])[None], 6, 0), atol=1e-5)


def test_ntu_reader_joins_a_body_whose_tracking_id_changed(tmp_path):
    person = [("10", STANDING)] * 2 + [("11", STANDING + np.float32(0.05))] * 2
    other = STANDING + np.array([1.0, 0, 0], np.float32)
    frames = [[person[i], ("20", other)] for i in range(4)]
    joints = read_skeleton(write(tmp_path, "switch.skeleton", ntu_text(frames))).joints
    assert (np.abs(joints).sum(axis=(2, 3)) > 0).all()  # both slots filled on every frame, no body dropped


def test_ntu_reader_accepts_frames_without_bodies(tmp_path):
    frames = [[], [("1", STANDING)], []]
    joints = read_skeleton(write(tmp_path, "gaps.skeleton", ntu_text(frames))).joints
    assert joints.shape == (3, 2, 25, 3)
    assert not joints[0].any() and not joints[2].any() and joints[1, 0].any()


@pytest.mark.parametrize("edit, line, reason", [
    (lambda lines: lines.__setitem__(6, "1.0 2.0 3.0 1 1 1 1 1 1 1 1"), 7, "expected 12 values for joint 3, got 11"),
    (lambda lines: lines.__setitem__(6, "1.0 2.0 zz 1 1 1 1 1 1 1 1 2"), 7, "joint 3: could not convert string to float: 'zz'"),
    (lambda lines: lines.__setitem__(6, "1.0 nan 3 1 1 1 1 1 1 1 1 2"), 7, "joint 3: non-finite value"),
    (lambda lines: lines.__setitem__(3, "24"), 4, "expected 25 joints, got 24"),
    (lambda lines: lines.__setitem__(2, "1 0 1 1 1 1 0 0.1 -0.2"), 3, "expected 10 values for the body info line, got 9"),
    (lambda lines: lines.__setitem__(0, "two"), 1, "expected an integer (frame count), got 'two'"),
    (lambda lines: lines.__setitem__(1, "-1"), 2, "body count of frame 1 is negative (-1)"),
    (lambda lines: lines.__setitem__(0, "3"), 57, "file ends early: expected body count of frame 3"),
    (lambda lines: lines.append("1"), 58, "unexpected content after the last frame"),
])
def test_ntu_reader_names_file_line_and_reason(tmp_path, edit, line, reason):
    lines = ntu_text([[("1", STANDING)], [("1", STANDING)]]).splitlines()  # 1 + 2 * 28 = 57 lines
    edit(lines)
    path = write(tmp_path, "bad.skeleton", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        read_skeleton(path)
    assert str(err.value) == f"{path}:{line}: {reason}"


def test_ntu_reader_rejects_a_truncated_body(tmp_path):
    lines = ntu_text([[("1", STANDING)]]).splitlines()[:10]
    path = write(tmp_path, "cut.skeleton", "\n".join(lines))
    with pytest.raises(InputError, match=r"cut\.skeleton:10: file ends early: expected joint 7$"):
        read_skeleton(path)


def test_empty_and_binary_files_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"empty\.skeleton: empty file$"):
        read_skeleton(write(tmp_path, "empty.skeleton", "\n\n"))
    binary = tmp_path / "video.txt"
    binary.write_bytes(b"\x00\xff\xfe\x00RIFF")
    with pytest.raises(InputError, match=r"video\.txt: not a text file"):
        read_skeleton(binary)


def test_pku_reader_reads_two_bodies_and_treats_zeros_as_absent(tmp_path):
    other = STANDING + np.array([0.8, 0, 0.2], np.float32)
    text = "\n".join([pku_line(STANDING, other), pku_line(STANDING, np.zeros((25, 3))), pku_line(other, other)]) + "\n"
    skeleton = read_skeleton(write(tmp_path, "0002-L.txt", text))
    assert skeleton.joints.shape == (3, 2, 25, 3) and skeleton.fps == 30.0
    np.testing.assert_allclose(skeleton.joints[0, 0], STANDING, atol=1e-5)
    np.testing.assert_allclose(skeleton.joints[0, 1], other, atol=1e-5)
    assert not skeleton.joints[1, 1].any()
    np.testing.assert_allclose(skeleton.joints[2, 0], other, atol=1e-5)


@pytest.mark.parametrize("bad, reason", [
    (" ".join(["0.5"] * 149), "expected 150 values for frame 2, got 149"),
    (" ".join(["0.5"] * 149 + ["x"]), "frame 2: could not convert string to float: 'x'"),
    (" ".join(["0.5"] * 149 + ["inf"]), "frame 2: non-finite value"),
])
def test_pku_reader_names_file_line_and_reason(tmp_path, bad, reason):
    good = pku_line(STANDING, STANDING)
    path = write(tmp_path, "bad.txt", "\n".join([good, bad, good]) + "\n")
    with pytest.raises(InputError) as err:
        read_skeleton(path)
    assert str(err.value) == f"{path}:2: {reason}"


def test_npy_reader_accepts_one_body_and_many_bodies(tmp_path):
    single = np.stack([STANDING, STANDING + np.float32(0.1)])
    np.save(tmp_path / "one.npy", single.astype(np.float64))
    skeleton = read_skeleton(tmp_path / "one.npy")
    assert skeleton.joints.shape == (2, 2, 25, 3) and skeleton.joints.dtype == np.float32 and skeleton.fps is None
    np.testing.assert_allclose(skeleton.joints[:, 0], single, atol=1e-6)
    assert not skeleton.joints[:, 1].any()

    rng = np.random.default_rng(0)
    bodies = np.stack([STANDING + rng.normal(0, s, (4, 25, 3)).astype(np.float32) for s in (0.01, 0.3, 0.1)], axis=1)
    np.save(tmp_path / "three.npy", bodies)
    joints = read_skeleton(tmp_path / "three.npy").joints
    np.testing.assert_array_equal(joints, bodies[:, [1, 2]])  # the two most active, most active first


@pytest.mark.parametrize("array, reason", [
    (np.zeros((4, 2, 17, 3)), "expected shape (T, M, 25, 3) or (T, 25, 3), got (4, 2, 17, 3)"),
    (np.full((2, 25, 3), np.nan), "contains NaN or infinite values"),
    (np.array([[None] * 3] * 25, dtype=object)[None], "cannot read as a .npy array (Object arrays cannot be loaded when allow_pickle=False)"),
])
def test_npy_reader_refuses_bad_arrays(tmp_path, array, reason):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(InputError) as err:
        read_skeleton(path)
    assert str(err.value) == f"{path}: {reason}"


def test_dispatcher_refuses_unknown_and_missing_files(tmp_path):
    with pytest.raises(InputError, match=r"pose\.json: unknown skeleton format '\.json' \(expected one of \.skeleton, \.txt, \.npy\)"):
        read_skeleton(tmp_path / "pose.json")
    with pytest.raises(InputError, match=r"missing\.skeleton: no such file$"):
        read_skeleton(tmp_path / "missing.skeleton")


def test_activity_ranks_moving_over_still_and_packing_keeps_non_overlapping_tracks_together():
    still = np.repeat(STANDING[None], 4, axis=0)
    moving = still.copy()
    moving[:, :, 0] += np.arange(4, dtype=np.float32)[:, None]
    assert body_activity(moving) > body_activity(still) > 0
    assert body_activity(np.zeros((4, 25, 3))) == 0.0
    first_half, second_half = still.copy(), still.copy()
    first_half[2:] = 0
    second_half[:2] = 0
    packed = pack_bodies([first_half, second_half, moving], max_bodies=2, num_frames=4)
    np.testing.assert_array_equal(packed[:, 0], moving)
    np.testing.assert_array_equal(packed[:, 1], still)  # the two halves share the second slot
