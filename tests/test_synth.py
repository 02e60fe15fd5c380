"""The built-in benchmark generator: determinism, labels that match the motion, readable files, no colour shortcuts."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from augrgb.cli import main
from augrgb.core.errors import InputError
from augrgb.extract.skeleton_layout import JOINT, NTU_BONES_1BASED
from augrgb.synth.actions import ACTIONS, CHANNELS, class_names
from augrgb.synth.generator import Settings, build_video, generate, split_subsets, video_timeline
from augrgb.synth.kinect import BODIES
from augrgb.synth.schedule import Placed, Timeline, sample_timeline
from augrgb.synth.stats import label_statistics

SMALL = dict(videos=2, seconds=3.0, size=64, seed=5)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("bench"), **SMALL)


def decode_pyav(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


# ---- files, formats, determinism ---------------------------------------------------------------------

def test_layout_and_json_format(bench):
    ann = json.loads((bench / "annotations.json").read_text())
    names = (bench / "classes.txt").read_text().splitlines()
    assert names == class_names() and len(names) >= 16
    assert sorted(ann) == ["synth_00000", "synth_00001"]
    for vid, entry in ann.items():
        assert set(entry) == {"subset", "duration", "actions"}
        assert entry["subset"] in ("training", "testing")
        assert entry["duration"] == pytest.approx(3.0)
        for cls, start, end in entry["actions"]:
            assert isinstance(cls, int) and 0 <= cls < len(names)
            assert 0 <= start < end <= entry["duration"]
        assert (bench / "videos" / f"{vid}.mp4").is_file()
        sk = np.load(bench / "skeletons" / f"{vid}.npy")
        assert sk.dtype == np.float32 and sk.shape == (75, BODIES, 25, 3)
        assert not sk[:, 1].any()  # one actor; the second body slot is empty
    assert {e["subset"] for e in ann.values()} == {"training", "testing"}


def test_same_seed_same_files_and_frames(bench, tmp_path):
    again = generate(tmp_path / "again", **SMALL)
    assert (again / "annotations.json").read_bytes() == (bench / "annotations.json").read_bytes()
    for vid in ("synth_00000", "synth_00001"):
        assert np.array_equal(np.load(again / "skeletons" / f"{vid}.npy"), np.load(bench / "skeletons" / f"{vid}.npy"))
        assert np.array_equal(decode_pyav(again / "videos" / f"{vid}.mp4"), decode_pyav(bench / "videos" / f"{vid}.mp4"))


def test_other_seed_other_content(bench, tmp_path):
    other = generate(tmp_path / "other", **{**SMALL, "seed": 6, "videos": 1})
    assert not np.array_equal(np.load(other / "skeletons/synth_00000.npy"), np.load(bench / "skeletons/synth_00000.npy"))
    assert not np.array_equal(decode_pyav(other / "videos/synth_00000.mp4"), decode_pyav(bench / "videos/synth_00000.mp4"))


def test_files_match_the_in_memory_video(bench):
    video = build_video(SMALL["seed"], 1, SMALL["seconds"], "dense", SMALL["size"])
    assert np.array_equal(np.load(bench / "skeletons/synth_00001.npy"), video.skeleton)
    ann = json.loads((bench / "annotations.json").read_text())
    assert ann["synth_00001"]["actions"] == video.actions()
    decoded = decode_pyav(bench / "videos/synth_00001.mp4")
    rendered = np.stack(list(video.iter_frames()))
    assert decoded.shape == rendered.shape
    assert np.abs(decoded.astype(int) - rendered).mean() < 10  # lossy H.264 and 4:2:0 chroma at 64 px
    # frame t of the file is rendered frame t: it matches better than rendered frames shifted by 1..5
    errors = np.abs(decoded[:, None].astype(np.int16) - rendered[None].astype(np.int16)).mean(axis=(2, 3, 4))
    aligned = np.diagonal(errors).mean()
    assert all(aligned < min(np.diagonal(errors, k).mean(), np.diagonal(errors, -k).mean()) for k in range(1, 6))


def test_every_backend_reads_the_video(bench):
    decord = pytest.importorskip("decord", reason="decord is not installed (it has wheels for x86-64 Linux only)")

    path = bench / "videos/synth_00000.mp4"
    reader = decord.VideoReader(str(path))
    assert len(reader) == 75 and reader[0].shape == (64, 64, 3)
    assert reader.get_avg_fps() == pytest.approx(25.0)
    frames = decode_pyav(path)
    assert frames.shape == (75, 64, 64, 3)
    cap = cv2.VideoCapture(str(path))
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (64, 64, 3)
        count += 1
    assert count == 75 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    assert np.abs(reader[40].asnumpy().astype(int) - frames[40]).mean() < 2  # same decoded picture


def test_rerun_resumes_and_other_settings_are_refused(bench):
    before = (bench / "videos/synth_00000.mp4").stat().st_mtime_ns
    generate(bench, **SMALL)
    assert (bench / "videos/synth_00000.mp4").stat().st_mtime_ns == before
    with pytest.raises(InputError, match="other settings"):
        generate(bench, **{**SMALL, "seed": 9})


def test_split_is_deterministic_and_sized():
    subsets = split_subsets(50, 0.2, seed=3)
    assert subsets == split_subsets(50, 0.2, seed=3) and subsets.count("testing") == 10
    assert split_subsets(50, 0.2, seed=4) != subsets
    assert split_subsets(3, 0.0, seed=0) == ["training"] * 3


@pytest.mark.parametrize("option, value, message", [
    ("videos", 0, "--videos"), ("seconds", 1.0, "--seconds"), ("size", 63, "--size"), ("mode", "both", "--mode"),
    ("test_fraction", 1.0, "--test-fraction"), ("framing", (0.9, 0.8), "--framing"), ("framing", (0.5, 1.2), "--framing"),
])
def test_bad_settings_give_one_line_errors(option, value, message):
    with pytest.raises(InputError) as err:
        Settings(**{**dict(videos=1, seconds=3.0), option: value}).check()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_cli_writes_and_reports(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "b"), "--videos", "1", "--seconds", "2", "--size", "48",
                 "--mode", "sparse", "--preview"]) == 0
    assert "wrote 1 videos" in capsys.readouterr().out
    preview = cv2.imread(str(tmp_path / "b/preview.png"))
    assert preview is not None and preview.shape[0] > 100
    assert main(["synth", "--out", str(tmp_path / "c"), "--videos", "1", "--seconds", "0.5"]) == 2
    assert "--seconds" in capsys.readouterr().err


# ---- the timeline: channels, modes, states ----------------------------------------------------------

def _channels(p: Placed) -> frozenset[str]:
    action = ACTIONS[p.name]
    for alt in range(len(action.channels)):
        if action.side_of(alt) == p.side:
            return frozenset(action.channels[alt])
    raise AssertionError(p)


def test_dense_actions_overlap_only_on_different_channels():
    overlapping = 0
    for seed in range(40):
        tl = sample_timeline(np.random.default_rng(seed), 750, 25, "dense")
        for i, a in enumerate(tl.actions):
            assert 0 <= a.start < a.end < 750
            for b in tl.actions[i + 1:]:
                if a.start <= b.end and b.start <= a.end:
                    overlapping += 1
                    assert not (_channels(a) & _channels(b)), (a, b)
                    assert a.name != b.name
    assert overlapping > 40  # dense mode really has concurrent actions


def test_sparse_actions_never_overlap_and_leave_background():
    for seed in range(40):
        tl = sample_timeline(np.random.default_rng(seed), 750, 25, "sparse")
        for a, b in zip(tl.actions, tl.actions[1:]):
            assert b.start - a.end >= 25  # at least a second of background between actions


def test_posture_and_facing_stay_consistent():
    for seed in range(60):
        tl = sample_timeline(np.random.default_rng(seed), 1000, 25, "dense")
        seated, yaw = tl.seated_at_start, tl.yaw_at_start
        legs = [p for p in tl.actions if "legs" in _channels(p)]
        for p in legs:
            action = ACTIONS[p.name]
            if action.posture != "any":
                assert action.posture == ("seated" if seated else "standing"), p
            if action.posture_after:
                seated = action.posture_after == "seated"
            if action.turn:
                assert np.sign(p.angle) == action.turn and np.deg2rad(44) < abs(p.angle) < np.deg2rad(101)
                yaw += p.angle
                assert abs(yaw) <= np.deg2rad(110) + 1e-9


def test_all_classes_occur_and_durations_are_in_range():
    seen = {}
    for seed in range(60):
        for p in sample_timeline(np.random.default_rng(seed), 750, 25, "dense").actions:
            seen.setdefault(p.name, []).append((p.end - p.start) / 25)
    assert set(seen) == set(ACTIONS)
    lengths = np.concatenate([np.array(v) for v in seen.values()])
    assert lengths.min() >= 0.9 and lengths.max() <= 8.05


def test_ntu_joint_order_and_bones():
    assert len(JOINT) == 25
    assert [JOINT[n] + 1 for n in ("spine_base", "neck", "head", "left_shoulder", "right_hand", "spine_shoulder",
                                   "left_hand_tip", "right_thumb")] == [1, 3, 4, 5, 12, 21, 22, 25]
    assert len(NTU_BONES_1BASED) == 24
    assert set(CHANNELS) == {"left_arm", "right_arm", "legs", "torso"}


# ---- the skeleton moves as the labels say -----------------------------------------------------------

def _one_action_video(name: str, seconds: float = 6.0, seed: int = 0, angle: float = 0.0, side: int = -1):
    frames = int(seconds * 25)
    action = ACTIONS[name]
    placed = Placed(name, 25, frames - 26, side, angle, seed)
    tl = Timeline((placed,), frames, 25, 0.2, action.posture == "seated")
    return build_video(seed, seed, seconds, size=48, timeline=tl), placed


def _world(video) -> np.ndarray:
    """Sensor skeleton back in world coordinates (y up), dropped frames as NaN."""
    sk = video.skeleton[:, 0].astype(float)
    dropped = ~sk.any(axis=(1, 2))
    world = sk @ video.camera.rotation + video.camera.position
    world[dropped] = np.nan
    return world


def _speed(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(points, axis=0), axis=-1) * 25


def _arm_busy(video, side_name: str) -> np.ndarray:
    busy = np.zeros(video.frames, bool)
    for p in video.timeline.actions:
        if f"{side_name}_arm" in _channels(p):
            busy[p.start:p.end + 1] = True
    return busy


@pytest.mark.parametrize("side", ["left", "right"])
def test_waving_wrist_is_fast_in_wave_segments_and_slow_outside(side):
    """Across random dense videos: the wrist (relative to its shoulder) moves fast inside every wave, slowly when idle."""
    other = "right" if side == "left" else "left"
    checked, compared = 0, 0
    for index in range(25):
        video = build_video(11, index, 20.0, size=48)
        world = _world(video)
        arm = lambda s: _speed(world[:, JOINT[f"{s}_wrist"]] - world[:, JOINT[f"{s}_shoulder"]])
        speed, other_speed = arm(side), arm(other)
        nothing = np.ones(video.frames, bool)
        for p in video.timeline.actions:
            nothing[p.start:p.end + 1] = False
        idle = nothing[1:] & nothing[:-1] & np.isfinite(speed)
        for p in video.timeline.actions:
            if p.name != f"wave_{side}_hand":
                continue
            inner = speed[p.start + 12:p.end - 12]
            inner = np.median(inner[np.isfinite(inner)])
            assert inner > 0.6, (index, p)
            if idle.sum() >= 25:
                assert inner > 3 * np.median(speed[idle]), (index, p)
                compared += 1
            if not _arm_busy(video, other)[p.start:p.end + 1].any():
                assert np.nanmedian(other_speed[p.start + 12:p.end - 12]) < 0.5 * inner, (index, p)
            checked += 1
    assert checked >= 5 and compared >= 2


def test_squat_lowers_the_hips():
    video, p = _one_action_video("squat")
    hips = _world(video)[:, JOINT["spine_base"], 1]
    standing = np.nanmedian(hips[:p.start])
    assert np.nanmin(hips[p.start:p.end + 1]) < standing - 0.25
    assert abs(np.nanmedian(hips[p.end + 5:]) - standing) < 0.05


@pytest.mark.parametrize("name, sign", [("turn_left", 1), ("turn_right", -1)])
def test_turns_rotate_the_shoulder_line_their_way(name, sign):
    """Turning left is counter-clockwise seen from above (y up): the shoulder line's heading increases."""
    angle = sign * np.deg2rad(70)
    video, p = _one_action_video(name, angle=angle)
    world = _world(video)
    line = world[:, JOINT["right_shoulder"]] - world[:, JOINT["left_shoulder"]]
    heading = np.exp(1j * np.arctan2(-line[:, 2], line[:, 0]))
    before, after = np.nanmean(heading[:p.start]), np.nanmean(heading[p.end + 3:])
    assert np.rad2deg(np.angle(after / before)) == pytest.approx(np.rad2deg(angle), abs=15)


