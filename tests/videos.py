"""Tiny synthetic videos (and non-videos) written with PyAV for the decoding tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
BITS = 10  # frame numbers up to 1023
BLOCK = 16  # pixels per bit block: large enough to survive lossy codecs


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int | Fraction = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts_ms: Sequence[int] | None = None,
    rotation: int = 0,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB (H, W, 3) or gray (H, W) uint8 frames; ``pts_ms`` sets irregular timestamps (VFR)."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, array in enumerate(frames):
            layout = "gray" if array.ndim == 2 else "rgb24"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=layout)
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_audio(path: Path, codec: str = "aac", seconds: float = 0.5, cover_art: bool = False) -> Path:
    """A silent audio-only file (AAC in .m4a, MP3 in .mp3), optionally with an attached cover picture."""
    rate, chunk = 16000, 1152
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        if cover_art:
            art = container.add_stream("mjpeg", rate=1)
            art.width, art.height, art.pix_fmt = 32, 32, "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
            picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 128, np.uint8), format="rgb24")
            container.mux(art.encode(picture) + art.encode())
        for i in range(int(seconds * rate / chunk)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, chunk), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * chunk
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_header_only(path: Path) -> Path:
    """A container with a video stream and no frames at all."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def write_garbage_packets(path: Path, count: int = 8) -> Path:
    """A video stream whose packets are random bytes: it opens but no frame decodes."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
        for i in range(count):
            packet = av.Packet(rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 25)
            container.mux(packet)
    return path


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` share of a file's bytes."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def index_frame(i: int) -> np.ndarray:
    """A frame whose top row of blocks spells ``i`` in binary (white = 1), with the complement below."""
    bits = np.array([(i >> b) & 1 for b in range(BITS)], dtype=np.uint8) * 255
    rows = np.stack([bits, 255 - bits])
    gray = np.kron(rows, np.ones((BLOCK, BLOCK), np.uint8))
    return np.repeat(gray[..., None], 3, axis=2)


def read_index(frame: np.ndarray) -> int:
    """Inverse of index_frame, robust to codec noise: each bit block is compared with its complement."""
    gray = frame.astype(np.float32).mean(axis=2)
    blocks = gray.reshape(2, BLOCK, BITS, BLOCK).mean(axis=(1, 3))
    return int(sum(1 << b for b in range(BITS) if blocks[0, b] > blocks[1, b]))


def smooth_frame(i: int, width: int, height: int, gray: bool = False) -> np.ndarray:
    """Smooth gradients that move with ``i``: every decoder converts them to nearly the same RGB."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 40 + 170 * xx / max(width - 1, 1)
    green = 40 + 170 * yy / max(height - 1, 1)
    blue = 128 + 60 * np.sin((xx + yy) / 40.0 + i / 3.0)
    rgb = np.stack([red, green, blue], axis=-1)
    if gray:
        return np.round(rgb.mean(axis=-1)).astype(np.uint8)
    return np.round(rgb).astype(np.uint8)


def noise_frames(count: int, width: int = 64, height: int = 48, seed: int = 0) -> list[np.ndarray]:
    """Random frames: they compress badly, so a file's bytes are mostly frame data (good for truncation)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def shared_video(name: str) -> Path:
    """A real video from ../shared/data/videos, skipping the test with a reason when it is absent."""
    import pytest

    path = SHARED_VIDEOS / name
    if not path.is_file():
        pytest.skip(f"shared test video {path} is absent (expected beside the repository in ../shared)")
    return path
