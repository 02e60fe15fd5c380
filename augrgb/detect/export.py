"""Export the RGB student for deployment without augrgb: TorchScript or ONNX (registry ``EXPORTERS``).

The exported network maps I3D RGB features ``(1, 1024, T)`` (float32) and a mask ``(1, 1, T)`` (ones)
to probabilities ``(1, K', T)`` (background last for softmax heads), for any T >= 1. The checkpoint's
metadata (classes, head, feature settings, thresholds) travels inside the file: TorchScript extra file
``augrgb.json``, ONNX metadata property ``augrgb``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from augrgb.core.errors import InputError
from augrgb.core.files import replacing
from augrgb.core.registry import Registry
from augrgb.detect.model import Detector

EXPORTERS: Registry = Registry("export format")
METADATA_KEY = "augrgb"
_EXAMPLE_T = 64  # snippets in the example input; other lengths are checked after export


def export_metadata(detector: Detector) -> dict[str, Any]:
    """What a deployment needs besides the weights: classes, head, feature settings, thresholds, provenance."""
    return {"classes": detector.classes, "head": detector.head, "features": detector.features,
            "thresholds": detector.thresholds, "inputs": {"features": "(1, 1024, T) float32", "mask": "(1, 1, T) float32 ones"},
            "output": "probabilities (1, K', T); softmax heads: background is the last row",
            "source_checkpoint_sha256": detector.sha256}


def _example(detector: Detector, length: int = _EXAMPLE_T) -> tuple[torch.Tensor, torch.Tensor]:
    in_dim = detector.meta.in_dim
    generator = torch.Generator().manual_seed(0)
    return torch.randn(1, in_dim, length, generator=generator), torch.ones(1, 1, length)


@EXPORTERS.register("torchscript")
def export_torchscript(detector: Detector, out: Path) -> Path:
    """Trace the probability model (``torch.jit.load`` reads it back; no augrgb needed)."""
    model = detector.model.eval().cpu()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit is deprecated, still supported
        traced = torch.jit.trace(model, _example(detector), check_trace=True, check_inputs=[_example(detector, 5)])
        with replacing(out) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={f"{METADATA_KEY}.json": json.dumps(export_metadata(detector))})
    return out


@EXPORTERS.register("onnx")
def export_onnx(detector: Detector, out: Path) -> Path:
    """ONNX (opset 17) with a dynamic time axis; needs the ``augrgb[export]`` extra (onnx, onnxruntime)."""
    try:
        import onnx
    except ImportError:
        raise InputError("--format onnx", "needs the onnx package: pip install 'augrgb[export]'") from None
    model = detector.model.eval().cpu()
    dynamic = {"features": {2: "T"}, "mask": {2: "T"}, "probabilities": {2: "T"}}
    with replacing(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript-based exporter, no onnxscript needed
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)  # PDAN's strided slices
        torch.onnx.export(model, _example(detector), str(tmp), input_names=["features", "mask"],
                          output_names=["probabilities"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(export_metadata(detector))
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out


def export(detector: Detector, fmt: str, out: str | Path) -> Path:
    """Write the student in format ``fmt`` (``torchscript`` or ``onnx``) to ``out``."""
    return EXPORTERS.build(fmt, detector, Path(out))