def test_sit_down_and_stand_up_move_the_hips_in_opposite_directions():
    down, pd = _one_action_video("sit_down")
    up, pu = _one_action_video("stand_up")
    hd, hu = _world(down)[:, JOINT["spine_base"], 1], _world(up)[:, JOINT["spine_base"], 1]
    assert np.nanmedian(hd[pd.end + 3:]) < np.nanmedian(hd[:pd.start]) - 0.25
    assert np.nanmedian(hu[pu.end + 3:]) > np.nanmedian(hu[:pu.start]) + 0.25


@pytest.mark.parametrize("name, kicking, standing", [("kick_left", "left", "right"), ("kick_right", "right", "left")])
def test_kicks_raise_the_named_foot(name, kicking, standing):
    video, p = _one_action_video(name)
    world = _world(video)
    def rise(foot):
        height = world[:, JOINT[f"{foot}_ankle"], 1]
        return np.nanpercentile(height[p.start:p.end + 1], 95) - np.nanmedian(height[:p.start])
    assert rise(kicking) > 0.3 and rise(standing) < 0.05


def test_sensor_skeleton_is_noisy_but_close_and_drops_frames():
    video = build_video(2, 0, 30.0, size=48)
    true = video.camera.to_camera(video.body.joints)
    sk = video.skeleton[:, 0]
    valid = sk.any(axis=(1, 2))
    error = np.linalg.norm(sk[valid] - true[valid], axis=-1)
    assert 0.002 < np.median(error) < 0.03
    assert 2.0 < np.median(true[..., 2]) < 6.0  # metres in front of the camera, Kinect-style z
    dropped = sum((~build_video(2, i, 30.0, size=48).skeleton[:, 0].any(axis=(1, 2))).sum() for i in range(6))
    assert dropped > 0


