"""Typed extraction settings (``augrgb/configs/i3d_*.yaml`` presets validate into :class:`ExtractConfig`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExtractConfig(BaseModel):
    """How videos become snippet features; stored with every feature file as provenance."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    fps: float = Field(25.0, gt=0, description="frames per second the video is resampled to (by frame index)")
    snippet: int = Field(16, ge=1, description="frames per snippet; one feature vector per snippet")
    stride: int = Field(16, ge=1, description="frames between snippet starts (16: non-overlapping; 8: Charades-style)")
    crop: Literal["center", "resize"] = Field("center", description="center: short side 256 then 224 centre crop; resize: straight to 224x224")
    size: int = Field(224, ge=32, description="network input height and width")
    short_side: int = Field(256, ge=32, description="short side before the centre crop")
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "fp32", description="inference precision (auto, bf16 and int8: see docs/detect.md, Runtime and precision; int8 "
                            "needs calibrate; flow runs fp32 or bf16)")
    runtime: Literal["auto", "torch", "onnxruntime", "openvino"] = Field(
        "torch", description="runtime of the RGB I3D (auto: openvino on the CPU where it is installed, else torch; flow: torch)")
    calibrate: str | None = Field(None, description="int8: folder of your own videos to calibrate the int8 ranges on")
    batch_size: int = Field(8, ge=1, description="snippets per forward pass")
    workers: int = Field(1, ge=1, description="videos processed in parallel processes")
    backend: Literal["decord", "pyav", "opencv"] | None = Field(None, description="decoder; default decord where installed, else pyav")
    device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1 ...")

    @model_validator(mode="after")
    def _grid_is_valid(self) -> "ExtractConfig":
        if self.stride > self.snippet:
            raise ValueError(f"stride ({self.stride}) must not exceed snippet ({self.snippet}): frames would be skipped")
        if self.crop == "center" and self.short_side < self.size:
            raise ValueError(f"short_side ({self.short_side}) must be >= size ({self.size}) for a centre crop")
        return self

    def grid_attrs(self) -> dict[str, object]:
        """The settings that define what a feature means (compared when features meet a model)."""
        return {"fps": self.fps, "snippet": self.snippet, "stride": self.stride, "crop": self.crop,
                "size": self.size, "short_side": self.short_side}
