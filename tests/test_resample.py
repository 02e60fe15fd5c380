"""The frame-index resampling rule: floor(k * S / T), exact for rational rates."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from augrgb.extract.resample import IndexResampler, as_rate

NTSC = Fraction(30000, 1001)


def test_30_to_25_drops_every_sixth_frame() -> None:
    r = IndexResampler(Fraction(30), Fraction(25))
    assert [r.source_index(k) for k in range(10)] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert [r.repeats(i) for i in range(12)] == [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0]
    assert r.output_count(60) == 50 and r.output_count(61) == 51 and r.output_count(0) == 0


def test_10_to_25_repeats_frames() -> None:
    r = IndexResampler(Fraction(10), Fraction(25))
    assert [r.source_index(k) for k in range(8)] == [0, 0, 0, 1, 1, 2, 2, 2]  # floor(k * 0.4)
    assert [r.repeats(i) for i in range(4)] == [3, 2, 3, 2]
    assert r.output_count(4) == 10


def test_ntsc_rates_stay_exact_on_long_videos() -> None:
    r = IndexResampler(NTSC, Fraction(25))  # S / T = 1200 / 1001
    assert r.source_index(1001) == 1200 and r.source_index(1000) == 1198
    assert r.output_count(30000) == 25025  # ceil(30000 * 1001 / 1200)
    # 29.97 (as written) against 30000/1001: S / T = 3000000 / 2999997, so the first skipped source
    # frame is 999 999, where k * S / T is exactly the integer 10**6.
    near = IndexResampler(NTSC, as_rate(29.97))
    assert near.source_index(999_998) == 999_998 and near.source_index(999_999) == 1_000_000


def test_no_target_keeps_every_frame() -> None:
    r = IndexResampler(Fraction(30), None)
    assert [r.source_index(k) for k in range(5)] == list(range(5))
    assert r.repeats(7) == 1 and r.output_count(13) == 13


def test_as_rate_reads_decimals_as_written() -> None:
    assert as_rate(29.97) == Fraction(2997, 100)
    assert as_rate(25) == Fraction(25) and as_rate(NTSC) is NTSC
    for bad in (0, -1, 0.0):
        with pytest.raises(ValueError, match="positive"):
            as_rate(bad)


rates = st.fractions(min_value=Fraction(1, 2), max_value=120, max_denominator=1001).filter(lambda f: f > 0)


@given(source=rates, target=rates, n=st.integers(min_value=0, max_value=400))
def test_count_repeats_and_index_agree(source: Fraction, target: Fraction, n: int) -> None:
    r = IndexResampler(source, target)
    count = r.output_count(n)
    assert sum(r.repeats(i) for i in range(n)) == count
    assert all(r.source_index(k) < n for k in range(count))
    assert r.source_index(count) >= n
    shown = [r.source_index(k) for k in range(count)]
    assert shown == sorted(shown)
    assert all(shown.count(i) == r.repeats(i) for i in range(min(n, 30)))
