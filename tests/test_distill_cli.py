"""``augrgb distill teacher|student`` and ``augrgb evaluate streams`` on a tiny store; shipped configs validate."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from synthetic_features import dataset_config, make_store

from augrgb.cli import main
from augrgb.core.config import PRESET_DIR, load_config
from augrgb.distill.settings import DatasetConfig, StudentConfig, TeacherConfig
from augrgb.models.checkpoint import load_stream


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    store, annotations = make_store(root, videos=10, test_videos=4)
    config = root / "experiment.yaml"
    config.write_text(yaml.safe_dump({
        "dataset": dataset_config(), "features": str(store), "annotations": [str(annotations)], "out": str(root / "x"),
        "stream": {"hidden": 8, "dropout": 0.0, "filter_options": {"layers": 2}},
        "training": {"epochs": 3, "batch_size": 4, "lr": 0.003, "validation_fraction": 0.3}}))
    assert main(["distill", "teacher", "--config", str(config), "--modality", "pose", "--out", str(root / "teacher"),
                 "--quiet"]) == 0
    return root, config, store, annotations


def test_teacher_and_student_commands_write_their_runs(setup, capsys):
    root, config, _, _ = setup
    teacher = root / "teacher" / "best.pt"
    assert load_stream(teacher)[1].modality == "pose"
    code = main(["distill", "student", "--config", str(config), "--teacher", str(teacher), "--kd", "logit",
                 "--epochs", "2", "--set", "training.max_length=8", "--set", "objective.classification_weight=2",
                 "--out", str(root / "student"), "--quiet"])
    assert code == 0
    assert "best epoch" in capsys.readouterr().out
    saved = yaml.safe_load((root / "student" / "config.yaml").read_text())
    assert saved["training"]["max_length"] == 8 and saved["training"]["epochs"] == 2
    assert saved["objective"] == {"classification_weight": 2.0, "classification_reduction": "sum-classes",
                                  "terms": {"logit": {"weight": None}}}
    record = json.loads((root / "student" / "run.json").read_text())
    assert set(record["epochs"][0]["train"]) == {"cls", "logit", "total"}


def test_resume_continues_a_finished_run_to_more_epochs(setup):
    root, config, _, _ = setup
    out = str(root / "teacher")
    assert main(["distill", "teacher", "--config", str(config), "--modality", "pose", "--out", out, "--epochs", "4",
                 "--resume", "--quiet"]) == 0
    record = json.loads((root / "teacher" / "run.json").read_text())
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3, 4] and record["resumed_after_epoch"] == 3


def test_bad_inputs_are_one_line_errors(setup, capsys):
    root, config, _, _ = setup
    code = main(["distill", "teacher", "--config", str(config), "--set", "training.epoch=3", "--out", str(root / "e")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "training.epoch: Extra inputs are not permitted" in err
    code = main(["distill", "student", "--config", str(config), "--teacher", str(root / "nope.pt"),
                 "--out", str(root / "e2")])
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == f"error: {root / 'nope.pt'}: checkpoint not found"
    bogus = root / "bogus.pt"
    torch.save({"format": "something else"}, bogus)
    assert main(["distill", "student", "--config", str(config), "--teacher", str(bogus), "--out", str(root / "e3")]) == 1
    assert "not an augrgb.stream/1 file" in capsys.readouterr().err


def _evaluate(args):
    return main(["evaluate", "streams", *args])


def test_evaluate_streams_prints_rgb_teacher_and_fusion(setup, capsys):
    root, config, store, annotations = setup
    assert main(["distill", "student", "--config", str(config), "--kd", "none", "--out", str(root / "rgb"),
                 "--quiet"]) == 0
    capsys.readouterr()
    teacher = str(root / "teacher" / "best.pt")
    common = ["--features", str(store), "--annotations", str(annotations), "--format", "dense-json"]
    assert _evaluate(["--rgb", str(root / "rgb" / "best.pt"), "--teacher", teacher, *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "per-frame mAP on testing (4 videos)"
    assert [line.split()[:2] for line in lines[2:]] == [["RGB", "rgb"], ["teacher", "pose"], ["two-stream", "rgb+pose"]]
    # the same stream twice: the average of equal logits is those logits, so the fusion scores the same
    assert _evaluate(["--rgb", teacher, "--teacher", teacher, "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[2]["mAP"] == rows[1]["mAP"] == rows[0]["mAP"] and 0.5 < rows[0]["mAP"] <= 1


def test_every_shipped_config_validates():
    datasets = sorted(PRESET_DIR.glob("*.yaml"))
    for path in datasets:
        if "num_classes" in yaml.safe_load(path.read_text()):
            assert load_config(DatasetConfig, path).num_classes >= 1
    experiments = sorted((PRESET_DIR / "experiments").glob("*.yaml"))
    assert len(experiments) >= 6
    for path in experiments:
        model = TeacherConfig if Path(path).stem.endswith("_teacher") else StudentConfig
        cfg = load_config(model, path)
        assert cfg.dataset.num_classes >= 1 and cfg.out
    ours = load_config(StudentConfig, "experiments/synth_student_ours")
    assert {n: t.weight for n, t in ours.objective.terms.items()} == {"atomic": 300, "global": 100, "boundary": 5}
    assert load_config(StudentConfig, "experiments/synth_student_crd").two_step.distill_epochs == 20
