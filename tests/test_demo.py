"""``augrgb demo``: the whole pipeline at the tiny size (with the flow teacher and two training seeds), interrupted
and resumed; settings, record and table."""

from __future__ import annotations

import json
import math

import pytest

from augrgb.cli import main
from augrgb.core.config import load_config
from augrgb.core.errors import InputError
from augrgb.demo.cli import INTERRUPTED
from augrgb.demo.results import VANILLA, add_gap_closed, gap_closed, markdown_table, mean_over_seeds, table_rows
from augrgb.demo.settings import DemoPresets, demo_settings, parse_seeds
from augrgb.demo.steps import DemoRecord, Step, run_steps

ROWS = ["vanilla RGB", "pose teacher", "flow teacher", "two-stream RGB+pose", "two-stream RGB+flow",
        "Augmented-RGB (pose)", "Augmented-RGB (flow)"]


def headers_and_outcomes(out: str) -> list[tuple[str, str]]:
    """(stage header, the line after it) for each ``[i/n]`` header printed."""
    lines = out.splitlines()
    return [(line, lines[i + 1]) for i, line in enumerate(lines) if line.startswith("[")]


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory, i3d_rgb_weights):
    """A tiny demo with flow and seeds 0,1, interrupted in the middle of the pose teacher's training, then resumed."""
    import augrgb.distill.trainer as trainer

    out = tmp_path_factory.mktemp("demo") / "out"
    args = ["demo", "--out", str(out), "--size", "tiny", "--quiet", "--flow", "dis", "--seeds", "0,1"]
    save_state = trainer.Trainer._save_state

    def interrupt_after_first_epoch(self, state):
        save_state(self, state)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer.Trainer, "_save_state", interrupt_after_first_epoch)
        interrupted = run_cli(args)
    finished_before = list(json.loads((out / "demo.json").read_text())["finished"])
    resumed = run_cli(args)
    return out, args, (*interrupted, finished_before), resumed


def run_cli(args: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.slow
def test_interrupted_demo_says_how_to_resume_and_resumes(tiny_demo):
    out, _, (code, stdout, stderr, finished), (code2, stdout2, _) = tiny_demo
    assert code == 130 and stderr.strip().splitlines()[-1] == INTERRUPTED
    assert finished == ["weights", "benchmark", "rgb", "flow", "pose"]
    assert code2 == 0
    outcomes = headers_and_outcomes(stdout2)
    assert len(outcomes) == 10
    assert all("skipped" in after for _, after in outcomes[:5])
    assert not any("skipped" in after for _, after in outcomes[5:])
    # the pose teacher went on from the epoch saved before the interruption
    record = json.loads((out / "runs" / "seed0" / "pose_teacher" / "run.json").read_text())
    assert record["resumed_after_epoch"] == 1 and [e["epoch"] for e in record["epochs"]] == [1, 2]


@pytest.mark.slow
def test_tiny_demo_writes_the_table_and_detections(tiny_demo):
    out, _, _, (code, stdout, _) = tiny_demo
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in result["rows"]] == ROWS
    assert result["metric"] == "per-frame mAP" and result["columns"] == ["mAP"]
    for row in result["rows"]:
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in row["scores"].values()), row
    # every row is the mean and std of its checkpoints' test-subset scores over the two training seeds
    from augrgb.evaluate.checkpoints import evaluate_checkpoints

    assert result["seeds"] == [0, 1]
    again = [evaluate_checkpoints({row["name"]: row["per_seed"][i]["checkpoints"] for row in result["rows"]},
                                  out / "features", out / "bench" / "annotations.json", fmt="dense-json",
                                  subset="testing", tiou=(0.1, 0.5)) for i in range(2)]
    for i, row in enumerate(result["rows"]):
        a, b = again[0]["rows"][i]["scores"]["mAP"], again[1]["rows"][i]["scores"]["mAP"]
        assert [p["seed"] for p in row["per_seed"]] == [0, 1]
        assert "runs/seed1/" in row["per_seed"][1]["checkpoints"][-1]
        assert row["scores"]["mAP"] == pytest.approx((a + b) / 2) and row["std"]["mAP"] == pytest.approx(abs(a - b) / 2)
    assert [len(r["per_seed"][0]["checkpoints"]) for r in result["rows"]] == [1, 1, 1, 2, 2, 1, 1]
    markdown = (out / "results.md").read_text()
    for name in ROWS:
        assert f"| {name} |" in markdown and f"| {name} |" in stdout
    assert " ± " in markdown and "mean ± std over training seeds 0,1" in markdown
    assert "wall time:" in stdout
    annotations = json.loads((out / "bench" / "annotations.json").read_text())
    test_ids = [vid for vid, v in annotations.items() if v["subset"] == "testing"]
    assert test_ids
    detections = json.loads((out / "detect" / "detections.json").read_text())["results"]
    assert set(detections) == set(test_ids)
    for vid in test_ids:
        for path in (f"plots/{vid}.png", f"probabilities/{vid}.h5", f"txt/{vid}.txt", f"videos/{vid}.json"):
            assert (out / "detect" / path).is_file(), path
    figures = (out / "figures.md").read_text()
    assert all(f"detect/plots/{vid}.png" in figures for vid in test_ids)
    for name in ("tsne", "relations", "saliency"):
        assert f"figures/{name}.png" in figures and (out / "figures" / f"{name}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_rerun_skips_every_stage_and_other_settings_are_refused(tiny_demo):
    out, args, _, _ = tiny_demo
    before = (out / "results.json").read_text()
    code, stdout, _ = run_cli(args)
    assert code == 0
    outcomes = headers_and_outcomes(stdout)
    assert len(outcomes) == 10 and all("skipped" in after for _, after in outcomes)
    assert (out / "results.json").read_text() == before
    code, _, stderr = run_cli([*args, "--seed", "1"])
    assert code == 1 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: {out}: holds a demo made with other settings (seed: 0 -> 1)")


def test_every_size_preset_validates_and_grows():
    sizes = load_config(DemoPresets, "demo").sizes
    assert list(sizes) == ["tiny", "small", "medium", "large"]
    work = [s.videos * s.seconds * s.input_size ** 2 for s in sizes.values()]
    assert work == sorted(work)


def test_unknown_size_is_one_line_error(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "x"), "--size", "huge"]) == 1
    err = capsys.readouterr().err
    assert err == "error: --size: unknown size 'huge' (configs/demo.yaml has: tiny, small, medium, large)\n"
    assert not (tmp_path / "x").exists()


