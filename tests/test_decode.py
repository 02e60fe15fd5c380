"""Decoding: backends agree, resampling picks exact source indices, bad files give one clear line."""

from __future__ import annotations

import importlib.util
import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from videos import (
    SHARED_VIDEOS,
    index_frame,
    noise_frames,
    read_index,
    smooth_frame,
    truncate,
    write_audio,
    write_garbage_packets,
    write_header_only,
    write_video,
)

from augrgb.core.errors import InputError
from augrgb.extract import decode
from augrgb.extract.decode import BACKENDS, DecodeError, FrameStream, default_backend, iter_frames, probe

SHARED = SHARED_VIDEOS
HAVE_DECORD = importlib.util.find_spec("decord") is not None
NO_DECORD = "decord is not installed (its wheels are for x86-64 Linux only): the decord backend is not tested"
ALL = [pytest.param(b, marks=pytest.mark.skipif(b == "decord" and not HAVE_DECORD, reason=NO_DECORD))
       for b in BACKENDS]
SRC_FPS = 30
SRC_FRAMES = 60


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every generated test file, written once per session (all tiny)."""
    d = tmp_path_factory.mktemp("videos")
    index = [index_frame(i) for i in range(SRC_FRAMES)]
    noise = noise_frames(SRC_FRAMES)
    vfr_pts = [i * 33 + (i % 3) * 11 + (i // 10) * 25 for i in range(30)]
    made = {
        "index_h264.mp4": write_video(d / "index_h264.mp4", index, fps=SRC_FPS),
        "index_mpeg4.avi": write_video(d / "index_mpeg4.avi", index, fps=SRC_FPS, codec="mpeg4"),
        "index_h264.mkv": write_video(d / "index_h264.mkv", index, fps=SRC_FPS),
        "vfr.mp4": write_video(d / "vfr.mp4", [index_frame(i) for i in range(30)], pts_ms=vfr_pts),
        "portrait_odd.mp4": write_video(
            d / "portrait_odd.mp4", [smooth_frame(i, 181, 323) for i in range(4)], fps=25, pix_fmt="yuv444p"
        ),
        "odd420.mkv": write_video(
            d / "odd420.mkv", [smooth_frame(i, 181, 323) for i in range(4)], fps=25, codec="ffv1"
        ),
        "gray.mkv": write_video(
            d / "gray.mkv", [smooth_frame(i, 64, 48, gray=True) for i in range(4)], codec="ffv1", pix_fmt="gray"
        ),
        "short.mp4": write_video(d / "short.mp4", [index_frame(i) for i in range(10)], fps=25),
        "rotated.mp4": write_video(d / "rotated.mp4", [smooth_frame(i, 64, 48) for i in range(6)], rotation=90),
        "noise.mp4": write_video(d / "noise.mp4", noise),
        "noise_fast.mp4": write_video(d / "noise_fast.mp4", noise, container_options={"movflags": "+faststart"}),
        "noise.avi": write_video(d / "noise.avi", noise, codec="mpeg4"),
        "noise.mkv": write_video(d / "noise.mkv", noise),
        "index.ts": write_video(d / "index.ts", index),
        "audio.m4a": write_audio(d / "audio.m4a"),
        "audio.mp3": write_audio(d / "audio.mp3", codec="libmp3lame"),
        "cover_art.mp3": write_audio(d / "cover_art.mp3", codec="libmp3lame", cover_art=True),
        "header_only.avi": write_header_only(d / "header_only.avi"),
        "garbage.mkv": write_garbage_packets(d / "garbage.mkv"),
    }
    for name in ("noise.mp4", "noise_fast.mp4", "noise.avi", "noise.mkv", "index.ts"):
        made["cut_" + name] = truncate(made[name], d / ("cut_" + name), keep=0.6)
    (d / "text.mp4").write_text("this is a text file, not a video\n" * 20)
    made["text.mp4"] = d / "text.mp4"
    made["missing.mp4"] = d / "missing.mp4"
    made["folder.mp4"] = d / "folder.mp4"
    made["folder.mp4"].mkdir()
    return made


def decode_all(path: Path, fps: float | None, backend: str) -> tuple[list[np.ndarray], FrameStream]:
    stream = iter_frames(path, fps=fps, backend=backend)
    return list(stream), stream


# --- the three backends agree on real videos ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kinetics_arm_wrestling.mp4", {25.0: 250, None: 280}),  # 280 frames at 28 fps: ceil(280*25/28) = 250
        ("ntu_S001C001P001R001A001_rgb.avi", {25.0: 86, None: 103}),  # 103 at 30: ceil(103*25/30) = 86
        ("xvid_with_audio.avi", {25.0: 164, None: 164}),  # already 25 fps
    ],
)
@pytest.mark.parametrize("fps", [25.0, None])
def test_backends_give_the_same_frames_on_shared_videos(name: str, expected: dict, fps: float | None) -> None:
    path = SHARED / name
    if not HAVE_DECORD:
        pytest.skip(NO_DECORD)
    if not path.exists():
        pytest.skip(f"shared test video {path} is absent (expected beside the repository in ../shared)")
    streams = [iter_frames(path, fps=fps, backend=b) for b in BACKENDS]
    worst = 0.0
    for frames in itertools.zip_longest(*streams):
        present = [f for f in frames if f is not None]
        assert all(f.shape == present[0].shape and f.dtype == np.uint8 for f in present)
        if len(present) == len(frames):
            ref = present[0].astype(np.int16)
            worst = max(worst, *(float(np.abs(f.astype(np.int16) - ref).mean()) for f in present[1:]))
    counts = [s.frames_read for s in streams]
    assert worst < 2.0, f"mean absolute difference between backends up to {worst:.2f} levels"
    assert streams[BACKENDS.index("pyav")].frames_read == expected[fps]
    assert max(counts) - min(counts) <= 1, counts
    for backend, stream in zip(BACKENDS, streams):
        assert stream.backend == backend and not stream.truncated, (backend, stream.warnings)


# --- resampling by frame index ------------------------------------------------------------------------

RESAMPLED = {
    25: [k * 6 // 5 for k in range(50)],  # floor(k * 30 / 25), ceil(60 * 25 / 30) = 50 frames
    10: [3 * k for k in range(20)],
    None: list(range(SRC_FRAMES)),
    45: [2 * k // 3 for k in range(90)],  # upsampling repeats frames: floor(k * 30 / 45)
}


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("video", ["index_h264.mp4", "index_mpeg4.avi"])
@pytest.mark.parametrize("fps", list(RESAMPLED))
def test_resampling_picks_source_frames_by_index(clips, backend: str, video: str, fps: int | None) -> None:
    frames, stream = decode_all(clips[video], fps, backend)
    assert [read_index(f) for f in frames] == RESAMPLED[fps]
    assert stream.frames_read == len(RESAMPLED[fps]) == stream.expected_frames
    assert stream.source_frames_read == SRC_FRAMES and not stream.truncated and stream.warnings == []


@pytest.mark.skipif(not HAVE_DECORD, reason=NO_DECORD)
def test_decord_chunks_do_not_change_the_frames(clips, monkeypatch: pytest.MonkeyPatch) -> None:
    """get_batch chunks of 3 frames (chunk boundaries everywhere) still give the exact indices."""
    monkeypatch.setattr(decode, "_CHUNK_FRAMES", 3)
    frames, stream = decode_all(clips["index_h264.mp4"], 25, "decord")
    assert stream.backend == "decord"
    assert [read_index(f) for f in frames] == RESAMPLED[25]


def test_repeated_frames_are_separate_arrays(clips) -> None:
    frames, _ = decode_all(clips["index_h264.mp4"], 60, "pyav")
    assert np.array_equal(frames[0], frames[1]) and frames[0] is not frames[1]
    frames[0][:] = 0
    assert read_index(frames[1]) == 0 and frames[1].any()


# --- probe ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ALL)
def test_probe_describes_the_video(clips, backend: str) -> None:
    info = probe(clips["index_h264.mp4"], backend=backend)
    assert (info.backend, info.width, info.height) == (backend, 160, 32)
    assert info.fps == 30.0 and info.rate == Fraction(30)
    assert (info.num_frames, info.num_frames_exact) == (60, True)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert not info.variable_frame_rate and info.rotation == 0 and info.codec == "h264"


def test_probe_estimates_the_frame_count_when_the_container_does_not_say(clips) -> None:
    info = probe(clips["index_h264.mkv"], backend="pyav")
    assert (info.num_frames, info.num_frames_exact) == (60, False)
    if HAVE_DECORD:
        assert probe(clips["index_h264.mkv"], backend="decord").num_frames_exact  # decord counts them


def test_default_backend_is_decord_only_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_backend() == ("decord" if HAVE_DECORD else "pyav")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "decord" else real(name, *a))
    assert default_backend() == "pyav"


@pytest.mark.skipif(not HAVE_DECORD, reason=NO_DECORD)
def test_decord_is_kept_for_videos_whose_frames_fit_the_memory_limit(clips, monkeypatch) -> None:
    """160x32 RGB x 60 frames = 921600 bytes decoded: decord within the limit, PyAV above it."""
    assert iter_frames(clips["index_h264.mp4"], backend="decord").backend == "decord"
    monkeypatch.setattr(decode, "_DECORD_MAX_BYTES", 160 * 32 * 3 * 60 - 1)
    frames, stream = decode_all(clips["index_h264.mp4"], 25, "decord")
    assert stream.backend == stream.info.backend == "pyav" and stream.warnings == []
    assert [read_index(f) for f in frames] == RESAMPLED[25]


# --- bad inputs: one line naming the file and the reason ---------------------------------------------

BAD = {
    "missing.mp4": "no such file",
    "folder.mp4": "is a directory",
    "text.mp4": "cannot be opened as a video",
    "cut_noise.mp4": "cannot be opened as a video",  # index (moov) at the end: gone with the tail
    "audio.m4a": "no video stream (streams: audio)",
    "audio.mp3": "no video stream (streams: audio)",
    "cover_art.mp3": "no video stream (streams: audio, cover art only)",
    "header_only.avi": "no decodable video frames",
    "garbage.mkv": "no decodable video frames",
}


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("name", list(BAD))
def test_bad_inputs_raise_one_clear_line(clips, name: str, backend: str) -> None:
    path = clips[name]
    with pytest.raises(DecodeError) as caught:
        list(iter_frames(path, fps=25, backend=backend))
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert BAD[name] in message
    assert isinstance(caught.value, InputError) and caught.value.source == str(path)


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize(
    ("name", "warning"),
    [
        ("cut_noise_fast.mp4", "frames the container declares"),  # index at the start, data cut
        ("cut_noise.avi", "frames the container declares"),
        ("cut_noise.mkv", "container duration"),  # no frame count: the duration gives it away
    ],
)
def test_truncated_file_yields_what_decodes_and_says_so(clips, backend: str, name: str, warning: str) -> None:
    frames, stream = decode_all(clips[name], None, backend)
    assert 0 < len(frames) < SRC_FRAMES and stream.source_frames_read == len(frames)
    assert all(f.shape == (48, 64, 3) for f in frames)
    assert stream.truncated
    assert any(warning in w for w in stream.warnings), stream.warnings


@pytest.mark.parametrize("backend", ALL)
def test_complete_noise_file_is_not_flagged(clips, backend: str) -> None:
    frames, stream = decode_all(clips["noise.mkv"], None, backend)
    assert len(frames) == SRC_FRAMES and not stream.truncated and stream.warnings == []


@pytest.mark.skipif(not HAVE_DECORD, reason=NO_DECORD)
def test_decord_failing_to_open_falls_back_to_pyav(clips) -> None:
    frames, stream = decode_all(clips["cut_noise_fast.mp4"], None, "decord")
    assert stream.backend == "pyav" and stream.warnings[0].startswith("decord could not open it (")
    assert len(frames) == len(list(iter_frames(clips["cut_noise_fast.mp4"], None, "pyav")))


@pytest.mark.skipif(not HAVE_DECORD, reason=NO_DECORD)
def test_decord_failing_at_the_end_of_a_cut_stream_falls_back_to_pyav(clips) -> None:
    """decord gives up on this cut MPEG-TS ("Unable to handle EOF"); PyAV decodes what is there."""
    got, stream = decode_all(clips["cut_index.ts"], None, "decord")
    reference = [read_index(f) for f in iter_frames(clips["cut_index.ts"], None, "pyav")]
    assert [read_index(f) for f in got] == reference == list(range(len(reference))) and len(reference) > 20
    assert stream.backend == "pyav" and "continued with pyav" in stream.warnings[0]


@pytest.mark.skipif(not HAVE_DECORD, reason=NO_DECORD)
def test_mid_stream_fallback_neither_drops_nor_repeats_frames(clips, monkeypatch: pytest.MonkeyPatch) -> None:
    """decord fails on its third batch of 3 wanted frames; PyAV goes on from source frame 7."""
    monkeypatch.setattr(decode, "_CHUNK_FRAMES", 3)
    real_fetch, calls = decode._DecordReader._fetch, []

    def failing_fetch(self, indices, shape):
        calls.append(indices)
        if len(calls) == 3:
            raise decode.BackendFailure("simulated failure")
        return real_fetch(self, indices, shape)

    monkeypatch.setattr(decode._DecordReader, "_fetch", failing_fetch)
    frames, stream = decode_all(clips["index_h264.mp4"], 25, "decord")
    assert calls[:2] == [[0, 1, 2], [3, 4, 6]]
    assert [read_index(f) for f in frames] == RESAMPLED[25]
    assert stream.backend == "pyav" and not stream.truncated
    assert stream.warnings == ["decord failed after 7 source frames (simulated failure); continued with pyav"]


def test_opencv_reading_nothing_falls_back_to_pyav(clips, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OpenCV build that opens a file but decodes none of it: PyAV reads the file instead."""

    class BlindCapture:
        def __init__(self, *args) -> None:
            pass

        def isOpened(self) -> bool:
            return True

        def set(self, *args) -> bool:
            return True

        def read(self) -> tuple[bool, None]:
            return False, None

        def release(self) -> None:
            pass

    monkeypatch.setattr(decode.cv2, "VideoCapture", BlindCapture)
    frames, stream = decode_all(clips["short.mp4"], None, "opencv")
    assert [read_index(f) for f in frames] == list(range(10)) and stream.backend == "pyav"
    assert stream.warnings == ["opencv failed after 0 source frames (OpenCV decoded no frames); continued with pyav"]


