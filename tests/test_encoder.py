"""The fast batched encoder path equals a plain per-snippet fp32 forward."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augrgb.extract.encoder import SnippetEncoder, fold_batchnorm
from augrgb.extract.i3d import InceptionI3d


def _randomised_bn(model):
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.normal_(0, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.1, generator=gen)
    return model.eval()


def _plain_features(model, snippets):
    x = torch.from_numpy(snippets).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    with torch.no_grad():
        return torch.cat([model.extract_features(x[i:i + 1]) for i in range(len(x))])


def test_batchnorm_folding_is_exact_in_fp32():
    torch.manual_seed(0)
    model = _randomised_bn(InceptionI3d())
    x = torch.randn(1, 3, 16, 112, 112)
    with torch.no_grad():
        assert torch.allclose(fold_batchnorm(model).extract_features(x), model.extract_features(x), atol=1e-4, rtol=1e-4)
    assert model.Conv3d_1a_7x7.bn is not None  # the original is untouched


@pytest.mark.slow
@pytest.mark.parametrize("precision,min_cos", [("fp32", 0.99999), ("bf16", 0.999)])
def test_fast_path_matches_plain_forward_with_real_weights(i3d_rgb_model, precision, min_cos):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, size=(1, 16, 224, 224, 3), dtype=np.uint8)
    # natural-ish inputs: smooth images moving over time
    snippets = np.stack([np.roll(base[0], shift=2 * k, axis=2) for k in range(3)])
    reference = _plain_features(i3d_rgb_model, snippets)
    fast = torch.from_numpy(SnippetEncoder(i3d_rgb_model, precision).features(snippets))
    assert fast.shape == (3, 1024)
    assert F.cosine_similarity(fast, reference).min().item() >= min_cos
