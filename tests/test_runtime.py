"""`--runtime torch|onnxruntime|openvino` and `--precision auto|fp32|bf16|int8`: the choice, and the same outputs from each runtime.

Tolerances: fp32 ONNX Runtime and OpenVINO vs PyTorch, probabilities within 1e-4 absolute (float32
rounding order only); OpenVINO bf16 and int8 on the tiny model within 0.01 (measured 5e-4 and 1.5e-3).
int8 accuracy guard (real weights, bundled Kinetics clip), each int8 runtime: cosine >= 0.99 per
snippet against fp32 features, and the same Kinetics top-1 from `extract classify`; OpenVINO fp32
cosine >= 0.999 (and bf16 >= 0.99) there.
"""

from __future__ import annotations

import json
import shutil
import sys

import h5py
import numpy as np
import pytest

from augrgb.cli import main
from augrgb.extract import precision
from augrgb.extract.precision import auto_precision, cpu_flags, resolve
from augrgb.extract.runtime import compile_config, make_encoder
from augrgb.core.errors import InputError
from augrgb.extract.store import FeatureStore
from augrgb.extract.weights import read_weights_file, state_sha256
from tests.detect_helpers import FEATURES, random_stream, write_checkpoint
from tests.test_deploy_onnx import TINY_GRID, tiny_i3d_weights
from tests.videos import SHARED_VIDEOS, write_video

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def test_auto_without_an_encoder_to_time():
    assert auto_precision("torch", "cpu", {"avx512f", "amx_bf16", "amx_tile"})[0] == "bf16"
    assert auto_precision("torch", "cpu", {"avx512f", "avx512_bf16", "avx512_vnni"})[0] == "fp32"  # Zen 4: not measured
    assert auto_precision("onnxruntime", "cpu", {"amx_bf16", "amx_int8"})[0] == "fp32"  # int8 only when asked, calibrated
    if "amx_bf16" not in cpu_flags():  # this machine (AMD EPYC, no AMX): only a measurement could pick bf16
        assert resolve().precision == "fp32"


def test_refused_combinations():
    with pytest.raises(InputError, match="runs with --runtime torch"):
        resolve("onnxruntime", "bf16")
    with pytest.raises(InputError, match="runs with --runtime onnxruntime"):
        resolve("torch", "int8", calibrate="x")
    with pytest.raises(InputError, match="needs --calibrate"):
        resolve("onnxruntime", "int8")
    with pytest.raises(InputError, match="int8 only"):
        resolve("onnxruntime", "fp32", calibrate="x")
    assert resolve("onnxruntime", "int8", calibrate="x").as_record()["precision"] == "int8"


