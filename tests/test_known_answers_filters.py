"""Known answers for the temporal filters: hand-set weights, the arithmetic in the comments.

SS-TCN's receptive field and residual path, PDAN's dilated attention at a video's edge and next to
padding (with its relative-position term and value projection), its pyramid of dilations, and
TGM's max over mixture channels.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from augrgb.models.filters import TEMPORAL_FILTERS
from augrgb.models.filters.pdan import DilatedAttention
from augrgb.models.filters.tgm import TemporalGaussianMixture


def build(name: str, in_dim: int, hidden: int, **options) -> nn.Module:
    """A filter in eval mode (dropout off)."""
    return TEMPORAL_FILTERS.build(name, in_dim, hidden, 0.0, **options).eval()


def fill(module: nn.Module, **values: float | list) -> None:
    """Hand-set parameters by name (a number fills the whole tensor)."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in values.items():
            p = params[name.replace("__", ".")]
            p.copy_(torch.as_tensor(value, dtype=p.dtype).expand_as(p) if not isinstance(value, list)
                    else torch.tensor(value, dtype=p.dtype).reshape(p.shape))


def seq(values: list[float]) -> torch.Tensor:
    """One video, one channel: ``(1, 1, T)``."""
    return torch.tensor(values, dtype=torch.float)[None, None]


# ---------------------------------------------------------------- SS-TCN

def test_ss_tcn_two_layers_hand_set():
    # hidden = in = 1, every bias 0, bottleneck weight 1 (h0 = x), each dilated kernel (1, 0, 0) (it reads
    # x[t - d]; 0 before the video), each 1x1 conv weight 1:  layer with dilation d: h[t] + relu(h[t - d])
    # x  = (1, 2, 3, 4, 5)
    # d = 1: h1 = x[t] + x[t-1]   = (1, 3, 5, 7, 9)
    # d = 2: h2 = h1[t] + h1[t-2] = (1, 3, 6, 10, 14)
    net = build("ss-tcn", 1, 1, layers=2)
    fill(net, bottleneck__weight=1.0, bottleneck__bias=0.0)
    for layer in net.layers:
        fill(layer, conv_dilated__weight=[1.0, 0.0, 0.0], conv_dilated__bias=0.0, conv_1x1__weight=1.0,
             conv_1x1__bias=0.0)
    x = seq([1, 2, 3, 4, 5])
    assert net(x, torch.ones(1, 1, 5)).flatten().tolist() == [1, 3, 6, 10, 14]
    # the same video of 4 snippets padded to 5 (garbage 100 in the padding): (1, 3, 6, 10) then exactly 0
    out = net(seq([1, 2, 3, 4, 100]), torch.tensor([[[1.0, 1, 1, 1, 0]]]))
    assert out.flatten().tolist() == [1, 3, 6, 10, 0]


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
@pytest.mark.parametrize("t", [2, 20, 37])
def test_ss_tcn_receptive_field_is_exactly_2_to_the_L_minus_1(layers, t):
    # dilations 1, 2, ..., 2^(L-1), kernel 3: output s sees inputs s +- (1 + 2 + ... + 2^(L-1)) = s +- (2^L - 1).
    # All weights positive and inputs positive, so every ReLU passes and a change of x[t] reaches every
    # output within the field (strictly, no cancellation) and no output outside it (bit-for-bit equal).
    torch.manual_seed(layers)
    net = build("ss-tcn", 3, 4, layers=layers)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_().add_(0.05)
    x = torch.rand(1, 3, 40) + 0.1
    mask = torch.ones(1, 1, 40)
    moved = x.clone()
    moved[..., t] += 1.0
    with torch.no_grad():
        changed = (net(moved, mask) != net(x, mask)).any(dim=1).flatten()
    radius = 2 ** layers - 1
    expected = (torch.arange(40) - t).abs() <= radius
    assert changed.tolist() == expected.tolist()


# ---------------------------------------------------------------- PDAN