def test_unknown_backend_and_bad_fps_are_option_errors(clips) -> None:
    with pytest.raises(InputError, match=r"^backend=gstreamer: unknown decoding backend"):
        iter_frames(clips["short.mp4"], backend="gstreamer")
    with pytest.raises(InputError, match=r"^fps=0: must be a positive number"):
        iter_frames(clips["short.mp4"], fps=0)


# --- awkward but valid videos ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("name", ["portrait_odd.mp4", "odd420.mkv"])
def test_portrait_odd_size_comes_out_as_is(clips, backend: str, name: str) -> None:
    frames, stream = decode_all(clips[name], None, backend)
    assert (stream.info.width, stream.info.height) == (181, 323)
    assert len(frames) == 4
    for i, frame in enumerate(frames):
        assert frame.shape == (323, 181, 3)
        assert np.abs(frame.astype(np.int16) - smooth_frame(i, 181, 323)).mean() < 3.0


@pytest.mark.parametrize("backend", ALL)
def test_grayscale_gives_three_equal_channels(clips, backend: str) -> None:
    frames, stream = decode_all(clips["gray.mkv"], None, backend)
    assert stream.info.pix_fmt == "gray" and len(frames) == 4
    for i, frame in enumerate(frames):
        assert frame.shape == (48, 64, 3)
        assert np.array_equal(frame[..., 0], frame[..., 1]) and np.array_equal(frame[..., 1], frame[..., 2])
        assert np.abs(frame[..., 0].astype(np.int16) - smooth_frame(i, 64, 48, gray=True)).max() <= 1


