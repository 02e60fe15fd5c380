"""`--precision auto` on CPUs: flags where they settle it, else a measurement kept in the weights cache.

No test asserts a wall-clock time: the decision is checked on hand-given timings, the timing loop on
a fake clock, the cache with a fake timer that counts its calls, and the real timing path only for
running at both precisions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from augrgb.extract import precision
from augrgb.extract.precision import (
    Probe,
    auto_precision,
    cpu_flags,
    decide,
    encoder_probe,
    time_precisions,
)

BATCH = "batch of 8 snippets of 16 frames at 112 px"


def cpuinfo(tmp_path: Path, flags: str) -> set[str]:
    """The flags ``cpu_flags`` reads from a fake /proc/cpuinfo."""
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    return cpu_flags(path)


def test_decision_on_given_timings():
    assert decide(1.0, 0.7, BATCH)[0] == "bf16"  # 30% less time
    assert decide(1.0, 0.95, BATCH)[0] == "fp32"  # 5%: within the noise margin
    assert decide(1.0, 1.3, BATCH)[0] == "fp32"  # slower
    assert decide(0.66, 0.41, BATCH) == ("bf16", f"measured here: bf16 at least 10% faster than fp32 per {BATCH}")
    assert decide(0.66, 0.63, BATCH) == ("fp32", f"measured here: bf16 not at least 10% faster than fp32 per {BATCH}")
    assert decide(0.66, 0.40, BATCH) == decide(0.70, 0.45, BATCH)  # timing noise does not reach the records


def test_flags_that_settle_it_are_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "time_precisions", lambda *_: pytest.fail("flags settle it: nothing to time"))
    probe = Probe(lambda _: None, "fake", (8, 16, 112, 112, 3))
    amx = cpuinfo(tmp_path, "fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8")
    assert auto_precision("torch", "cpu", amx, probe, tmp_path) == ("bf16", "CPU has AMX-BF16")
    plain = cpuinfo(tmp_path, "fpu avx2 avx512f avx512_vnni")
    assert auto_precision("torch", "cpu", plain, probe, tmp_path)[0] == "fp32"
    zen4 = cpuinfo(tmp_path, "fpu avx512f avx512_bf16 avx512_vnni")
    assert auto_precision("onnxruntime", "cpu", zen4, probe, tmp_path)[0] == "fp32"  # int8 only when asked
    assert auto_precision("torch", "cpu", zen4)[0] == "fp32"  # no encoder given: nothing to time
    assert cpu_flags(tmp_path / "missing") == set()
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert "bf16" in cpu_flags(tmp_path / "arm")
    assert not (tmp_path / precision.CACHE_FILE).exists()


def test_timing_alternates_after_a_warm_up_and_takes_medians():
    now, calls = [0.0], []

    def forward(p: str) -> None:
        calls.append(p)
        now[0] += {"fp32": 1.0, "bf16": 0.5}[p] * (3 if len(calls) == 3 else 1)  # one slow outlier pass

    assert time_precisions(forward, repeats=3, clock=lambda: now[0]) == {"fp32": 1.0, "bf16": 0.5}
    assert calls == ["fp32", "bf16"] + ["fp32", "bf16"] * 3


def test_measurement_is_kept_and_a_corrupt_cache_measured_again(tmp_path, monkeypatch):
    timed = []

    def fake_timer(forward, *_):
        timed.append(forward)
        return {"fp32": 0.66, "bf16": 0.41}

    monkeypatch.setattr(precision, "time_precisions", fake_timer)
    flags = cpuinfo(tmp_path, "fpu avx512f avx512_bf16")
    probe = Probe(lambda _: None, "fake", (8, 16, 112, 112, 3))
    cache = tmp_path / "cache"
    first = auto_precision("torch", "cpu", flags, probe, cache)
    assert first == ("bf16", decide(0.66, 0.41, BATCH)[1]) and len(timed) == 1
    path = cache / precision.CACHE_FILE
    assert list(json.loads(path.read_text()).values()) == [{"fp32_s": 0.66, "bf16_s": 0.41}]

    again = auto_precision("torch", "cpu", flags, probe, cache)
    assert len(timed) == 1 and again == first

    auto_precision("torch", "cpu", flags, Probe(probe.forward, "fake", (4, 16, 112, 112, 3)), cache)
    assert len(timed) == 2 and len(json.loads(path.read_text())) == 2  # another input size: measured too

    path.write_text("{not json")
    assert auto_precision("torch", "cpu", flags, probe, cache) == first and len(timed) == 3
    assert len(json.loads(path.read_text())) == 1  # rewritten

    key = next(iter(json.loads(path.read_text())))
    path.write_text(json.dumps({key: {"fp32_s": "fast"}}))
    assert auto_precision("torch", "cpu", flags, probe, cache) == first and len(timed) == 4


class TinyEncoder(nn.Module):
    """A Conv3d with ``extract_features``, the interface ``SnippetEncoder`` runs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3, 4))


def test_real_timing_runs_at_both_precisions(tmp_path):
    probe = encoder_probe(TinyEncoder().eval(), (2, 4, 8, 8, 3), name="tiny")
    times = time_precisions(probe.forward, repeats=1)
    assert set(times) == {"fp32", "bf16"} and all(t >= 0 for t in times.values())
    chosen, reason = auto_precision("torch", "cpu", {"avx512_bf16"}, probe, tmp_path)
    assert chosen in ("fp32", "bf16") and reason.startswith("measured here: bf16 ")
    assert "per batch of 2 snippets of 4 frames at 8 px" in reason
