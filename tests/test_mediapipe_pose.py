"""MediaPipe poses: landmark -> NTU mapping and gap filling (always run), the estimator itself (needs augrgb[pose])."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from videos import shared_video

from augrgb.core.errors import InputError
from augrgb.extract import mediapipe_pose
from augrgb.extract.mediapipe_pose import LANDMARKS, estimate_poses, fill_gaps, landmarks_to_ntu, mapping_matrix
from augrgb.extract.skeleton_layout import JOINT_NAMES

NTU_CLIP = "ntu_S001C001P001R001A001_rgb.avi"


def landmark(name: str) -> int:
    return LANDMARKS.index(name)


def test_every_ntu_joint_is_an_affine_combination_of_landmarks():
    weights = mapping_matrix()
    assert weights.shape == (25, 33)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)  # translation moves every joint alike


def test_mapping_on_hand_made_landmarks():
    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.5, (33, 3)).astype(np.float32)
    joints = landmarks_to_ntu(world)
    flip = np.array([-1, -1, 1], np.float32)  # MediaPipe x right / y down -> NTU x left / y up

    def at(name: str) -> np.ndarray:
        return joints[JOINT_NAMES.index(name)]

    np.testing.assert_allclose(at("left_elbow"), world[landmark("left_elbow")] * flip, atol=1e-6)
    np.testing.assert_allclose(at("right_foot"), world[landmark("right_foot_index")] * flip, atol=1e-6)
    hips = (world[landmark("left_hip")] + world[landmark("right_hip")]) / 2
    shoulders = (world[landmark("left_shoulder")] + world[landmark("right_shoulder")]) / 2
    np.testing.assert_allclose(at("spine_base"), hips * flip, atol=1e-6)
    np.testing.assert_allclose(at("spine_shoulder"), shoulders * flip, atol=1e-6)
    np.testing.assert_allclose(at("spine_mid"), (hips + shoulders) / 2 * flip, atol=1e-6)
    wrist, index, pinky = (world[landmark(f"left_{n}")] for n in ("wrist", "index", "pinky"))
    np.testing.assert_allclose(at("left_hand"), (wrist + index + pinky) / 3 * flip, atol=1e-6)
    np.testing.assert_allclose(at("left_hand_tip"), (wrist + 2 * ((index + pinky) / 2 - wrist)) * flip, atol=1e-5)
    np.testing.assert_allclose(at("right_thumb"), world[landmark("right_thumb")] * flip, atol=1e-6)


def test_gap_filling_interpolates_short_gaps_and_zeros_long_ones():
    frames = np.arange(12, dtype=np.float32)[:, None, None] * np.ones((12, 25, 3), np.float32)
    present = np.ones(12, bool)
    present[[0, 3, 4, 7, 8, 9, 10]] = False  # leading gap of 1, inner gap of 2, gap of 4 (too long)
    filled = fill_gaps(np.where(present[:, None, None], frames, 99.0), present, max_gap=3)
    assert filled[0, 0, 0] == 1.0  # held from the first detection
    np.testing.assert_allclose(filled[[3, 4], 0, 0], [3.0, 4.0])  # linear between frames 2 and 5
    assert not filled[7:11].any()
    np.testing.assert_array_equal(filled[present], frames[present])
    assert not fill_gaps(frames, np.zeros(12, bool)).any()  # nobody at all: zeros


def test_using_the_estimator_without_mediapipe_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes "import mediapipe..." fail like a missing package
    monkeypatch.setitem(sys.modules, "mediapipe.python", None)
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions.pose", None)
    with pytest.raises(ImportError) as err:
        estimate_poses([np.zeros((8, 8, 3), np.uint8)])
    assert str(err.value) == "pose estimation needs MediaPipe: pip install 'augrgb[pose]'"


def test_unreadable_videos_are_input_errors(tmp_path):
    fake = tmp_path / "notes.avi"
    fake.write_text("not a video")
    with pytest.raises(InputError, match=r"notes\.avi: cannot be opened as a video"):
        mediapipe_pose.estimate_video_poses(fake)
    with pytest.raises(InputError, match=r"missing\.avi: no such file$"):
        mediapipe_pose.estimate_video_poses(tmp_path / "missing.avi")


def test_frames_without_a_person_give_zeros_not_a_crash():
    pytest.importorskip("mediapipe", reason="MediaPipe is the optional extra augrgb[pose]")
    blank = [np.full((120, 160, 3), 128, np.uint8)] * 3 + [np.zeros((120, 160), np.uint8)]
    joints, present = estimate_poses(blank)
    assert joints.shape == (4, 1, 25, 3) and joints.dtype == np.float32
    assert not present.any() and not joints.any()
    joints, present = estimate_poses([])
    assert joints.shape == (0, 1, 25, 3) and present.shape == (0,)


def test_ntu_clip_yields_a_person_on_most_frames():
    pytest.importorskip("mediapipe", reason="MediaPipe is the optional extra augrgb[pose]")
    skeleton, present, source_fps, warnings = mediapipe_pose.estimate_video_poses(shared_video(NTU_CLIP))
    assert skeleton.joints.shape == (len(present), 1, 25, 3) and len(present) == 103 and warnings == []
    assert present.mean() > 0.8 and skeleton.fps == source_fps == pytest.approx(30.0)
    body = skeleton.joints[present, 0]
    height = body[:, JOINT_NAMES.index("head"), 1] - body[:, JOINT_NAMES.index("left_ankle"), 1]
    assert 1.0 < np.median(height) < 2.0  # a standing adult, in metres, head above ankles (y up)
    np.testing.assert_allclose(np.median(body[:, JOINT_NAMES.index("spine_base")], axis=0), 0.0, atol=0.02)