@pytest.mark.parametrize("backend", ALL)
def test_variable_frame_rate_is_flagged_and_resampled_by_index(clips, backend: str) -> None:
    stream = iter_frames(clips["vfr.mp4"], fps=25, backend=backend)
    info = stream.info
    assert info.variable_frame_rate and info.num_frames == 30
    assert 27.0 < info.fps < 29.5  # 30 frames over ~1.06 s of irregular timestamps
    got = [read_index(f) for f in stream]
    expected = [k * info.rate.numerator // (25 * info.rate.denominator) for k in range(len(got))]
    assert got == expected and len(got) == -(-30 * 25 * info.rate.denominator // info.rate.numerator)
    assert any("variable frame rate" in w for w in stream.warnings)
    everything = [read_index(f) for f in iter_frames(clips["vfr.mp4"], fps=None, backend=backend)]
    assert everything == list(range(30))


@pytest.mark.parametrize("backend", ALL)
def test_video_shorter_than_a_snippet(clips, backend: str) -> None:
    frames, stream = decode_all(clips["short.mp4"], 25, backend)
    assert [read_index(f) for f in frames] == list(range(10))
    assert not stream.truncated


@pytest.mark.parametrize("backend", ALL)
def test_rotated_video_comes_out_upright(clips, backend: str) -> None:
    frames, stream = decode_all(clips["rotated.mp4"], None, backend)
    assert stream.info.rotation == 90 and (stream.info.width, stream.info.height) == (48, 64)
    assert len(frames) == 6
    for i, frame in enumerate(frames):
        assert frame.shape == (64, 48, 3) and frame.flags.c_contiguous
        assert np.abs(frame.astype(np.int16) - np.rot90(smooth_frame(i, 64, 48))).mean() < 3.0
    assert stream.backend == ("pyav" if backend == "decord" else backend)  # decord mis-sizes rotated video
    assert stream.warnings == []


def test_stopping_early_releases_the_file(clips) -> None:
    with iter_frames(clips["index_h264.mp4"], fps=None, backend="pyav") as stream:
        first = next(stream)
    assert read_index(first) == 0 and stream.frames_read == 1
    assert list(stream) == []
