"""Loading the student, refusing mismatched feature settings, and exports equal to the PyTorch model."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from augrgb.core.errors import InputError
from augrgb.detect.export import export
from augrgb.detect.model import load_detector
from tests.detect_helpers import FEATURES, random_stream, write_checkpoint

HAS_ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None


def test_probabilities_match_the_stream(tmp_path):
    stream = random_stream(4, "softmax")
    detector = load_detector(write_checkpoint(tmp_path / "s.pt", stream, list("abcd")))
    x = np.random.default_rng(0).normal(size=(9, 1024)).astype(np.float32)
    probs = detector.probabilities(x)
    with torch.no_grad():
        logits = stream(torch.from_numpy(x.T)[None], torch.ones(1, 1, 9)).logits[0].T
    assert probs.shape == (9, 5)
    np.testing.assert_allclose(probs, torch.softmax(logits, dim=1).numpy(), atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(InputError, match="the model reads"):
        detector.probabilities(x[:, :100])


def test_checkpoint_refusals(tmp_path):
    stream = random_stream(2)
    with pytest.raises(InputError, match="'flow' stream; detection reads RGB only"):
        load_detector(write_checkpoint(tmp_path / "flow.pt", stream, ["a", "b"], modality="flow"))
    no_grid = {k: v for k, v in FEATURES.items() if k != "stride"}
    with pytest.raises(InputError, match="does not record the feature stride"):
        load_detector(write_checkpoint(tmp_path / "grid.pt", stream, ["a", "b"], features=no_grid))
    with pytest.raises(InputError, match="3 class names for 2 classes"):
        load_detector(write_checkpoint(tmp_path / "names.pt", stream, ["a", "b", "c"]))
    with pytest.raises(InputError, match="1 thresholds for 2 classes"):
        load_detector(write_checkpoint(tmp_path / "thr.pt", stream, ["a", "b"], thresholds=[0.5]))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        load_detector(tmp_path / "junk.pt")


def test_feature_settings_must_match(tmp_path):
    detector = load_detector(write_checkpoint(tmp_path / "s.pt", random_stream(2), ["a", "b"]))
    detector.check_features({**FEATURES, "frame_count": 10, "precision": "bf16"}, "same.h5")  # extra keys are fine
    detector.check_features({**FEATURES, "fps": 25}, "int-fps.h5")  # 25 == 25.0
    with pytest.raises(InputError) as err:
        detector.check_features({**FEATURES, "fps": 30.0, "stride": 8, "weights_sha256": "cd" * 32}, "other.h5")
    message = str(err.value)
    assert message.startswith("other.h5: features made with other settings")
    assert "fps 30.0 (model: 25.0)" in message and "stride 8 (model: 16)" in message and "weights_sha256" in message
    assert "\n" not in message
    with pytest.raises(InputError, match="crop not recorded"):
        detector.check_features({k: v for k, v in FEATURES.items() if k != "crop"}, "old.h5")


def test_decoding_settings_come_from_the_checkpoint(tmp_path):
    features = {**FEATURES, "fps": 30.0, "stride": 8, "crop": "resize"}
    detector = load_detector(write_checkpoint(tmp_path / "s.pt", random_stream(2), ["a", "b"], features=features))
    cfg = detector.extract_config(precision="bf16", backend=None)
    assert (cfg.fps, cfg.snippet, cfg.stride, cfg.crop, cfg.precision) == (30.0, 16, 8, "resize", "bf16")
    skipping = load_detector(write_checkpoint(tmp_path / "t.pt", random_stream(2), ["a", "b"], features={**FEATURES, "stride": 32}))
    with pytest.raises(InputError, match=r"t.pt: unusable feature settings.*stride \(32\) must not exceed snippet"):
        skipping.extract_config()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("filter_name, head", [("ss-tcn", "sigmoid"), ("ss-tcn", "softmax"), ("pdan", "sigmoid"), ("tgm", "softmax")])
def test_torchscript_export_equals_pytorch(tmp_path, filter_name, head):
    detector = load_detector(write_checkpoint(tmp_path / "s.pt", random_stream(3, head, filter=filter_name), ["a", "b", "c"]))
    path = export(detector, "torchscript", tmp_path / "student.ts")
    extra = {"augrgb.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["augrgb.json"])
    assert meta["classes"] == ["a", "b", "c"] and meta["head"] == head and meta["features"]["fps"] == 25.0
    rng = np.random.default_rng(1)
    for length in (1, 7, 64, 301):
        x = rng.normal(size=(length, 1024)).astype(np.float32)
        with torch.no_grad():
            out = loaded(torch.from_numpy(x.T.copy())[None], torch.ones(1, 1, length))[0].T.numpy()
        np.testing.assert_allclose(out, detector.probabilities(x), atol=1e-5, rtol=0)


@pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxruntime not installed (pip install 'augrgb[export]')")
@pytest.mark.parametrize("filter_name, head", [("ss-tcn", "sigmoid"), ("ss-tcn", "softmax"), ("pdan", "softmax"), ("tgm", "sigmoid")])
def test_onnx_export_equals_pytorch(tmp_path, filter_name, head):
    import onnxruntime as ort

    detector = load_detector(write_checkpoint(tmp_path / "s.pt", random_stream(3, head, filter=filter_name), ["a", "b", "c"],
                                              thresholds=[0.3, 0.4, 0.5] if head == "sigmoid" else None))
    path = export(detector, "onnx", tmp_path / "student.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["augrgb"])
    assert meta["classes"] == ["a", "b", "c"] and meta["head"] == head
    rng = np.random.default_rng(2)
    for length in (1, 7, 64, 301):
        x = rng.normal(size=(length, 1024)).astype(np.float32)
        (out,) = session.run(None, {"features": x.T[None].copy(), "mask": np.ones((1, 1, length), np.float32)})
        np.testing.assert_allclose(out[0].T, detector.probabilities(x), atol=1e-5, rtol=0)


def test_export_cli_and_unknown_format(tmp_path, capsys):
    from augrgb.cli import main

    model = write_checkpoint(tmp_path / "s.pt", random_stream(2), ["a", "b"])
    assert main(["detect", "export", "--model", str(model), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    assert zipfile.is_zipfile(tmp_path / "m.ts")
    assert main(["detect", "export", "--model", str(model), "--out", str(tmp_path / "x")]) == 1
    assert "--format: required" in capsys.readouterr().err
    assert main(["detect", "export", "--model", str(model), "--format", "onnx", "--plot", "--out", str(tmp_path / "x")]) == 1
    assert "--plot: does not apply" in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown export format"):
        export(load_detector(model), "tflite", tmp_path / "m.tflite")


def doc_snippet(marker: str) -> str:
    """The python block of docs/detect.md that contains ``marker``."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "detect.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("fmt, marker, file", [("torchscript", "torch.jit.load(\"student.ts\"", "student.ts"),
                                               pytest.param("onnx", "onnxruntime", "student.onnx", marks=pytest.mark.skipif(
                                                   not HAS_ONNX, reason="onnx/onnxruntime not installed"))])
def test_documented_snippets_run_without_augrgb(tmp_path, fmt, marker, file):
    detector = load_detector(write_checkpoint(tmp_path / "s.pt", random_stream(3, "softmax"), ["a", "b", "c"]))
    export(detector, fmt, tmp_path / file)
    features = np.random.default_rng(3).normal(size=(23, 1024)).astype(np.float32)
    np.save(tmp_path / "features.npy", features)
    code = ("import sys\nsys.modules['augrgb'] = None  # any import of augrgb now fails\n" + doc_snippet(marker)
            + "np.save('probs.npy', probs)\nassert meta['classes'] == ['a', 'b', 'c']\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), detector.probabilities(features), atol=1e-5, rtol=0)
