"""End-to-end ONNX export (I3D RGB encoder + temporal filter + head) against the PyTorch pipeline.

Tolerances: ONNX Runtime and PyTorch differ only in float32 rounding order; features agree within 1e-4
of their largest magnitude, probabilities within 1e-4 absolute (measured: about 1e-6).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from augrgb.cli import main
from augrgb.extract.encoder import SnippetEncoder
from augrgb.extract.i3d import InceptionI3d, Unit3D
from augrgb.extract.weights import read_weights_file, state_sha256
from tests.detect_helpers import FEATURES, random_stream, write_checkpoint
from tests.videos import SHARED_VIDEOS, write_video

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "docs" / "deploy_onnx.py"
TINY_GRID = {"fps": 25.0, "snippet": 8, "stride": 8, "crop": "center", "size": 32, "short_side": 40}


def tiny_i3d_weights(path: Path) -> Path:
    """Random I3D weights whose BatchNorm gains keep activations near unit scale (features of order 1)."""
    torch.manual_seed(0)
    model = InceptionI3d()
    with torch.no_grad():
        for unit in model.modules():
            if isinstance(unit, Unit3D) and unit.bn is not None:
                unit.bn.weight.fill_(2.5)
                unit.bn.bias.uniform_(-0.1, 0.1)
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tiny_case(tmp_path_factory) -> dict:
    """A tiny I3D, a student trained (randomly) on its features, a 1.3 s video and the end-to-end export."""
    tmp = tmp_path_factory.mktemp("deploy")
    weights = tiny_i3d_weights(tmp / "i3d.pt")
    features = {**FEATURES, **TINY_GRID, "weights_sha256": state_sha256(read_weights_file(weights))}
    classes = ["a", "b", "c"]
    model = write_checkpoint(tmp / "student.pt", random_stream(3, "sigmoid"), classes, features=features,
                             thresholds=[0.4, 0.5, 0.6])
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    video = write_video(tmp / "clip.mp4", (np.roll(base, 3 * i, axis=1) for i in range(33)), fps=25)
    out = tmp / "export"
    assert main(["detect", "export", "--model", str(model), "--format", "onnx", "--end-to-end", "--out", str(out),
                 "--weights", str(weights)]) == 0
    return {"tmp": tmp, "weights": weights, "model": model, "video": video, "out": out, "classes": classes}


def test_export_folder_carries_the_metadata(tiny_case):
    out = tiny_case["out"]
    meta = json.loads((out / "augrgb.json").read_text())
    assert meta["classes"] == tiny_case["classes"] and meta["thresholds"] == [0.4, 0.5, 0.6]
    assert meta["grid"] == {"fps": 25.0, "snippet": 8, "stride": 8}
    assert (meta["preprocessing"]["size"], meta["preprocessing"]["short_side"]) == (32, 40)
    assert meta["weights_sha256"] == state_sha256(read_weights_file(tiny_case["weights"]))
    for name in ("encoder.onnx", "temporal.onnx"):
        props = {p.key: p.value for p in onnx.load(str(out / name)).metadata_props}
        inside = json.loads(props["augrgb"])
        assert inside["classes"] == meta["classes"] and inside["weights_sha256"] == meta["weights_sha256"]
        assert json.loads(props["augrgb.grid"]) == meta["grid"] and "augrgb.preprocessing" in props


def test_encoder_graph_equals_pytorch(tiny_case):
    i3d = InceptionI3d()
    i3d.load_state_dict(read_weights_file(tiny_case["weights"]), strict=False)
    snippets = np.random.default_rng(0).integers(0, 256, (3, 8, 32, 32, 3), dtype=np.uint8)
    expected = SnippetEncoder(i3d.eval()).features(snippets)
    session = ort.InferenceSession(str(tiny_case["out"] / "encoder.onnx"), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray((snippets.astype(np.float32) / 127.5 - 1).transpose(0, 4, 1, 2, 3))
    for batch in (x, x[:1]):  # the batch axis is dynamic
        got = session.run(None, {"snippets": batch})[0]
        assert got.shape == (len(batch), 1024)
        assert np.abs(expected).max() > 0.1  # features of order 1, so the tolerance means something
        np.testing.assert_allclose(got, expected[:len(batch)], atol=1e-4 * np.abs(expected).max(), rtol=0)


def test_deploy_program_gives_augrgb_detect_probabilities_without_augrgb_or_torch(tiny_case):
    """docs/deploy_onnx.py, with torch and augrgb unimportable, equals `augrgb detect --backend opencv`."""
    tmp, video = tiny_case["tmp"], tiny_case["video"]
    assert main(["detect", str(video), "--model", str(tiny_case["model"]), "--out", str(tmp / "det"), "--weights",
                 str(tiny_case["weights"]), "--backend", "opencv", "--precision", "fp32", "--quiet"]) == 0
    with h5py.File(tmp / "det" / "probabilities" / "clip.h5") as h5:
        expected = h5["snippets"][()]
    blocker = ("import runpy, sys; sys.modules['torch'] = None; sys.modules['augrgb'] = None; "
               f"sys.argv = sys.argv[1:]; runpy.run_path({str(DEPLOY)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", blocker, str(DEPLOY), str(video), str(tiny_case["out"]),
                             "--out", str(tmp / "deployed.json"), "--batch", "2"], capture_output=True, text=True,
                            cwd=tmp, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    deployed = json.loads((tmp / "deployed.json").read_text())
    got = np.asarray(deployed["snippet_probabilities"], np.float32)
    assert got.shape == expected.shape == (5, 3)  # 33 frames: 4 whole 8-frame snippets + the padded tail
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert deployed["classes"] == tiny_case["classes"]


def test_end_to_end_export_refusals(tiny_case, tmp_path, capsys):
    model, weights = str(tiny_case["model"]), str(tiny_case["weights"])
    assert main(["detect", "export", "--model", model, "--format", "torchscript", "--end-to-end", "--out",
                 str(tmp_path / "x"), "--weights", weights]) == 1
    assert "--format onnx" in capsys.readouterr().err
    assert main(["detect", "export", "--model", model, "--format", "onnx", "--out", str(tmp_path / "y"),
                 "--weights", weights]) == 1
    assert "only with --end-to-end" in capsys.readouterr().err
    other = write_checkpoint(tmp_path / "other.pt", random_stream(3), ["a", "b", "c"], features={**FEATURES, **TINY_GRID})
    assert main(["detect", "export", "--model", str(other), "--format", "onnx", "--end-to-end", "--out",
                 str(tmp_path / "z"), "--weights", weights]) == 1
    assert "weights_sha256" in capsys.readouterr().err and not (tmp_path / "z").exists()
    (tmp_path / "file").write_text("x")
    assert main(["detect", "export", "--model", model, "--format", "onnx", "--end-to-end", "--out",
                 str(tmp_path / "file"), "--weights", weights]) == 1
    assert "not an earlier end-to-end export" in capsys.readouterr().err


@pytest.mark.slow
def test_real_i3d_export_on_the_kinetics_clip(tmp_path, i3d_rgb_weights):
    """Real weights, 224x224 16-frame snippets of the bundled clip: ONNX Runtime features equal PyTorch's."""
    from augrgb.detect.onnx_export import export_encoder_onnx
    from augrgb.extract import decode
    from augrgb.core.grid import iter_snippets
    from augrgb.extract.transforms import Preprocess
    from augrgb.extract.weights import load_i3d

    i3d, _, _ = load_i3d("rgb", path=i3d_rgb_weights)
    path = export_encoder_onnx(i3d, (3, 16, 224, 224), tmp_path / "encoder.onnx")
    prep = Preprocess()
    frames = (prep(f) for f in decode.iter_frames(SHARED_VIDEOS / "kinetics_arm_wrestling.mp4", fps=25.0))
    snippets = np.stack([s.frames for _, s in zip(range(2), iter_snippets(frames))])
    expected = SnippetEncoder(i3d).features(snippets)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"snippets": np.ascontiguousarray((snippets / 127.5 - 1).astype(np.float32).transpose(0, 4, 1, 2, 3))})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)
