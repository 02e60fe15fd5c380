"""Which runtime and precision run the I3D fastest here: ``auto`` from the CPU's flags (or the GPU).

``auto`` never picks int8: int8 needs a calibration on the user's videos (``--calibrate DIR``) and
is chosen explicitly. On CPUs ``auto`` picks bf16 only where AMX-BF16 exists: without AMX oneDNN's
bf16 3D convolutions are slower than fp32 (AVX-512 BF16 alone does not help them; see docs/detect.md).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from augrgb.core.errors import InputError

RUNTIMES = ("torch", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
_SUPPORTED = {"torch": ("fp32", "bf16"), "onnxruntime": ("fp32", "int8")}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty where unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (``platform.processor()`` where /proc/cpuinfo is missing)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_summary(flags: set[str] | None = None) -> str:
    """The CPU model and its AMX / VNNI / bf16 flags, for benchmark and run records."""
    flags = cpu_flags() if flags is None else flags
    wanted = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni")
    return f"{cpu_model()} [{' '.join(f for f in wanted if f in flags) or 'no AMX/VNNI/bf16 flags'}]"


@dataclass(frozen=True)
class Choice:
    """A resolved runtime and precision, with why (recorded in outputs)."""

    runtime: str
    precision: str
    reason: str

    def as_record(self) -> dict[str, str]:
        """The fields a run record or feature store stores."""
        return {"runtime": self.runtime, "precision": self.precision, "precision_reason": self.reason}


def auto_precision(runtime: str = "torch", device: str = "cpu", flags: set[str] | None = None) -> tuple[str, str]:
    """(precision, reason) that ``auto`` picks for this runtime on this device."""
    if device.startswith("cuda"):
        import torch

        if runtime == "torch" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16", "GPU with bf16 support"
        return "fp32", "GPU without bf16 support in this runtime"
    flags = cpu_flags() if flags is None else flags
    if runtime == "torch" and "amx_bf16" in flags:
        return "bf16", "CPU has AMX-BF16"
    if runtime == "torch":
        return "fp32", "CPU without AMX: oneDNN bf16 3D convolutions are slower than fp32"
    return "fp32", "onnxruntime: int8 needs --calibrate DIR and is never picked automatically"


def resolve(runtime: str = "torch", precision: str = "auto", device: str = "cpu", calibrate: str | Path | None = None,
            flags: set[str] | None = None) -> Choice:
    """Check a runtime/precision pair and resolve ``auto``; refuses what the runtime cannot run."""
    if runtime not in RUNTIMES:
        raise InputError("--runtime", f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    if precision not in PRECISIONS:
        raise InputError("--precision", f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    if precision == "auto":
        chosen, reason = auto_precision(runtime, device, flags)
    else:
        chosen, reason = precision, "given"
    if chosen not in _SUPPORTED[runtime]:
        other = next(r for r, p in _SUPPORTED.items() if chosen in p)
        raise InputError("--precision", f"{chosen} runs with --runtime {other}, not {runtime} "
                                        f"({runtime} runs {' and '.join(_SUPPORTED[runtime])})")
    if runtime == "onnxruntime" and not device.startswith("cpu"):
        raise InputError("--device", f"--runtime onnxruntime runs on the CPU here, not {device}")
    if chosen == "int8" and calibrate is None:
        raise InputError("--precision int8", "needs --calibrate DIR: a few of your own videos to calibrate the int8 ranges on")
    if calibrate is not None and chosen != "int8":
        raise InputError("--calibrate", "applies to --precision int8 only")
    return Choice(runtime, chosen, reason)
