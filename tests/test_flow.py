"""Optical flow: accuracy on known motion, frame alignment, I3D/uint8 encodings, image cache, parallel streaming."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from augrgb.core.errors import InputError
from augrgb.extract.flow import (
    FLOW_METHODS,
    FlowComputer,
    encode_for_i3d,
    flow_stream,
    flow_to_uint8,
    make_flow_fn,
    read_flow_images,
    uint8_to_flow,
)

SIZE = 64
_rng = np.random.default_rng(0)
_TEXTURE = cv2.GaussianBlur(_rng.random((2 * SIZE, 2 * SIZE)).astype(np.float32), (0, 0), 2.0)
_TEXTURE = 255 * (_TEXTURE - _TEXTURE.min()) / (_TEXTURE.max() - _TEXTURE.min())


def texture_at(dx: float, dy: float) -> np.ndarray:
    """A SIZE x SIZE RGB view of a smooth random texture moved by (dx, dy) px (sub-pixel by cubic warp)."""
    moved = cv2.warpAffine(_TEXTURE, np.float32([[1, 0, dx], [0, 1, dy]]), _TEXTURE.shape[::-1], flags=cv2.INTER_CUBIC)
    crop = moved[SIZE // 2: SIZE // 2 + SIZE, SIZE // 2: SIZE // 2 + SIZE]
    gray = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def moving_frames(steps: list[tuple[float, float]]) -> list[np.ndarray]:
    """Frames whose motion from frame t to t+1 is steps[t]."""
    positions = [(0.0, 0.0)] + list(itertools.accumulate(steps, lambda a, b: (a[0] + b[0], a[1] + b[1])))
    return [texture_at(*p) for p in positions]


def interior(field: np.ndarray) -> np.ndarray:
    return field[8:-8, 8:-8].reshape(-1, 2)


# Mean and max absolute error (px) over the interior, per method, on a smooth texture.
TOLERANCE = {"tvl1": (0.05, 0.25), "dis": (0.05, 0.25), "farneback": (0.05, 0.3)}


def test_registry_has_the_three_methods():
    assert set(FLOW_METHODS) >= {"tvl1", "dis", "farneback"}


@pytest.mark.parametrize("method", ["tvl1", "dis", "farneback"])
@pytest.mark.parametrize("shift", [(1.5, -1.0), (-3.0, 2.0)])
def test_translation_gives_the_known_shift(method, shift):
    f0, f1 = moving_frames([shift])
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (f0, f1)]
    field = make_flow_fn(method)(*gray)
    assert field.shape == (SIZE, SIZE, 2) and field.dtype == np.float32
    err = np.abs(interior(field) - np.array(shift))
    mean_tol, max_tol = TOLERANCE[method]
    assert err.mean() < mean_tol and err.max() < max_tol, (err.mean(), err.max())


def test_alignment_n_frames_give_n_fields_last_repeated():
    steps = [(1.0, 0.0), (3.0, 0.0), (-2.0, 1.0), (0.0, -2.0)]
    frames = moving_frames(steps)
    fields = list(flow_stream(iter(frames), "dis"))
    assert len(fields) == len(frames)
    for t, (dx, dy) in enumerate(steps):  # field t is the motion from frame t to frame t+1
        assert np.allclose(np.median(interior(fields[t]), axis=0), (dx, dy), atol=0.1)
    np.testing.assert_array_equal(fields[-1], fields[-2])
    direct = make_flow_fn("dis")(*(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[1:3]))
    np.testing.assert_array_equal(fields[1], direct)


def test_one_frame_gives_one_zero_field_and_no_frames_give_none():
    (only,) = list(flow_stream(iter([texture_at(0, 0)[:40, :50]]), "farneback"))
    assert only.shape == (40, 50, 2) and only.dtype == np.float32 and not only.any()
    assert list(flow_stream(iter([]), "farneback")) == []


def test_gray_frames_are_accepted_like_rgb():
    frames = moving_frames([(1.0, 1.0), (2.0, 0.0)])
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    for a, b in zip(flow_stream(frames, "dis"), flow_stream(gray, "dis")):
        np.testing.assert_array_equal(a, b)


def test_encode_for_i3d_clips_and_scales():
    flow = np.array([-30, -20, -10, 0, 5, 20, 25], np.float32)
    np.testing.assert_array_equal(encode_for_i3d(flow), np.array([-1, -1, -0.5, 0, 0.25, 1, 1], np.float32))
    assert encode_for_i3d(np.zeros((2, 2, 2), np.float64)).dtype == np.float32


def test_uint8_encoding_exact_values():
    flow = np.array([-25, -20, -10, 0, 10, 20, 30], np.float32)
    # 255 * (f + 20) / 40 = 0, 0, 63.75, 127.5, 191.25, 255, 255; rounded half to even
    np.testing.assert_array_equal(flow_to_uint8(flow), np.array([0, 0, 64, 128, 191, 255, 255], np.uint8))
    np.testing.assert_allclose(uint8_to_flow(np.array([0, 51, 255], np.uint8)), [-20, -12, 20], atol=1e-5)


@pytest.mark.parametrize("image_format, codec_levels", [("jpg", 1), ("png", 0)])
def test_image_cache_round_trip(tmp_path, image_format, codec_levels):
    frames = moving_frames([(1.5, -1.0), (2.0, 0.5), (-1.0, 1.0)])
    folder = tmp_path / "vid" / "flow"
    fields = list(flow_stream(iter(frames), "farneback", save_images=folder, image_format=image_format))
    names = sorted(p.name for p in folder.iterdir())
    expected = [f"{axis}_{i:05d}.{image_format}" for axis in "xy" for i in (1, 2, 3)]
    assert names == expected  # one x and one y image per frame pair, numbered from 1
    x1 = cv2.imread(str(folder / f"x_00001.{image_format}"), cv2.IMREAD_GRAYSCALE)
    assert np.abs(x1.astype(int) - flow_to_uint8(fields[0][..., 0])).max() <= codec_levels
    back = list(read_flow_images(folder))
    assert len(back) == len(fields) == len(frames)
    bound = (0.5 + codec_levels) * 40 / 255 + 1e-5  # rounding to a 40/255 px level, plus the codec's levels
    for a, b in zip(fields, back):
        assert b.dtype == np.float32 and np.abs(a - b).max() <= bound
    np.testing.assert_array_equal(back[-1], back[-2])
    assert sorted(p.name for p in (tmp_path / "vid").iterdir()) == ["flow"]  # no partial folder left


def test_read_flow_images_accepts_flow_x_naming(tmp_path):
    field = np.dstack([np.full((8, 8), 4.0), np.full((8, 8), -8.0)]).astype(np.float32)
    for axis, plane in zip("xy", np.moveaxis(flow_to_uint8(field), -1, 0)):
        cv2.imwrite(str(tmp_path / f"flow_{axis}_00001.png"), plane)
    first, last = list(read_flow_images(tmp_path))
    np.testing.assert_allclose(first, field, atol=20 / 255 + 1e-5)
    np.testing.assert_array_equal(first, last)


def test_read_flow_images_refuses_bad_folders(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(read_flow_images(tmp_path / "nope"))
    with pytest.raises(InputError, match="no flow images"):
        list(read_flow_images(tmp_path))
    plane = np.zeros((8, 8), np.uint8)
    for name in ("x_00001.jpg", "y_00001.jpg", "x_00002.jpg"):
        cv2.imwrite(str(tmp_path / name), plane)
    with pytest.raises(InputError, match="flow image y_00002 missing"):
        list(read_flow_images(tmp_path))
    (tmp_path / "y_00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="y_00002.jpg: not a readable image"):
        list(read_flow_images(tmp_path))
    cv2.imwrite(str(tmp_path / "x_00000.jpg"), plane)
    with pytest.raises(InputError, match="x_00000 present"):
        list(read_flow_images(tmp_path))


def test_abandoned_or_failed_stream_leaves_no_image_folder(tmp_path):
    frames = moving_frames([(1.0, 0.0)] * 4)
    stream = flow_stream(iter(frames), "dis", save_images=tmp_path / "flow")
    next(stream)
    stream.close()
    bad = frames[:2] + [frames[2][:32]]
    with pytest.raises(InputError):
        list(flow_stream(iter(bad), "dis", save_images=tmp_path / "flow"))
    assert list(tmp_path.iterdir()) == []


def test_existing_image_folder_is_not_overwritten(tmp_path):
    (tmp_path / "flow").mkdir()
    (tmp_path / "flow" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        list(flow_stream(iter(moving_frames([(1.0, 0.0)])), "dis", save_images=tmp_path / "flow"))
    assert (tmp_path / "flow" / "keep.txt").read_text() == "x"


@pytest.mark.parametrize("method", ["tvl1", "dis"])
def test_parallel_output_identical_to_serial(method):
    frames = moving_frames([(1.0, 0.0), (2.0, -1.0), (0.0, 1.5), (-1.0, -1.0), (3.0, 0.0)])
    serial = list(flow_stream(iter(frames), method, workers=1))
    parallel = list(flow_stream(iter(frames), method, workers=2))
    assert len(parallel) == len(serial) == len(frames)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


class CountingFrames:
    """A long frame source that counts how many frames were taken from it."""

    def __init__(self, frames: list[np.ndarray], total: int) -> None:
        self.frames, self.total, self.taken = frames, total, 0

    def __iter__(self):
        for i in range(self.total):
            self.taken += 1
            yield self.frames[i % len(self.frames)]


@pytest.mark.parametrize("workers, window", [(1, None), (2, 3)])
def test_input_is_consumed_lazily_within_the_window(workers, window):
    source = CountingFrames(moving_frames([(1.0, 0.0), (0.0, 1.0)]), total=10_000)
    with FlowComputer("dis", workers, window) as computer:
        stream = computer.stream(iter(source))
        got = 0
        for k in (1, 4, 9):
            while got < k:
                next(stream)
                got += 1
            # k fields out need k+1 frames; the pool reads at most `window` pairs ahead of the consumer.
            ahead = computer.window if workers > 1 else 1
            assert k + 1 <= source.taken <= k + ahead, (k, source.taken)
        stream.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_mismatched_frame_sizes_are_a_clean_error(workers):
    frames = moving_frames([(1.0, 0.0), (1.0, 0.0)])
    frames[2] = frames[2][:, :48]
    with pytest.raises(InputError, match=r"^clip\.mp4: frame 2 is 48x64 but frame 1 is 64x64"):
        list(flow_stream(iter(frames), "dis", workers, source="clip.mp4"))


def test_bad_method_and_bad_frames_are_input_errors():
    with pytest.raises(InputError, match="unknown method 'raft'"):
        flow_stream(iter([]), "raft").__next__()
    with pytest.raises(InputError, match="expected uint8"):
        list(flow_stream(iter([np.zeros((8, 8, 3), np.float32)]), "dis"))
    with pytest.raises(InputError, match="got shape"):
        list(flow_stream(iter([np.zeros((8, 8, 4), np.uint8)]), "dis"))
