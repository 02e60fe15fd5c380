"""Reliability: nothing is lost when writers share a store, when a run is killed, or when files are torn.

Real processes throughout (no mocks): concurrent writers, kill -9 and SIGTERM mid-batch. Each test is a
guarantee listed in docs/guarantees.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from augrgb.core.files import replacing, write_text_atomic
from augrgb.core.locks import FolderLock
from augrgb.extract.pipeline import VideoResult
from augrgb.extract.store import FeatureStore

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

# One writer process: store `modality` features of videos v000..v{n-1} and record each in the manifest.
WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from augrgb.extract.store import FeatureStore
    store_dir, modality, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = FeatureStore(store_dir)
    for i in range(n):
        vid = f"v{i:03d}"
        store.write(vid, modality, np.full((3, 8), i, np.float32), {"fps": 25.0})
        store.record(vid, modality, "done", f"/videos/{vid}.mp4")
""")


# `augrgb CLI-ARGS...` as a plain user would run it: as root (tests run as root in containers), first drop the
# capabilities to read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from the bounding set, then exec, which
# leaves the command without them, so that file permissions bind it as they bind any user.
AS_A_PLAIN_USER = textwrap.dedent("""
    import ctypes, os, sys
    if os.geteuid() == 0:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if prctl(24, ctypes.c_ulong(capability), *[ctypes.c_ulong(0)] * 3) != 0:  # PR_CAPBSET_DROP
                sys.exit(f"cannot drop root's file-reading capabilities: {os.strerror(ctypes.get_errno())}")
    os.execv(sys.executable, [sys.executable, "-m", "augrgb.cli", *sys.argv[1:]])
""")


def _writers(store: Path, modalities: list[str], n: int) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store), m, str(n)], env=ENV, stderr=subprocess.PIPE)
             for m in modalities]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()


@pytest.mark.parametrize("trial", [1, 2])
def test_concurrent_writers_keep_every_dataset_and_manifest_entry(tmp_path, trial):
    store_dir, n = tmp_path / "store", 60
    _writers(store_dir, ["rgb", "flow", "pose"], n)
    store = FeatureStore(store_dir)
    manifest = store.manifest()["videos"]
    for i in range(n):
        vid = f"v{i:03d}"
        with h5py.File(store.path(vid), "r") as h5:
            assert sorted(h5) == ["flow", "pose", "rgb"], vid
            assert float(h5["rgb"][0, 0]) == i
        assert sorted(manifest[vid]["modalities"]) == ["flow", "pose", "rgb"], vid
    assert not [p for p in store_dir.iterdir() if p.name.endswith(".tmp")]


def test_temporary_names_never_match_what_readers_glob(tmp_path):
    target = tmp_path / "plot.png"
    with replacing(target) as tmp:
        tmp.write_bytes(b"png")
        assert not list(tmp_path.glob("*.png")) and tmp.name.startswith(".") and tmp.name.endswith(".tmp")
    assert target.read_bytes() == b"png"
    store = FeatureStore(tmp_path / "store")
    long_id = "x" * 240  # the longest id we take (MAX_ID_BYTES)
    store.write(long_id, "rgb", np.zeros((2, 4), np.float32))
    assert store.video_ids() == [long_id]