def test_framing_changes_only_the_focal_length():
    """The far framing of older benchmarks is the same video seen through a shorter lens: same skeleton (camera
    space), timeline and camera pose; the actor's image height scales with the focal length."""
    close, far = build_video(3, 2, 6.0, size=64), build_video(3, 2, 6.0, size=64, framing=(0.5, 0.78))
    assert np.array_equal(close.skeleton, far.skeleton) and close.timeline == far.timeline
    assert np.array_equal(close.camera.to_camera(close.body.joints), far.camera.to_camera(far.body.joints))
    ratio = close.camera.focal / far.camera.focal
    u = (0.85 - 0.5 * ratio) / (0.28 * ratio - 0.1)  # the one uniform draw u with (0.85 + 0.1 u) / (0.5 + 0.28 u) = ratio
    assert 0.0 <= u <= 1.0 and ratio > 1.2


def test_cli_framing_is_recorded_and_checked(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "b"), "--videos", "1", "--seconds", "2", "--size", "32",
                 "--framing", "0.5,0.78"]) == 0
    assert json.loads((tmp_path / "b/synth.json").read_text())["settings"]["framing"] == [0.5, 0.78]
    assert main(["synth", "--out", str(tmp_path / "c"), "--videos", "1", "--seconds", "2", "--framing", "0.9,0.8"]) == 2
    assert "--framing" in capsys.readouterr().err


