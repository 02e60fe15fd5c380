"""Stream RGB frames from a video with decord, PyAV or OpenCV, resampled to a target fps by frame index.

Every file is first opened with PyAV (stream present? one frame decodes? rate, rotation), so the
fragile backends never see a file that is not a video, and every backend resamples with the same
source rate. See docs/decoding.md for the rules.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import av
import cv2
import numpy as np

from augrgb.core.errors import InputError
from augrgb.extract.resample import IndexResampler, as_rate

_CHUNK_FRAMES = 16  # decord get_batch size ...
_CHUNK_BYTES = 16 * 2**20  # ... and at most this much RGB per batch (1080p: 2 frames)
_DECORD_MAX_BYTES = 2**30  # decord only for videos whose decoded RGB fits this (see FrameStream._choose)
_VFR_PACKETS = 250  # video packets whose timestamps decide "variable frame rate"
_REORDER_DEPTH = 16  # most frames a decoder may hold back (H.264 DPB size)
_ESTIMATE_SHORTFALL = 0.9  # below this share of a duration-based frame estimate, a stream counts as truncated


class DecodeError(InputError):
    """A video that cannot be decoded; ``str(err)`` is ``"PATH: reason"``."""


class BackendFailure(Exception):
    """A backend failed on a file PyAV can read (the stream then continues with PyAV)."""


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it; sizes are those of the frames as yielded (upright)."""

    path: str
    backend: str
    width: int
    height: int
    fps: float  # nominal source rate: the stream's average frame rate (frames / duration)
    num_frames: int  # source frames: counted (decord) or declared by the container, else estimated
    duration: float  # seconds
    variable_frame_rate: bool
    rate: Fraction | None = None  # ``fps`` as the exact fraction the resampling uses (None: unknown)
    num_frames_exact: bool = False  # False when num_frames was estimated from the duration
    rotation: int = 0  # degrees counter-clockwise applied to make frames upright (display matrix)
    codec: str = ""
    pix_fmt: str = ""


@dataclass(frozen=True)
class _Header:
    """Stream facts read by PyAV, shared by every backend."""

    width: int  # coded size, before rotation
    height: int
    rate: Fraction | None
    declared_frames: int  # 0 when the container does not say
    duration: float | None
    variable_frame_rate: bool
    rotation: int
    codec: str
    pix_fmt: str


def default_backend() -> str:
    """decord where it is importable (fastest on CPU), else PyAV."""
    return "decord" if importlib.util.find_spec("decord") is not None else "pyav"


def probe(path: str | Path, backend: str | None = None) -> VideoInfo:
    """Open a video and describe it without decoding it (raises DecodeError for unusable files)."""
    with FrameStream(path, None, backend) as stream:
        return stream.info


def iter_frames(path: str | Path, fps: float | None = 25.0, backend: str | None = None) -> FrameStream:
    """Stream RGB uint8 frames (H, W, 3) at the source resolution, resampled to ``fps`` by index (None: all)."""
    return FrameStream(path, fps, backend)


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    """The first video stream that is not cover art."""
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        kinds = sorted({s.type for s in container.streams if s.type != "video"}) or ["none"]
        extra = ", cover art only" if container.streams.video else ""
        raise DecodeError(path, f"no video stream (streams: {', '.join(kinds)}{extra})")
    return streams[0]


def _av_reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _open_container(path: str) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise DecodeError(path, "no such file")
    if os.path.isdir(path):
        raise DecodeError(path, "is a directory, not a video file")
    try:
        return av.open(path)
    except (av.FFmpegError, OSError) as err:
        raise DecodeError(
            path, f"cannot be opened as a video ({_av_reason(err)}): not a video file, or a corrupt/truncated one"
        ) from None


