"""End-to-end ONNX, OpenVINO IR and TorchScript export (I3D RGB encoder + temporal filter + head) against the PyTorch pipeline.

Tolerances: ONNX Runtime, OpenVINO fp32 and PyTorch differ only in float32 rounding order; features agree
within 1e-4 of their largest magnitude, probabilities within 1e-4 absolute (measured: about 1e-6, OpenVINO
1e-7); the deploy program's OpenVINO bf16 encoder within 1e-2 (measured 5e-4).
"""

from __future__ import annotations

import json
import shutil
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
import openvino  # a dev dependency, as onnxruntime: not skipped

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


def opencv_detect_probabilities(case: dict) -> np.ndarray:
    """Per-snippet probabilities of `augrgb detect --backend opencv` (the deploy program's decoder) on the clip."""
    out = case["tmp"] / "det"
    if not (out / "probabilities" / "clip.h5").is_file():
        assert main(["detect", str(case["video"]), "--model", str(case["model"]), "--out", str(out), "--weights",
                     str(case["weights"]), "--backend", "opencv", "--runtime", "torch", "--precision", "fp32", "--quiet"]) == 0
    with h5py.File(out / "probabilities" / "clip.h5") as h5:
        return h5["snippets"][()]


def run_deploy(case: dict, export: Path, blocked: list[str], *options: str) -> dict:
    """docs/deploy_onnx.py on the clip in a process where ``blocked`` modules cannot be imported; its JSON result."""
    tmp = case["tmp"]
    blocker = ("import runpy, sys; " + "".join(f"sys.modules[{m!r}] = None; " for m in blocked)
               + f"sys.argv = sys.argv[1:]; runpy.run_path({str(DEPLOY)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", blocker, str(DEPLOY), str(case["video"]), str(export),
                             "--out", str(tmp / "deployed.json"), "--batch", "2", *options], capture_output=True, text=True,
                            cwd=tmp, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((tmp / "deployed.json").read_text())


def test_deploy_program_gives_augrgb_detect_probabilities_without_augrgb_or_torch(tiny_case):
    """docs/deploy_onnx.py, with torch and augrgb unimportable, equals `augrgb detect --backend opencv`."""
    expected = opencv_detect_probabilities(tiny_case)
    deployed = run_deploy(tiny_case, tiny_case["out"], ["torch", "augrgb", "openvino"])
    got = np.asarray(deployed["snippet_probabilities"], np.float32)
    assert got.shape == expected.shape == (5, 3)  # 33 frames: 4 whole 8-frame snippets + the padded tail
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert deployed["classes"] == tiny_case["classes"]


@pytest.fixture(scope="module")
def openvino_export(tiny_case) -> Path:
    """The tiny case exported with --format openvino --end-to-end."""
    out = tiny_case["tmp"] / "export_openvino"
    assert main(["detect", "export", "--model", str(tiny_case["model"]), "--format", "openvino", "--end-to-end",
                 "--out", str(out), "--weights", str(tiny_case["weights"])]) == 0
    return out


def test_openvino_export_carries_the_metadata_and_equals_pytorch(tiny_case, openvino_export):
    meta = json.loads((openvino_export / "augrgb.json").read_text())
    assert sorted(p.name for p in openvino_export.iterdir()) == ["augrgb.json", "encoder.bin", "encoder.xml",
                                                                 "temporal.bin", "temporal.xml"]
    assert meta["format"] == "augrgb.openvino-end-to-end/1" and meta["classes"] == tiny_case["classes"]
    assert meta["graphs"]["encoder"]["bin"] == "encoder.bin" and len(meta["graphs"]["temporal"]["bin_sha256"]) == 64
    core = openvino.Core()
    model = core.read_model(str(openvino_export / "encoder.xml"))
    assert json.loads(model.get_rt_info("augrgb").astype(str))["weights_sha256"] == meta["weights_sha256"]
    assert json.loads(model.get_rt_info("augrgb.grid").astype(str)) == meta["grid"]
    i3d = InceptionI3d()
    i3d.load_state_dict(read_weights_file(tiny_case["weights"]), strict=False)
    snippets = np.random.default_rng(0).integers(0, 256, (3, 8, 32, 32, 3), dtype=np.uint8)
    expected = SnippetEncoder(i3d.eval()).features(snippets)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = np.ascontiguousarray((snippets.astype(np.float32) / 127.5 - 1).transpose(0, 4, 1, 2, 3))
    for batch in (x, x[:1]):  # the batch axis is dynamic
        got = compiled({"snippets": batch})[0]
        np.testing.assert_allclose(got, expected[:len(batch)], atol=1e-4 * np.abs(expected).max(), rtol=0)