def test_record_refuses_other_settings_and_foreign_folders(tmp_path):
    DemoRecord(tmp_path / "a", demo_settings("tiny"))
    DemoRecord(tmp_path / "a", demo_settings("tiny"))  # the same settings resume
    with pytest.raises(InputError, match=r"other settings \(mode: dense -> sparse; flow: None -> tvl1\)"):
        DemoRecord(tmp_path / "a", demo_settings("tiny", "sparse", "tvl1"))
    with pytest.raises(InputError, match=r"size_name: tiny -> small; size.videos: 6 -> 32"):
        DemoRecord(tmp_path / "a", demo_settings("small"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="not an empty folder or a demo folder"):
        DemoRecord(tmp_path / "b", demo_settings("tiny"))


def test_stages_run_once_and_a_failed_stage_runs_again(tmp_path):
    calls = []

    def stage(key, fail=False):
        def run():
            calls.append(key)
            if fail:
                raise KeyboardInterrupt
            return f"did {key}"
        return Step(key, f"title {key}", run)

    lines: list[str] = []
    record = DemoRecord(tmp_path / "d", demo_settings("tiny"))
    with pytest.raises(KeyboardInterrupt):
        run_steps([stage("a"), stage("b", fail=True), stage("c")], record, lines.append)
    assert calls == ["a", "b"] and list(record.finished) == ["a"]
    assert lines[:3] == ["[1/3] title a", lines[1], "[2/3] title b"] and lines[1].startswith("  did a (")
    outcome = run_steps([stage("a"), stage("b"), stage("c")], DemoRecord(tmp_path / "d", demo_settings("tiny")),
                         lines.append)
    assert outcome == {"a": "skipped", "b": "ran", "c": "ran"} and calls == ["a", "b", "b", "c"]


def test_gap_closed_and_table():
    assert gap_closed(0.4, 0.6, 0.5) == pytest.approx(0.5)
    assert gap_closed(0.4, 0.6, 0.3) == pytest.approx(-0.5)
    assert gap_closed(0.4, 0.4, 0.5) is None and gap_closed(0.5, 0.4, 0.5) is None
    assert gap_closed(0.2867, 0.2872, 0.1455) is None  # a 0.05-point gap: the ratio would be -269
    assert gap_closed(0.40, 0.42, 0.43) == pytest.approx(1.5)
    rows = table_rows({"pose": "p.pt"}, "v.pt", {"pose": "s.pt"})
    assert rows == {VANILLA: ["v.pt"], "pose teacher": ["p.pt"], "two-stream RGB+pose": ["v.pt", "p.pt"],
                    "Augmented-RGB (pose)": ["s.pt"]}
    scores = {VANILLA: (0.2, 0.1), "pose teacher": (0.5, 0.3), "two-stream RGB+pose": (0.6, 0.1),
              "Augmented-RGB (pose)": (0.5, 0.2)}
    result = add_gap_closed({"metric": "event mAP (ActivityNet)", "columns": ["mAP@0.1", "mAP@0.5"],
                             "rows": [{"name": n, "scores": dict(zip(["mAP@0.1", "mAP@0.5"], s))} for n, s in scores.items()]})
    assert result["rows"][3]["gap_closed"] == {"mAP@0.1": pytest.approx(0.75), "mAP@0.5": None}
    lines = markdown_table(result).splitlines()
    assert lines[0] == "| row | mAP@0.1 (%) | mAP@0.5 (%) | gap closed @0.1 | gap closed @0.5 |"
    assert lines[2] == "| vanilla RGB | 20.00 | 10.00 |  |  |"
    assert lines[5] == "| Augmented-RGB (pose) | 50.00 | 20.00 | 0.75 | n/a |"


def test_presets_are_found_from_a_folder_holding_same_named_folders(tmp_path, monkeypatch):
    from augrgb.distill.settings import DatasetConfig

    for name in ("demo", "synth"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    assert demo_settings("small").size.videos == 32
    assert load_config(DatasetConfig, "synth").name == "synth"


def test_default_demo_trains_the_pose_teacher_only_and_seeds_are_checked(tmp_path):
    from augrgb.demo.pipeline import DemoRun

    settings = demo_settings("tiny")
    assert settings.flow is None and settings.teachers == ("pose",) and settings.seeds == [0]
    keys = [step.key for step in DemoRun(tmp_path / "d", settings).steps()]
    assert keys == ["weights", "benchmark", "rgb", "pose", "teachers", "students", "evaluation", "detect", "figures"]
    flow = demo_settings("tiny", flow="dis", seed=3, seeds=[4, 5])
    assert flow.teachers == ("pose", "flow") and flow.seed == 3 and flow.seeds == [4, 5]
    assert "flow" in [step.key for step in DemoRun(tmp_path / "d", flow).steps()]
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(InputError, match=r"--seeds: expected comma-separated integers like 0,1,2, got '0,x'"):
        parse_seeds("0,x")
    with pytest.raises(InputError, match="--seeds: needs distinct seeds, got 1,1"):
        demo_settings("tiny", seeds=[1, 1])


def test_mean_over_seeds_on_a_hand_computed_case():
    def result(vanilla, teacher):
        return {"metric": "per-frame mAP", "columns": ["mAP"], "subset": "testing", "videos": 2,
                "rows": [{"name": VANILLA, "checkpoints": ["v.pt"], "scores": {"mAP": vanilla}},
                         {"name": "pose teacher", "checkpoints": ["t.pt"], "scores": {"mAP": teacher}}]}

    mean = mean_over_seeds([result(0.2, 0.5), result(0.4, 0.5), result(0.3, 0.8)], [0, 1, 2])
    assert mean["seeds"] == [0, 1, 2] and mean["videos"] == 2
    vanilla, teacher = mean["rows"]
    assert vanilla["scores"]["mAP"] == pytest.approx(0.3) and vanilla["std"]["mAP"] == pytest.approx((0.02 / 3) ** 0.5)
    assert teacher["scores"]["mAP"] == pytest.approx(0.6) and teacher["std"]["mAP"] == pytest.approx(0.02 ** 0.5)
    assert [p["scores"]["mAP"] for p in teacher["per_seed"]] == [0.5, 0.5, 0.8]
    assert markdown_table(mean).splitlines()[2] == "| vanilla RGB | 30.00 ± 8.16 |  |"
    with pytest.raises(ValueError, match="row 1 differs between seeds"):
        other = result(0.1, 0.1)
        other["rows"][1]["name"] = "flow teacher"
        mean_over_seeds([result(0.2, 0.5), other], [0, 1])
