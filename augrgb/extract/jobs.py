"""What an extraction engine runs: a :class:`Job` (one modality's extraction, picklable), the :class:`Worker`
it starts in each process, and the :class:`VideoResult` of each input (:func:`attempt` turns a bad input
into a failed result). Shared by the batch loop (``pipeline``) and the engines."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from augrgb.core.errors import InputError
from augrgb.core.inputs import InputResult, error_reason
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.store import FeatureStore


@dataclass
class VideoResult(InputResult):
    """Outcome of one extracted video: :class:`InputResult` with what was stored."""

    snippets: int = 0
    frames: int = 0
    flags: list[str] = field(default_factory=list)


class Worker(Protocol):
    """A started job in one process: its models are loaded; ``extract`` stores one input or raises."""

    def extract(self, video_id: str, path: Path) -> VideoResult:
        """Extract and store one input; raises InputError (or OSError, ValueError ...) for a bad one."""

    def close(self) -> None:
        """Release what :meth:`Job.start` acquired (processes, files)."""


class Job(Protocol):
    """One modality's extraction, picklable so worker processes can start it: the batch loop of
    :func:`~augrgb.extract.pipeline.run_batch` is the same for every modality, only what is done with one
    input differs."""

    cfg: ExtractConfig
    store: str
    modality: str  # the manifest entry and progress label of this job's results

    def sized(self, workers: int, cpus: int) -> Job:
        """This job for ``workers`` inputs in parallel on ``cpus`` cores (its share of threads)."""

    def is_done(self, store: FeatureStore, video_id: str) -> bool:
        """Whether ``video_id`` already has what this job writes (skipped unless overwriting)."""

    def needs_source(self, store: FeatureStore, video_id: str) -> bool:
        """Whether this job reads ``video_id``'s input file (only then must it be readable before the job starts)."""

    def notices(self) -> list[str]:
        """Warnings printed once before the first input."""

    def start(self) -> Worker:
        """Load what every input needs (models) once per process; fails early on a bad setup."""


def _reason_at(exc: InputError, path: Path) -> str:
    """The reason of an error about ``path``, keeping where in the input it is (``line 7: ...``) or what else it names."""
    where, name = str(exc.source), str(path)
    if where == name:
        return exc.reason
    if where.startswith(name + ":") and where[len(name) + 1:].isdigit():
        return f"line {where[len(name) + 1:]}: {exc.reason}"
    return f"{where}: {exc.reason}"


def attempt(worker: Worker, video_id: str, path: Path) -> VideoResult:
    """Extract one input; whatever goes wrong with it (a bad file, MemoryError, cv2.error, a bug) becomes a failed
    result with a one-line reason, the traceback kept for the store's error log. Only an interrupt stops the batch."""
    try:
        return worker.extract(video_id, path)
    except InputError as exc:
        return VideoResult(video_id, str(path), "failed", _reason_at(exc, path))
    except Exception as exc:  # noqa: BLE001 - one input must never end the batch
        return VideoResult(video_id, str(path), "failed", error_reason(exc), traceback=traceback.format_exc())