def test_deploy_program_runs_the_openvino_export_with_openvino_only(tiny_case, openvino_export, tmp_path):
    """docs/deploy_onnx.py on the IR, with torch, augrgb and onnxruntime unimportable: fp32 and bf16."""
    expected = opencv_detect_probabilities(tiny_case)
    for precision, atol in (("fp32", 1e-4), ("bf16", 1e-2)):
        if precision == "bf16" and "BF16" not in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            continue  # the bf16 hint needs a CPU with bf16
        deployed = run_deploy(tiny_case, openvino_export, ["torch", "augrgb", "onnxruntime"], "--precision", precision)
        np.testing.assert_allclose(np.asarray(deployed["snippet_probabilities"], np.float32), expected, atol=atol, rtol=0)
    changed = shutil.copytree(openvino_export, tmp_path / "changed")
    (changed / "encoder.bin").write_bytes(b"x")
    result = subprocess.run([sys.executable, str(DEPLOY), str(tiny_case["video"]), str(changed)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "encoder.bin: not the file augrgb.json describes" in result.stderr


def clip_snippets(case: dict) -> np.ndarray:
    """The clip's preprocessed snippets ``(T, 3, 8, 32, 32)`` in [-1, 1], decoded as `detect --backend opencv` does."""
    from augrgb.core.grid import iter_snippets
    from augrgb.extract import decode
    from augrgb.extract.runtime import to_model_input
    from augrgb.extract.transforms import Preprocess

    prep = Preprocess(crop="center", size=TINY_GRID["size"], short_side=TINY_GRID["short_side"])
    frames = (prep(f) for f in decode.iter_frames(case["video"], fps=25.0, backend="opencv"))
    return to_model_input(np.stack([s.frames for s in iter_snippets(frames, TINY_GRID["snippet"], TINY_GRID["stride"])]))


def test_torchscript_end_to_end_export_equals_detect_and_carries_the_metadata(tiny_case, tmp_path):
    """One TorchScript file: ``forward`` on the clip's snippets gives `augrgb detect`'s probabilities, ``encode`` in
    batches + ``temporal`` the same; the metadata round-trips; ``torch.jit.load`` runs it where augrgb cannot be imported."""
    from augrgb.detect.model import load_detector
    from augrgb.detect.onnx_export import end_to_end_metadata

    path = tmp_path / "detector.ts"
    assert main(["detect", "export", "--model", str(tiny_case["model"]), "--format", "torchscript", "--end-to-end",
                 "--out", str(path), "--weights", str(tiny_case["weights"])]) == 0
    extra = {"augrgb.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["augrgb.json"])
    sha = state_sha256(read_weights_file(tiny_case["weights"]))
    assert meta == json.loads(json.dumps(end_to_end_metadata(load_detector(tiny_case["model"]), sha, "torchscript")))
    assert (meta["format"], meta["classes"], meta["thresholds"], meta["weights_sha256"]) == (
        "augrgb.torchscript-end-to-end/1", tiny_case["classes"], [0.4, 0.5, 0.6], sha)
    assert meta["grid"] == {"fps": 25.0, "snippet": 8, "stride": 8}
    assert (meta["preprocessing"]["size"], meta["preprocessing"]["short_side"]) == (32, 40)
    assert sorted(meta["methods"]) == ["encode", "forward", "temporal"]

    expected = opencv_detect_probabilities(tiny_case)
    x = torch.from_numpy(clip_snippets(tiny_case))
    with torch.no_grad():
        whole = module(x)[0].T.numpy()
        features = torch.cat([module.encode(x[i:i + 2]) for i in range(0, len(x), 2)])  # batches of 2, as streaming
        streamed = module.temporal(features.T[None].contiguous(), torch.ones(1, 1, len(x)))[0].T.numpy()
    assert whole.shape == expected.shape == (5, 3)
    np.testing.assert_allclose(whole, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(streamed, expected, atol=1e-4, rtol=0)

    np.save(tmp_path / "snippets.npy", x.numpy())
    code = ("import json, sys; sys.modules['augrgb'] = None; import numpy as np, torch; extra = {'augrgb.json': ''}; "
            "m = torch.jit.load(sys.argv[1], _extra_files=extra); "
            "np.save(sys.argv[3], m(torch.from_numpy(np.load(sys.argv[2]))).detach().numpy()); "
            "print(json.loads(extra['augrgb.json'])['classes'])")
    result = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "snippets.npy"), str(tmp_path / "p.npy")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(tiny_case["classes"])
    np.testing.assert_allclose(np.load(tmp_path / "p.npy")[0].T, expected, atol=1e-4, rtol=0)


def test_end_to_end_export_refusals(tiny_case, tmp_path, capsys):
    model, weights = str(tiny_case["model"]), str(tiny_case["weights"])
    assert main(["detect", "export", "--model", model, "--format", "torchscript", "--end-to-end", "--out",
                 str(tmp_path), "--weights", weights]) == 1
    assert "is a folder; the TorchScript end-to-end export is one file" in capsys.readouterr().err
    assert main(["detect", "export", "--model", model, "--format", "openvino", "--out", str(tmp_path / "v")]) == 1
    assert "add --end-to-end" in capsys.readouterr().err
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


@pytest.mark.slow
def test_real_i3d_torchscript_end_to_end_on_the_kinetics_clip(tmp_path, i3d_rgb_weights):
    """Real weights traced at 224 px: the TorchScript file's ``encode`` equals the PyTorch encoder on the bundled
    clip's snippets, and its ``forward`` equals the student read on those features."""
    from augrgb.core.grid import iter_snippets
    from augrgb.detect.model import load_detector
    from augrgb.extract import decode
    from augrgb.extract.runtime import to_model_input
    from augrgb.extract.transforms import Preprocess
    from augrgb.extract.weights import load_i3d

    sha = state_sha256(read_weights_file(i3d_rgb_weights))
    model = write_checkpoint(tmp_path / "student.pt", random_stream(3, "sigmoid"), ["a", "b", "c"],
                             features={**FEATURES, "weights_sha256": sha})
    path = tmp_path / "detector.ts"
    assert main(["detect", "export", "--model", str(model), "--format", "torchscript", "--end-to-end",
                 "--out", str(path), "--weights", str(i3d_rgb_weights)]) == 0
    module = torch.jit.load(str(path))

    prep = Preprocess()
    frames = (prep(f) for f in decode.iter_frames(SHARED_VIDEOS / "kinetics_arm_wrestling.mp4", fps=25.0))
    snippets = np.stack([s.frames for _, s in zip(range(3), iter_snippets(frames))])
    i3d, _, _ = load_i3d("rgb", path=i3d_rgb_weights)
    expected = SnippetEncoder(i3d).features(snippets)
    x = torch.from_numpy(to_model_input(snippets))
    with torch.no_grad():
        got = module.encode(x).numpy()
        probabilities = module(x)[0].numpy()
        reference = load_detector(model).model(torch.from_numpy(expected).T[None], torch.ones(1, 1, 3))[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities, reference, atol=1e-4, rtol=0)
