"""The I3D RGB encoder on ONNX Runtime (fp32, or int8 by static quantization calibrated on the user's videos).

``OrtSnippetEncoder`` has ``SnippetEncoder``'s interface (``features``, ``logits``, ``precision``),
so extraction, classification and detection take either. Its graphs are exported once per weights
and snippet shape into the weights cache (``CACHE/onnx/``); an int8 graph is keyed also by the
calibration videos (names, sizes, modification times), so new calibration videos make a new one.
``OpenVinoSnippetEncoder`` compiles the same cached graphs with OpenVINO for the CPU: fp32 and bf16
(``INFERENCE_PRECISION_HINT`` f32 or bf16; bf16 only where OpenVINO reports BF16 among the CPU's
optimization capabilities) the fp32 graph, int8 a QDQ graph of the same calibration. Threads:
``torch.get_num_threads()`` for both runtimes.

Why ONNX Runtime static quantization for int8 (docs/detect.md): it quantizes 3D convolutions
(PyTorch's x86 int8 backend has no quantized Conv3d in its eager mode), it runs the same graph the
end-to-end export ships, and its QOperator graph keeps features within cosine 0.99 of fp32 (tested).
OpenVINO cannot read that graph (no QLinearConcat / QLinearAveragePool), so it gets a QDQ graph of the
same calibration, whose Quantize/DequantizeLinear pairs it runs with int8 convolutions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from augrgb.core.errors import InputError
from augrgb.core.files import replacing
from augrgb.extract.encoder import fold_batchnorm
from augrgb.extract.i3d import InceptionI3d
from augrgb.extract.transforms import to_unit_range

log = logging.getLogger(__name__)

OPSET = 17


class EncoderGraph(nn.Module):
    """I3D RGB with BatchNorm folded: snippets ``(B, 3, T, H, W)`` in [-1, 1] -> features ``(B, 1024)``."""

    def __init__(self, i3d: InceptionI3d, shape: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.i3d = fold_batchnorm(i3d).eval()
        with torch.no_grad():  # the average pool's kernel, static for this snippet shape (as feature_map clamps it)
            size = self._trunk(torch.zeros(1, *shape)).shape[2:]
        self.kernel = tuple(min(k, s) for k, s in zip((2, 7, 7), size))

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.i3d._trunk:
            x = layer(x)
        return x

    def forward(self, snippets: torch.Tensor) -> torch.Tensor:
        """The averaged, pooled Mixed_5c features, as ``InceptionI3d.extract_features``."""
        pooled = nn.functional.avg_pool3d(self._trunk(snippets), kernel_size=self.kernel, stride=1)
        return pooled.mean(dim=(2, 3, 4))


CALIBRATION_VIDEOS = 8  # at most this many videos of --calibrate DIR are read
CALIBRATION_FRAMES = 64  # and the first snippets of each that fit in this many frames (at least one)


class _BothOutputs(nn.Module):
    """Snippets -> (features, Kinetics logits): one graph serves extraction, detection and classification."""

    def __init__(self, i3d: InceptionI3d, shape: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.graph = EncoderGraph(i3d, shape)

    def forward(self, snippets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1024)`` features and ``(B, 400)`` logits, as ``extract_features`` and ``forward``."""
        pooled = nn.functional.avg_pool3d(self.graph._trunk(snippets), kernel_size=self.graph.kernel, stride=1)
        return pooled.mean(dim=(2, 3, 4)), self.graph.i3d.logits(pooled).mean(dim=(2, 3, 4))


def export_runtime_graph(i3d: InceptionI3d, shape: tuple[int, int, int, int], out: Path) -> Path:
    """Write the fp32 features+logits graph for snippets of ``shape`` = (3, T, H, W), dynamic batch."""
    graph = _BothOutputs(i3d, shape).eval()
    with replacing(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(graph, (torch.zeros(2, *shape),), str(tmp), input_names=["snippets"],
                          output_names=["features", "logits"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"snippets": {0: "B"}, "features": {0: "B"}, "logits": {0: "B"}})
    return out


def calibration_videos(folder: str | Path) -> list[Path]:
    """Up to ``CALIBRATION_VIDEOS`` videos of ``folder`` (sorted), refused when there are none."""
    from augrgb.core.inputs import collect_inputs

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "--calibrate needs a folder of your videos")
    videos = sorted(collect_inputs([folder]))[:CALIBRATION_VIDEOS]
    if not videos:
        raise InputError(folder, "has no videos to calibrate int8 on")
    return videos