def _is_variable_rate(pts: list[int], complete: bool) -> bool:
    """Irregular presentation-time steps (1 tick of rounding allowed).

    Packets come in decode order, so when the scan stopped early the latest timestamps may have gaps
    (B-frames not yet read): those are left out.
    """
    ordered = np.sort(np.asarray(pts, dtype=np.int64))
    steps = np.diff(ordered if complete else ordered[:-_REORDER_DEPTH])
    if steps.size < 2:
        return False
    return bool(steps.min() <= 0 or steps.max() - steps.min() > max(1, int(np.median(steps)) // 100))


def _read_header(path: str) -> _Header:
    """Check with PyAV that ``path`` holds a video stream with a decodable frame, and read its facts."""
    with _open_container(path) as container:
        stream = _video_stream(container, path)
        first, error, pts, complete = None, None, [], True
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and len(pts) < _VFR_PACKETS:
                    pts.append(packet.pts)
                if first is None:
                    try:
                        decoded = packet.decode()
                    except av.FFmpegError as err:
                        error = error or _av_reason(err)
                        continue
                    first = decoded[0] if decoded else None
                if first is not None and len(pts) >= _VFR_PACKETS:
                    complete = False
                    break
        except (av.FFmpegError, OSError) as err:
            error = error or _av_reason(err)
        if first is None:
            raise DecodeError(path, "no decodable video frames" + (f" ({error})" if error else ""))
        rate = next((r for r in (stream.average_rate, stream.guessed_rate, stream.base_rate) if r), None)
        rate = Fraction(rate) if rate else None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        return _Header(
            width=first.width,
            height=first.height,
            rate=rate,
            declared_frames=max(stream.frames, 0),
            duration=duration,
            variable_frame_rate=_is_variable_rate(pts, complete),
            rotation=int(round((first.rotation or 0) / 90)) * 90 % 360,
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt or "",
        )


_Frames = Iterator[tuple[int, "np.ndarray | None"]]
_READERS: dict[str, type[_Reader]] = {}


def _register(name: str) -> Callable[[type[_Reader]], type[_Reader]]:
    def add(cls: type[_Reader]) -> type[_Reader]:
        cls.name = name
        _READERS[name] = cls
        return cls

    return add


class _Reader:
    """One backend on one file: yields (source index, RGB frame or None when ``want(index)`` is false)."""

    name: ClassVar[str]
    num_frames: int | None = None  # exact source frame count, when the backend counts them

    def __init__(self, path: str, header: _Header) -> None:
        self.path, self.header = path, header
        self.warnings: list[str] = []

    def frames(self, want: Callable[[int], bool]) -> _Frames:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""


@_register("decord")
class _DecordReader(_Reader):
    """decord: random access by index; fetched with get_batch in bounded chunks."""

    def __init__(self, path: str, header: _Header) -> None:
        super().__init__(path, header)
        try:
            import decord
        except ImportError as err:
            raise InputError("backend=decord", f"decord is not importable ({err}); use pyav or opencv") from None
        decord.logging.set_level(decord.logging.QUIET)
        self._errors = (decord.DECORDError, RuntimeError, ValueError, IndexError)
        try:
            # one decoding thread: parallelism comes from processes, one video each
            self._reader = decord.VideoReader(path, num_threads=1)
        except self._errors as err:
            raise BackendFailure(_first_line(err)) from None
        self.num_frames = len(self._reader)
        if not self.num_frames:
            raise BackendFailure("decord counted no frames")

    def frames(self, want: Callable[[int], bool]) -> _Frames:
        shape = (self.header.height, self.header.width, 3)
        chunk = max(1, min(_CHUNK_FRAMES, _CHUNK_BYTES // int(np.prod(shape))))
        start = 0
        while start < self.num_frames:
            indices, wanted = [], []
            for i in range(start, self.num_frames):
                indices.append(i)
                if want(i):
                    wanted.append(i)
                    if len(wanted) == chunk:
                        break
            start = indices[-1] + 1
            fetched = dict(zip(wanted, self._fetch(wanted, shape)))
            for i in indices:
                yield i, fetched.pop(i, None)

    def _fetch(self, indices: list[int], shape: tuple[int, int, int]) -> np.ndarray:
        """Frames for ``indices`` as one array; the yielded frames are views of it (copying each frame
        out measurably fragments the heap shared with decord's decoding thread)."""
        if not indices:
            return np.empty((0, *shape), np.uint8)
        try:
            batch = self._reader.get_batch(indices).asnumpy()
        except self._errors as err:
            raise BackendFailure(_first_line(err)) from None
        if batch.shape[1:] != shape:
            raise BackendFailure(f"decord returned frames of shape {batch.shape[1:]}, expected {shape}")
        return batch

    def close(self) -> None:
        self.__dict__.pop("_reader", None)


@_register("pyav")
class _PyAVReader(_Reader):
    """PyAV: demux and decode packet by packet; a packet that fails to decode is counted and skipped."""

    def __init__(self, path: str, header: _Header) -> None:
        super().__init__(path, header)
        self._container = _open_container(path)
        self._stream = _video_stream(self._container, path)
        self._stream.thread_type = "AUTO"
        self.bad_packets = 0

    def frames(self, want: Callable[[int], bool]) -> _Frames:
        i, first_error = 0, ""
        try:
            for packet in self._container.demux(self._stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError as err:
                    self.bad_packets += 1
                    first_error = first_error or _av_reason(err)
                    continue
                for frame in decoded:
                    yield i, frame.to_ndarray(format="rgb24") if want(i) else None
                    i += 1
        except (av.FFmpegError, OSError) as err:
            raise BackendFailure(f"reading stopped: {_av_reason(err)}") from None
        finally:
            if self.bad_packets:
                self.warnings.append(f"{self.bad_packets} packet(s) failed to decode and were skipped ({first_error})")

    def close(self) -> None:
        self._container.close()


@_register("opencv")
class _OpenCVReader(_Reader):
    """OpenCV: sequential read(); frames that resampling drops are only grabbed, not converted."""

    def __init__(self, path: str, header: _Header) -> None:
        super().__init__(path, header)
        self._capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            raise BackendFailure("OpenCV could not open it")
        self._capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # rotation is applied once, for all backends

    def frames(self, want: Callable[[int], bool]) -> _Frames:
        shape = (self.header.height, self.header.width, 3)
        i = 0
        while True:
            if want(i):
                ok, bgr = self._capture.read()
                if not ok or bgr is None:
                    if i == 0:
                        raise BackendFailure("OpenCV decoded no frames")
                    return
                if bgr.shape != shape:
                    raise BackendFailure(f"OpenCV returned frames of shape {bgr.shape}, expected {shape}")
                yield i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            else:
                if not self._capture.grab():
                    if i == 0:
                        raise BackendFailure("OpenCV decoded no frames")
                    return
                yield i, None
            i += 1

    def close(self) -> None:
        self._capture.release()


BACKENDS: tuple[str, ...] = tuple(_READERS)


def _first_line(err: BaseException) -> str:
    """An exception's message on one line, without decord's "[time] source.cc:line:" prefix."""
    text = " ".join(str(err).split())
    text = re.sub(r"^\[[\d:]+\] \S+:\d+: (Check failed: )?", "", text)
    return (text or type(err).__name__)[:200]


class FrameStream(Iterator[np.ndarray]):
    """RGB uint8 frames (H, W, 3) of one video at ``fps``, upright, at the source resolution.

    Opening raises DecodeError for unusable files; iterating raises it when no frame decodes. After
    iteration ``frames_read``, ``source_frames_read``, ``truncated`` and ``warnings`` say what happened.
    """

    def __init__(self, path: str | Path, fps: float | None = 25.0, backend: str | None = None) -> None:
        self.path = str(path)
        requested = backend or default_backend()
        if requested not in _READERS:
            raise InputError(f"backend={requested}", f"unknown decoding backend; choose from {', '.join(BACKENDS)}")
        try:
            target = None if fps is None else as_rate(fps)
        except (ValueError, TypeError):
            raise InputError(f"fps={fps}", "must be a positive number") from None
        header = _read_header(self.path)
        if target is not None and header.rate is None:
            raise DecodeError(self.path, "the container states no frame rate; decode it with fps=None")
        self.fps = fps
        self._header = header
        self._resampler = IndexResampler(header.rate or Fraction(1), target)
        self.warnings: list[str] = []
        self.frames_read = 0
        self.source_frames_read = 0
        self.truncated = False
        self._reader = self._open(self._choose(requested))
        self.backend = self._reader.name
        self.info = self._describe()
        if header.variable_frame_rate:
            self.warnings.append(
                f"variable frame rate: frames are resampled by index at the average rate {self.info.fps:.3f} fps"
            )
        self._frames = self._generate()

    @property
    def expected_frames(self) -> int:
        """Output frames expected from the source frame count (exact when ``info.num_frames_exact``)."""
        return self._resampler.output_count(self.info.num_frames)

    def _choose(self, requested: str) -> str:
        """PyAV instead of decord for rotated videos (decord mis-sizes them) and for videos whose
        decoded frames could exceed _DECORD_MAX_BYTES: decord demuxes far ahead of its decoding
        thread, which then decodes everything demuxed into an unbounded queue while a slow consumer
        (I3D) works, so its worst case is the whole video in memory."""
        if requested != "decord":
            return requested
        header = self._header
        frames = header.declared_frames or (header.duration or 0) * float(header.rate or 0)
        whole_video = frames * header.width * header.height * 3
        return "decord" if not header.rotation and 0 < whole_video <= _DECORD_MAX_BYTES else "pyav"

    def _open(self, name: str) -> _Reader:
        try:
            return _READERS[name](self.path, self._header)
        except BackendFailure as err:
            self.warnings.append(f"{name} could not open it ({err}); decoded with pyav")
            return _PyAVReader(self.path, self._header)

    def _describe(self) -> VideoInfo:
        header = self._header
        rate = header.rate
        if self._reader.num_frames is not None:
            num_frames, exact = self._reader.num_frames, True
        elif header.declared_frames:
            num_frames, exact = header.declared_frames, True
        else:
            num_frames, exact = (round(header.duration * rate), False) if header.duration and rate else (0, False)
        duration = header.duration if header.duration else (num_frames / rate if rate else 0.0)
        quarter_turn = header.rotation in (90, 270)
        return VideoInfo(
            path=self.path,
            backend=self._reader.name,
            width=header.height if quarter_turn else header.width,
            height=header.width if quarter_turn else header.height,
            fps=float(rate) if rate else 0.0,
            num_frames=num_frames,
            duration=float(duration),
            variable_frame_rate=header.variable_frame_rate,
            rate=rate,
            num_frames_exact=exact,
            rotation=header.rotation,
            codec=header.codec,
            pix_fmt=header.pix_fmt,
        )

    def _upright(self, frame: np.ndarray) -> np.ndarray:
        if not self._header.rotation:
            return frame
        return np.ascontiguousarray(np.rot90(frame, self._header.rotation // 90))

    def _generate(self) -> Iterator[np.ndarray]:
        resampler, reader, done = self._resampler, self._reader, 0
        try:
            while True:
                try:
                    for i, frame in reader.frames(lambda i: i >= done and resampler.repeats(i) > 0):
                        if i < done:
                            continue
                        done = self.source_frames_read = i + 1
                        if frame is None:
                            continue
                        frame = self._upright(frame)
                        for repeat in range(resampler.repeats(i)):
                            self.frames_read += 1
                            yield frame if repeat == 0 else frame.copy()
                    break
                except BackendFailure as err:
                    if reader.name == "pyav":
                        self.truncated = True
                        self.warnings.append(f"decoding stopped after {done} source frames ({err})")
                        break
                    self.warnings.append(f"{reader.name} failed after {done} source frames ({err}); continued with pyav")
                    self.warnings.extend(reader.warnings)
                    reader.close()
                    reader = self._reader = _PyAVReader(self.path, self._header)
                    self.backend = reader.name
        finally:
            reader.close()
        self.warnings.extend(reader.warnings)
        if self.source_frames_read == 0:
            raise DecodeError(self.path, f"no decodable video frames ({reader.name})")
        self._check_length()

    def _check_length(self) -> None:
        """Flag a stream that ended well short of what the container declares."""
        got, header = self.source_frames_read, self._header
        if header.declared_frames and got < header.declared_frames - 1:
            self.truncated = True
            self.warnings.append(f"decoded {got} of the {header.declared_frames} frames the container declares")
        elif not header.declared_frames and header.duration and header.rate:
            estimate = float(header.duration * header.rate)
            if got < _ESTIMATE_SHORTFALL * estimate - 1:
                self.truncated = True
                self.warnings.append(
                    f"decoded {got} frames but the container duration ({header.duration:.2f} s) implies about"
                    f" {round(estimate)}"
                )

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> np.ndarray:
        return next(self._frames)

    def close(self) -> None:
        """Stop decoding and release the file."""
        self._frames.close()
        self._reader.close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