@pytest.mark.parametrize("framing, mostly", [((0.85, 0.95), 0.95), ((0.5, 0.78), 0.99)])
def test_the_actor_stays_in_view(framing, mostly):
    """Whatever the random camera and actions, the projected joints are mostly inside the frame: at the close
    default a raised arm or a step leaves the frame now and then, as in real footage; never half the body."""
    from augrgb.synth.scene import ONE

    inside = []
    for index in range(20):
        points = build_video(7, index, 20.0, size=64, framing=framing).renderer.points / ONE
        inside.append(((points >= 0) & (points < 64)).all(-1).mean(1))
    inside = np.concatenate(inside)
    assert np.mean(inside >= 0.8) > mostly and inside.min() >= 0.5


# ---- appearance carries no label ---------------------------------------------------------------------

def _colour_features(frames: np.ndarray) -> np.ndarray:
    hsv = np.concatenate([cv2.cvtColor(f, cv2.COLOR_RGB2HSV).reshape(-1, 3) for f in frames])
    rgb = frames.reshape(-1, 3).astype(float)
    hue = np.histogram(hsv[:, 0], bins=8, range=(0, 180))[0] / len(hsv)
    return np.concatenate([rgb.mean(0), rgb.std(0), hsv[:, 1:].mean(0), hue])