def calibration_snippets(videos: Sequence[Path], frames: int, fps: float, crop: str, size: int,
                         short_side: int) -> Iterator[np.ndarray]:
    """Preprocessed uint8 snippets ``(frames, size, size, 3)``: the first ``CALIBRATION_FRAMES // frames`` of each video."""
    from augrgb.extract import decode
    from augrgb.core.grid import iter_snippets
    from augrgb.extract.transforms import Preprocess

    preprocess = Preprocess(crop=crop, size=size, short_side=short_side)
    for video in videos:
        stream = (preprocess(f) for f in decode.iter_frames(video, fps=fps))
        for i, snippet in enumerate(iter_snippets(stream, frames, frames)):
            if i >= max(1, CALIBRATION_FRAMES // frames):
                break
            yield snippet.frames


def _calibration_key(videos: Sequence[Path]) -> str:
    stats = [(str(v.resolve()), v.stat().st_size, int(v.stat().st_mtime)) for v in videos]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:12]


def quantize_int8(fp32: Path, out: Path, snippets: Iterator[np.ndarray], quant_format: str = "QOperator") -> Path:
    """ONNX Runtime static quantization (QOperator: QLinearConv, for ONNX Runtime; QDQ: Quantize/DequantizeLinear
    pairs, which OpenVINO runs as int8; int8 per-channel weights, uint8 activations, min-max ranges merged one
    snippet at a time, so calibration memory does not grow with the snippets)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    clips = list(snippets)  # uint8, a few MB each
    if not clips:
        raise InputError("--calibrate", "no snippet could be decoded from the calibration videos")

    class Reader(CalibrationDataReader):
        """The calibration snippets, one per step, over the range ONNX Runtime asks for."""

        def __init__(self) -> None:
            self.set_range(0, len(clips))

        def __len__(self) -> int:
            return len(clips)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.pending = iter(clips[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            clip = next(self.pending, None)
            return None if clip is None else {"snippets": to_model_input(clip[None])}

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its "pre-process first" advice
    with replacing(out) as tmp:
        quantize_static(str(fp32), str(tmp), Reader(), quant_format=getattr(QuantFormat, quant_format), per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        extra_options={"CalibStridedMinMax": 1})
    return out


def to_model_input(snippets: np.ndarray) -> np.ndarray:
    """uint8 ``(B, T, H, W, 3)`` -> float32 ``(B, 3, T, H, W)`` in [-1, 1] (float input is taken as it is)."""
    x = to_unit_range(snippets) if snippets.dtype == np.uint8 else snippets.astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))


class OrtSnippetEncoder:
    """Encode snippets ``(B, T, H, W, 3)`` uint8 with ONNX Runtime; ``SnippetEncoder``'s interface."""

    RUNTIME = "onnxruntime"
    PRECISIONS = ("fp32", "int8")
    INT8_FORMAT, INT8_TAG = "QOperator", "int8"  # quantization format of the int8 graph, and its cache name

    def __init__(self, i3d: InceptionI3d, weights_sha256: str, precision: str = "fp32", cache: str | Path | None = None,
                 calibrate: str | Path | None = None, fps: float = 25.0, crop: str = "center", short_side: int = 256,
                 threads: int | None = None) -> None:
        from augrgb.extract.weights import cache_dir

        if precision not in self.PRECISIONS:
            raise InputError("--precision", f"{precision} does not run with --runtime {self.RUNTIME} "
                                            f"({' or '.join(self.PRECISIONS)})")
        if precision == "int8" and calibrate is None:
            raise InputError("--precision int8", "needs --calibrate DIR")
        self.i3d, self.sha, self.precision = i3d, weights_sha256, precision
        self.folder = cache_dir(cache) / "onnx"
        self.videos = calibration_videos(calibrate) if precision == "int8" else []
        self.grid = {"fps": fps, "crop": crop, "short_side": short_side}
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.sessions: dict[tuple[int, ...], object] = {}

    def graph_path(self, shape: tuple[int, int, int, int]) -> Path:
        """The cached graph for snippets of ``shape`` (exported, and quantized for int8, on first use); bf16 runs the fp32 one."""
        _, t, h, w = shape
        fp32 = self.folder / f"i3d-rgb-{self.sha[:16]}-{t}x{h}x{w}-fp32.onnx"
        if not fp32.is_file():
            export_runtime_graph(self.i3d, shape, fp32)
        if self.precision != "int8":
            return fp32
        key = _calibration_key(self.videos)
        int8 = self.folder / f"i3d-rgb-{self.sha[:16]}-{t}x{h}x{w}-{self.INT8_TAG}-{key}.onnx"
        if not int8.is_file():
            if h != w:
                raise InputError("--precision int8", f"calibrates square crops only, got {h}x{w}")
            clips = calibration_snippets(self.videos, t, self.grid["fps"], self.grid["crop"], h, max(self.grid["short_side"], h))
            log.info("calibrating int8 on %d videos of %s", len(self.videos), self.videos[0].parent)
            quantize_int8(fp32, int8, clips, self.INT8_FORMAT)
        return int8

    def session(self, shape: tuple[int, int, int, int]):
        """The ONNX Runtime session for snippets of ``shape``."""
        if shape not in self.sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self.sessions[shape] = ort.InferenceSession(str(self.graph_path(shape)), options, providers=["CPUExecutionProvider"])
        return self.sessions[shape]

    def _run(self, snippets: np.ndarray) -> list[np.ndarray]:
        x = to_model_input(np.asarray(snippets))
        return self.session(tuple(x.shape[1:])).run(None, {"snippets": x})

    def features(self, snippets: np.ndarray) -> np.ndarray:
        """1024-d features of each snippet."""
        return self._run(snippets)[0].astype(np.float32)

    def logits(self, snippets: np.ndarray) -> np.ndarray:
        """Kinetics-400 logits of each clip."""
        return self._run(snippets)[1].astype(np.float32)


OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 layers come from the graph; the rest stays f32


def openvino_core():
    """An ``openvino.Core``, or one line saying how to install OpenVINO."""
    try:
        import openvino
    except ImportError:
        raise InputError("--runtime openvino", "needs the openvino package: pip install 'augrgb[openvino]'") from None
    return openvino.Core()


def compile_config(precision: str, threads: int, capabilities: list[str]) -> dict[str, object]:
    """The ``compile_model`` settings for ``precision``; bf16 refused where the CPU lacks it (``capabilities``)."""
    if precision == "bf16" and "BF16" not in capabilities:
        raise InputError("--precision bf16", f"this CPU has no bf16 support in OpenVINO (it offers {', '.join(capabilities)}); "
                                             "use fp32 or int8")
    return {"INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision], "INFERENCE_NUM_THREADS": threads}


class OpenVinoSnippetEncoder(OrtSnippetEncoder):
    """Encode snippets ``(B, T, H, W, 3)`` uint8 with OpenVINO on the CPU; ``SnippetEncoder``'s interface."""

    RUNTIME = "openvino"
    PRECISIONS = ("fp32", "bf16", "int8")
    INT8_FORMAT, INT8_TAG = "QDQ", "int8qdq"

    def __init__(self, i3d: InceptionI3d, weights_sha256: str, precision: str = "fp32", cache: str | Path | None = None,
                 calibrate: str | Path | None = None, fps: float = 25.0, crop: str = "center", short_side: int = 256,
                 threads: int | None = None) -> None:
        super().__init__(i3d, weights_sha256, precision, cache, calibrate, fps, crop, short_side, threads)
        self.core = openvino_core()
        self.config = compile_config(precision, self.threads, self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))

    def session(self, shape: tuple[int, int, int, int]):
        """The compiled model for snippets of ``shape`` (dynamic batch)."""
        if shape not in self.sessions:
            self.sessions[shape] = self.core.compile_model(str(self.graph_path(shape)), "CPU", self.config)
        return self.sessions[shape]

    def _run(self, snippets: np.ndarray) -> list[np.ndarray]:
        x = to_model_input(np.asarray(snippets))
        compiled = self.session(tuple(x.shape[1:]))
        out = compiled({"snippets": x})
        return [out[compiled.output(name)] for name in ("features", "logits")]  # copies (share_outputs=False)


def make_encoder(i3d: InceptionI3d, sha: str, runtime: str, precision: str, device: str = "cpu",
                 cache: str | Path | None = None, calibrate: str | Path | None = None, fps: float = 25.0,
                 crop: str = "center", short_side: int = 256):
    """A ``SnippetEncoder`` (torch), ``OrtSnippetEncoder`` (onnxruntime) or ``OpenVinoSnippetEncoder`` (openvino)
    for a resolved runtime and precision."""
    if runtime == "onnxruntime":
        return OrtSnippetEncoder(i3d, sha, precision, cache, calibrate, fps, crop, short_side)
    if runtime == "openvino":
        if not device.startswith("cpu"):
            raise InputError("--device", f"--runtime openvino runs on the CPU here, not {device}")
        return OpenVinoSnippetEncoder(i3d, sha, precision, cache, calibrate, fps, crop, short_side)
    from augrgb.extract.encoder import SnippetEncoder

    return SnippetEncoder(i3d, precision, device)

