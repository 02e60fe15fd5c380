"""Frame-rate resampling by frame index: output frame k shows source frame floor(k * S / T).

S (source fps) and T (target fps) are exact fractions, so the rule gives the same indices in every
decoding backend and never drifts on long videos (e.g. 30000/1001 -> 25 stays exact after hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


def as_rate(fps: float | int | Fraction) -> Fraction:
    """A frame rate as an exact fraction; a float is read as the decimal it prints as (29.97 -> 2997/100)."""
    rate = fps if isinstance(fps, Fraction) else Fraction(str(fps))
    if rate <= 0:
        raise ValueError(f"a frame rate must be positive, got {fps}")
    return rate


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class IndexResampler:
    """Maps output frame indices to source frame indices; ``target=None`` keeps every source frame."""

    source: Fraction
    target: Fraction | None

    def source_index(self, k: int) -> int:
        """Source frame shown as output frame ``k``: floor(k * S / T)."""
        if self.target is None:
            return k
        return (k * self.source.numerator * self.target.denominator) // (
            self.source.denominator * self.target.numerator
        )

    def first_output(self, i: int) -> int:
        """Smallest output index k with source_index(k) >= i: ceil(i * T / S)."""
        if self.target is None:
            return i
        return _ceil_div(
            i * self.target.numerator * self.source.denominator,
            self.target.denominator * self.source.numerator,
        )

    def repeats(self, i: int) -> int:
        """How many output frames show source frame ``i`` (0 = dropped, >1 = repeated when upsampling)."""
        return self.first_output(i + 1) - self.first_output(i)

    def output_count(self, num_source: int) -> int:
        """Output frames for a video of ``num_source`` frames: ceil(n * T / S) (every k with index < n)."""
        return self.first_output(max(num_source, 0))
