"""End-to-end ONNX or OpenVINO IR export of the RGB-only detector: preprocessed snippets -> per-class probabilities.

The export is a folder of two graphs and one metadata file (see docs/detect.md, "End-to-end export"):

- ``encoder.onnx``: I3D RGB, snippets ``(B, 3, snippet, size, size)`` float32 in [-1, 1] -> features
  ``(B, 1024)``; B is dynamic, so a video is encoded in batches with bounded memory;
- ``temporal.onnx``: temporal filter + head, the whole video's features ``(1, 1024, T)`` and a mask
  ``(1, 1, T)`` of ones -> probabilities ``(1, K', T)`` (softmax heads: background last);
- ``augrgb.json``: classes, snippet grid, preprocessing, thresholds, decoding, I3D weights hash and
  the SHA-256 of both graphs. Each graph also carries the same metadata as ONNX ``metadata_props``
  (key ``augrgb``: the whole JSON; plus one key per field), so a graph copied alone stays described.

``--format openvino`` converts the two ONNX graphs to OpenVINO IR (``encoder.xml``/``.bin``,
``temporal.xml``/``.bin``, fp32 weights), the metadata in each model's ``rt_info`` under the same
keys, and ``augrgb.json`` also gives each ``.bin``'s SHA-256.

``--format torchscript`` writes one file instead (:func:`export_torchscript_end_to_end`): a traced
module whose ``forward`` maps a video's preprocessed snippets to probabilities, with ``encode`` and
``temporal`` as the two halves for streaming long videos, and the same metadata as the extra file
``augrgb.json``; ``torch.jit.load`` alone reads it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from augrgb.core.errors import InputError
from augrgb.detect.export import export_onnx
from augrgb.detect.model import Detector
from augrgb.detect.settings import DetectConfig
from augrgb.extract.i3d import InceptionI3d
from augrgb.extract.runtime import OPSET, EncoderGraph

FORMATS = {"onnx": "augrgb.onnx-end-to-end/1", "openvino": "augrgb.openvino-end-to-end/1",
           "torchscript": "augrgb.torchscript-end-to-end/1"}
SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}
ENCODER_FILE, TEMPORAL_FILE, METADATA_FILE = "encoder.onnx", "temporal.onnx", "augrgb.json"
METADATA_KEY = "augrgb"
PREPROCESSING_RULES = {
    "resample": "output frame k at the model fps shows source frame floor(k * source_fps / fps) (exact fractions)",
    "resize": "crop 'center': scale the RGB uint8 frame so its short side is short_side (OpenCV INTER_LINEAR, "
              "sizes rounded), then take the centred size x size crop ((new - size) // 2 from top and left); "
              "crop 'resize': straight to size x size",
    "scale": "x / 127.5 - 1 (uint8 0..255 -> float32 -1..1)",
    "layout": "snippets (B, 3, snippet, size, size) float32, RGB channel order",
    "snippets": "snippet i covers frames [i * stride, i * stride + snippet); snippets are added until the last frame "
                "is covered, the missing frames of the last snippet (or of a video shorter than one) repeat the last frame",
}


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snippet_shape(detector: Detector) -> tuple[int, int, int, int]:
    """``(3, snippet, size, size)``: one preprocessed snippet of this detector's grid."""
    cfg = detector.extract_config()
    return 3, int(cfg.snippet), int(cfg.size), int(cfg.size)


