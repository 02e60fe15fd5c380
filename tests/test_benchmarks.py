"""Every script in benchmarks/ runs once with tiny arguments, so none can rot unnoticed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"

# script -> (tiny arguments, module it needs beyond the dev extra or None)
TINY: dict[str, tuple[list[str], str | None]] = {
    "agcn_snippets.py": (["--frames", "64", "--batch-size", "4", "--threads", "1"], None),
    "decode.py": (["--minutes", "0.05", "--size", "64x48"], None),
    "detect.py": (["--seconds", "1", "--size", "64", "--tvl1-pairs", "1", "--flow-snippets", "1",
                   "--rss-minutes", "0.02", "--gemm-size", "128",
                   "--paths", "torch/fp32,auto/auto,onnxruntime/int8,openvino/int8"], None),
    "distill.py": (["--batch", "2", "--min-len", "4", "--max-len", "8", "--dim", "16", "--classes", "5",
                    "--repeats", "1", "--videos", "4", "--in-dim", "32", "--naive-batches", "1", "--threads", "1"], None),
    "extract_flow.py": (["--tvl1-pairs", "1", "--fast-pairs", "2", "--workers", "2"], None),
    "extract_pose.py": (["--frames", "20", "--videos", "1", "--seconds", "2"], None),
    "extract_ray.py": (["--videos", "1", "--snippets", "1", "--cpus", "1"], None),
    "extract_rgb.py": (["--snippets", "1", "--minutes", "0"], None),
    "mediapipe_pose.py": ([], "mediapipe"),
    "metrics.py": (["--frames", "1000", "--classes", "3", "--videos", "2"], None),
    "synth.py": (["--size", "32", "--seconds", "1", "--naive-frames", "2", "--videos", "1"], None),
}


def test_every_benchmark_script_has_tiny_arguments() -> None:
    """A new script in benchmarks/ must be added to TINY (and so to CI)."""
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(TINY)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_with_tiny_arguments(script: str, request: pytest.FixtureRequest) -> None:
    """The script exits 0 and prints something; the real I3D weights are in the cache first."""
    args, needs = TINY[script]
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{script} needs {needs} (CI runs it in the environment with that extra)")
    if needs is None:
        request.getfixturevalue("i3d_rgb_weights")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"{script} printed nothing"
