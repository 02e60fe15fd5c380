"""tools/feature_scale.py: the split of H into its temporal mean and the changing rest, on hand-computed cases."""

import importlib.util
from pathlib import Path

import pytest
import torch

SPEC = importlib.util.spec_from_file_location("feature_scale", Path(__file__).parents[1] / "tools" / "feature_scale.py")
feature_scale = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(feature_scale)


def test_scale_parts_hand_case():
    # H (C=2, T=2): snippets (1, 0) and (3, 0); temporal mean (2, 0); the rest (-1, 0) and (1, 0)
    h = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert feature_scale.scale_parts(h) == pytest.approx((2.0, 2.0, 1.0))
    assert feature_scale.changing_share(2.0, 1.0) == pytest.approx(0.2)


def test_scale_parts_constant_and_zero_mean_features():
    constant = torch.tensor([[3.0, 3.0, 3.0], [4.0, 4.0, 4.0]])
    assert feature_scale.scale_parts(constant) == pytest.approx((5.0, 5.0, 0.0))
    alternating = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    norm, mean, rest = feature_scale.scale_parts(alternating)
    assert (norm, mean, rest) == pytest.approx((1.0, 0.0, 1.0))
    assert feature_scale.changing_share(mean, rest) == pytest.approx(1.0)
    assert feature_scale.changing_share(0.0, 0.0) == 0.0


def test_scales_with_h():
    h = torch.randn(8, 20, generator=torch.Generator().manual_seed(0))
    small, large = feature_scale.scale_parts(h), feature_scale.scale_parts(10 * h)
    assert large == pytest.approx(tuple(10 * v for v in small))
    assert feature_scale.changing_share(*small[1:]) == pytest.approx(feature_scale.changing_share(*large[1:]))
