"""Spatial preprocessing and [-1, 1] scaling on hand-made frames."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from augrgb.extract.transforms import Preprocess, to_unit_range


def columns(width: int, height: int) -> np.ndarray:
    """Each pixel holds its column number (mod 256) in all three channels."""
    row = (np.arange(width) % 256).astype(np.uint8)
    return np.repeat(np.tile(row, (height, 1))[..., None], 3, axis=2)


def test_center_crop_without_resize_is_a_plain_slice() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (256, 340, 3), dtype=np.uint8)
    out = Preprocess("center")(frame)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, frame[16:240, 58:282])  # (256-224)//2, (340-224)//2


@pytest.mark.parametrize(
    ("width", "height", "resized"),
    [
        (320, 240, (341, 256)),  # 320 * 256/240 = 341.33
        (1920, 1080, (455, 256)),  # 455.11
        (181, 323, (256, 457)),  # portrait: 323 * 256/181 = 456.8
        (100, 80, (320, 256)),  # smaller than the crop: upscaled
        (256, 256, (256, 256)),
    ],
)
def test_center_resizes_the_short_side_then_crops(width: int, height: int, resized: tuple[int, int]) -> None:
    prep = Preprocess("center")
    assert prep.output_size(width, height) == resized
    frame = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = prep(frame)
    assert out.shape == (224, 224, 3) and out.flags.c_contiguous
    top, left = (resized[1] - 224) // 2, (resized[0] - 224) // 2
    full = cv2.resize(frame, resized, interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out, full[top : top + 224, left : left + 224])


def test_center_crop_keeps_the_middle_of_a_gradient() -> None:
    """Columns 0..511 scaled by 256/256 = 1 (height 256): the crop starts at column (512-224)//2 = 144."""
    frame = np.repeat(np.tile(np.arange(512) // 2, (256, 1))[..., None], 3, axis=2).astype(np.uint8)
    out = Preprocess("center")(frame)
    np.testing.assert_array_equal(out[0, :, 0], np.arange(144, 368) // 2)


def test_small_frame_is_upscaled_then_cropped() -> None:
    """A 100x80 frame, left half black, right half white: after x3.2 the edge sits at column 160-48=112."""
    frame = np.zeros((80, 100, 3), np.uint8)
    frame[:, 50:] = 255
    out = Preprocess("center")(frame)
    assert out.shape == (224, 224, 3)
    row = out[112, :, 0].astype(int)
    assert (row[:110] == 0).all() and (row[114:] == 255).all()
    assert 0 < row[112] < 255 or 0 < row[111] < 255  # bilinear: a blended column at the edge


def test_constant_frame_stays_constant_in_both_modes() -> None:
    frame = np.full((97, 173, 3), (10, 200, 77), np.uint8)
    for crop in ("center", "resize"):
        out = Preprocess(crop)(frame)
        assert out.shape == (224, 224, 3)
        assert (out == np.array([10, 200, 77], np.uint8)).all()


def test_resize_mode_ignores_the_aspect_ratio() -> None:
    frame = columns(200, 100)
    out = Preprocess("resize")(frame)
    assert out.shape == (224, 224, 3)
    np.testing.assert_array_equal(out, cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 199  # the whole width is kept, only stretched


def test_custom_sizes() -> None:
    out = Preprocess("center", size=112, short_side=128)(columns(320, 240))
    assert out.shape == (112, 112, 3)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="crop must be"):
        Preprocess("random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size <= short_side"):
        Preprocess("center", size=256, short_side=224)
    with pytest.raises(ValueError, match="uint8"):
        Preprocess()(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        Preprocess()(np.zeros((10, 10), np.uint8))


def test_unit_range_is_x_over_127_5_minus_1_exactly() -> None:
    levels = np.arange(256, dtype=np.uint8)
    out = to_unit_range(levels)
    assert out.dtype == np.float32
    assert out[0] == -1.0 and out[255] == 1.0
    np.testing.assert_array_equal(out[::-1], -out)  # symmetric around 127.5
    assert (np.diff(out) > 0).all()
    for x, value in zip(range(256), out):
        exact = Fraction(2 * x - 255, 255)  # x / 127.5 - 1
        # correctly rounded to float32: within half a unit in the last place of the true value
        assert abs(Fraction(float(value)) - exact) <= Fraction(float(np.spacing(np.float32(abs(value))))) / 2


def test_unit_range_keeps_any_leading_shape() -> None:
    frames = np.random.default_rng(2).integers(0, 256, (2, 3, 5, 7, 3), dtype=np.uint8)
    out = to_unit_range(frames)
    assert out.shape == frames.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, frames / 127.5 - 1, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="uint8"):
        to_unit_range(frames.astype(np.int16))
