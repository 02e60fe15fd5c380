"""Stage 2 models: registry, temporal filters (shapes, masking), heads and their loss, streams."""

import math

import pytest
import torch
import torch.nn.functional as F

from augrgb.core.errors import InputError
from augrgb.core.registry import Registry
from augrgb.models.filters import TEMPORAL_FILTERS
from augrgb.models.filters.tgm import TemporalGaussianMixture
from augrgb.models.heads import Classifier, background_index, classification_loss, num_outputs, probabilities
from augrgb.models.stream import Stream, StreamOutput, two_stream_logits, upsample_logits

FILTERS = ["pdan", "ss-tcn", "tgm"]


# ---------------------------------------------------------------- registry

def test_registry_builds_lists_and_rejects_duplicates():
    reg = Registry("widget")

    @reg.register("square")
    class Square:
        def __init__(self, side, scale=1):
            self.area = side * side * scale

    assert reg.names() == ["square"] and "square" in reg and reg.get("square") is Square
    assert reg.build("square", 3, scale=2).area == 18
    with pytest.raises(ValueError, match="already registered"):
        reg.register("square")(Square)


def test_registry_unknown_name_is_one_line_error_listing_known_names():
    with pytest.raises(InputError) as err:
        TEMPORAL_FILTERS.build("ss-tnc", 8)
    message = str(err.value)
    assert message.startswith("ss-tnc: unknown temporal filter")
    assert "pdan, ss-tcn, tgm" in message and "did you mean 'ss-tcn'" in message
    assert "\n" not in message


def test_registered_filters():
    assert TEMPORAL_FILTERS.names() == FILTERS


# ---------------------------------------------------------------- filters

