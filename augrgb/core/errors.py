"""Errors that are shown to users as one line naming the input and the reason."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A bad input (video, annotation, weight file): ``str(err)`` is ``"<input>: <reason>"``."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")
