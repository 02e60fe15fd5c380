"""Which runtime and precision run the I3D fastest here: ``auto`` from what is installed, the CPU's flags,
a short measurement, or the GPU.

``--runtime auto``: OpenVINO on the CPU where the ``openvino`` package imports (the optional extra
``augrgb[openvino]``), else torch. On the loaded AMD EPYC only OpenVINO reached twice torch fp32's
speed end to end (docs/detect.md); the rule reads no timings, so it is the same on every run.

``--precision auto`` picks int8 only when calibration videos are given (``--calibrate DIR``; int8
needs them) and the runtime runs int8. Otherwise, with OpenVINO: bf16 where OpenVINO reports bf16
among the CPU's capabilities (OpenVINO's own default there), else fp32. With torch on CPUs the flags
settle it where they can: AMX-BF16 -> bf16; no bf16 instructions at all -> fp32 (bf16 would be
emulated). Between the two (AVX-512 BF16 without AMX, as on AMD EPYC Zen 4 and some Xeons) oneDNN's
bf16 3D convolutions were slower than fp32 on one machine and faster on another, so ``auto`` times the
encoder that will run, at both precisions, and keeps the decision in ``CACHE/precision.json``
(deleting it measures again).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from augrgb.core.errors import InputError
from augrgb.core.files import write_text_atomic

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime", "openvino")
RUNTIME_CHOICES = ("auto", *RUNTIMES)
PRECISIONS = ("auto", "fp32", "bf16", "int8")
_SUPPORTED = {"torch": ("fp32", "bf16"), "onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "bf16", "int8")}
BF16_FLAGS = ("avx512_bf16", "avx_ne_convert", "bf16")
"""Native bf16 instructions short of AMX (x86 AVX-512 BF16 and AVX-NE-CONVERT, Arm's bf16): ``auto`` measures there."""
KEY_FLAGS = ("amx_bf16", "amx_tile", "avx512f", "avx512_bf16", "avx_ne_convert", "avx2", "bf16")
"""The flags that can change the fp32/bf16 timing, part of the measurement's cache key."""
MARGIN = 0.10
"""A measured bf16 is picked only when it takes at least this fraction less time than fp32 (timing noise; rounding)."""
REPEATS = 3
CACHE_FILE = "precision.json"


def add_runtime_options(p: argparse.ArgumentParser, runtime: str, precision: str, recorded: str | None,
                        set_defaults: bool = False, precision_note: str = "") -> None:
    """``--runtime``, ``--precision`` and ``--calibrate`` as every I3D command spells them; ``runtime``/``precision``
    name the defaults in the help, ``recorded`` where the choice is kept (None: nowhere); ``set_defaults``: argparse
    defaults too (otherwise unset options fall back to the command's config)."""
    p.add_argument("--precision", choices=PRECISIONS, default=precision if set_defaults else None,
                   help=f"I3D precision (default {precision}{precision_note}; auto: int8 with --calibrate; with openvino "
                        "bf16 where OpenVINO reports bf16 for the CPU; with torch bf16 on CPUs with AMX and on bf16 GPUs, "
                        "the faster of the two measured once on CPUs with bf16 but no AMX; else fp32"
                        + (f"; the choice and why are printed and recorded in {recorded}" if recorded else "")
                        + "); bf16 runs with --runtime torch or openvino, int8 with --runtime onnxruntime or openvino "
                          "and --calibrate DIR")
    p.add_argument("--runtime", choices=RUNTIME_CHOICES, default=runtime if set_defaults else None,
                   help=f"I3D runtime (default {runtime}; auto: openvino on the CPU where the openvino package is "
                        "installed, else torch); onnxruntime and openvino (CPU) run the exported I3D graph, cached in the "
                        "weights cache")
    p.add_argument("--calibrate", metavar="DIR", help="int8: a folder with a few of your own videos; the int8 ranges are "
                                                      "calibrated on up to 8 of them, their first 64 frames (cached); "
                                                      "with --precision auto it picks int8")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``: x86 ``flags``, Arm ``Features``; empty where unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
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
    """A resolved runtime and precision, with why each (recorded in outputs)."""

    runtime: str
    precision: str
    reason: str
    runtime_reason: str = "given"

    def as_record(self) -> dict[str, str]:
        """The fields a run record or feature store stores."""
        return {"runtime": self.runtime, "runtime_reason": self.runtime_reason, "precision": self.precision,
                "precision_reason": self.reason}

    def describe(self) -> str:
        """One line for the run's output: "I3D on openvino (why), bf16 (why)"."""
        return f"I3D on {self.runtime} ({self.runtime_reason}), {self.precision} ({self.reason})"


@dataclass(frozen=True)
class Probe:
    """The encoder about to run, for ``auto`` to time where the flags do not settle the precision."""

    forward: Callable[[str], object]  # one forward pass of a batch at "fp32" or "bf16"
    model: str  # what runs, e.g. "i3d-rgb" (part of the cache key)
    shape: tuple[int, int, int, int, int]  # the batch: snippets, frames, height, width, channels

    def batch(self) -> str:
        """The batch in words, for reasons: "batch of 8 snippets of 16 frames at 224 px"."""
        snippets, frames, height, width, _ = self.shape
        return f"batch of {snippets} snippets of {frames} frames at {height if height == width else f'{height}x{width}'} px"


def encoder_probe(model: nn.Module, shape: tuple[int, int, int, int, int], device: str = "cpu", name: str = "i3d-rgb") -> Probe:
    """A ``Probe`` that runs ``model`` as extraction does (``SnippetEncoder``) on a fixed random uint8 batch of ``shape``."""
    import numpy as np

    from augrgb.extract.encoder import SnippetEncoder

    @functools.cache
    def setup() -> tuple[SnippetEncoder, np.ndarray]:  # BatchNorm folded and the batch made only if it is timed
        return SnippetEncoder(model, "fp32", device), np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)

    def forward(precision: str) -> None:
        encoder, snippets = setup()
        encoder.precision = precision  # one folded copy of the model, run at either precision
        encoder.features(snippets)

    return Probe(forward, name, tuple(shape))


