"""Dense optical flow for I3D's flow stream: one (H, W, 2) field per decoded frame, TV-L1 by default.

Flow is computed on grayscale versions of the already preprocessed frames (the 224x224 RGB crop), so a
flow snippet covers exactly the frames and pixels of the RGB snippet with the same index. See docs/flow.md.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from augrgb.core.errors import InputError

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(previous gray frame, next gray frame), both uint8 (H, W) -> flow (H, W, 2) float32, channels (x, y)."""

FLOW_METHODS: dict[str, Callable[[], FlowFn]] = {}
"""Registry: method name -> factory building one flow function (each process builds its own once)."""

DEFAULT_METHOD = "tvl1"

FLOW_BOUND = 20.0
"""Flow is clipped to [-20, 20] px for I3D input and for the uint8 image encoding (kinetics-i3d, denseflow)."""

# OpenCV's Dual TV-L1 defaults, pinned so an OpenCV upgrade cannot change them silently. They equal the
# defaults of OpenCV's CUDA TV-L1 (cv::cuda::OpticalFlowDual_TVL1, the class kinetics-i3d's README points to
# and denseflow's `-a=tvl1` runs), whose 300 iterations are 10 outer x 30 inner here.
TVL1_PARAMS = {
    "tau": 0.25, "lambda": 0.15, "theta": 0.3, "nscales": 5, "warps": 5, "epsilon": 0.01,
    "inner_iterations": 30, "outer_iterations": 10, "scale_step": 0.8, "gamma": 0.0,
    "median_filtering": 5,
}
# OpenCV's documented example settings for Farneback (pyramid 0.5, 3 levels, 15 px window, 3 iterations,
# 5-pixel polynomial with sigma 1.2).
FARNEBACK_PARAMS = {
    "pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2,
}

ImageFormat = Literal["jpg", "png"]
_IMAGE_NAME = re.compile(r"^(?:flow_)?([xy])_(\d+)\.(jpg|jpeg|png)$")
_JPEG_QUALITY = 95  # OpenCV's (and denseflow's) default


def register_flow_method(name: str) -> Callable[[Callable[[], FlowFn]], Callable[[], FlowFn]]:
    """Decorator adding a flow-function factory to :data:`FLOW_METHODS` under ``name``."""
    def add(factory: Callable[[], FlowFn]) -> Callable[[], FlowFn]:
        if name in FLOW_METHODS:
            raise ValueError(f"flow method {name!r} is registered twice")
        FLOW_METHODS[name] = factory
        return factory
    return add


@register_flow_method("tvl1")
def tvl1() -> FlowFn:
    """Dual TV-L1 (Zach et al. 2007), the flow I3D's flow stream was trained on; slow (~0.1-1 s per pair)."""
    p = TVL1_PARAMS
    algo = cv2.optflow.DualTVL1OpticalFlow_create(
        p["tau"], p["lambda"], p["theta"], p["nscales"], p["warps"], p["epsilon"], p["inner_iterations"],
        p["outer_iterations"], p["scale_step"], p["gamma"], p["median_filtering"], False,
    )
    return lambda prev, nxt: algo.calc(prev, nxt, None)


@register_flow_method("dis")
def dis() -> FlowFn:
    """Dense Inverse Search (Kroeger et al. 2016) with OpenCV's FAST preset: milliseconds per pair."""
    algo = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return lambda prev, nxt: algo.calc(prev, nxt, None)


@register_flow_method("farneback")
def farneback() -> FlowFn:
    """Farneback polynomial expansion (2003), OpenCV's example parameters: fast, smoother than TV-L1."""
    p = FARNEBACK_PARAMS
    return lambda prev, nxt: cv2.calcOpticalFlowFarneback(
        prev, nxt, None, p["pyr_scale"], p["levels"], p["winsize"], p["iterations"], p["poly_n"],
        p["poly_sigma"], 0,
    )


def check_flow_method(method: str) -> str:
    """Return ``method`` if it is registered, else raise an :class:`InputError` listing the choices."""
    if method not in FLOW_METHODS:
        raise InputError("flow method", f"unknown method {method!r}; choose one of {', '.join(sorted(FLOW_METHODS))}")
    return method


def make_flow_fn(method: str) -> FlowFn:
    """Build the flow function registered as ``method``."""
    return FLOW_METHODS[check_flow_method(method)]()