def _filter(name, in_dim=6, hidden=8):
    torch.manual_seed(0)
    return TEMPORAL_FILTERS.build(name, in_dim, hidden, 0.5).eval()


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("t", [1, 2, 13])
def test_filter_output_shape_and_zero_padding(name, t):
    f = _filter(name)
    x = torch.randn(3, 6, t)
    mask = torch.ones(3, 1, t)
    mask[1, :, t // 2 + 1:] = 0
    mask[2] = 0
    h = f(x, mask)
    assert h.shape == (3, 8, t) and f.out_dim == 8
    assert torch.isfinite(h).all()
    assert (h * (1 - mask)).abs().max() == 0


@pytest.mark.parametrize("name", FILTERS)
def test_filter_valid_outputs_ignore_padding_garbage(name):
    """A video alone, or batched with a longer one behind NaN/huge padding: same valid outputs."""
    f = _filter(name)
    torch.manual_seed(1)
    video = torch.randn(1, 6, 9)
    alone = f(video, torch.ones(1, 1, 9))
    batch = torch.randn(2, 6, 20)
    batch[0, :, :9] = video[0]
    batch[0, :, 9:] = float("nan")
    batch[0, 0, 12] = 1e30
    mask = torch.ones(2, 1, 20)
    mask[0, :, 9:] = 0
    padded = f(batch, mask)
    torch.testing.assert_close(padded[0, :, :9], alone[0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(padded).all() and (padded[0, :, 9:] == 0).all()


@pytest.mark.parametrize("name", FILTERS)
def test_filter_mixes_time(name):
    """Each filter is temporal: changing one snippet changes its neighbours' outputs."""
    f = _filter(name)
    x = torch.randn(1, 6, 11)
    mask = torch.ones(1, 1, 11)
    y = x.clone()
    y[0, :, 5] += 3.0
    diff = (f(x, mask) - f(y, mask)).abs().sum(1)[0]
    assert diff[4] > 1e-4 and diff[6] > 1e-4


def test_filter_options_reach_the_filter():
    assert len(TEMPORAL_FILTERS.build("ss-tcn", 6, 8, layers=3).layers) == 3
    assert len(TEMPORAL_FILTERS.build("pdan", 6, 8, layers=2).layers) == 2
    tgm = TEMPORAL_FILTERS.build("tgm", 6, 8, layers=2, channels=4, num_gaussians=5, length=7)
    assert len(tgm.layers) == 2 and tgm.layers[1].kernels().shape == (4, 4, 7)


def test_tgm_kernels_are_normalised_gaussian_mixtures():
    layer = TemporalGaussianMixture(c_in=2, c_out=3, num_gaussians=4, length=7)
    g = layer.gaussians()
    assert g.shape == (4, 7)
    torch.testing.assert_close(g.sum(1), torch.ones(4))
    # each row is a sampled Gaussian: log-density is a parabola, so second differences are constant
    second = torch.diff(torch.log(g), n=2, dim=1)
    torch.testing.assert_close(second, second[:, :1].expand_as(second), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.kernels().sum(-1), torch.ones(3, 2))
    with pytest.raises(ValueError, match="odd"):
        TemporalGaussianMixture(1, 2, length=4)


def test_tgm_layer_shares_kernels_over_feature_dims():
    """One input channel: output channel o at feature d is the kernel o convolved with x[d]."""
    layer = TemporalGaussianMixture(c_in=1, c_out=2, num_gaussians=3, length=5)
    x = torch.randn(1, 1, 4, 10)
    out = layer(x, torch.ones(1, 1, 10))
    k = layer.kernels()[:, 0]
    for o in range(2):
        for d in range(4):
            ref = F.conv1d(x[:, :, d], k[o].view(1, 1, 5), padding=2)[0, 0]
            torch.testing.assert_close(out[0, o, d], ref)


# ---------------------------------------------------------------- heads

def test_head_outputs_and_background_index():
    assert num_outputs(5, "sigmoid") == 5 and num_outputs(5, "softmax") == 6 and background_index(5) == 5
    with pytest.raises(InputError, match="unknown classifier head"):
        Classifier(4, 3, "softmaxx")


def test_sigmoid_loss_hand_computed_and_padding_ignored():
    logits = torch.tensor([[[0.0, 2.0, 5.0]]])                       # B=1, K=1, T=3; t=2 is padding
    targets = torch.tensor([[[1.0, 0.0, 1.0]]])
    mask = torch.tensor([[[1.0, 1.0, 0.0]]])
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert classification_loss(logits, targets, mask, "sigmoid").item() == pytest.approx(expected, rel=1e-6)
    logits[0, 0, 2] = float("nan")
    assert classification_loss(logits, targets, mask, "sigmoid").item() == pytest.approx(expected, rel=1e-6)


def test_softmax_loss_hand_computed_with_background_last():
    logits = torch.zeros(1, 3, 2)                                    # K=2 classes + background
    logits[0, 2, 0] = math.log(2.0)                                  # t=0: p(background) = 2/4
    targets = torch.tensor([[2, -7]])                                # t=1 padded: target garbage
    mask = torch.tensor([[[1.0, 0.0]]])
    assert classification_loss(logits, targets, mask, "softmax").item() == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="class indices"):
        classification_loss(logits, torch.zeros(1, 3, 2), mask, "softmax")


def test_classification_loss_all_padding_is_zero():
    for kind, targets in (("sigmoid", torch.ones(2, 3, 4)), ("softmax", torch.zeros(2, 4, dtype=torch.long))):
        k = 3 if kind == "sigmoid" else 4
        logits = torch.randn(2, k, 4, requires_grad=True)
        loss = classification_loss(logits, targets, torch.zeros(2, 1, 4), kind)
        loss.backward()
        assert loss.item() == 0 and torch.isfinite(logits.grad).all()


def test_probabilities():
    logits = torch.randn(2, 4, 5)
    torch.testing.assert_close(probabilities(logits, "softmax").sum(1), torch.ones(2, 5))
    torch.testing.assert_close(probabilities(logits, "sigmoid"), torch.sigmoid(logits))


# ---------------------------------------------------------------- stream

@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("head,k", [("sigmoid", 4), ("softmax", 5)])
def test_stream_shapes_and_rebuild_from_hparams(name, head, k):
    torch.manual_seed(0)
    stream = Stream(6, 4, head=head, filter=name, hidden=8, dropout=0.1).eval()
    x, mask = torch.randn(2, 6, 7), torch.ones(2, 1, 7)
    mask[1, :, 3:] = 0
    out = stream(x, mask)
    assert isinstance(out, StreamOutput)
    assert out.features.shape == (2, 8, 7) and out.logits.shape == (2, k, 7)
    assert (out.logits[1, :, 3:] == 0).all()
    clone = Stream(**stream.hparams()).eval()
    clone.load_state_dict(stream.state_dict())
    torch.testing.assert_close(clone(x, mask).logits, out.logits)


def test_upsample_logits_nearest_rule():
    logits = torch.tensor([[10.0, 20.0, 30.0]])
    assert upsample_logits(logits, 7).tolist() == [[10, 10, 10, 20, 20, 30, 30]]   # floor(j * 3 / 7)
    assert upsample_logits(logits, 3).tolist() == logits.tolist()
    assert upsample_logits(torch.zeros(2, 4, 5), 11).shape == (2, 4, 11)
    with pytest.raises(ValueError):
        upsample_logits(logits, 0)


def test_two_stream_logits_average():
    a, b, c = torch.ones(1, 2, 3), 3 * torch.ones(1, 2, 3), 8 * torch.ones(1, 2, 3)
    assert (two_stream_logits(a, b) == 2).all() and (two_stream_logits(a, b, c) == 4).all()
