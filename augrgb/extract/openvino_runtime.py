"""The I3D RGB encoder on OpenVINO: the cached ONNX graphs of ``augrgb.extract.runtime``, compiled for the CPU.

fp32 and bf16 compile the same fp32 graph with ``INFERENCE_PRECISION_HINT`` f32 or bf16 (bf16 only
where OpenVINO reports BF16 among the CPU's optimization capabilities); int8 compiles the QDQ graph
of the ``--calibrate`` videos, whose Quantize/DequantizeLinear pairs OpenVINO turns into int8
convolutions (VNNI / AMX-INT8). Threads: ``torch.get_num_threads()``, as the other runtimes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augrgb.core.errors import InputError
from augrgb.extract.i3d import InceptionI3d
from augrgb.extract.runtime import OrtSnippetEncoder, to_model_input

HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 layers come from the graph; the rest stays f32


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
    return {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": threads}


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
        return [np.array(out[compiled.output(name)], np.float32) for name in ("features", "logits")]
