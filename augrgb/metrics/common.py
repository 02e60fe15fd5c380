"""Small pieces every protocol shares: threshold checks, summation order, JSON-safe numbers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from augrgb.core.errors import InputError


def check_tiou(tiou: Sequence[float] | np.ndarray) -> np.ndarray:
    """Thresholds as float64, each in (0, 1]; a protocol is undefined at 0 or above 1."""
    values = np.atleast_1d(np.asarray(tiou, dtype=np.float64))
    if values.size == 0:
        raise InputError("--tiou", "give at least one threshold")
    for v in values:
        if not (0.0 < v <= 1.0):
            raise InputError("--tiou", f"threshold {float(v)!r} outside (0, 1]")
    return values


def sequential_sum(values: Iterable[float]) -> float:
    """Left-to-right float sum, the order of the official loops (``sum`` in Python >= 3.12 differs)."""
    total = 0.0
    for v in values:
        total += float(v)
    return total


def json_number(value: float) -> float | None:
    """A float for JSON output; NaN and infinities become ``None`` (``null``)."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_list(values: Iterable[float]) -> list[float | None]:
    return [json_number(v) for v in values]


@dataclass(frozen=True)
class EventMapResult:
    """Event (instance-level) mAP per tIoU threshold and its average over the thresholds.

    ``ap`` is (thresholds, classes); ``classes`` are the label indices of its columns, the
    classes the mean runs over, in the order the official script averages them.
    """

    protocol: str
    tiou: np.ndarray
    mAP: np.ndarray
    average_mAP: float
    ap: np.ndarray
    classes: list[int]

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "tiou": self.tiou.tolist(),
            "mAP": json_list(self.mAP),
            "average_mAP": json_number(self.average_mAP),
        }