def test_sweep_removes_a_killed_writers_temporaries_but_not_a_live_writers(tmp_path):
    store = FeatureStore(tmp_path / "store")
    key = FeatureStore.lock_key("a")
    stale = store.root / f".{key}.abc123.tmp"
    stale.write_bytes(b"half an HDF5 file")
    live_key = FeatureStore.lock_key("b")
    live = store.root / f".{live_key}.def456.tmp"
    live.write_bytes(b"being written")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from augrgb.core.locks import locked
        with locked({str(store.root / ".locks" / f"{live_key}.lock")!r}):
            print("held", flush=True)
            time.sleep(60)
    """)], env=ENV, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert store.sweep() == [stale]
        assert live.exists() and not stale.exists()
    finally:
        holder.kill()
        holder.wait()
    assert store.sweep() == [live]  # its writer is gone


def test_overwrite_replaces_an_unreadable_feature_file(tmp_path):
    store = FeatureStore(tmp_path / "store")
    store.path("v").write_bytes(b"not an HDF5 file")
    with pytest.raises(Exception, match="not readable HDF5.*--overwrite"):
        store.write("v", "rgb", np.ones((2, 4), np.float32))
    assert store.discard_unreadable("v") and not store.discard_unreadable("v")
    store.write("v", "rgb", np.ones((2, 4), np.float32))
    assert not store.discard_unreadable("v")
    assert store.read("v", "rgb")[0].shape == (2, 4)


def _lock_holder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s FolderLock (returned once it does) until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from augrgb.core.locks import FolderLock
        FolderLock({str(folder)!r}).acquire()
        print("held", flush=True)
        time.sleep(120)
    """)], env=ENV, stdout=subprocess.PIPE)
    if holder.stdout.readline().strip() != b"held":
        holder.kill()
        holder.wait()
        pytest.fail(f"the process meant to hold {folder}'s lock did not take it")
    return holder


