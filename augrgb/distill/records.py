"""Run records: one JSON file per run (config, code version, per-epoch losses and metrics, wall time,
peak memory), rewritten atomically after every epoch, and TensorBoard scalars when installed.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from augrgb import __version__
from augrgb.core.files import write_text_atomic

log = logging.getLogger(__name__)
_TENSORBOARD_NOTICE = False


def git_commit() -> str | None:
    """The commit of the augrgb source tree (``+dirty`` with local changes), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def peak_memory(device: torch.device) -> dict[str, int]:
    """Peak resident memory of this process (bytes) and, on CUDA, peak allocated GPU memory."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = {"cpu_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}
    if device.type == "cuda":
        peak["cuda_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return peak


class RunRecord:
    """``run.json`` in the run folder: ``header`` (fixed at the start) + ``epochs`` + ``summary``."""

    def __init__(self, path: str | Path, header: dict[str, Any], epochs: list[dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.header = {"augrgb": __version__, "torch": torch.__version__, "python": platform.python_version(),
                       "host": platform.node(), "git_commit": git_commit(),
                       "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **header}
        self.epochs: list[dict[str, Any]] = list(epochs or [])
        self.summary: dict[str, Any] = {"status": "running"}

    def add_epoch(self, entry: dict[str, Any]) -> None:
        self.epochs.append(entry)

    def write(self, **summary: Any) -> Path:
        """Update the summary fields and rewrite the file atomically."""
        self.summary.update(summary)
        data = {**self.header, "epochs": self.epochs, **self.summary}
        return write_text_atomic(self.path, json.dumps(data, indent=1, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class ScalarLogger:
    """TensorBoard scalars in ``folder`` when ``tensorboard`` is installed; otherwise a one-time notice
    and nothing else (the run record has the same numbers)."""

    def __init__(self, folder: str | Path) -> None:
        global _TENSORBOARD_NOTICE
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.writer = None
            if not _TENSORBOARD_NOTICE:
                log.warning("tensorboard is not installed (pip install 'augrgb[tensorboard]'): "
                            "no TensorBoard scalars, the numbers are in run.json")
                _TENSORBOARD_NOTICE = True
            return
        self.writer = SummaryWriter(str(folder))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
