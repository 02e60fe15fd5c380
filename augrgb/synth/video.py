"""Writing RGB frames to an mp4 with PyAV: H.264 (libx264, yuv420p) when the PyAV build has it, else MPEG-4 part 2.

Both decode with decord, PyAV and OpenCV. One encoder thread, and libx264 without macroblock-tree rate
control and its lookahead: with them the PyAV wheels' libx264 encoded the same frames into different bytes
from one call to the next in one process (4 to 7 distinct outputs in 10 encodes of a 48 px video; x264's
asm paths off, or fixed QP, or mbtree and lookahead off, each gave one). The output is then byte-identical
run to run, and parallelism comes from generating several videos at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

_PREFERRED = (("libx264", {"crf": "23", "preset": "veryfast", "x264-params": "no-mbtree=1:rc-lookahead=0"}),
              ("mpeg4", {"qscale": "2"}))


def video_codec() -> tuple[str, dict[str, str]]:
    """The first encoder of libx264, mpeg4 that this PyAV build provides, with its quality options."""
    for name, options in _PREFERRED:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises UnknownCodecError (a ValueError subclass) or FFmpeg errors
            continue
        return name, options
    raise RuntimeError("PyAV has neither a libx264 nor an mpeg4 encoder")


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: int, size: int) -> int:
    """Encode square RGB uint8 frames to ``path`` (written to a temporary file, then renamed); returns the frame count."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    codec, options = video_codec()
    count = 0
    try:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = dict(options)
            stream.codec_context.gop_size = 2 * fps
            stream.codec_context.thread_count = 1
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count
