"""A wheel, not the editable checkout: built with ``pip wheel .``, installed in a clean virtualenv, it runs the
tiny demo and finds the shipped presets (they are package data, not files beside the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run outside the checkout: no PYTHONPATH, so only the installed wheel can be imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_wheel_in_a_clean_virtualenv_runs_the_demo_and_finds_presets(tmp_path, i3d_rgb_weights):
    from augrgb.extract.weights import cache_dir

    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(tmp_path / "dist")], tmp_path)
    wheel = next((tmp_path / "dist").glob("augrgb-*.whl"))
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")], tmp_path)
    bin_dir = tmp_path / "venv" / "bin"
    _run([str(bin_dir / "pip"), "install", "torch==2.13.0", str(wheel)], tmp_path)

    demo = _run([str(bin_dir / "augrgb"), "demo", "--size", "tiny", "--out", str(tmp_path / "demo"), "--quiet",
                 "--cache-dir", str(cache_dir())], tmp_path)
    assert "| Augmented-RGB (pose) |" in demo.stdout
    help_text = _run([str(bin_dir / "augrgb"), "distill", "student", "--config", "experiments/synth_student_ours",
                      "--help"], tmp_path)
    assert "--config" in help_text.stdout
    preset = _run([str(bin_dir / "python"), "-c", "from augrgb.core.config import resolve_config_path; "
                   "print(resolve_config_path('experiments/synth_student_ours'))"], tmp_path)
    assert "site-packages" in preset.stdout
