"""``evaluate_checkpoints``: rows of single or fused checkpoints, per-frame or event mAP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_features import dataset_config, make_store

from augrgb.annotations import Annotations, Segment, VideoAnnotation
from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.distill.data import VideoItem
from augrgb.distill.settings import TeacherConfig
from augrgb.distill.train import train_teacher
from augrgb.distill.validation import EventTarget, event_scores
from augrgb.evaluate.checkpoints import evaluate_checkpoints, evaluate_streams

TIMING = SnippetGrid(16.0, 16, 16)  # snippet t covers [t, t + 1) s


def one_video(label: int = 0, start: float = 2.0, end: float = 5.9, duration: float = 10.0) -> Annotations:
    return Annotations(["a", "b"], {"v": VideoAnnotation("v", duration, "testing", [Segment(label, start, end)])})


def softmax_probs(active: slice, label: int = 0) -> np.ndarray:
    """(10, 3) probabilities: ``label`` 0.9 on the ``active`` snippets, background 0.9 elsewhere."""
    probs = np.full((10, 3), 0.05)
    probs[:, 2] = 0.9
    probs[active] = 0.05
    probs[active, label] = 0.9
    return probs


def test_validation_event_target_averages_over_tiou():
    """EventTarget (the trainer's event mAP): the mean over its tIoUs of event_scores on the items' logits, with each
    video's duration from its item; NaN when the videos hold no instance."""
    ann = Annotations(["a", "b"], {"v": VideoAnnotation("v", None, "validation", [Segment(0, 2.0, 5.9)])})
    item = VideoItem("v", {}, np.zeros(10, dtype=np.int64), 10, duration=10.0)
    target = EventTarget.of(ann, [item], TIMING, (0.1, 0.5))
    assert target.annotations.videos["v"].duration == 10.0
    # snippets 5..8: a hit at tIoU 0.1 only (see below), so the mean over (0.1, 0.5) is 0.5
    assert target.score([np.log(softmax_probs(slice(5, 9)))], [item], "softmax", 2) == pytest.approx(0.5)
    assert target.score([np.log(softmax_probs(slice(2, 6)))], [item], "softmax", 2) == pytest.approx(1.0)
    empty = Annotations(["a", "b"], {"v": VideoAnnotation("v", None, "validation", [])})
    assert np.isnan(EventTarget.of(empty, [item], TIMING, (0.5,)).score([np.zeros((10, 3))], [item], "softmax", 2))


def test_event_scores_of_hand_made_probabilities():
    ann = one_video()
    # snippets 2..5 -> [2, 6] s against [2, 5.9]: tIoU 0.975
    assert event_scores({"v": softmax_probs(slice(2, 6))}, "softmax", 2, ann, TIMING, (0.1, 0.5)) == \
        {"mAP@0.1": 1.0, "mAP@0.5": 1.0}
    # snippets 5..8 -> [5, 9] s: intersection 0.9 s, union 7 s, tIoU 0.129: a hit at 0.1 only
    assert event_scores({"v": softmax_probs(slice(5, 9))}, "softmax", 2, ann, TIMING, (0.1, 0.5)) == \
        {"mAP@0.1": 1.0, "mAP@0.5": 0.0}
    # the wrong class: no true positive
    assert event_scores({"v": softmax_probs(slice(2, 6), label=1)}, "softmax", 2, ann, TIMING, (0.1,)) == {"mAP@0.1": 0.0}
    # sigmoid heads: the multi-threshold decoder needs no thresholds
    sigmoid = np.full((10, 2), 0.05)
    sigmoid[2:6, 0] = 0.95
    assert event_scores({"v": sigmoid}, "sigmoid", 2, ann, TIMING, (0.5,)) == {"mAP@0.5": 1.0}


@pytest.fixture(scope="module")
def sparse_teacher(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval")
    store, annotations = make_store(root, videos=8, test_videos=3, sparse=True)
    cfg = TeacherConfig.model_validate({
        "dataset": dataset_config(sparse=True), "features": str(store), "annotations": [str(annotations)],
        "out": str(root / "teacher"), "modality": "pose", "device": "cpu",
        "stream": {"hidden": 8, "dropout": 0.0, "filter_options": {"layers": 2}},
        "training": {"epochs": 4, "batch_size": 4, "lr": 0.01, "validation_fraction": 0.3}})
    train_teacher(cfg)
    yield root / "teacher" / "best.pt", store, annotations
    torch.set_num_threads(threads)


def test_rows_fuse_checkpoints_and_pick_the_metric_by_head(sparse_teacher):
    teacher, store, annotations = sparse_teacher
    result = evaluate_checkpoints({"alone": teacher, "fused with itself": [teacher, teacher]}, store, annotations)
    assert result["metric"] == "event mAP (ActivityNet)" and result["columns"] == ["mAP@0.1", "mAP@0.5"]
    assert result["videos"] == 3 and result["subset"] == "testing"
    alone, fused = result["rows"]
    assert alone["checkpoints"] == [str(teacher)] and fused["modality"] == "pose+pose"
    # the average of equal logits is those logits
    assert alone["scores"] == fused["scores"]
    assert 0.5 < alone["scores"]["mAP@0.1"] <= 1 and alone["scores"]["mAP@0.5"] <= alone["scores"]["mAP@0.1"]
    frame = evaluate_checkpoints({"alone": teacher}, store, annotations, metric="frame")
    streams = evaluate_streams(teacher, [teacher], store, annotations)
    assert frame["rows"][0]["scores"]["mAP"] == streams["rows"][0]["mAP"] == streams["rows"][2]["mAP"]


def test_bad_rows_and_metrics_are_one_line_errors(sparse_teacher):
    teacher, store, annotations = sparse_teacher
    with pytest.raises(InputError, match="row 'empty': names no checkpoint"):
        evaluate_checkpoints({"empty": []}, store, annotations)
    with pytest.raises(InputError, match="metric: must be frame, event or auto"):
        evaluate_checkpoints({"x": teacher}, store, annotations, metric="frames")


def test_event_map_without_any_ground_truth_action_says_so(sparse_teacher, tmp_path):
    teacher, store, annotations = sparse_teacher
    data = json.loads(Path(annotations).read_text())
    for video in data.values():
        if video["subset"] == "testing":
            video["actions"] = []
    empty = tmp_path / "no_test_actions.json"
    empty.write_text(json.dumps(data))
    with pytest.raises(InputError, match="3 'testing' video.s. with features hold no action instance: event mAP is undefined"):
        evaluate_checkpoints({"x": teacher}, store, empty)
