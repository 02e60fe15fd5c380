"""Resumable demo steps: each prints a ``[i/n] title`` header, runs, and is recorded in ``OUT/demo.json`` when
it finishes, so a rerun skips it. A step interrupted half-way is run again; every step resumes its own
work (finished videos, epochs, checkpoints are kept), so nothing done is redone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augrgb.core.errors import InputError
from augrgb.core.files import write_text_atomic
from augrgb.demo.settings import DemoSettings, settings_difference

RECORD = "demo.json"


@dataclass(frozen=True)
class Step:
    """One step of the demo: ``run`` does the work and returns a one-line summary (or None)."""

    key: str
    title: str
    run: Callable[[], str | None]


class DemoRecord:
    """``OUT/demo.json``: the settings and the seconds each finished step took."""

    def __init__(self, out: Path, settings: DemoSettings) -> None:
        self.path = out / RECORD
        wanted = settings.model_dump(mode="json")
        self.finished: dict[str, float] = {}
        if self.path.is_file():
            try:
                found = json.loads(self.path.read_text())
                old, self.finished = found["settings"], dict(found["finished"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InputError(self.path, f"unreadable demo record ({exc.__class__.__name__}); use another --out") from None
            diff = settings_difference(old, wanted)
            if diff:
                raise InputError(out, f"holds a demo made with other settings ({'; '.join(diff)}); use another --out "
                                      "or the same options")
        elif out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(out, "exists and is not an empty folder or a demo folder; use another --out")
        self.settings = wanted
        self.write()

    def write(self) -> None:
        write_text_atomic(self.path, json.dumps({"settings": self.settings, "finished": self.finished}, indent=1) + "\n")

    def mark(self, key: str, seconds: float) -> None:
        self.finished[key] = round(seconds, 2)
        self.write()


def run_steps(steps: Sequence[Step], record: DemoRecord, say: Callable[[str], Any] = print) -> dict[str, str]:
    """Run the steps in order, skipping those the record lists as finished; returns key -> ran/skipped."""
    outcome = {}
    for index, step in enumerate(steps, 1):
        say(f"[{index}/{len(steps)}] {step.title}")
        if step.key in record.finished:
            say(f"  skipped: finished in an earlier run ({record.finished[step.key]:.0f} s)")
            outcome[step.key] = "skipped"
            continue
        started = time.perf_counter()
        summary = step.run()
        seconds = time.perf_counter() - started
        record.mark(step.key, seconds)
        say(f"  {summary + ' ' if summary else ''}({seconds:.0f} s)")
        outcome[step.key] = "ran"
    return outcome