def attention(dilation: int = 1, q: float = 0.5, k: float = 0.5, v: float = 1.0,
              r: tuple[float, float, float] = (0.1, 0.2, 0.3)) -> DilatedAttention:
    """One-channel DAL with hand-set weights: query q, key k, value v, relative positions r (t-d, t, t+d)."""
    dal = DilatedAttention(1, dilation)
    fill(dal, query__weight=q, key__weight=k, value__weight=v, relative_position=list(r))
    return dal


def softmax(*scores: float) -> list[float]:
    """Plain softmax."""
    e = [math.exp(s) for s in scores]
    return [x / sum(e) for x in e]


def test_pdan_attention_at_the_edge_and_next_to_padding():
    # One channel, dilation 1, query 0.5 x, key 0.5 x (score q x_t * k x_j = x_t x_j / 4), value x_j + r,
    # relative positions r = (0.1, 0.2, 0.3) for (t-1, t, t+1). Video of 3 snippets x = (0, 2, 4), then one padded
    # position holding garbage 100 (a padded input of the block is 0; 100 checks that it is excluded, not just 0).
    #   t = 0 (video edge): t-1 is outside -> softmax over (t, t+1), scores (0, 0) -> weights (1/2, 1/2)
    #         out = ((0 + 0.2) + (2 + 0.3)) / 2 = 1.25
    #   t = 1: scores x1 (x0, x1, x2) / 4 = (0, 1, 2), values (0.1, 2.2, 4.3)
    #   t = 2 (next to padding): t+1 is padding -> softmax over (t-1, t), scores 4 (2, 4) / 4 = (2, 4), values (2.1, 4.2)
    w1 = softmax(0, 1, 2)
    w2 = softmax(2, 4)
    expected = [1.25, w1[0] * 0.1 + w1[1] * 2.2 + w1[2] * 4.3, w2[0] * 2.1 + w2[1] * 4.2]
    out = attention()(seq([0, 2, 4, 100]), torch.tensor([[[1.0, 1, 1, 0]]]))
    assert out.flatten()[:3].tolist() == pytest.approx(expected, rel=1e-6)
    # a full-length sequence without padding: at t = 2 the right neighbour (x = 100) now counts:
    # scores (2, 4, 100) -> all weight on it: out = 100 + 0.3
    full = attention()(seq([0, 2, 4, 100]), torch.ones(1, 1, 4))
    assert full.flatten()[2].item() == pytest.approx(100.3, rel=1e-6)
    # and at the last position (t = 3, edge) only (t-1, t): scores 100 (4, 100) / 4 = (100, 2500) -> out 100 + 0.2
    assert full.flatten()[3].item() == pytest.approx(100.2, rel=1e-6)


def test_pdan_attention_value_projection_and_dilation():
    # Same layer with value weight 3 (values 3 x_j + r, distinct from the keys 0.5 x_j) and dilation 2,
    # x = (1, 0, 2, 0, 3), no padding:
    #   t = 0: neighbours t+2 only (t-2 outside): scores 1 * (1, 2) / 4 = (0.25, 0.5), values (3 + 0.2, 6 + 0.3)
    #   t = 1: x_t = 0 -> all scores 0 over (t, t+2) (t-2 outside) -> (1/2, 1/2), values (0 + 0.2, 0 + 0.3)
    #   t = 2: scores 2 (1, 2, 3) / 4 = (0.5, 1, 1.5), values (3.1, 6.2, 9.3)
    dal = attention(dilation=2, v=3.0)
    out = dal(seq([1, 0, 2, 0, 3]), torch.ones(1, 1, 5)).flatten()
    w0, w2 = softmax(0.25, 0.5), softmax(0.5, 1.0, 1.5)
    assert out[0].item() == pytest.approx(w0[0] * 3.2 + w0[1] * 6.3, rel=1e-6)
    assert out[1].item() == pytest.approx(0.25, rel=1e-6)
    assert out[2].item() == pytest.approx(w2[0] * 3.1 + w2[1] * 6.2 + w2[2] * 9.3, rel=1e-6)