def test_openvino_choice_and_refusals(monkeypatch):
    monkeypatch.setattr(precision, "openvino_capabilities", lambda: ["FP32", "INT8"])
    assert resolve("openvino").as_record() == {"runtime": "openvino", "runtime_reason": "given", "precision": "fp32",
                                               "precision_reason": "openvino reports no bf16 support on this CPU"}
    monkeypatch.setattr(precision, "openvino_capabilities", lambda: ["FP32", "BF16", "INT8"])
    assert resolve("openvino").precision == "bf16"
    assert resolve("openvino", calibrate="x").precision == "int8"  # auto with calibration videos
    assert [resolve("openvino", p).precision for p in ("fp32", "bf16")] == ["fp32", "bf16"]
    assert resolve("openvino", "int8", calibrate="x").precision == "int8"
    with pytest.raises(InputError, match="needs --calibrate"):
        resolve("openvino", "int8")
    assert compile_config("bf16", 3, ["BF16", "FP32", "INT8"]) == {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": 3}
    assert compile_config("int8", 1, ["FP32", "INT8"])["INFERENCE_PRECISION_HINT"] == "f32"
    with pytest.raises(InputError, match="this CPU has no bf16 support in OpenVINO"):
        compile_config("bf16", 2, ["FP32", "INT8"])
    with pytest.raises(InputError, match="runs on the CPU here, not cuda"):
        make_encoder(None, "0" * 64, "openvino", "fp32", device="cuda")


def test_auto_runtime_is_openvino_when_it_imports_else_torch(monkeypatch):
    """--runtime auto: openvino on the CPU where the package imports, torch where it does not or on a GPU; the record
    names the rule (no timings)."""
    monkeypatch.setattr(precision, "openvino_capabilities", lambda: ["FP32", "BF16", "INT8"])
    assert resolve("auto", "auto").as_record() == {
        "runtime": "openvino", "runtime_reason": "auto: the openvino package is installed and the device is the CPU",
        "precision": "bf16", "precision_reason": "openvino reports bf16 support on this CPU (OpenVINO's own default there)"}
    assert resolve("auto", "auto", calibrate="x").precision == "int8"
    assert resolve("auto", "fp32").as_record()["runtime"] == "openvino"
    assert resolve("auto", "fp32", device="cuda").as_record() == {
        "runtime": "torch", "runtime_reason": "auto: device cuda runs torch (openvino runs on the CPU only here)",
        "precision": "fp32", "precision_reason": "given"}

    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails, as where the extra is not installed
    choice = resolve("auto", "auto", flags={"avx512f", "avx2"})
    assert choice.as_record() == {
        "runtime": "torch", "runtime_reason": "auto: the openvino package is not installed (pip install 'augrgb[openvino]')",
        "precision": "fp32", "precision_reason": "CPU without bf16 instructions: bf16 would be emulated"}
    assert choice.describe() == ("I3D on torch (auto: the openvino package is not installed (pip install "
                                 "'augrgb[openvino]')), fp32 (CPU without bf16 instructions: bf16 would be emulated)")
    with pytest.raises(InputError, match=r"int8 runs with --runtime onnxruntime or openvino, not torch .*"
                                         r"--runtime auto picked torch: the openvino package is not installed"):
        resolve("auto", "int8", calibrate="x")
    with pytest.raises(InputError, match="calibrates int8, which --runtime torch does not run"):
        resolve("auto", "auto", calibrate="x")
    with pytest.raises(InputError, match="unknown runtime 'tensorrt'"):
        resolve("tensorrt")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A tiny I3D and student, a 33-frame clip, a private weights cache."""
    tmp = tmp_path_factory.mktemp("runtime")
    weights = tiny_i3d_weights(tmp / "i3d.pt")
    features = {**FEATURES, **TINY_GRID, "weights_sha256": state_sha256(read_weights_file(weights))}
    model = write_checkpoint(tmp / "student.pt", random_stream(3, "sigmoid"), ["a", "b", "c"], features=features)
    base = np.random.default_rng(2).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    (tmp / "videos").mkdir()
    video = write_video(tmp / "videos" / "clip.mp4", (np.roll(base, 2 * i, axis=0) for i in range(33)), fps=25)
    return {"tmp": tmp, "weights": weights, "model": model, "video": video}


def _detect(tiny: dict, name: str, *options: str) -> tuple[np.ndarray, dict]:
    out = tiny["tmp"] / name
    assert main(["detect", str(tiny["video"]), "--model", str(tiny["model"]), "--out", str(out), "--weights",
                 str(tiny["weights"]), "--cache-dir", str(tiny["tmp"] / "cache"), "--quiet", *options]) == 0
    with h5py.File(out / "probabilities" / "clip.h5") as h5:
        probs = h5["snippets"][()]
    return probs, json.loads((out / "videos" / "clip.json").read_text())


def test_onnxruntime_detect_equals_torch_and_records_the_choice(tiny):
    torch_probs, torch_record = _detect(tiny, "torch", "--runtime", "torch", "--precision", "fp32")
    ort_probs, ort_record = _detect(tiny, "ort", "--runtime", "onnxruntime")  # auto: fp32, not measured
    np.testing.assert_allclose(ort_probs, torch_probs, atol=1e-4, rtol=0)
    assert (torch_record["runtime"], ort_record["runtime"]) == ("torch", "onnxruntime")
    assert (torch_record["precision"], torch_record["precision_reason"]) == ("fp32", "given")
    assert ort_record["precision"] == "fp32" and ort_record["precision_reason"].startswith("onnxruntime:")
    assert any(p.name.endswith("-fp32.onnx") for p in (tiny["tmp"] / "cache" / "onnx").iterdir())


def test_detect_default_runtime_is_auto_and_recorded(tiny, monkeypatch, capsys):
    """`detect` without --runtime: openvino where it imports, torch where it does not; the output line and the record
    say which and by which rule, and the outputs match torch fp32's."""
    torch_probs, _ = _detect(tiny, "torch_auto_base", "--runtime", "torch", "--precision", "fp32")
    monkeypatch.setattr(precision, "openvino_capabilities", lambda: ["FP32", "INT8"])  # fp32 on any CPU: comparable
    capsys.readouterr()
    probs, record = _detect(tiny, "auto_ov")
    np.testing.assert_allclose(probs, torch_probs, atol=1e-4, rtol=0)
    expected = {"runtime": "openvino", "runtime_reason": "auto: the openvino package is installed and the device is the CPU",
                "precision": "fp32", "precision_reason": "openvino reports no bf16 support on this CPU"}
    assert {k: record[k] for k in expected} == expected
    assert ("I3D on openvino (auto: the openvino package is installed and the device is the CPU), fp32 (openvino "
            "reports no bf16 support on this CPU)") in capsys.readouterr().out.splitlines()

    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setattr(precision, "cpu_flags", lambda *_: {"avx512f"})  # torch auto decided by flags, not timed
    probs, record = _detect(tiny, "auto_torch")
    np.testing.assert_array_equal(probs, torch_probs)
    assert (record["runtime"], record["runtime_reason"], record["precision"]) == (
        "torch", "auto: the openvino package is not installed (pip install 'augrgb[openvino]')", "fp32")


def test_auto_detect_measures_once_and_records_the_timings(tiny, monkeypatch):
    """A CPU with bf16 but no AMX (faked): the I3D about to run is timed once, and its timings recorded by every run."""
    timed = []

    def fake_timer(forward, *_):
        timed.append(forward)
        return {"fp32": 0.66, "bf16": 0.41}

    monkeypatch.setattr(precision, "cpu_flags", lambda *_: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(precision, "time_precisions", fake_timer)
    cache = tiny["tmp"] / "cache-auto"
    _, first = _detect(tiny, "auto1", "--runtime", "torch", "--cache-dir", str(cache))
    _, second = _detect(tiny, "auto2", "--runtime", "torch", "--cache-dir", str(cache))
    assert len(timed) == 1 and (cache / precision.CACHE_FILE).is_file()
    batch = f"batch of 8 snippets of {TINY_GRID['snippet']} frames at {TINY_GRID['size']} px"
    reason = f"measured here: bf16 at least 10% faster than fp32 per {batch}"
    for record in (first, second):  # measured or read back: the same record
        assert (record["precision"], record["precision_reason"]) == ("bf16", reason)


def test_int8_detect_runs_calibrated_and_is_recorded(tiny, capsys):
    probs, record = _detect(tiny, "int8", "--runtime", "onnxruntime", "--precision", "int8",
                            "--calibrate", str(tiny["video"].parent))
    assert (record["runtime"], record["precision"]) == ("onnxruntime", "int8") and probs.shape == (5, 3)
    assert len(list((tiny["tmp"] / "cache" / "onnx").glob("*-int8-*.onnx"))) == 1
    assert main(["detect", str(tiny["video"]), "--model", str(tiny["model"]), "--out", str(tiny["tmp"] / "bad"),
                 "--runtime", "torch", "--precision", "int8", "--quiet"]) == 1
    assert "int8 runs with --runtime onnxruntime or openvino, not torch" in capsys.readouterr().err


def test_openvino_detect_equals_torch_and_records_the_choice(tiny):
    torch_probs, _ = _detect(tiny, "torch_ov", "--runtime", "torch", "--precision", "fp32")
    for chosen, atol in (("fp32", 1e-4), ("bf16", 1e-2)):
        probs, record = _detect(tiny, f"ov_{chosen}", "--runtime", "openvino", "--precision", chosen)
        np.testing.assert_allclose(probs, torch_probs, atol=atol, rtol=0)
        assert (record["runtime"], record["precision"], record["precision_reason"]) == ("openvino", chosen, "given")
    probs, record = _detect(tiny, "ov_int8", "--runtime", "openvino", "--precision", "int8", "--calibrate",
                            str(tiny["video"].parent))
    np.testing.assert_allclose(probs, torch_probs, atol=1e-2, rtol=0)
    assert record["precision"] == "int8"
    assert len(list((tiny["tmp"] / "cache" / "onnx").glob("*-int8qdq-*.onnx"))) == 1  # the QDQ graph OpenVINO reads


def _extract(tiny: dict, name: str, *options: str, video=None) -> tuple[np.ndarray, dict]:
    """`augrgb extract rgb` of the tiny clip (or ``video``) with the tiny I3D on its grid: (features, attributes)."""
    video = video or tiny["video"]
    store = tiny["tmp"] / name
    config = tiny["tmp"] / "tiny_grid.yaml"
    config.write_text("".join(f"{k}: {v}\n" for k, v in TINY_GRID.items()))
    assert main(["extract", "rgb", str(video), "--out", str(store), "--weights", str(tiny["weights"]), "--cache-dir",
                 str(tiny["tmp"] / "cache"), "--config", str(config), "--quiet", *options]) == 0
    return FeatureStore(store).read(video.stem, "rgb")


def test_extract_rgb_runtimes_record_the_choice_and_match_torch(tiny, monkeypatch, capsys):
    """`extract rgb` keeps torch fp32 by default; --runtime openvino fp32 gives its features within 1e-4, --runtime auto
    and --precision auto record the rule, int8 runs calibrated; each in the store's attributes and one output line."""
    expected, attrs = _extract(tiny, "x_default")
    assert {k: attrs[k] for k in ("runtime", "runtime_reason", "precision", "precision_reason")} == {
        "runtime": "torch", "runtime_reason": "given", "precision": "fp32", "precision_reason": "given"}
    assert "I3D on torch (given), fp32 (given)" in capsys.readouterr().out.splitlines()

    features, attrs = _extract(tiny, "x_ov", "--runtime", "openvino", "--precision", "fp32")
    np.testing.assert_allclose(features, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)
    assert (attrs["runtime"], attrs["precision"], attrs["runtime_reason"]) == ("openvino", "fp32", "given")

    monkeypatch.setattr(precision, "openvino_capabilities", lambda: ["FP32", "INT8"])
    features, attrs = _extract(tiny, "x_auto", "--runtime", "auto", "--precision", "auto")
    np.testing.assert_allclose(features, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)
    assert (attrs["runtime"], attrs["runtime_reason"], attrs["precision"], attrs["precision_reason"]) == (
        "openvino", "auto: the openvino package is installed and the device is the CPU", "fp32",
        "openvino reports no bf16 support on this CPU")

    features, attrs = _extract(tiny, "x_int8", "--runtime", "openvino", "--calibrate", str(tiny["video"].parent),
                               "--precision", "auto")
    assert (attrs["runtime"], attrs["precision"], attrs["precision_reason"]) == (
        "openvino", "int8", "calibration videos given (--calibrate)")
    assert features.shape == expected.shape

    monkeypatch.setitem(sys.modules, "openvino", None)
    assert main(["extract", "rgb", str(tiny["video"]), "--out", str(tiny["tmp"] / "x_bad"), "--runtime", "auto",
                 "--precision", "int8", "--calibrate", str(tiny["video"].parent), "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--runtime auto picked torch: the openvino package is not installed" in error


@pytest.mark.slow
def test_extract_rgb_openvino_fp32_matches_torch_on_the_kinetics_clip(tmp_path, i3d_rgb_weights):
    """Real weights, every snippet of the bundled Kinetics clip through `augrgb extract rgb`: OpenVINO fp32 features keep
    cosine >= 0.999 to torch fp32's, and the store records each runtime."""
    clip = SHARED_VIDEOS / "kinetics_arm_wrestling.mp4"
    stores = {}
    for runtime in ("torch", "openvino"):
        assert main(["extract", "rgb", str(clip), "--out", str(tmp_path / runtime), "--runtime", runtime, "--precision",
                     "fp32", "--weights", str(i3d_rgb_weights), "--cache-dir", str(tmp_path / "cache"), "--quiet"]) == 0
        stores[runtime] = FeatureStore(tmp_path / runtime).read(clip.stem, "rgb")
    (expected, torch_attrs), (got, ov_attrs) = stores["torch"], stores["openvino"]
    assert got.shape == expected.shape == (16, 1024)  # 250 frames at 25 fps: 15 snippets and a padded one
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999, cosine
    assert (torch_attrs["runtime"], ov_attrs["runtime"], ov_attrs["precision"]) == ("torch", "openvino", "fp32")


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_int8_accuracy_guard_on_the_kinetics_clip(runtime, tmp_path, i3d_rgb_weights, capsys):
    """Calibrated on the other bundled videos (not the clip): cosine >= 0.99 to fp32, Kinetics top-1 unchanged."""
    from augrgb.extract import decode
    from augrgb.extract.encoder import SnippetEncoder
    from augrgb.core.grid import iter_snippets
    from augrgb.extract.transforms import Preprocess
    from augrgb.extract.weights import load_i3d

    calibrate = tmp_path / "calibrate"
    calibrate.mkdir()
    for name in ("ntu_S001C001P001R001A001_rgb.avi", "xvid_with_audio.avi"):
        shutil.copy(SHARED_VIDEOS / name, calibrate / name)
    clip = SHARED_VIDEOS / "kinetics_arm_wrestling.mp4"
    i3d, sha, _ = load_i3d("rgb", path=i3d_rgb_weights)
    int8 = make_encoder(i3d, sha, runtime, "int8", cache=tmp_path / "cache", calibrate=calibrate)
    prep = Preprocess()
    snippets = np.stack([s.frames for s in iter_snippets(prep(f) for f in decode.iter_frames(clip, fps=25.0))])
    expected = np.concatenate([SnippetEncoder(i3d).features(snippets[i:i + 4]) for i in range(0, len(snippets), 4)])
    got = np.concatenate([int8.features(snippets[i:i + 4]) for i in range(0, len(snippets), 4)])
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.99, cosine

    top1 = {}
    for name, options in (("fp32", []), ("int8", ["--runtime", runtime, "--precision", "int8", "--calibrate", str(calibrate)])):
        assert main(["extract", "classify", str(clip), "--top", "1", "--weights", str(i3d_rgb_weights), "--cache-dir",
                     str(tmp_path / "cache"), *options]) == 0
        top1[name] = capsys.readouterr().out.split("\t")[0]
    assert top1["int8"] == top1["fp32"] == "arm wrestling"


@pytest.mark.slow
def test_openvino_fp32_and_bf16_features_on_the_kinetics_clip(tmp_path, i3d_rgb_model):
    """Real weights, 224x224 snippets of the bundled clip: OpenVINO fp32 cosine >= 0.999 to PyTorch fp32, bf16 >= 0.99."""
    from augrgb.core.grid import iter_snippets
    from augrgb.extract import decode
    from augrgb.extract.encoder import SnippetEncoder
    from augrgb.extract.runtime import openvino_core
    from augrgb.extract.transforms import Preprocess

    prep = Preprocess()
    frames = (prep(f) for f in decode.iter_frames(SHARED_VIDEOS / "kinetics_arm_wrestling.mp4", fps=25.0))
    snippets = np.stack([s.frames for _, s in zip(range(3), iter_snippets(frames))])
    expected = SnippetEncoder(i3d_rgb_model).features(snippets)
    bf16 = "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    for chosen, bound in (("fp32", 0.999), ("bf16", 0.99))[: 2 if bf16 else 1]:
        got = make_encoder(i3d_rgb_model, "0" * 64, "openvino", chosen, cache=tmp_path).features(snippets)
        cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        assert cosine.min() >= bound, (chosen, cosine)
