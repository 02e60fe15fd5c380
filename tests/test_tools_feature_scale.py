"""tools/feature_scale.py: the split of H into its temporal mean and the changing rest, on hand-computed cases."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SPEC = importlib.util.spec_from_file_location("feature_scale", Path(__file__).parents[1] / "tools" / "feature_scale.py")
feature_scale = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(feature_scale)


def test_scale_parts_hand_case():
    # H (C=2, T=2): snippets (1, 0) and (3, 0); temporal mean (2, 0); the rest (-1, 0) and (1, 0)
    h = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert feature_scale.scale_parts(h) == pytest.approx((2.0, 2.0, 1.0))
    assert feature_scale.changing_share(2.0, 1.0) == pytest.approx(0.2)


def test_scale_parts_constant_and_zero_mean_features():
    constant = torch.tensor([[3.0, 3.0, 3.0], [4.0, 4.0, 4.0]])
    assert feature_scale.scale_parts(constant) == pytest.approx((5.0, 5.0, 0.0))
    alternating = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    norm, mean, rest = feature_scale.scale_parts(alternating)
    assert (norm, mean, rest) == pytest.approx((1.0, 0.0, 1.0))
    assert feature_scale.changing_share(mean, rest) == pytest.approx(1.0)
    assert feature_scale.changing_share(0.0, 0.0) == 0.0


def test_scales_with_h():
    h = torch.randn(8, 20, generator=torch.Generator().manual_seed(0))
    small, large = feature_scale.scale_parts(h), feature_scale.scale_parts(10 * h)
    assert large == pytest.approx(tuple(10 * v for v in small))
    assert feature_scale.changing_share(*small[1:]) == pytest.approx(feature_scale.changing_share(*large[1:]))


def test_main_reads_a_grid_folder(tmp_path, monkeypatch, capsys):
    from synthetic_features import GRID, make_store

    from augrgb.models.checkpoint import save_stream
    from augrgb.models.stream import Stream

    store, annotations = make_store(tmp_path, videos=1, test_videos=3, classes=17, length=(12, 16))  # synth: 17 classes
    records = []
    for seed, name in enumerate(("vanilla", "augmented")):
        run = tmp_path / "results" / "runs" / name
        run.mkdir(parents=True)
        torch.manual_seed(seed)
        stream = Stream(12, 17, hidden=6, dropout=0.0, filter_options={"layers": 2})
        save_stream(run / "best.pt", stream, classes=[f"action{c}" for c in range(17)], modality="rgb", features=GRID)
        for teacher in ("pose", "flow"):  # a vanilla stream's rows name every teacher, yet it is one run
            if name == "augmented" and teacher == "flow":
                continue
            records.append({"group": "main", "name": name, "teacher": teacher, "seed": 0, "score": 0.25 + 0.5 * seed,
                            "run": str(run), "validation": 0.5})
    records.append({"group": "main", "name": "teacher", "teacher": "pose", "seed": 0, "score": 0.9,
                    "run": str(tmp_path / "none"),
                    "validation": 0.9})
    (tmp_path / "results" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr("sys.argv", ["feature_scale.py", str(tmp_path / "results"), str(store), str(annotations)])
    feature_scale.main()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4  # header, rule, vanilla (once), augmented; the teacher row is skipped
    videos = feature_scale.test_videos(store, annotations, "rgb")
    assert len(videos) == 3 and all(v.shape[0] == 12 for v in videos)
    expected = feature_scale.stream_scale(tmp_path / "results" / "runs" / "augmented" / "best.pt", videos)
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[:4] == ["augmented", "pose", "1", "75.00 ± 0.00"]
    assert float(cells[4].split(" ± ")[0]) == pytest.approx(expected["|H|"], abs=0.005)
    assert lines[2].startswith("| vanilla | pose | 1 | 25.00 ± 0.00 |")


def test_main_names_a_missing_checkpoint(tmp_path, monkeypatch):
    from synthetic_features import make_store

    store, annotations = make_store(tmp_path, videos=1, test_videos=2, classes=17, length=(12, 16))  # synth: 17 classes
    (tmp_path / "results").mkdir()
    record = {"group": "main", "name": "vanilla", "teacher": "pose", "seed": 0, "score": 0.3,
              "run": "elsewhere/vanilla", "validation": 0.4}
    (tmp_path / "results" / "results.jsonl").write_text(json.dumps(record) + "\n")
    monkeypatch.setattr("sys.argv", ["feature_scale.py", str(tmp_path / "results"), str(store), str(annotations)])
    with pytest.raises(SystemExit, match="elsewhere/vanilla/best.pt: no checkpoint"):
        feature_scale.main()