def test_pdan_relative_position_term_alone():
    # value weight 0 and query 0: values are the relative positions alone, weights uniform over the allowed window.
    # r = (1, 10, 100): inside the video (1 + 10 + 100) / 3 = 37; at the left edge (10 + 100) / 2 = 55;
    # at the right edge (1 + 10) / 2 = 5.5
    dal = attention(q=0.0, v=0.0, r=(1.0, 10.0, 100.0))
    out = dal(seq([5, -3, 8, 2]), torch.ones(1, 1, 4)).flatten()
    assert out.tolist() == pytest.approx([55.0, 37.0, 37.0, 5.5], rel=1e-6)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_pdan_receptive_field_is_exactly_2_to_the_L_minus_1(layers):
    # dilations 1, 2, ..., 2^(L-1), window (t-d, t, t+d): a change at snippet 20 reaches outputs 20 +- (2^L - 1) only
    torch.manual_seed(layers)
    net = build("pdan", 3, 6, layers=layers)
    x = torch.rand(1, 3, 41)
    mask = torch.ones(1, 1, 41)
    moved = x.clone()
    moved[..., 20] += 1.0
    with torch.no_grad():
        diff = (net(moved, mask) - net(x, mask)).abs().amax(dim=1).flatten()
    expected = (torch.arange(41) - 20).abs() <= 2 ** layers - 1
    assert (diff > 1e-6).tolist() == expected.tolist()
    assert (diff[~expected] == 0).all()


# ---------------------------------------------------------------- TGM

class FixedSubEvents(nn.Module):
    """Stands in for the TGM layers: returns fixed mixture channels ``(B, C, D, T)``."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.values * mask.unsqueeze(2)


def test_tgm_takes_the_max_over_mixture_channels():
    # One feature dim, 3 mixture channels over 4 snippets:
    #   c0 = (1, -2, 3, 0)   c1 = (2, -1, 0, 0)   c2 = (0, -3, 1, 5)    -> max = (2, -1, 3, 5)
    # (the mean would be (1, -2, 4/3, 5/3), the sum (3, -6, 4, 5)). The fuse conv (hidden 1) reads
    # [x, sub-events] with weights (0, 1), bias 0: out = relu(relu(max)) = (2, 0, 3, 5); x is ignored.
    net = build("tgm", 1, 1, layers=1, channels=3)
    sub = torch.tensor([[1.0, -2, 3, 0], [2, -1, 0, 0], [0, -3, 1, 5]])[None, :, None]   # (1, 3, 1, 4)
    net.layers = nn.ModuleList([FixedSubEvents(sub)])
    fill(net, fuse__weight=[0.0, 1.0], fuse__bias=0.0)
    out = net(seq([7, 7, 7, 7]), torch.ones(1, 1, 4))
    assert out.flatten().tolist() == [2, 0, 3, 5]
    # with the input weighed in too (fuse (1, 1)): relu(x) + relu(max) = 7 + (2, 0, 3, 5); padding stays 0
    fill(net, fuse__weight=[1.0, 1.0])
    out = net(seq([7, 7, 7, 7]), torch.tensor([[[1.0, 1, 1, 0]]]))
    assert out.flatten().tolist() == [9, 7, 10, 0]


def test_tgm_single_gaussian_kernel_hand_computed():
    # One Gaussian, kernel length 3: centre (L-1)(tanh(0) + 1)/2 = 1, sigma exp(1 - 2|tanh(0)|) = e.
    # Samples at 0, 1, 2: (g, 1, g) with g = exp(-1/(2 e^2)); normalised: (g, 1, g) / (1 + 2g).
    # c_in = c_out = 1: out[t] = (g x[t-1] + x[t] + g x[t+1]) / (1 + 2g), 0 outside the video.
    layer = TemporalGaussianMixture(1, 1, num_gaussians=1, length=3)
    fill(layer, center=0.0, width=0.0, mixture=0.0)
    g = math.exp(-1 / (2 * math.e ** 2))
    x = torch.tensor([1.0, 2.0, 4.0])[None, None, None]             # (B=1, c_in=1, D=1, T=3)
    out = layer(x, torch.ones(1, 1, 3)).flatten().tolist()
    expected = [(1 + 2 * g) / (1 + 2 * g), (g + 2 + 4 * g) / (1 + 2 * g), (2 * g + 4) / (1 + 2 * g)]
    assert out == pytest.approx(expected, rel=1e-6)
