"""`augrgb extract ... --engine ray`: same features, manifest and failure reports as the local engine."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from augrgb.cli import main
from augrgb.extract.pipeline import ExtractJob
from augrgb.extract.settings import ExtractConfig
from augrgb.extract.store import FeatureStore
from tests.videos import smooth_frame, write_video

NEEDS_RAY = "Ray is not installed (pip install 'augrgb[distributed]')"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Three good videos of different lengths and sizes, and a text file posing as a video."""
    d = tmp_path_factory.mktemp("videos")
    write_video(d / "good.mp4", [smooth_frame(i, 96, 64) for i in range(40)], fps=25)   # 3 snippets
    write_video(d / "short.mp4", [smooth_frame(i, 96, 64) for i in range(5)], fps=25)   # padded to one snippet
    write_video(d / "tall.mp4", [smooth_frame(i, 48, 80) for i in range(20)], fps=25)   # 2 snippets
    (d / "notes.mp4").write_text("this is a text file renamed to .mp4\n")
    return d


@pytest.fixture
def no_ray():
    """No Ray instance left by an earlier test (``ray_cluster`` shares one): the test checks what the CLI starts."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _extract(batch, store, weights, *extra) -> int:
    return main(["extract", "rgb", str(batch), "--out", str(store), "--quiet", "--batch-size", "2",
                 "--weights", str(weights), *extra])


def _outcomes(store) -> dict:
    """video -> the manifest entry without its timestamp."""
    videos = json.loads((store / "manifest.json").read_text())["videos"]
    return {vid: {k: v for k, v in e["modalities"]["rgb"].items() if k != "updated"} | {"source": e["source"]}
            for vid, e in videos.items()}


def test_engine_choices_are_the_registered_engines():
    from augrgb.cli import build_parser
    from augrgb.extract.engines import ENGINES

    extract = build_parser()._subparsers._group_actions[0].choices["extract"]
    for kind in ("rgb", "flow"):
        parser = extract._subparsers._group_actions[0].choices[kind]
        engine = next(a for a in parser._actions if a.dest == "engine")
        assert sorted(engine.choices) == ENGINES.names() and engine.default == "local"


def test_engine_ray_without_ray_installed_is_a_one_line_error(batch, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "s"), "--engine", "ray"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: --engine ray: Ray is not installed; install it with: pip install 'augrgb[distributed]'"
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("option", [["--address", "auto"], ["--ray-cpus-per-task", "2"], ["--ray-gpus-per-task", "1"]])
def test_ray_options_need_engine_ray(batch, tmp_path, option, capsys):
    assert main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "s"), *option]) == 1
    assert capsys.readouterr().err.strip() == f"error: {option[0]}: only applies with --engine ray"


def test_workers_is_for_the_local_engine(batch, tmp_path, capsys):
    assert main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "s"), "--engine", "ray", "--workers", "2"]) == 1
    assert capsys.readouterr().err.startswith("error: --workers: sets processes of the local engine")


@pytest.mark.parametrize("options, message", [
    (["--device", "cuda"], "error: --device: cuda with --engine ray needs --ray-gpus-per-task"),
    (["--ray-gpus-per-task", "1"], "error: --ray-gpus-per-task: reserves GPUs but --device is cpu; add --device cuda"),
    (["--ray-cpus-per-task", "0"], "error: --ray-cpus-per-task: must be at least 1, got 0"),
])
def test_device_and_reservations_must_agree(batch, tmp_path, options, message, capsys, no_ray):
    pytest.importorskip("ray", reason=NEEDS_RAY)
    import ray

    assert main(["extract", "rgb", str(batch / "good.mp4"), "--out", str(tmp_path / "s"), "--engine", "ray", *options]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert not ray.is_initialized()  # refused before starting anything


@pytest.mark.slow
def test_cli_starts_and_stops_a_private_ray_instance(batch, tmp_path, i3d_rgb_weights, capsys, no_ray):
    ray = pytest.importorskip("ray", reason=NEEDS_RAY)
    assert not ray.is_initialized()
    assert main(["extract", "rgb", str(batch / "short.mp4"), "--out", str(tmp_path / "s"), "--quiet",
                 "--weights", str(i3d_rgb_weights), "--engine", "ray"]) == 0
    assert "1 extracted, 0 already done, 0 failed" in capsys.readouterr().out
    assert not ray.is_initialized()
    assert FeatureStore(tmp_path / "s").read("short", "rgb")[0].shape == (1, 1024)


@pytest.fixture(scope="module")
def _shutdown_ray_after_module():
    """Whatever test started the shared instance, it is stopped when the module ends."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def ray_cluster(_shutdown_ray_after_module):
    """A local Ray instance with 2 CPUs (the engine uses a connection it finds), started on first use and shared
    by the tests that need one, in whatever order they run."""
    ray = pytest.importorskip("ray", reason=NEEDS_RAY)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    return ray


