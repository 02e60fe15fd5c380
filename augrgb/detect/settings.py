"""Typed detection settings: how probabilities become intervals, and how inference runs.

The feature grid (fps, snippet, stride, crop) is not here: it comes from the student checkpoint.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from augrgb.core.errors import InputError
from augrgb.detect.intervals import DECODERS
from augrgb.models.checkpoint import DEFAULT_THRESHOLD

_OPTIONS = ("threshold", "close_gap", "min_length", "levels", "nms_iou")
_PARAMETER = {"threshold": "thresholds"}  # option -> decoder argument, where the names differ


class DetectConfig(BaseModel):
    """Options of ``augrgb detect`` (YAML via --config, or command-line options)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    decoder: str = Field("auto", description="interval decoder: auto (sparse for softmax heads, dense for sigmoid), sparse, dense, multi-threshold")
    threshold: float | None = Field(None, gt=0, le=1, description="dense: one threshold for every class (default: the checkpoint's, else 0.5)")
    close_gap: float | None = Field(None, ge=0, description="dense, multi-threshold: join runs of a class at most this many seconds apart (default 0)")
    min_length: float | None = Field(None, ge=0, description="drop intervals shorter than this many seconds (default 0)")
    levels: list[float] | None = Field(None, description="multi-threshold: the thresholds (default 0.1 .. 0.9)")
    nms_iou: float | None = Field(None, gt=0, le=1, description="multi-threshold: class-wise NMS tIoU (default 0.5)")
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="I3D precision: auto (int8 with calibrate; openvino: bf16 where OpenVINO reports bf16 for the "
                            "CPU; torch: bf16 on CPUs with AMX and bf16 GPUs, measured once on CPUs with bf16 but no AMX; "
                            "else fp32), fp32, bf16 (torch, openvino), int8 (onnxruntime, openvino; with calibrate)")
    runtime: Literal["auto", "torch", "onnxruntime", "openvino"] = Field(
        "auto", description="runtime of the I3D encoder: auto (openvino on the CPU where it is installed, else torch), "
                            "torch, onnxruntime, openvino")
    calibrate: str | None = Field(None, description="int8: folder of your own videos to calibrate the int8 ranges on")
    batch_size: int = Field(8, ge=1, description="snippets per I3D forward pass")
    backend: Literal["decord", "pyav", "opencv"] | None = Field(None, description="video decoder")
    device: str = Field("cpu", description="torch device")
    txt_label_base: int = Field(0, ge=0, description="label of the first class in the per-video txt files (PKU-MMD 1, TSU 0)")

    def decoder_name(self, head: str) -> str:
        """The decoder to use with a ``head`` (``auto`` resolved), checked against the head."""
        name = ("sparse" if head == "softmax" else "dense") if self.decoder == "auto" else self.decoder
        DECODERS.get(name)
        if name == "sparse" and head != "softmax":
            raise InputError("--decoder sparse", "needs a softmax head with a background class; this model is sigmoid")
        return name

    def decoding(self, head: str, num_classes: int, thresholds: list[float] | None) -> dict[str, Any]:
        """The decoder's name and its full options (what a run records and ``build_decoder`` reads)."""
        name = self.decoder_name(head)
        parameters = inspect.signature(DECODERS.get(name)).parameters
        allowed = [k for k in _OPTIONS if _PARAMETER.get(k, k) in parameters]
        given = [k for k in _OPTIONS if getattr(self, k) is not None]
        stray = [k for k in given if k not in allowed]
        if stray:
            raise InputError(f"--{stray[0].replace('_', '-')}", f"does not apply to the {name} decoder (its options: "
                                                                 f"{', '.join(allowed) or 'none'})")
        options: dict[str, Any] = {k: getattr(self, k) for k in allowed if getattr(self, k) is not None}
        if name == "dense":
            if "threshold" in options:
                options["thresholds"] = [options.pop("threshold")] * num_classes
            else:
                options["thresholds"] = list(thresholds) if thresholds is not None else [DEFAULT_THRESHOLD] * num_classes
        return {"name": name, "options": options}


def build_decoder(decoding: dict[str, Any]):
    """The decoder described by :meth:`DetectConfig.decoding`."""
    return DECODERS.build(decoding["name"], **decoding["options"])