def to_gray(frame: np.ndarray, source: str = "<frames>", index: int = 0) -> np.ndarray:
    """RGB uint8 (H, W, 3) or gray (H, W[, 1]) frame -> contiguous uint8 (H, W) gray (ITU-R BT.601 luma)."""
    if frame.dtype != np.uint8:
        raise InputError(source, f"frame {index}: expected uint8 pixels for optical flow, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return np.ascontiguousarray(frame.reshape(frame.shape[:2]))
    raise InputError(source, f"frame {index}: expected an (H, W, 3) RGB or (H, W) gray frame, got shape {frame.shape}")


def encode_for_i3d(flow: np.ndarray) -> np.ndarray:
    """I3D flow-stream input: ``clip(flow, -20, 20) / 20`` in [-1, 1], float32, channels (x, y)."""
    return (np.clip(flow, -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND).astype(np.float32)


def flow_to_uint8(flow: np.ndarray) -> np.ndarray:
    """The classic image encoding ``round(255 * (clip(f, -20, 20) + 20) / 40)`` (round half to even)."""
    scaled = 255.0 * (np.clip(flow.astype(np.float64), -FLOW_BOUND, FLOW_BOUND) + FLOW_BOUND) / (2 * FLOW_BOUND)
    return np.rint(scaled).astype(np.uint8)


def uint8_to_flow(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`flow_to_uint8`: ``v / 255 * 40 - 20`` px, float32 (error <= 20/255 px + codec loss)."""
    return (values.astype(np.float32) / 255.0 * (2 * FLOW_BOUND) - FLOW_BOUND).astype(np.float32)


# --- worker processes ------------------------------------------------------------------------------------

_worker_fn: FlowFn | None = None


def _init_worker(method: str) -> None:
    """Pool initializer: one OpenCV thread per process (the processes are the parallelism), one flow object."""
    from augrgb.core.memory import bound_heap_growth

    bound_heap_growth()  # forkserver workers do not inherit the parent's allocator settings
    global _worker_fn
    cv2.setNumThreads(1)
    _worker_fn = make_flow_fn(method)


def _worker_flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Task run in a pool process: flow between two gray frames with the process's own flow object."""
    if _worker_fn is None:
        raise RuntimeError("flow pool process was started without _init_worker")
    return _worker_fn(prev, nxt)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it (no fork of a threaded parent, e.g. one running torch), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class FlowComputer:
    """Flow between consecutive frames with ``workers`` processes (1 = in this process), reusable across videos.

    At most ``window`` frame pairs (default ``2 * workers``) are in flight, so memory stays bounded however
    long the video is, and fields come back in frame order.
    """

    def __init__(self, method: str = DEFAULT_METHOD, workers: int = 1, window: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.method = check_flow_method(method)
        self.workers = workers
        self.window = window if window is not None else 2 * workers
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        self._fn: FlowFn | None = make_flow_fn(method) if workers == 1 else None
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> FlowComputer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (if any were started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=_pool_context(),
                initializer=_init_worker, initargs=(self.method,),
            )
        return self._pool

    def pairs(self, frames: Iterable[np.ndarray], source: str = "<frames>") -> Iterator[np.ndarray]:
        """Flow t from frame t to frame t+1 for t = 0..N-2 (N-1 fields), in order, reading frames lazily."""
        grays = (to_gray(frame, source, i) for i, frame in enumerate(frames))
        consecutive = _consecutive_pairs(grays, source)
        if self._fn is not None:
            for prev, nxt in consecutive:
                yield self._fn(prev, nxt)
            return
        pool = self._executor()
        pending: deque[Future[np.ndarray]] = deque()
        try:
            for prev, nxt in consecutive:
                pending.append(pool.submit(_worker_flow, prev, nxt))
                if len(pending) >= self.window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def stream(
        self,
        frames: Iterable[np.ndarray],
        source: str = "<frames>",
        save_images: str | Path | None = None,
        image_format: ImageFormat = "jpg",
    ) -> Iterator[np.ndarray]:
        """N frames -> N fields (flow t = frame t -> t+1; the last repeats flow N-2; one zero field for N = 1).

        With ``save_images`` the N-1 pair fields are also written there as ``x_%05d``/``y_%05d`` images (see
        :func:`save_flow_images`); the folder appears only once the whole video is done.
        """
        shape: list[tuple[int, int]] = []

        def remember_shape(frames_in: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            for frame in frames_in:
                if not shape:
                    shape.append(frame.shape[:2])
                yield frame

        fields = self.pairs(remember_shape(frames), source)
        if save_images is not None:
            fields = save_flow_images(fields, save_images, image_format)
        aligned = _repeat_last(fields)
        try:
            emitted = False
            for field in aligned:
                emitted = True
                yield field
            if not emitted and shape:
                yield np.zeros((*shape[0], 2), np.float32)
        finally:
            # An abandoned stream cancels its in-flight pairs and drops its partial image folder now.
            aligned.close()
            fields.close()


def flow_stream(
    frames_iter: Iterable[np.ndarray],
    method: str = DEFAULT_METHOD,
    workers: int = 1,
    *,
    source: str = "<frames>",
    save_images: str | Path | None = None,
    image_format: ImageFormat = "jpg",
) -> Iterator[np.ndarray]:
    """Stream one (H, W, 2) float32 flow field per frame, aligned with the frames (see :meth:`FlowComputer.stream`)."""
    with FlowComputer(method, workers) as computer:
        yield from computer.stream(frames_iter, source, save_images, image_format)


def _consecutive_pairs(grays: Iterable[np.ndarray], source: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frame t, frame t+1) pairs, refusing a frame whose size differs from the previous one."""
    prev: np.ndarray | None = None
    for t, gray in enumerate(grays):
        if prev is not None:
            if gray.shape != prev.shape:
                raise InputError(
                    source, f"frame {t} is {gray.shape[1]}x{gray.shape[0]} but frame {t - 1} is "
                    f"{prev.shape[1]}x{prev.shape[0]}; optical flow needs equal frame sizes",
                )
            yield prev, gray
        prev = gray


def _repeat_last(fields: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The N-1 pair fields followed by the last one again: one field per frame (nothing for no fields)."""
    last: np.ndarray | None = None
    for field in fields:
        last = field
        yield field
    if last is not None:
        yield last.copy()


# --- the classic uint8 image cache ---------------------------------------------------------------------


def flow_image_names(index: int, image_format: ImageFormat = "jpg") -> tuple[str, str]:
    """Image names of the flow from frame ``index`` to ``index + 1``: numbered from 1, ``x_%05d`` % (index + 1)."""
    return f"x_{index + 1:05d}.{image_format}", f"y_{index + 1:05d}.{image_format}"


def save_flow_images(
    pair_fields: Iterable[np.ndarray], folder: str | Path, image_format: ImageFormat = "jpg",
) -> Iterator[np.ndarray]:
    """Pass pair fields through while writing each as two uint8 gray images; the folder appears when done.

    Images go to a hidden temporary sibling folder that is renamed to ``folder`` after the last field, so an
    interrupted run never leaves a half-written cache. An existing non-empty ``folder`` is refused.
    """
    if image_format not in ("jpg", "png"):
        raise InputError("flow image format", f"unknown format {image_format!r}; choose jpg or png")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(folder, "flow image folder already exists and is not empty (refusing to overwrite it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY] if image_format == "jpg" else []
    done = False
    try:
        for index, field in enumerate(pair_fields):
            encoded = flow_to_uint8(field)
            for channel, name in enumerate(flow_image_names(index, image_format)):
                if not cv2.imwrite(str(partial / name), np.ascontiguousarray(encoded[..., channel]), params):
                    raise InputError(partial / name, "could not write flow image")
            yield field
        if folder.exists():
            folder.rmdir()  # empty (checked above)
        os.replace(partial, folder)
        done = True
    finally:
        if not done:
            shutil.rmtree(partial, ignore_errors=True)


def read_flow_images(folder: str | Path) -> Iterator[np.ndarray]:
    """Read a folder of ``x_%05d``/``y_%05d`` flow images back as the aligned per-frame stream of flow_stream.

    K image pairs (pair k = frame k-1 -> frame k) give K+1 fields, the last repeated, decoded as
    ``v / 255 * 40 - 20``. Also accepts the ``flow_x_%05d`` naming, and .jpg/.jpeg/.png files.
    """
    yield from _repeat_last(_read_pair_images(Path(folder)))


def _read_pair_images(folder: Path) -> Iterator[np.ndarray]:
    """The stored pair fields of a flow image folder, in index order, read one pair at a time."""
    if not folder.is_dir():
        raise InputError(folder, "flow image folder does not exist")
    found: dict[tuple[str, int], Path] = {}
    for path in folder.iterdir():
        match = _IMAGE_NAME.match(path.name)
        if match is None:
            continue
        key = (match.group(1), int(match.group(2)))
        if key in found:
            raise InputError(path, f"two flow images for {key[0]} index {key[1]} ({found[key].name} and {path.name})")
        found[key] = path
    if not found:
        raise InputError(folder, "no flow images (expected x_00001.jpg, y_00001.jpg, ...)")
    count = max(index for _, index in found)
    for axis in "xy":  # without listing 1..count: a stray x_9999999999.jpg must not build a huge list
        indices = sorted(i for a, i in found if a == axis and i > 0)
        missing = next((n for n, i in enumerate(indices, 1) if i != n), None)
        if missing is None and len(indices) < count:
            missing = len(indices) + 1
        if missing is not None or (axis, 0) in found:
            name = f"{axis}_{missing:05d} missing" if missing is not None else f"{axis}_00000 present"
            raise InputError(folder, f"flow image {name} (x and y images must be numbered 1..{count})")
    size: tuple[int, int] | None = None
    for index in range(1, count + 1):
        planes = []
        for axis in "xy":
            path = found[(axis, index)]
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise InputError(path, "not a readable image")
            if size is None:
                size = image.shape
            if image.shape != size:
                raise InputError(path, f"image is {image.shape[1]}x{image.shape[0]} but the first flow image is {size[1]}x{size[0]}")
            planes.append(image)
        yield uint8_to_flow(np.stack(planes, axis=-1))