@pytest.mark.slow
def test_ray_engine_matches_the_local_engine_and_resumes(batch, tmp_path, i3d_rgb_weights, ray_cluster, capsys):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert _extract(batch, local, i3d_rgb_weights) == 0
    local_out = capsys.readouterr()
    assert _extract(batch, distributed, i3d_rgb_weights, "--engine", "ray") == 0
    ray_out = capsys.readouterr()
    assert local_out.out.splitlines()[-1] == f"3 extracted, 0 already done, 1 failed -> {local}"
    assert ray_out.out.splitlines()[-1] == f"3 extracted, 0 already done, 1 failed -> {distributed}"

    expected, got = _outcomes(local), _outcomes(distributed)
    assert got == expected
    assert {vid: e["status"] for vid, e in got.items()} == {"good": "done", "short": "done", "tall": "done", "notes": "failed"}
    assert got["good"]["snippets"] == 3 and got["tall"]["snippets"] == 2 and got["notes"]["reason"]
    # the bad video is reported on one line naming it and the reason, as the local engine does
    notes = [line for line in ray_out.out.splitlines() if "notes.mp4" in line]
    assert notes == [line for line in local_out.out.splitlines() if "notes.mp4" in line] and got["notes"]["reason"] in notes[0]
    for vid in ("good", "short", "tall"):
        a, attrs_a = FeatureStore(local).read(vid, "rgb")
        b, attrs_b = FeatureStore(distributed).read(vid, "rgb")
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        assert attrs_b == attrs_a
    names = sorted(p.name for p in distributed.iterdir() if p.name != ".locks")  # .locks: the writers' lock files
    assert names == ["good.h5", "manifest.json", "short.h5", "tall.h5"]  # no temp files

    # resuming: finished videos are skipped (their files untouched), the bad one is tried again
    stamps = {p.name: p.stat().st_mtime_ns for p in distributed.glob("*.h5")}
    assert _extract(batch, distributed, i3d_rgb_weights, "--engine", "ray") == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"0 extracted, 3 already done, 1 failed -> {distributed}"
    assert {p.name: p.stat().st_mtime_ns for p in distributed.glob("*.h5")} == stamps
    assert _outcomes(distributed)["good"] == got["good"]


@dataclass
class DyingJob(ExtractJob):
    """An ExtractJob whose worker process dies (as on a segfault or an out-of-memory kill) on video 'crash'."""

    def start(self):
        worker = super().start()
        extract = worker.extract

        def extract_or_die(video_id, path):
            if video_id == "crash":
                os._exit(1)
            return extract(video_id, path)

        worker.extract = extract_or_die
        return worker


@pytest.mark.slow
def test_a_dying_worker_fails_its_video_and_a_fresh_one_carries_on(batch, tmp_path, i3d_rgb_weights, ray_cluster):
    from augrgb.extract.engines import RayEngine

    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    job = DyingJob(ExtractConfig(batch_size=2), str(tmp_path / "s"), weights=str(i3d_rgb_weights))
    todo = [("crash", batch / "good.mp4"), ("short", batch / "short.mp4"), ("tall", batch / "tall.mp4")]
    results = {r.video_id: r for r in RayEngine(cpus_per_task=1).run(job, todo)}
    assert sorted(results) == ["crash", "short", "tall"]
    assert results["crash"].status == "failed" and results["crash"].reason.startswith("Ray worker died (")
    assert results["short"].status == results["tall"].status == "done"
    assert FeatureStore(tmp_path / "s").video_ids() == ["short", "tall"]


class _MeanEncoder:
    """A stand-in for I3D: each snippet's mean pixel value, so the Ray path runs without loading weights."""

    def features(self, snippets: np.ndarray) -> np.ndarray:
        return snippets.reshape(len(snippets), -1).mean(axis=1, keepdims=True).astype(np.float32)


@dataclass
class MeanJob(ExtractJob):
    """An ExtractJob that encodes with :class:`_MeanEncoder`: real decoding, storing and reporting, no I3D."""

    def make_encoder(self):
        return _MeanEncoder(), "0" * 64, "test stand-in"


@pytest.mark.slow
def test_a_bad_video_fails_once_on_one_line_and_the_ray_batch_finishes(batch, tmp_path, ray_cluster):
    from augrgb.extract.engines import RayEngine
    from augrgb.extract.pipeline import run_batch

    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    store = tmp_path / "s"
    job = MeanJob(ExtractConfig(batch_size=2), str(store))
    lines: list[str] = []
    results = run_batch(sorted(batch.glob("*.mp4")), job, progress=False, engine=RayEngine(cpus_per_task=1),
                        report=lines.append)
    assert sorted((r.video_id, r.status) for r in results) == [("good", "done"), ("notes", "failed"), ("short", "done"),
                                                               ("tall", "done")]
    reason = next(r.reason for r in results if r.video_id == "notes")
    assert lines == [f"{batch / 'notes.mp4'}: {reason}"] and "\n" not in reason
    manifest = FeatureStore(store).manifest()["videos"]
    assert {vid: e["modalities"]["rgb"]["status"] for vid, e in manifest.items()} == \
        {"good": "done", "notes": "failed", "short": "done", "tall": "done"}
    assert manifest["notes"]["modalities"]["rgb"]["reason"] == reason
    assert FeatureStore(store).video_ids() == ["good", "short", "tall"]
    assert FeatureStore(store).read("good", "rgb")[0].shape == (3, 1)  # 40 frames: 3 snippets of the stand-in