def time_precisions(forward: Callable[[str], object], repeats: int = REPEATS,
                    clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds of ``repeats`` passes at fp32 and at bf16, each after one untimed warm-up (kernel setup, allocation)."""
    samples: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for precision in samples:
        forward(precision)
    for _ in range(repeats):
        for precision, times in samples.items():  # alternated, so a change in the machine's load hits both alike
            start = clock()
            forward(precision)
            times.append(clock() - start)
    return {precision: statistics.median(times) for precision, times in samples.items()}


def decide(fp32_s: float, bf16_s: float, batch: str) -> tuple[str, str]:
    """(precision, reason) from seconds per batch: bf16 only when it takes at least ``MARGIN`` less time, else fp32.

    The reason names the rule, not the seconds (they are in the cache file): records of two runs that each
    measured must not differ by timing noise.
    """
    if bf16_s <= (1 - MARGIN) * fp32_s:
        return "bf16", f"measured here: bf16 at least {MARGIN:.0%} faster than fp32 per {batch}"
    return "fp32", f"measured here: bf16 not at least {MARGIN:.0%} faster than fp32 per {batch}"


def cache_key(probe: Probe, flags: set[str]) -> str:
    """What the timing depends on: CPU model and its bf16-related flags, torch version and threads, model and batch."""
    import torch

    kept = " ".join(f for f in KEY_FLAGS if f in flags)
    return (f"{cpu_model()} [{kept}] torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{probe.model} {'x'.join(map(str, probe.shape))}")


def _read_cache(path: Path) -> dict[str, object]:
    """The kept measurements; an unreadable or malformed file counts as empty (and is rewritten)."""
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _timings(entry: object) -> tuple[float, float] | None:
    """(fp32_s, bf16_s) of a kept measurement; None when it is malformed (measured again)."""
    if not isinstance(entry, dict):
        return None
    values = (entry.get("fp32_s"), entry.get("bf16_s"))
    if all(isinstance(v, (int, float)) and v > 0 for v in values):
        return float(values[0]), float(values[1])
    return None


def measured_precision(probe: Probe, flags: set[str], cache: str | Path | None = None) -> tuple[str, str]:
    """(precision, reason) from timing ``probe`` at fp32 and bf16, once per machine setup (kept in CACHE/precision.json)."""
    from augrgb.extract.weights import cache_dir

    path = cache_dir(cache) / CACHE_FILE
    known, key = _read_cache(path), cache_key(probe, flags)
    kept = _timings(known.get(key))
    if kept is not None:  # the same reason as when measured: reruns write the same records
        return decide(*kept, probe.batch())
    times = time_precisions(probe.forward)
    known[key] = {"fp32_s": times["fp32"], "bf16_s": times["bf16"]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(known, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("could not keep the precision measurement in %s (%s): the next run measures again", path, exc)
    return decide(times["fp32"], times["bf16"], probe.batch())


def openvino_importable() -> bool:
    """Whether the optional ``openvino`` package imports here."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def auto_runtime(device: str = "cpu") -> tuple[str, str]:
    """(runtime, reason) that ``--runtime auto`` picks: openvino on the CPU where it is installed, else torch."""
    if not device.startswith("cpu"):
        return "torch", f"auto: device {device} runs torch (openvino runs on the CPU only here)"
    if openvino_importable():
        return "openvino", "auto: the openvino package is installed and the device is the CPU"
    return "torch", "auto: the openvino package is not installed (pip install 'augrgb[openvino]')"


def pick_runtime(runtime: str = "torch", device: str = "cpu") -> tuple[str, str]:
    """(runtime, reason): ``auto`` resolved, a named runtime checked and kept ("given")."""
    if runtime == "auto":
        return auto_runtime(device)
    if runtime not in RUNTIMES:
        raise InputError("--runtime", f"unknown runtime {runtime!r} (known: {', '.join(RUNTIME_CHOICES)})")
    return runtime, "given"


def openvino_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (e.g. FP32, BF16, INT8)."""
    from augrgb.extract.runtime import openvino_core

    return list(openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def auto_precision(runtime: str = "torch", device: str = "cpu", flags: set[str] | None = None, probe: Probe | None = None,
                   cache: str | Path | None = None, calibrate: str | Path | None = None,
                   capabilities: list[str] | None = None) -> tuple[str, str]:
    """(precision, reason) that ``auto`` picks for this runtime on this device (timing ``probe`` where flags do not settle it;
    ``capabilities``: OpenVINO's for the CPU, queried when None)."""
    if calibrate is not None:  # check() refused --calibrate for runtimes without int8
        return "int8", "calibration videos given (--calibrate)"
    if device.startswith("cuda"):
        import torch

        if runtime == "torch" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16", "GPU with bf16 support"
        return "fp32", "GPU without bf16 support in this runtime"
    if runtime == "openvino":
        capabilities = openvino_capabilities() if capabilities is None else capabilities
        if "BF16" in capabilities:
            return "bf16", "openvino reports bf16 support on this CPU (OpenVINO's own default there)"
        return "fp32", "openvino reports no bf16 support on this CPU"
    if runtime != "torch":
        return "fp32", "onnxruntime: int8 needs --calibrate DIR and is never picked automatically"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "bf16", "CPU has AMX-BF16"
    native = [f for f in BF16_FLAGS if f in flags]
    if not native:
        return "fp32", "CPU without bf16 instructions: bf16 would be emulated"
    if probe is None:
        return "fp32", f"CPU with {'/'.join(native)} but no AMX; not measured (no encoder given to time)"
    return measured_precision(probe, flags, cache)


def check(runtime: str = "torch", precision: str = "auto", device: str = "cpu", calibrate: str | Path | None = None) -> tuple[str, str]:
    """Refuse a runtime/precision pair the runtime cannot run, before any work (``auto`` precision always resolves to
    one it can); returns (runtime, reason) with ``--runtime auto`` resolved."""
    runtime, why = pick_runtime(runtime, device)
    picked = f" (--runtime auto picked {runtime}: {why.removeprefix('auto: ')})" if why != "given" else ""
    if precision not in PRECISIONS:
        raise InputError("--precision", f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    if precision != "auto" and precision not in _SUPPORTED[runtime]:
        other = " or ".join(r for r, p in _SUPPORTED.items() if precision in p)
        raise InputError("--precision", f"{precision} runs with --runtime {other}, not {runtime} "
                                        f"({runtime} runs {' and '.join(_SUPPORTED[runtime])}){picked}")
    if runtime == "onnxruntime" and not device.startswith("cpu"):
        raise InputError("--device", f"--runtime onnxruntime runs on the CPU here, not {device}")
    if precision == "int8" and calibrate is None:
        raise InputError("--precision int8", "needs --calibrate DIR: a few of your own videos to calibrate the int8 ranges on")
    if calibrate is not None and precision not in ("int8", "auto"):
        raise InputError("--calibrate", "applies to --precision int8 only (or auto, which then picks int8)")
    if calibrate is not None and "int8" not in _SUPPORTED[runtime]:
        raise InputError("--calibrate", f"calibrates int8, which --runtime {runtime} does not run "
                                        f"(int8 runs with onnxruntime or openvino){picked}")
    return runtime, why


def resolve(runtime: str = "torch", precision: str = "auto", device: str = "cpu", calibrate: str | Path | None = None,
            flags: set[str] | None = None, probe: Probe | None = None, cache: str | Path | None = None) -> Choice:
    """Check a runtime/precision pair and resolve ``auto`` runtime and precision (``probe``: the encoder to time;
    ``cache``: the weights cache)."""
    runtime, why = check(runtime, precision, device, calibrate)
    if precision != "auto":
        return Choice(runtime, precision, "given", why)
    return Choice(runtime, *auto_precision(runtime, device, flags, probe, cache, calibrate), why)