def export_encoder_onnx(i3d: InceptionI3d, shape: tuple[int, int, int, int], out: Path) -> Path:
    """Write the I3D snippet encoder (dynamic batch) to ``out`` (opset 17, TorchScript-based exporter)."""
    graph = EncoderGraph(i3d, shape)
    example = torch.zeros(2, *shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(graph, (example,), str(out), input_names=["snippets"], output_names=["features"],
                          dynamic_axes={"snippets": {0: "B"}, "features": {0: "B"}}, opset_version=OPSET, dynamo=False)
    return out


def end_to_end_metadata(detector: Detector, weights_sha256: str, fmt: str = "onnx") -> dict[str, Any]:
    """Everything a deployment needs besides the two graphs (the ``augrgb.json`` content, graph hashes aside)."""
    cfg = detector.extract_config()
    _, snippet, size, _ = snippet_shape(detector)
    return {
        "format": FORMATS[fmt],
        "classes": detector.classes,
        "head": detector.head,
        "thresholds": detector.thresholds,
        "decoding": DetectConfig().decoding(detector.head, len(detector.classes), detector.thresholds),
        "grid": {"fps": float(cfg.fps), "snippet": int(cfg.snippet), "stride": int(cfg.stride)},
        "preprocessing": {"crop": cfg.crop, "size": int(cfg.size), "short_side": int(cfg.short_side), **PREPROCESSING_RULES},
        "encoder": detector.features.get("encoder", "i3d-inceptionv1-kinetics400-rgb"),
        "weights_sha256": weights_sha256,
        "source_checkpoint_sha256": detector.sha256,
        "precision": "fp32",
        **(torchscript_methods(snippet, size) if fmt == "torchscript" else {"graphs": {
            "encoder": {"file": "encoder" + SUFFIX[fmt], "inputs": {"snippets": f"(B, 3, {snippet}, {size}, {size}) float32"},
                        "outputs": {"features": "(B, 1024) float32"}},
            "temporal": {"file": "temporal" + SUFFIX[fmt], "inputs": {"features": "(1, 1024, T) float32", "mask": "(1, 1, T) float32 ones"},
                         "outputs": {"probabilities": "(1, K', T) float32; softmax heads: background is the last row"}},
        }}),
    }


def torchscript_methods(snippet: int, size: int) -> dict[str, Any]:
    """The ``methods`` entry of a TorchScript end-to-end export's metadata: what each traced method takes and gives."""
    snippets = f"(B, 3, {snippet}, {size}, {size}) float32 in [-1, 1]"
    probabilities = "(1, K', T) float32; softmax heads: background is the last row"
    return {"methods": {
        "forward": {"inputs": {"snippets": f"{snippets}: every snippet of one video, in order (B = T)"},
                    "outputs": {"probabilities": probabilities}},
        "encode": {"inputs": {"snippets": f"{snippets}: any batch"}, "outputs": {"features": "(B, 1024) float32"}},
        "temporal": {"inputs": {"features": "(1, 1024, T) float32", "mask": "(1, 1, T) float32 ones"},
                     "outputs": {"probabilities": probabilities}},
    }}


class EndToEnd(torch.nn.Module):
    """I3D RGB + temporal filter + head in one module: ``forward`` (snippets -> probabilities), ``encode``, ``temporal``."""

    def __init__(self, i3d: InceptionI3d, shape: tuple[int, int, int, int], temporal: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = EncoderGraph(i3d, shape)
        self.filter = temporal

    def encode(self, snippets: torch.Tensor) -> torch.Tensor:
        """``(B, 3, snippet, size, size)`` -> features ``(B, 1024)``."""
        return self.encoder(snippets)

    def temporal(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Features ``(1, 1024, T)`` and a mask of ones ``(1, 1, T)`` -> probabilities ``(1, K', T)``."""
        return self.filter(features, mask)

    def forward(self, snippets: torch.Tensor) -> torch.Tensor:
        """A video's ``T`` snippets, in order -> probabilities ``(1, K', T)``."""
        features = self.encoder(snippets).t().unsqueeze(0)
        return self.filter(features, torch.ones_like(features[:, :1]))


def export_torchscript_end_to_end(detector: Detector, out: str | Path, weights: str | None = None,
                                  cache: str | None = None) -> Path:
    """Trace :class:`EndToEnd` (``forward``, ``encode``, ``temporal``) into one TorchScript file ``out``, the metadata
    inside as the extra file ``augrgb.json`` (``torch.jit.load(out, _extra_files={"augrgb.json": ""})``)."""
    from augrgb.core.files import replacing

    out = Path(out)
    if out.is_dir():
        raise InputError(out, "is a folder; the TorchScript end-to-end export is one file")
    i3d, sha = load_checked_i3d(detector, weights, cache)
    shape = snippet_shape(detector)
    module = EndToEnd(i3d, shape, detector.model.eval().cpu()).eval()
    generator = torch.Generator().manual_seed(0)
    snippets = torch.rand(3, *shape, generator=generator) * 2 - 1
    features = torch.randn(1, 1024, 5, generator=generator)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit is deprecated, still supported
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace_module(module, {"forward": (snippets,), "encode": (snippets,),
                                                 "temporal": (features, torch.ones(1, 1, 5))})
        checks = {"forward": (snippets[:2],), "temporal": (features[..., :2], torch.ones(1, 1, 2))}
        for method, inputs in checks.items():  # another length than traced: the trace must not have frozen it
            if not torch.allclose(getattr(traced, method)(*inputs), getattr(module, method)(*inputs), atol=1e-5):
                raise InputError(detector.meta.path, f"its traced {method} differs from the model on another number of "
                                                     "snippets; TorchScript cannot export this temporal filter")
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp:
        torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(end_to_end_metadata(detector, sha, "torchscript"))})
    return out


def metadata_entries(meta: dict[str, Any]) -> dict[str, str]:
    """The graphs' metadata: the whole JSON under ``augrgb`` and one ``augrgb.<field>`` key per field."""
    entries = {METADATA_KEY: meta, **{f"{METADATA_KEY}.{k}": v for k, v in meta.items()}}
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in entries.items()}


def _add_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Store ``meta`` in the ONNX file's metadata_props (``metadata_entries``)."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata_entries(meta).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def to_openvino_ir(onnx_path: Path, xml: Path, meta: dict[str, Any]) -> None:
    """Convert an ONNX graph to OpenVINO IR ``xml`` + ``.bin`` (fp32 weights), ``meta`` in its rt_info."""
    import openvino

    model = openvino.Core().read_model(str(onnx_path))  # the ONNX frontend (convert_model would try torch.export first)
    for key, value in metadata_entries(meta).items():
        model.set_rt_info(value, key)
    openvino.save_model(model, str(xml), compress_to_fp16=False)


def load_checked_i3d(detector: Detector, weights: str | None = None, cache: str | None = None) -> tuple[InceptionI3d, str]:
    """The I3D RGB network and its SHA-256, refused when not the weights the detector was trained on."""
    from augrgb.extract.pipeline import ENCODERS
    from augrgb.extract.weights import load_i3d, weights_path

    i3d, sha, _ = load_i3d("rgb", path=weights, cache=cache)
    detector.check_features({**detector.extract_config().grid_attrs(), "encoder": ENCODERS["rgb"], "weights_sha256": sha},
                            weights or weights_path("i3d-rgb", cache))
    return i3d, sha


def export_end_to_end(detector: Detector, out: str | Path, weights: str | None = None, cache: str | None = None,
                      fmt: str = "onnx") -> Path:
    """Write the end-to-end folder ``out`` in ``fmt`` (onnx or openvino; module docstring); replaces an earlier export there."""
    needs = {"onnx": ["onnx"], "openvino": ["onnx", "openvino"]}[fmt]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        extras = "export" if fmt == "onnx" else "export,openvino"
        raise InputError(f"--format {fmt}", f"needs the {' and '.join(missing)} package: pip install 'augrgb[{extras}]'")
    out = Path(out)
    if out.exists() and not (out.is_dir() and (out / METADATA_FILE).is_file()):
        raise InputError(out, "exists and is not an earlier end-to-end export (the export is a folder)")
    i3d, sha = load_checked_i3d(detector, weights, cache)
    meta = end_to_end_metadata(detector, sha, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        export_encoder_onnx(i3d, snippet_shape(detector), tmp / ENCODER_FILE)
        export_onnx(detector, tmp / TEMPORAL_FILE)
        for name, onnx_file in (("encoder", ENCODER_FILE), ("temporal", TEMPORAL_FILE)):
            graph = meta["graphs"][name]
            if fmt == "onnx":
                _add_metadata(tmp / onnx_file, meta)
            else:
                to_openvino_ir(tmp / onnx_file, tmp / graph["file"], meta)
                (tmp / onnx_file).unlink()
                graph["bin"] = Path(graph["file"]).with_suffix(".bin").name
        for graph in meta["graphs"].values():
            graph["sha256"] = file_sha256(tmp / graph["file"])
            if "bin" in graph:
                graph["bin_sha256"] = file_sha256(tmp / graph["bin"])
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