def test_folder_lock_refuses_a_second_holder_and_frees_on_kill(tmp_path):
    holder = _lock_holder(tmp_path)
    try:
        with pytest.raises(Exception, match=f"in use by process {holder.pid}"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with FolderLock(tmp_path):
        pass


def test_write_text_atomic_leaves_the_old_file_when_the_writer_is_killed(tmp_path):
    target = tmp_path / "manifest.json"
    write_text_atomic(target, "old\n")
    code = textwrap.dedent(f"""
        import os, signal
        from augrgb.core.files import replacing
        with replacing({str(target)!r}) as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", code], check=False, env=ENV).returncode == -signal.SIGKILL
    assert target.read_text() == "old\n"


# ---- the CLI with the real I3D: concurrent extract rgb + flow, kill -9 and SIGTERM mid-batch ---------------

def _videos(folder: Path, n: int) -> Path:
    from videos import smooth_frame, write_video

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_video(folder / f"v{i}.mp4", [smooth_frame(j + 7 * i, 64, 48) for j in range(16)], fps=25)
    return folder


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory):
    """Five one-snippet videos and a config that makes I3D cheap (64 px input)."""
    root = tmp_path_factory.mktemp("batch")
    (root / "small.yaml").write_text("size: 64\nshort_side: 64\n")
    return _videos(root / "videos", 5), root / "small.yaml"


def _extract(modality: str, videos: Path, store: Path, config: Path, weights: Path, *extra: str,
             plain_user: bool = False) -> subprocess.Popen:
    run = ["-c", AS_A_PLAIN_USER] if plain_user else ["-m", "augrgb.cli"]
    args = [sys.executable, *run, "extract", modality, str(videos), "--out", str(store),
            "--config", str(config), "--quiet", *extra]
    args += ["--weights", str(weights)] if modality == "rgb" else ["--method", "farneback"]
    return subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _h5_bytes(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.glob("*.h5"))}


def _leftovers(store: Path) -> list[str]:
    return [p.name for p in store.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_concurrent_extract_rgb_and_flow_into_one_store(small_batch, tmp_path, i3d_rgb_weights):
    videos, config = small_batch
    for trial in (1, 2):
        store = tmp_path / f"store{trial}"
        procs = [_extract(m, videos, store, config, i3d_rgb_weights) for m in ("rgb", "flow")]
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
        manifest = FeatureStore(store).manifest()["videos"]
        for i in range(5):
            with h5py.File(store / f"v{i}.h5", "r") as h5:
                assert {"rgb", "flow"} <= set(h5), (trial, i)
            assert {m: e["status"] for m, e in manifest[f"v{i}"]["modalities"].items()} == {"rgb": "done", "flow": "done"}
        assert not _leftovers(store)


@pytest.mark.slow
def test_kill_9_mid_batch_then_rerun_gives_the_uninterrupted_outputs(small_batch, tmp_path, i3d_rgb_weights):
    videos, config = small_batch
    reference = tmp_path / "reference"
    proc = _extract("rgb", videos, reference, config, i3d_rgb_weights)
    assert proc.wait(timeout=600) == 0
    store = tmp_path / "killed"
    proc = _extract("rgb", videos, store, config, i3d_rgb_weights)
    deadline = time.monotonic() + 600
    while not list(store.glob("*.h5")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    key = FeatureStore.lock_key("v4")  # what a writer killed inside its write leaves
    (store / f".{key}.x1y2z3.tmp").write_bytes(b"\x89HDF\r\n half")
    assert len(list(store.glob("*.h5"))) < 5, "the batch finished before the kill; nothing was interrupted"
    rerun = _extract("rgb", videos, store, config, i3d_rgb_weights)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert _h5_bytes(store) == _h5_bytes(reference)
    assert not _leftovers(store)
    manifest = FeatureStore(store).manifest()["videos"]
    assert all(manifest[f"v{i}"]["modalities"]["rgb"]["status"] == "done" for i in range(5))


@pytest.mark.slow
def test_sigterm_stops_a_batch_like_ctrl_c(small_batch, tmp_path, i3d_rgb_weights):
    videos, config = small_batch
    store = tmp_path / "store"
    proc = _extract("rgb", videos, store, config, i3d_rgb_weights)
    deadline = time.monotonic() + 600
    while not list(store.glob("*.h5")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the batch finished before SIGTERM arrived")
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err
    assert not _leftovers(store)


@pytest.mark.slow
def test_overwrite_starts_fresh_when_the_old_feature_file_is_unreadable(small_batch, tmp_path, i3d_rgb_weights):
    _, config = small_batch
    single = _videos(tmp_path / "one", 1)
    store = tmp_path / "store"
    store.mkdir()
    (store / "v0.h5").write_bytes(b"garbage, not HDF5")
    proc = _extract("rgb", single, store, config, i3d_rgb_weights)
    out, err = proc.communicate(timeout=600)
    assert "not readable HDF5" in out + err and "--overwrite" in out + err
    proc = _extract("rgb", single, store, config, i3d_rgb_weights, "--overwrite")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert FeatureStore(store).read("v0", "rgb")[0].shape[0] == 1


@pytest.mark.slow
def test_an_unreadable_video_is_one_line_and_a_failed_entry_even_for_root(small_batch, tmp_path, i3d_rgb_weights):
    _, config = small_batch
    videos = _videos(tmp_path / "videos", 2)
    locked_out = videos / "v1.mp4"
    locked_out.chmod(0)
    store = tmp_path / "store"
    proc = _extract("rgb", videos, store, config, i3d_rgb_weights, plain_user=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert [line for line in (out + err).splitlines() if str(locked_out) in line] == \
        [f"{locked_out}: not readable (permission denied)"]
    assert out.splitlines()[-1] == f"1 extracted, 0 already done, 1 failed -> {store}"
    manifest = FeatureStore(store).manifest()["videos"]
    assert manifest["v1"]["source"] == str(locked_out)
    assert {k: manifest["v1"]["modalities"]["rgb"][k] for k in ("status", "reason")} == \
        {"status": "failed", "reason": "not readable (permission denied)"}
    assert manifest["v0"]["modalities"]["rgb"]["status"] == "done"
    assert FeatureStore(store).read("v0", "rgb")[0].shape == (1, 1024)


def test_a_torn_last_results_line_is_ignored_then_cut(tmp_path):
    from augrgb.experiments.runner import cut_torn_tail, read_results

    results = tmp_path / "results.jsonl"
    good = {"group": "main", "name": "vanilla", "seed": 0, "score": 0.5}
    results.write_text(json.dumps(good) + "\n" + '{"group": "main", "na')
    assert read_results(results) == [good]
    assert cut_torn_tail(results) and results.read_text() == json.dumps(good) + "\n"
    assert not cut_torn_tail(results)
    results.write_text('{"group": "main", "na\n' + json.dumps(good) + "\n")  # inside the file it is corruption
    with pytest.raises(Exception, match=r"results.jsonl:1: not valid JSON"):
        read_results(results)


# ---- weights you can trust ---------------------------------------------------------------------------

def _sdist_that_runs_code(folder: Path, marker: Path) -> Path:
    """A local sdist whose setup.py writes ``marker``: what any sdist can do when pip prepares its metadata."""
    import io
    import tarfile

    folder.mkdir()
    archive = folder / "trapdoor-0.0.1.tar.gz"
    setup = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
             "from setuptools import setup\nsetup(name='trapdoor', version='0.0.1')\n").encode()
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("trapdoor-0.0.1/setup.py", setup),
                           ("trapdoor-0.0.1/PKG-INFO", b"Metadata-Version: 2.1\nName: trapdoor\nVersion: 0.0.1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_pinned_download_refuses_a_changed_sdist_before_running_it(tmp_path):
    from augrgb.core.errors import InputError
    from augrgb.extract.weights import file_sha256, pip_download_pinned

    marker = tmp_path / "setup-py-ran"
    archive = _sdist_that_runs_code(tmp_path / "index", marker)
    local = ("--no-index", "--find-links", str(archive.parent), "--no-build-isolation")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InputError, match="not the pinned 0{64}; refused before running anything") as err:
        pip_download_pinned("trapdoor==0.0.1", "0" * 64, dest, *local)
    assert "\n" not in str(err.value) and file_sha256(archive) in str(err.value)
    assert not marker.exists()
    assert pip_download_pinned("trapdoor==0.0.1", file_sha256(archive), dest, *local).name == archive.name
    assert marker.exists()  # with the right hash pip does run it: the pin is what stands in the way


def test_converted_weights_must_match_the_pinned_hash():
    import torch

    from augrgb.core.errors import InputError
    from augrgb.extract.weights import check_kinetics_rgb

    with pytest.raises(InputError, match="not the pinned 826d8f55.*augrgb weights fetch i3d-rgb"):
        check_kinetics_rgb({"Conv3d_1a_7x7.conv3d.weight": torch.zeros(2)}, "i3d-kinetics-400.ckpt")


@pytest.mark.slow
def test_the_cached_kinetics_weights_have_the_pinned_hash(i3d_rgb_weights):
    from augrgb.extract.weights import check_kinetics_rgb, read_weights_file

    check_kinetics_rgb(read_weights_file(i3d_rgb_weights), i3d_rgb_weights)


# ---- training: killed between the two checkpoint writes, two runs on one --out -----------------------

# Runs `augrgb distill teacher` in this process; with a kill count N, SIGKILLs itself right after the N-th
# rename onto best.pt or last.pt (N = 3: between the two checkpoint writes of epoch 2, whatever their order).
TRAIN = textwrap.dedent("""
    import os, signal, sys
    kill_after, argv = int(sys.argv[1]), sys.argv[2:]
    if kill_after:
        real, seen = os.replace, []
        def replace(src, dst, *args, **kwargs):
            real(src, dst, *args, **kwargs)
            if os.path.basename(str(dst)) in ("best.pt", "last.pt"):
                seen.append(dst)
                if len(seen) == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace
    from augrgb.cli import main
    sys.exit(main(argv))
""")


@pytest.fixture(scope="module")
def teacher_config(tmp_path_factory):
    import yaml
    from synthetic_features import dataset_config, make_store

    root = tmp_path_factory.mktemp("train")
    store, annotations = make_store(root, videos=12, test_videos=2, length=(12, 20))
    config = {"dataset": dataset_config(), "features": str(store), "annotations": [str(annotations)],
              "modality": "pose", "stream": {"hidden": 8, "dropout": 0.2, "filter_options": {"layers": 2}},
              "training": {"epochs": 4, "batch_size": 4, "max_length": 12, "lr": 3e-3, "validation_fraction": 0.25,
                           "early_stopping": None}}
    path = root / "teacher.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train(config: Path, out: Path, *extra: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    args = [sys.executable, "-c", TRAIN, str(kill_after), "distill", "teacher", "--config", str(config),
            "--out", str(out), "--quiet", *extra]
    return subprocess.run(args, check=False, env=ENV, capture_output=True, text=True, timeout=600)


def _checkpoint(path: Path) -> dict:
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v for k, v in data.items() if k != "info"} | {"epoch": data["info"]["epoch"]}


def test_training_killed_between_checkpoint_writes_resumes_to_the_same_curve(teacher_config, tmp_path):
    import torch

    full = tmp_path / "full"
    assert _train(teacher_config, full).returncode == 0
    killed = tmp_path / "killed"
    assert _train(teacher_config, killed, kill_after=3).returncode == -signal.SIGKILL
    resumed = _train(teacher_config, killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((killed / "run.json").read_text())
    assert record["resumed_after_epoch"] == 2  # the epoch whose two writes were cut apart is kept, not redone
    assert not _leftovers(killed)
    want_curve, got_curve = ([(e["train"], e["validation"], e["improved"]) for e in json.loads((d / "run.json").read_text())["epochs"]]
                             for d in (full, killed))
    assert want_curve[1][2], "epoch 2 must improve, so that it writes both checkpoints"
    assert got_curve == want_curve
    want, got = _checkpoint(full / "best.pt"), _checkpoint(killed / "best.pt")
    assert want["epoch"] == got["epoch"]
    assert all(torch.equal(want["state_dict"][k], got["state_dict"][k]) for k in want["state_dict"])


def test_a_second_training_on_the_same_out_is_refused(teacher_config, tmp_path):
    out = tmp_path / "run"
    holder = _lock_holder(out)
    try:
        second = _train(teacher_config, out)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 1
    assert second.stderr.strip() == f"error: {out}: run folder is in use by process {holder.pid} on " \
                                    f"{os.uname().nodename}; wait for it to finish or choose another folder"


# ---- one bad input never ends a batch -----------------------------------------------------------------

def _npy_claiming(path: Path, shape: tuple[int, ...]) -> Path:
    """A ~400-byte .npy whose header claims ``shape`` (float32): loading it naively allocates the claimed size."""
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
        handle.write(b"\0" * 300)
    return path


def test_declared_sizes_are_checked_before_allocating_and_the_batch_goes_on(tmp_path, capsys):
    from pose_fixtures import motion, ntu_text

    from augrgb.cli import main

    rng = np.random.default_rng(0)
    folder = tmp_path / "skeletons"
    folder.mkdir()
    np.save(folder / "good.npy", motion(0, 20, rng))
    (folder / "S001C001P001R001A001.skeleton").write_text(ntu_text([[("72057594037931101", motion(1, 1, rng)[0])]] * 12))
    _npy_claiming(folder / "huge.npy", (10**12, 25, 3))
    (folder / "S001C001P001R001A002.skeleton").write_text("1000000000000\n0\n")
    store = tmp_path / "store"
    assert main(["extract", "pose", str(folder), "--out", str(store), "--quiet"]) == 0
    out = capsys.readouterr()
    lines = (out.out + out.err).splitlines()
    manifest = FeatureStore(store).manifest()["videos"]
    assert manifest["good"]["modalities"]["skeleton"]["status"] == "done"
    assert manifest["S001C001P001R001A001"]["modalities"]["skeleton"]["status"] == "done"
    for bad, reason in (("huge", "header declares shape (1000000000000, 25, 3)"),
                        ("S001C001P001R001A002", "declares 1000000000000 frames but the file has only 1 more lines")):
        entry = manifest[bad]["modalities"]["skeleton"]
        assert entry["status"] == "failed" and reason in entry["reason"]
        assert len([line for line in lines if bad in line]) == 1


def _dense(actions: list) -> dict:
    return {"v1": {"subset": "testing", "duration": 10.0, "actions": actions}}


@pytest.mark.parametrize("name, content, reason", [
    ("reversed.json", _dense([[0, 5.0, 2.0]]), "segment 5.0..2.0 s ends before it starts"),
    ("negative.json", _dense([[0, -3.0, 2.0]]), "segment -3.0..2.0 s starts before 0"),
    ("huge_class.json", _dense([[10**9, 1.0, 2.0]]), "class 1000000000 is beyond the limit of 100000 classes"),
    ("nested.json", "[" * 100000 + "]" * 100000, "nested too deeply"),
    ("latin1.json", b"{\"v\xe9\": 1}", "cannot read"),
])
def test_hostile_annotations_give_one_line(tmp_path, name, content, reason):
    from augrgb.annotations import read_annotations
    from augrgb.core.errors import InputError

    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InputError, match=reason) as err:
        read_annotations(path, "dense-json")
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_thumos_class_names_cannot_read_outside_the_folder(tmp_path):
    from augrgb.annotations import read_annotations
    from augrgb.core.errors import InputError

    folder = tmp_path / "thumos"
    folder.mkdir()
    (tmp_path / "secret_test.txt").write_text("video_test_0000001 1.0 2.0\n")
    (folder / "detclasslist.txt").write_text("1 ../secret\n")
    with pytest.raises(InputError, match="class name '../secret' is not a plain file name"):
        read_annotations(folder, "thumos-txt")


@pytest.mark.parametrize("field", ["fps", "size"])
def test_infinite_and_nan_settings_are_refused(field):
    from pydantic import ValidationError

    from augrgb.extract.settings import ExtractConfig

    with pytest.raises(ValidationError, match="finite number|valid integer"):
        ExtractConfig(**{field: float("inf")})


def test_a_huge_flow_image_index_is_one_line_not_a_huge_list(tmp_path):
    import cv2

    from augrgb.core.errors import InputError
    from augrgb.extract.flow import read_flow_images

    folder = tmp_path / "flow"
    folder.mkdir()
    image = np.full((8, 8), 128, np.uint8)
    for name in ("x_00001.jpg", "y_00001.jpg", "x_9999999999.jpg", "y_9999999999.jpg"):
        cv2.imwrite(str(folder / name), image)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"flow image x_00002 missing \(x and y images must be numbered 1..9999999999\)"):
        list(read_flow_images(folder))
    assert time.monotonic() - started < 5


def test_an_unknown_filter_option_is_one_line():
    from augrgb.core.errors import InputError
    from augrgb.models.stream import Stream

    with pytest.raises(InputError, match=r"^ss-tcn: the temporal filter takes no option 'layerz' \(its options: layers\)$"):
        Stream(8, 4, "sigmoid", "ss-tcn", 16, 0.1, {"layerz": 3})


GRID = {"fps": 25.0, "snippet": 16, "stride": 16}


@pytest.mark.parametrize("attrs, reason", [
    ({"snippet": 16, "stride": 16}, "no 'fps' attribute (a snippet grid needs fps, snippet, stride)"),
    ({"fps": 25.0, "snippet": 16}, "no 'stride' attribute (a snippet grid needs fps, snippet, stride)"),
    ({**GRID, "fps": ""}, "'fps' attribute '' is not a number"),
    ({**GRID, "fps": float("inf")}, ("needs finite fps > 0, 1 <= stride <= snippet, frames >= 1 "
                                     "(got SnippetGrid(fps=inf, snippet=16, stride=16, frames=None))")),
], ids=["no-fps", "no-stride", "empty-fps", "inf-fps"])
def test_store_attributes_without_the_grid_are_one_line(tmp_path, attrs, reason):
    from augrgb.annotations import Annotations, VideoAnnotation
    from augrgb.core.errors import InputError
    from augrgb.core.grid import SnippetGrid
    from augrgb.distill.data import FeatureSource, load_videos
    from augrgb.extract.pose_encoder_store import stored_grid

    store = FeatureStore(tmp_path / "store")
    store.write("good", "rgb", np.zeros((4, 8), np.float32), GRID)
    store.write("bad", "rgb", np.zeros((4, 8), np.float32), attrs)
    store.write("bad", "skeleton", np.zeros((40, 1, 25, 3), np.float32), attrs)
    bad = store.path("bad")
    # distill, evaluate and plots read stores through FeatureSource: the bad video is skipped with its one line
    source = FeatureSource(store.root, SnippetGrid(25.0))
    with pytest.raises(InputError) as err:
        source.read("bad", "rgb")
    assert str(err.value) == f"{bad} (rgb dataset): {reason}"
    videos = {v: VideoAnnotation(v, None, "training", []) for v in ("good", "bad")}
    items, report = load_videos(source, Annotations(["a"], videos), ["rgb"], "sigmoid")
    assert [item.video_id for item in items] == ["good"] and report.skipped == [str(err.value)]
    # training the pose encoder reads the grid of the stored skeletons
    with pytest.raises(InputError) as err:
        stored_grid(store, ["bad"])
    assert str(err.value) == f"{bad} (skeleton dataset): {reason}"


# A job whose worker really dies (SIGKILL, as the out-of-memory killer does) on inputs named "oom*" and raises
# MemoryError / a non-augrgb exception on others: what must not end a batch.
@dataclass
class _HostileJob:
    cfg: object
    store: str
    modality: str = "probe"

    def sized(self, workers: int, cpus: int) -> _HostileJob:
        return replace(self)

    def is_done(self, store: FeatureStore, video_id: str) -> bool:
        return store.has(video_id, self.modality)

    def needs_source(self, store: FeatureStore, video_id: str) -> bool:
        return True

    def notices(self) -> list[str]:
        return []

    def start(self) -> _HostileWorker:
        return _HostileWorker(self)


class _HostileWorker:
    def __init__(self, job: _HostileJob) -> None:
        self.job = job

    def extract(self, video_id: str, path: Path) -> VideoResult:
        if video_id.startswith("oom"):
            os.kill(os.getpid(), signal.SIGKILL)
        if video_id.startswith("memory"):
            raise MemoryError("Unable to allocate 2.2 TiB for an array with shape (1000000000000, 25, 3)")
        if video_id.startswith("cv2"):
            import cv2

            cv2.resize(np.zeros((0, 0), np.uint8), (4, 4))  # raises cv2.error
        time.sleep(0.2)
        FeatureStore(self.job.store).write(video_id, self.job.modality, np.ones((1, 2), np.float32))
        return VideoResult(video_id, str(path), "done", snippets=1)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_any_failure_of_one_input_and_a_killed_worker_leave_the_batch_going(tmp_path, workers):
    from types import SimpleNamespace

    from augrgb.extract.pipeline import run_batch

    names = ["a", "b", "memory", "c", "cv2", "d", "e", "f"] + (["oom", "g", "h"] if workers > 1 else [])
    paths = [tmp_path / f"{n}.mp4" for n in names]
    for p in paths:  # the batch checks that each input exists before its job sees it
        p.write_bytes(b"")
    lines: list[str] = []
    job = _HostileJob(SimpleNamespace(workers=workers), str(tmp_path / "store"))
    results = {r.video_id: r for r in run_batch(paths, job, progress=False, report=lines.append)}
    good = [n for n in names if n not in ("memory", "cv2", "oom")]
    assert all(results[n].status == "done" for n in good)
    assert results["memory"].reason.startswith("MemoryError: Unable to allocate")
    assert results["cv2"].reason.startswith("error: OpenCV")
    if workers > 1:
        assert results["oom"].reason.startswith("worker process died")
    assert all("\n" not in line for line in lines) and len(lines) == len(names) - len(good)
    log = (tmp_path / "store" / "errors.log").read_text()
    assert "Traceback" in log and "MemoryError" in log


def test_odd_file_names_get_one_printable_line_each_and_the_batch_goes_on(tmp_path):
    from types import SimpleNamespace

    from augrgb.extract.pipeline import run_batch

    names = [b"good.mp4", b"caf\xe9.mp4", b"two\nlines.mp4", b"y" * 245 + b".mp4", b"fine too.mp4"]
    paths = [Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), n))) for n in names]
    for p in paths:  # the batch checks that each input exists before its job sees it
        p.write_bytes(b"")
    job = _HostileJob(SimpleNamespace(workers=1), str(tmp_path / "store"))
    printed: list[str] = []
    results = {r.source: r for r in run_batch(paths, job, progress=False, report=printed.append)}
    assert [results[str(p)].status for p in paths] == ["done", "failed", "failed", "failed", "done"]
    assert len(printed) == 3 and all("\n" not in line and line.encode("utf-8") for line in printed)
    assert "caf\\xe9.mp4: video id is not valid UTF-8" in printed[0]
    assert "two\\nlines.mp4: video id contains control characters" in printed[1]
    assert "more than 240" in printed[2]
    manifest = FeatureStore(tmp_path / "store").manifest()["videos"]
    assert sum(e["modalities"]["probe"]["status"] == "failed" for e in manifest.values()) == 3


def test_inputs_that_cannot_be_read_are_reported_not_skipped(tmp_path):
    from types import SimpleNamespace

    from augrgb.core.errors import InputError
    from augrgb.extract.pipeline import collect_inputs, run_batch

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "good.mp4").write_bytes(b"x")
    (folder / "broken.mp4").symlink_to(folder / "gone.mp4")
    (folder / "loop.mp4").symlink_to(folder / "loop.mp4")
    (folder / "folder.mp4").mkdir()
    os.mkfifo(folder / "pipe.mp4")  # a decoder opening it would wait forever for a writer
    paths = collect_inputs([folder])
    assert sorted(p.name for p in paths) == ["broken.mp4", "folder.mp4", "good.mp4", "loop.mp4", "pipe.mp4"]
    printed: list[str] = []
    job = _HostileJob(SimpleNamespace(workers=1), str(tmp_path / "store"))
    results = {Path(r.source).name: r for r in run_batch(paths, job, progress=False, report=printed.append)}
    assert results["good.mp4"].status == "done"
    assert results["broken.mp4"].reason == "broken symbolic link (its target does not exist)"
    assert results["loop.mp4"].reason == "symbolic link loop"
    assert results["pipe.mp4"].reason == "not a regular file (a named pipe)"
    assert sorted(printed) == sorted(f"{folder / name}: {results[name].reason}" for name in ("broken.mp4", "loop.mp4", "pipe.mp4"))
    manifest = FeatureStore(tmp_path / "store").manifest()["videos"]
    assert manifest["loop"]["modalities"]["probe"]["status"] == "failed"
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"caf\xe9.mp4\n")
    with pytest.raises(InputError, match=r"list.txt: list file is not UTF-8 text \(byte 3\)$"):
        collect_inputs([listing])


@pytest.mark.parametrize("content, reason", [(b"fps: 25\nname: caf\xe9\n", r"not UTF-8 text \(byte 17\)"),
                                             (b"a: " + b"[" * 20000 + b"]" * 20000 + b"\n", "nested too deeply|cannot read YAML")],
                         ids=["latin1", "nested"])
def test_hostile_yaml_configs_give_one_line(tmp_path, content, reason):
    from augrgb.core.config import read_yaml
    from augrgb.core.errors import InputError

    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason) as err:
        read_yaml(path)
    assert "\n" not in str(err.value)