@pytest.mark.slow
def test_colour_statistics_do_not_predict_the_dominant_class():
    """Logistic regression on per-video colour statistics is at chance; on skeleton motion it is not (the test has power)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    colour, motion, target = [], [], []
    names = class_names()
    for index in range(180):
        video = build_video(21, index, 8.0, mode="sparse", size=32)
        cover = np.zeros(len(names))
        for p in video.timeline.actions:
            cover[names.index(p.name)] += p.end - p.start + 1
        if not cover.any():
            continue
        target.append(int(cover.argmax()))
        colour.append(_colour_features(np.stack([video.frame(t) for t in range(0, video.frames, 40)])))
        sk = video.skeleton[:, 0]
        sk = sk[sk.any(axis=(1, 2))]
        rel = sk - sk[:, :1]
        motion.append(np.concatenate([_speed(sk).mean(0), rel.reshape(len(rel), -1).mean(0), rel.reshape(len(rel), -1).std(0)]))
    target = np.array(target)
    keep = np.isin(target, [c for c in set(target) if (target == c).sum() >= 5])
    x_colour, x_motion, y = np.array(colour)[keep], np.array(motion)[keep], target[keep]
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    chance = cross_val_score(DummyClassifier(strategy="most_frequent"), x_colour, y, cv=folds).mean()
    chance = max(chance, 1.0 / len(set(y)))
    colour_acc = cross_val_score(model, x_colour, y, cv=folds).mean()
    motion_acc = cross_val_score(model, x_motion, y, cv=folds).mean()
    assert colour_acc <= chance + 0.08, (colour_acc, chance)
    assert motion_acc >= chance + 0.2, (motion_acc, chance)


# ---- statistics ---------------------------------------------------------------------------------------

def test_label_statistics_hand_computed():
    ann = {"a": {"subset": "training", "duration": 1.0, "actions": [[0, 0.0, 0.2], [1, 0.1, 0.5]]},
           "b": {"subset": "testing", "duration": 1.0, "actions": []}}
    stats = label_statistics(ann, fps=10)
    assert stats["videos"] == 2 and stats["actions"] == 2
    assert stats["actions_per_video"]["mean"] == 1.0
    assert stats["action_length_s"]["mean"] == pytest.approx(0.3)
    # video a: frames 0..9 carry 1,2,2,1,1,1,0,0,0,0 labels; video b: ten empty frames
    assert stats["labels_per_frame"]["mean"] == pytest.approx(8 / 20)
    assert stats["labels_per_frame"]["fraction_0"] == pytest.approx(14 / 20)
    assert stats["labels_per_frame"]["fraction_2_or_more"] == pytest.approx(2 / 20)
    assert stats["instances_per_class"] == {0: 1, 1: 1}


def test_label_statistics_rejects_malformed_entries(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"v1": {"duration": 3.0, "actions": [[0, 1.0]]}}))
    with pytest.raises(InputError, match="v1: malformed"):
        label_statistics(bad)


def test_timeline_api_matches_the_built_video():
    assert video_timeline(4, 3, 10.0, "sparse") == build_video(4, 3, 10.0, "sparse", 32).timeline
