"""What a demo run is made of: a size preset from ``augrgb/configs/demo.yaml`` plus mode, the optional flow
teacher's method, the benchmark's seed and the training seeds.

The settings are recorded in ``OUT/demo.json``; a rerun with the same settings resumes, other settings
in the same folder are refused (as ``augrgb synth`` does with ``synth.json``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from augrgb.core.config import load_config
from augrgb.core.errors import InputError

PRESETS = "demo"  # augrgb/configs/demo.yaml


class DemoSize(BaseModel):
    """How big the benchmark and the models are."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    videos: int = Field(ge=2, description="benchmark videos (about 20% are held out for testing)")
    seconds: float = Field(ge=2, description="length of each video in seconds")
    frame_size: int = Field(ge=32, description="frame width and height of the videos")
    input_size: int = Field(ge=32, description="frame size I3D reads (frames resized to it): 224 px lets the RGB "
                                               "features carry the actions (docs/benchmark.md, What moves it)")
    epochs: int = Field(ge=1, description="epochs of every teacher and student run")
    encoder_epochs: int = Field(ge=1, description="epochs of the pose encoder (AGCN)")
    encoder_widths: list[int] = Field(min_length=1, description="channel widths of the AGCN blocks")


class DemoPresets(BaseModel):
    """``augrgb/configs/demo.yaml``: the named sizes."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sizes: dict[str, DemoSize]


class DemoSettings(BaseModel):
    """Everything that determines a demo's outputs (recorded in ``OUT/demo.json``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    size_name: str
    size: DemoSize
    mode: Literal["dense", "sparse"] = "dense"
    flow: Literal["dis", "tvl1"] | None = Field(None, description="optical flow of a second teacher; None: pose only")
    seed: int = Field(0, description="seed of the benchmark")
    seeds: list[int] = Field(min_length=1, description="seeds of the training runs; the table averages over them")

    @property
    def teachers(self) -> tuple[str, ...]:
        """The teacher modalities this run trains and distils from."""
        return ("pose", "flow") if self.flow else ("pose",)


def size_names() -> list[str]:
    """The sizes ``augrgb/configs/demo.yaml`` defines."""
    return list(load_config(DemoPresets, PRESETS).sizes)


def demo_settings(size: str, mode: str = "dense", flow: str | None = None, seed: int = 0,
                  seeds: list[int] | None = None) -> DemoSettings:
    """The settings of a run at preset ``size`` (training seeds default to ``[seed]``); an unknown size or a
    repeated seed is a one-line error."""
    sizes = load_config(DemoPresets, PRESETS).sizes
    if size not in sizes:
        raise InputError("--size", f"unknown size {size!r} (configs/demo.yaml has: {', '.join(sizes)})")
    seeds = [seed] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError("--seeds", f"needs distinct seeds, got {','.join(map(str, seeds)) or 'none'}")
    return DemoSettings(size_name=size, size=sizes[size], mode=mode, flow=flow, seed=seed, seeds=seeds)


def parse_seeds(text: str) -> list[int]:
    """``--seeds 0,1,2`` -> [0, 1, 2]; anything else is a one-line error."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError("--seeds", f"expected comma-separated integers like 0,1,2, got {text!r}") from None


def settings_difference(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every setting that differs (nested keys dotted)."""
    out = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += settings_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out
