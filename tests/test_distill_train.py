"""Stage-2 training on generated features: losses fall, checkpoints load safely, resume is exact, records."""

import json

import numpy as np
import pytest
import torch
from synthetic_features import dataset_config, make_store

from augrgb.core.errors import InputError
from augrgb.distill.settings import StudentConfig, TeacherConfig
from augrgb.distill.train import train_student, train_teacher
from augrgb.models.checkpoint import load_stream

STREAM = {"hidden": 16, "dropout": 0.0, "filter_options": {"layers": 3}}
TRAINING = {"epochs": 8, "batch_size": 4, "max_length": 24, "lr": 3e-3, "validation_fraction": 0.25,
            "early_stopping": None}
# The paper's weights (300, 100, 5) leave L_boundary almost no say on 8 epochs of tiny data; these
# weights let every term move, which is what these tests check.
TERMS = {"atomic": {"weight": 1}, "global": {"weight": 10}, "boundary": {"weight": 10}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    store, annotations = make_store(root)
    return root, {"dataset": dataset_config(), "features": str(store), "annotations": [str(annotations)],
                  "stream": STREAM, "training": TRAINING}


@pytest.fixture(scope="module")
def teacher(data):
    root, common = data
    return train_teacher(TeacherConfig(**common, modality="pose", out=str(root / "teacher")))


def _series(result, part):
    return [e["train"][part] for e in result.history]


def test_teacher_learns_and_its_checkpoint_carries_what_inference_needs(teacher):
    cls = _series(teacher, "cls")
    assert cls[-1] < 0.5 * cls[0]
    assert teacher.best_validation["mAP"] > 0.9                 # pose is informative
    stream, meta = load_stream(teacher.checkpoint)              # weights_only load
    assert meta.modality == "pose" and meta.head == "sigmoid"
    assert meta.classes == ["action0", "action1", "action2", "action3"]
    assert meta.features["fps"] == 16.0 and meta.features["stride"] == 16
    assert meta.features["weights_sha256"] == "0" * 64 and meta.features["encoder"] == "synthetic-agcn"
    assert len(meta.thresholds) == 4 and all(0 < t < 1 for t in meta.thresholds)
    assert meta.info["epoch"] == teacher.best_epoch and meta.info["role"] == "teacher"
    data = torch.load(teacher.checkpoint, weights_only=True)
    assert set(data) >= {"hparams", "state_dict", "classes", "head", "modality", "features", "thresholds"}
    assert stream(torch.zeros(1, 8, 5), torch.ones(1, 1, 5)).logits.shape == (1, 4, 5)


def test_student_distils_cls_and_kd_terms_fall(data, teacher):
    root, common = data
    result = train_student(StudentConfig(**common, objective={"terms": TERMS}, out=str(root / "student")),
                           [teacher.checkpoint])
    for part in ("cls", "atomic", "global", "boundary"):
        series = _series(result, part)
        assert np.mean(series[-2:]) < 0.8 * np.mean(series[:2]), (part, series)
    record = json.loads((root / "student" / "run.json").read_text())
    assert record["kind"] == "student" and record["status"] == "finished"
    assert record["teachers"][0]["modality"] == "pose" and len(record["teachers"][0]["sha256"]) == 64
    assert record["config"]["objective"]["terms"]["global"]["weight"] == 10
    assert [e["epoch"] for e in record["epochs"]] == list(range(1, 9))
    assert set(record["epochs"][0]["train"]) == {"cls", "atomic", "global", "boundary", "total"}
    assert record["wall_seconds"] > 0 and record["peak_memory"]["cpu_rss_bytes"] > 0
    assert "git_commit" in record and record["world_size"] == 1
    assert record["torch_threads"] == 1 and "torch_threads_before_resume" not in record    # the module's one thread
    assert record["data"]["train_videos"] == 18 and record["data"]["validation_videos"] == 6   # 24 training, no test
    meta = load_stream(result.checkpoint)[1]
    assert meta.modality == "rgb" and meta.info["teachers"][0]["modality"] == "pose"
    assert meta.info["torch_threads"] == 1
    assert meta.features["encoder"] == "synthetic"


def test_resume_gives_the_same_next_epoch(data, teacher):
    root, common = data
    training = {**TRAINING, "epochs": 3, "max_length": 12}
    kw = dict(common, training=training, stream={**STREAM, "dropout": 0.3}, objective={"terms": TERMS})
    full = train_student(StudentConfig(**kw, out=str(root / "full")), [teacher.checkpoint])
    train_student(StudentConfig(**{**kw, "training": {**training, "epochs": 2}}, out=str(root / "split")),
                  [teacher.checkpoint])
    resumed = train_student(StudentConfig(**kw, out=str(root / "split")), [teacher.checkpoint], resume=True)
    assert [e["epoch"] for e in resumed.history] == [1, 2, 3]
    assert resumed.history[2]["train"] == full.history[2]["train"]
    assert resumed.history[2]["validation"] == full.history[2]["validation"]
    with pytest.raises(InputError, match="already holds a run"):
        train_student(StudentConfig(**kw, out=str(root / "split")), [teacher.checkpoint])
    changed = dict(kw, stream={**STREAM, "hidden": 8})
    with pytest.raises(InputError, match="stream.hidden"):
        train_student(StudentConfig(**changed, out=str(root / "split")), [teacher.checkpoint], resume=True)
    with pytest.raises(InputError, match="training.selection"):
        train_student(StudentConfig(**dict(kw, training={**training, "selection": "event"}), out=str(root / "split")),
                      [teacher.checkpoint], resume=True)


def test_resuming_with_another_thread_count_is_said_and_recorded(data, teacher, caplog):
    """CPU kernels reduce in an order that depends on the thread count, so a run resumed with another count is not
    the bytes of an uninterrupted one: the resume says so in one line and run.json keeps both counts."""
    root, common = data
    training = {**TRAINING, "epochs": 1, "max_length": 12}
    kw = {**{k: v for k, v in common.items() if k != "training"}, "stream": STREAM, "objective": {"terms": TERMS}}
    out = root / "threads"
    train_student(StudentConfig(**kw, training=training, out=str(out)), [teacher.checkpoint])
    assert torch.load(out / "last.pt", weights_only=True)["torch_threads_used"] == [1]
    torch.set_num_threads(2)
    try:
        with caplog.at_level("WARNING", logger="augrgb.distill.trainer"):
            for epochs in (2, 3):  # resumed twice with two threads: the one-thread epoch is still on record
                train_student(StudentConfig(**kw, training={**training, "epochs": epochs}, out=str(out)),
                              [teacher.checkpoint], resume=True)
    finally:
        torch.set_num_threads(1)
    said = [r.getMessage() for r in caplog.records if "resuming with 2 torch thread(s)" in r.getMessage()]
    assert len(said) == 2 and said[0].endswith("the epochs so far ran with 1: CPU results depend on the thread count, "
                                               "so this run will not be the same bytes as an uninterrupted one")
    assert "ran with 1 and 2:" in said[1]
    record = json.loads((out / "run.json").read_text())
    assert record["torch_threads"] == 2 and record["torch_threads_before_resume"] == [1, 2]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert torch.load(out / "last.pt", weights_only=True)["torch_threads_used"] == [1, 2]


def test_a_run_from_before_the_selection_option_resumes(data, teacher):
    """last.pt written before training.selection and training.schedule existed has no such keys: the defaults
    (the older behaviour) resume it; event selection or a per-frame schedule, which would change its course, is
    refused."""
    root, common = data
    training = {**TRAINING, "epochs": 1, "max_length": 12}
    kw = dict(common, training=training, stream=STREAM, objective={"terms": TERMS})
    out = root / "older"
    train_student(StudentConfig(**kw, out=str(out)), [teacher.checkpoint])
    state = torch.load(out / "last.pt", weights_only=True)
    assert "training.selection" not in state["fingerprint"]       # what an older version wrote, too
    more = {**training, "epochs": 2}
    with pytest.raises(InputError, match="training.selection"):
        train_student(StudentConfig(**dict(kw, training={**more, "selection": "event"}), out=str(out)),
                      [teacher.checkpoint], resume=True)
    state.pop("monitor_best")                                     # nor training.schedule's best (older still)
    torch.save(state, out / "last.pt")
    with pytest.raises(InputError, match="training.schedule"):
        train_student(StudentConfig(**dict(kw, training={**more, "schedule": "frame"}), out=str(out)),
                      [teacher.checkpoint], resume=True)
    resumed = train_student(StudentConfig(**dict(kw, training=more), out=str(out)), [teacher.checkpoint], resume=True)
    assert [e["epoch"] for e in resumed.history] == [1, 2]


def test_weight_average_is_what_is_validated_selected_and_resumed(data, teacher):
    root, common = data
    training = {**TRAINING, "epochs": 3, "max_length": 12}
    kw = {k: v for k, v in common.items() if k != "training"}
    kw.update(stream={**STREAM, "dropout": 0.3}, objective={"terms": TERMS})
    live = train_student(StudentConfig(**kw, training=training, out=str(root / "live")), [teacher.checkpoint])
    # a decay of ~0 makes the average the live weights: the same validation, epoch by epoch
    copy = train_student(StudentConfig(**kw, training={**training, "ema": 1e-9}, out=str(root / "ema0")),
                         [teacher.checkpoint])
    for a, b in zip(live.history, copy.history):
        assert a["train"] == b["train"]
        assert b["validation"]["loss"] == pytest.approx(a["validation"]["loss"], rel=1e-5)
    ema = {**training, "ema": 0.5}
    full = train_student(StudentConfig(**kw, training=ema, out=str(root / "ema")), [teacher.checkpoint])
    assert [e["train"] for e in full.history] == [e["train"] for e in live.history]   # training itself unchanged
    assert full.history[-1]["validation"]["loss"] != live.history[-1]["validation"]["loss"]
    stream, _ = load_stream(full.checkpoint)
    saved = torch.load(root / "ema" / "last.pt", weights_only=True)
    assert full.best_epoch == 3         # so best.pt holds the average of the last epoch, not the live weights
    average = {k.removeprefix("module."): v for k, v in saved["average"].items() if k != "n_averaged"}
    assert all(torch.equal(stream.state_dict()[k], v) for k, v in average.items())
    assert any(not torch.equal(saved["stream"][k], v) for k, v in average.items())
    train_student(StudentConfig(**kw, training={**ema, "epochs": 2}, out=str(root / "ema-split")),
                  [teacher.checkpoint])
    resumed = train_student(StudentConfig(**kw, training=ema, out=str(root / "ema-split")), [teacher.checkpoint],
                            resume=True)
    assert resumed.history[2]["validation"] == full.history[2]["validation"]


def test_vanilla_student_needs_no_teacher_but_kd_does(data):
    root, common = data
    short = dict(common, training={**TRAINING, "epochs": 1})
    result = train_student(StudentConfig(**short, kd="none", out=str(root / "vanilla")))
    assert set(result.history[0]["train"]) == {"cls", "total"}
    with pytest.raises(InputError, match="no teacher checkpoint"):
        train_student(StudentConfig(**short, kd="ours", out=str(root / "no-teacher")))


def test_crd_runs_two_steps(data, teacher):
    root, common = data
    cfg = StudentConfig(**dict(common, training={**TRAINING, "epochs": 2}), kd="crd",
                        two_step={"distill_epochs": 2, "freeze_filter": True}, out=str(root / "crd"))
    result = train_student(cfg, [teacher.checkpoint])
    assert [e["stage"] for e in result.history] == ["distill", "distill", "classify", "classify"]
    step1 = result.history[0]["train"]
    assert set(step1) == {"cls", "crd", "total"} and step1["total"] == pytest.approx(0.8 * step1["crd"])
    assert set(result.history[2]["train"]) == {"cls", "total"}
    assert result.best_epoch in (3, 4)                          # selection only in the classification step


def test_skd_trains_its_critic_and_several_teachers_work(data, teacher):
    root, common = data
    short = dict(common, training={**TRAINING, "epochs": 1})
    second = train_teacher(TeacherConfig(**short, modality="pose", seed=1, out=str(root / "teacher2")))
    result = train_student(StudentConfig(**short, kd="skd", out=str(root / "skd")),
                           [teacher.checkpoint, second.checkpoint])
    assert set(result.history[0]["train"]) == {"cls", "skd", "total"}
    parts = result.history[0]["train"]
    # SKD's default weight is 1 and L_cls's 1: the epoch's total is exactly their sum (both averaged over the
    # same batches), with a finite, non-zero SKD term (the critic gives the student something to match)
    assert np.isfinite(parts["skd"]) and parts["skd"] != 0
    assert parts["total"] == pytest.approx(parts["cls"] + parts["skd"], rel=1e-5)


def test_sparse_dataset_softmax_head(tmp_path):
    store, annotations = make_store(tmp_path, videos=12, sparse=True)
    cfg = TeacherConfig(dataset=dataset_config(sparse=True), features=str(store), annotations=[str(annotations)],
                        modality="pose", stream=STREAM, training={**TRAINING, "epochs": 4}, out=str(tmp_path / "t"))
    result = train_teacher(cfg)
    _, meta = load_stream(result.checkpoint)
    assert meta.head == "softmax" and meta.thresholds is None
    assert _series(result, "cls")[-1] < _series(result, "cls")[0]
    # selection on validation per-frame mAP (the default): the selected epoch is the first with the best one, and
    # best.pt holds that epoch's metrics; a softmax head also records validation event mAP
    _assert_selected_on(result, "mAP")
    assert meta.info["epoch"] == result.best_epoch and set(meta.info["validation"]) == {"loss", "mAP", "event_mAP"}
    record = json.loads(result.record.read_text())
    assert record["selection"] == {"metric": "frame", "tiou": [0.1, 0.5], "schedule": "selection"}  # PKU-MMD's tIoUs


def _assert_selected_on(result, key):
    scores = {e["epoch"]: e["validation"][key] for e in result.history}
    best = max(scores.values())
    assert result.best_validation[key] == best and result.best_epoch == min(e for e, m in scores.items() if m == best)


@pytest.mark.parametrize("sparse", [True, False])
def test_selection_on_event_map_for_either_head(tmp_path, sparse):
    """training.selection event: the selected epoch is the first with the best validation event mAP, over the
    protocol's tIoUs (PKU-MMD: 0.1, 0.5) or 0.1-0.5 (a frame protocol names none)."""
    store, annotations = make_store(tmp_path, videos=12, sparse=sparse)
    cfg = TeacherConfig(dataset=dataset_config(sparse=sparse), features=str(store), annotations=[str(annotations)],
                        modality="pose", stream=STREAM, training={**TRAINING, "epochs": 4, "selection": "event"},
                        out=str(tmp_path / "t"))
    result = train_teacher(cfg)
    _assert_selected_on(result, "event_mAP")
    assert all(np.isfinite(e["validation"]["event_mAP"]) for e in result.history)
    record = json.loads(result.record.read_text())
    assert record["selection"] == {"metric": "event", "tiou": [0.1, 0.5] if sparse else [0.1, 0.2, 0.3, 0.4, 0.5],
                                   "schedule": "selection"}


def test_event_selection_with_the_schedule_on_per_frame_map(tmp_path):
    """training.schedule frame: the LR schedule and early stopping follow validation per-frame mAP, so the run
    takes the same course as one selecting on per-frame mAP (same LRs, losses, validation, stopping epoch), while
    the selected epoch is the first with the best validation event mAP."""
    store, annotations = make_store(tmp_path, videos=12, sparse=True)
    training = {**TRAINING, "epochs": 12, "lr_patience": 0, "early_stopping": 4}

    def run(name, **options):
        return train_teacher(TeacherConfig(dataset=dataset_config(sparse=True), features=str(store),
                                           annotations=[str(annotations)], modality="pose", stream=STREAM,
                                           training={**training, **options}, out=str(tmp_path / name)))

    frame = run("frame")
    decoupled = run("decoupled", selection="event", schedule="frame")
    lrs = [e["lr"] for e in frame.history]
    assert len(set(lrs)) > 1                                   # the schedule did act, so following it is tested
    assert [e["lr"] for e in decoupled.history] == lrs
    for a, b in zip(frame.history, decoupled.history, strict=True):   # the same stopping epoch, too
        assert a["train"] == b["train"] and a["validation"] == b["validation"]
    _assert_selected_on(frame, "mAP")
    _assert_selected_on(decoupled, "event_mAP")
    assert decoupled.best_epoch != frame.best_epoch           # this case tells the two metrics apart
    record = json.loads(decoupled.record.read_text())
    assert record["selection"] == {"metric": "event", "tiou": [0.1, 0.5], "schedule": "frame"}


def test_keep_last_holds_the_final_epoch_and_no_patience_keeps_the_lr(tmp_path):
    """training.keep last: best.pt holds the last epoch's weights whatever validation says (the same training as
    keep best, epoch by epoch); lr_patience None: the learning rate never moves, where patience 0 cuts it; a run
    without a schedule resumes to the same weights."""
    store, annotations = make_store(tmp_path, videos=12)
    training = {**TRAINING, "epochs": 6, "lr": 3e-2, "lr_patience": 0}  # validation peaks at epoch 5

    def run(name, resume=False, **options):
        return train_teacher(TeacherConfig(dataset=dataset_config(), features=str(store),
                                           annotations=[str(annotations)], modality="pose", stream=STREAM,
                                           training={**training, **options}, out=str(tmp_path / name)),
                             resume=resume)

    best = run("best")
    last = run("last", keep="last")
    assert [e["train"] for e in last.history] == [e["train"] for e in best.history]
    assert best.best_epoch < 6 and last.best_epoch == 6        # this case tells the two apart
    final = torch.load(tmp_path / "last" / "last.pt", weights_only=True)["stream"]
    stream, meta = load_stream(last.checkpoint)
    assert meta.info["epoch"] == 6 and all(torch.equal(stream.state_dict()[k], v) for k, v in final.items())
    assert len({e["lr"] for e in best.history}) > 1           # patience 0 cut the rate...
    constant = run("constant", keep="last", lr_patience=None)
    assert {e["lr"] for e in constant.history} == {training["lr"]}  # ...no patience never does
    run("split", keep="last", lr_patience=None, epochs=3)
    resumed = run("split", resume=True, keep="last", lr_patience=None)
    assert [e["train"] for e in resumed.history] == [e["train"] for e in constant.history]
    assert all(torch.equal(load_stream(resumed.checkpoint)[0].state_dict()[k], v)
               for k, v in load_stream(constant.checkpoint)[0].state_dict().items())


def test_teacher_of_another_dataset_is_refused(data, teacher, tmp_path):
    store, annotations = make_store(tmp_path, videos=6, classes=3)
    cfg = StudentConfig(dataset=dataset_config(classes=3), features=str(store), annotations=[str(annotations)],
                        stream=STREAM, training={**TRAINING, "epochs": 1}, out=str(tmp_path / "s"))
    with pytest.raises(InputError, match="other classes"):
        train_student(cfg, [teacher.checkpoint])


def test_dense_thresholds_maximise_f1_hand_computed():
    from augrgb.distill.validation import dense_thresholds

    scores = np.array([[0.9, 0.2], [0.8, 0.1], [0.3, 0.4], [0.1, 0.3]])
    targets = np.array([[1, 0], [0, 0], [1, 0], [0, 0]], dtype=bool)
    # class 0: >= 0.9 -> F1 2/3; >= 0.8 -> 1/2; >= 0.3 -> 4/5 (best); >= 0.1 -> 2/3. Class 1 has no positive.
    assert dense_thresholds(scores, targets) == [0.3, 0.5]


def test_scalar_logger_writes_events_or_says_once_why_not(tmp_path, monkeypatch, caplog):
    import importlib.util

    from augrgb.distill import records

    monkeypatch.setattr(records, "_TENSORBOARD_NOTICE", False)
    loggers = [records.ScalarLogger(tmp_path / f"tb{i}") for i in range(2)]
    for logger in loggers:
        logger.scalars({"train/cls": 0.5}, 1)
        logger.close()
    if importlib.util.find_spec("tensorboard") is None:
        notices = [r for r in caplog.records if "tensorboard is not installed" in r.getMessage()]
        assert len(notices) == 1 and not (tmp_path / "tb0").exists()
    else:
        assert list((tmp_path / "tb0").glob("events.out.tfevents.*"))
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        for i in range(2):                               # what was logged reads back: train/cls = 0.5 at step 1
            events = EventAccumulator(str(tmp_path / f"tb{i}"))
            events.Reload()
            assert [(e.step, e.value) for e in events.Scalars("train/cls")] == [(1, 0.5)]
