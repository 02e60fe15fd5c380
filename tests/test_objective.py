"""The distillation objective on hand-computed cases: the L_cls conventions, every L_atomic option, diagnostics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from augrgb.distill.heads import classification_loss
from augrgb.distill.losses import DistillationObjective, KDContext, ObjectiveConfig
from augrgb.distill.losses.atomic import AtomicLoss, sample_negatives
from augrgb.distill.stream import StreamOutput
from augrgb.errors import InputError


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


# ---------------------------------------------------------------- L_cls

def two_videos():
    """Two videos, K = 3 classes, lengths 2 and 1 (the second is padded to 2, its padding holds garbage).

    Logits (class x time):  video 0: [[1, 0], [-1, 2], [0, 0]]   video 1: [[3, 99], [0, 99], [-2, 99]]
    Targets:                video 0: [[1, 0], [0, 1], [0, 0]]    video 1: [[1, 1], [1, 1], [0, 1]]
    """
    logits = torch.tensor([[[1.0, 0.0], [-1.0, 2.0], [0.0, 0.0]], [[3.0, 99.0], [0.0, 99.0], [-2.0, 99.0]]])
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]])
    mask = torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]]])
    return logits, targets, mask


def test_sigmoid_lcls_sums_over_classes_and_averages_over_the_batch_snippets():
    logits, targets, mask = two_videos()
    # the three valid snippets, each a sum over the 3 classes:
    s00 = bce(1, 1) + bce(-1, 0) + bce(0, 0)        # video 0, t = 0
    s01 = bce(0, 0) + bce(2, 1) + bce(0, 0)         # video 0, t = 1
    s10 = bce(3, 1) + bce(0, 1) + bce(-2, 0)        # video 1, t = 0
    authors = (s00 + s01 + s10) / 3                 # every snippet weighs the same (not every video)
    assert classification_loss(logits, targets, mask, "sigmoid").item() == pytest.approx(authors, rel=1e-6)
    assert classification_loss(logits, targets, mask, "sigmoid", "sum-classes").item() == pytest.approx(authors, rel=1e-6)
    assert classification_loss(logits, targets, mask, "sigmoid", "mean-classes").item() == pytest.approx(
        authors / 3, rel=1e-6)
    per_video = ((s00 + s01) / 2 + s10) / 2          # what averaging per video first would give
    assert abs(authors - per_video) > 0.05
    with pytest.raises(ValueError, match="unknown classification reduction"):
        classification_loss(logits, targets, mask, "sigmoid", "mean")


def test_softmax_lcls_averages_cross_entropy_over_the_batch_snippets():
    # K = 2 + background (index 2); video 0 has 2 snippets, video 1 one (then padding)
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]], [[0.0, 5.0], [1.0, 5.0], [0.0, 5.0]]])
    targets = torch.tensor([[0, 2], [1, 0]])
    mask = torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]]])

    def ce(row, target):
        return -(row[target] - math.log(sum(math.exp(v) for v in row)))

    a, b, c = ce([2, 0, 0], 0), ce([0, 0, 1], 2), ce([0, 1, 0], 1)
    value = classification_loss(logits, targets, mask, "softmax").item()
    assert value == pytest.approx((a + b + c) / 3, rel=1e-6)
    assert abs(value - ((a + b) / 2 + c) / 2) > 0.01  # not per video first
    # the reduction only concerns the sigmoid head: softmax is already per snippet
    assert classification_loss(logits, targets, mask, "softmax", "mean-classes").item() == pytest.approx(value)


def test_objective_records_and_uses_its_lcls_convention():
    logits, targets, mask = two_videos()
    student = StreamOutput(torch.zeros(2, 4, 2), logits)
    for reduction, scale in (("sum-classes", 1.0), ("mean-classes", 1 / 3)):
        config = ObjectiveConfig(classification_reduction=reduction, terms={})
        objective = DistillationObjective(config, head="sigmoid", num_classes=3, student_dim=4, teacher_dims=[4])
        total, parts = objective(student, [student], mask, targets)
        expected = classification_loss(logits, targets, mask, "sigmoid") * scale
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert ObjectiveConfig().classification_reduction == "sum-classes"
    with pytest.raises(ValueError):
        ObjectiveConfig(classification_reduction="mean")


# ---------------------------------------------------------------- L_atomic, known answers

def atomic(student_dim=2, teacher_dim=2, **options) -> AtomicLoss:
    return AtomicLoss(KDContext(student_dim, teacher_dim, 2, "softmax"), **options)


def outputs(student: list[list[float]], teacher: list[list[float]]) -> tuple[StreamOutput, StreamOutput, torch.Tensor]:
    """One video of len(student) snippets: features (1, C, T)."""
    s = torch.tensor(student).T[None]
    t = torch.tensor(teacher).T[None]
    logits = torch.zeros(1, 3, s.shape[-1])
    return StreamOutput(s, logits), StreamOutput(t, logits), torch.ones(1, 1, s.shape[-1])


def test_atomic_with_identity_heads_is_infonce_on_normalised_teacher_negatives():
    # Two snippets with different labels, so each one's only negative is the other (N = 1 is forced).
    # student s0 = (0.6, 0.8), s1 = (1, 0); teacher t0 = (2, 0), t1 = (0, 3) (normalised: (1, 0), (0, 1)); tau = 0.5
    # anchor 0: positive s0.t0 = 0.6, negative s0.t1 = 0.8 -> -log(e^1.2 / (e^1.2 + e^1.6)) = log(1 + e^0.4)
    # anchor 1: positive s1.t1 = 0,   negative s1.t0 = 1   -> -log(e^0 / (e^0 + e^2))     = log(1 + e^2)
    expected = (math.log(1 + math.exp(0.4)) + math.log(1 + math.exp(2.0))) / 2   # 1.519955...
    student, teacher, mask = outputs([[0.6, 0.8], [1.0, 0.0]], [[2.0, 0.0], [0.0, 3.0]])
    loss = atomic(student_head="none", teacher_head="none", temperature=0.5)
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(expected, rel=1e-6)
    # the temperature counts: tau = 1 gives log(1 + e^0.2) and log(1 + e^1)
    tau1 = (math.log(1 + math.exp(0.2)) + math.log(1 + math.exp(1.0))) / 2
    loss = atomic(student_head="none", teacher_head="none", temperature=1.0)
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(tau1, rel=1e-6)
    # same labels: no negative for anyone, nothing to learn
    assert loss(student, teacher, mask, torch.tensor([[1, 1]])).item() == 0


def test_atomic_gradient_reaches_the_student_only():
    student, teacher, mask = outputs([[0.6, 0.8], [1.0, 0.0]], [[2.0, 0.0], [0.0, 3.0]])
    s = student.features.clone().requires_grad_(True)
    t = teacher.features.clone().requires_grad_(True)
    loss = atomic(student_head="none", teacher_head="none", temperature=0.5)
    loss(StreamOutput(s, student.logits), StreamOutput(t, teacher.logits), mask, torch.tensor([[0, 1]])).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def test_atomic_linear_student_head_maps_onto_the_frozen_teacher_features():
    # student 3-d, teacher 2-d: a linear student head 3 -> 2, no teacher head (the embedding is the teacher's space)
    loss = atomic(student_dim=3, teacher_dim=2, student_head="linear", teacher_head="none", temperature=0.5)
    assert isinstance(loss.teacher_head, nn.Identity) and loss.student_head.weight.shape == (2, 3)
    with torch.no_grad():                       # hand-set: the head drops the third channel
        loss.student_head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        loss.student_head.bias.zero_()
    student, teacher, mask = outputs([[0.6, 0.8, 7.0], [1.0, 0.0, -4.0]], [[2.0, 0.0], [0.0, 3.0]])
    expected = (math.log(1 + math.exp(0.4)) + math.log(1 + math.exp(2.0))) / 2
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(expected, rel=1e-6)


def test_atomic_teacher_head_can_be_frozen_and_widths_must_fit():
    loss = atomic(student_dim=4, teacher_dim=6, student_head="mlp", teacher_head="linear", teacher_head_trainable=False,
                  projection_dim=5)
    assert loss.student_head[-1].out_features == 5 and loss.teacher_head.out_features == 5
    assert not any(p.requires_grad for p in loss.teacher_head.parameters())
    objective = DistillationObjective(ObjectiveConfig(terms={"atomic": {"teacher_head": "linear",
                                                                        "teacher_head_trainable": False}}),
                                      head="softmax", num_classes=2, student_dim=4, teacher_dims=[6])
    teacher_head = set(map(id, objective.terms["atomic"][0].teacher_head.parameters()))
    trained = set(map(id, objective.trainable_parameters()))
    assert trained and not (teacher_head & trained)
    with pytest.raises(ValueError, match="keeps the width"):
        atomic(student_dim=4, teacher_dim=6, student_head="none", teacher_head="none")
    with pytest.raises(ValueError, match="unknown projection"):
        atomic(student_head="conv")
    with pytest.raises(ValueError, match="unknown negative pool"):
        atomic(negative_pool="batch")


def test_negative_pools_and_label_disjoint_negatives():
    # snippets 0..5: videos [0, 0, 0, 1, 1, 1]; multi-hot label sets over 2 classes:
    #   0: {0}  1: {0, 1}  2: {1}  3: {0}  4: {}  5: {1}
    labels = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 0], [0, 0], [0, 1]], dtype=torch.float)
    videos = torch.tensor([0, 0, 0, 1, 1, 1])
    torch.manual_seed(0)

    def drawn(pool, disjoint):
        idx, has = sample_negatives(labels, videos, 400, pool, disjoint)
        return [sorted(set(idx[i].tolist())) if has[i] else None for i in range(6)]

    # any video, any other label set: every row whose set differs
    assert drawn("any", False)[0] == [1, 2, 4, 5]
    # label-disjoint: no shared class ({0, 1} shares class 0 with {0})
    assert drawn("any", True)[0] == [2, 4, 5]
    assert drawn("any", True)[1] == [4]                 # only the empty set shares nothing with {0, 1}
    # same video: snippet 0's candidates are 1, 2; label-disjoint leaves 2
    assert drawn("same-video", False)[0] == [1, 2] and drawn("same-video", True)[0] == [2]
    # other videos: 4, 5 (3 has the same set {0})
    assert drawn("other-videos", False)[0] == [4, 5]
    # snippet 4 (empty set) in its own video: 3 and 5 differ and are disjoint from it
    assert drawn("same-video", True)[4] == [3, 5]
    # videos interleaved (rows in the order 3, 0, 4, 1, 5, 2): indices still point at rows of the anchor's video,
    # snippet 0 (now row 1) draws snippets 1 and 2 (now rows 3 and 5)
    perm = torch.tensor([3, 0, 4, 1, 5, 2])
    idx, has = sample_negatives(labels[perm], videos[perm], 400, "same-video")
    assert sorted(set(idx[1].tolist())) == [3, 5] and bool(has[1])
    # one video where every snippet has the same set: no negative at all
    idx, has = sample_negatives(torch.tensor([2, 2, 2]), torch.zeros(3), 3, "same-video")
    assert not has.any()


def test_atomic_same_video_pool_inside_the_loss():
    # 2 videos of 2 snippets: in video 0 labels (0, 1), in video 1 labels (0, 0): with the same-video pool only
    # video 0's anchors have a negative, so the loss is the mean over those two anchors
    s = torch.tensor([[[0.6, 1.0], [0.8, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])       # (B=2, C=2, T=2)
    t = torch.tensor([[[2.0, 0.0], [0.0, 3.0]], [[0.0, 1.0], [1.0, 0.0]]])
    logits = torch.zeros(2, 3, 2)
    loss = atomic(student_head="none", teacher_head="none", temperature=0.5, negative_pool="same-video")
    value = loss(StreamOutput(s, logits), StreamOutput(t, logits), torch.ones(2, 1, 2), torch.tensor([[0, 1], [0, 0]]))
    assert value.item() == pytest.approx((math.log(1 + math.exp(0.4)) + math.log(1 + math.exp(2.0))) / 2, rel=1e-6)


# ---------------------------------------------------------------- diagnostics in the run record

@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    from augrgb.distill.settings import StudentConfig, TeacherConfig
    from augrgb.distill.train import train_student, train_teacher
    from synthetic_features import dataset_config, make_store

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("objective")
    store, annotations = make_store(root, videos=12, test_videos=2)
    common = {"dataset": dataset_config(), "features": str(store), "annotations": [str(annotations)],
              "stream": {"hidden": 8, "dropout": 0.3, "filter_options": {"layers": 2}},
              "training": {"epochs": 3, "batch_size": 4, "max_length": 16, "lr": 3e-3, "validation_fraction": 0.25,
                           "early_stopping": None}}
    teacher = train_teacher(TeacherConfig(**common, modality="pose", out=str(root / "teacher")))
    student_cfg = StudentConfig(**common, objective={"terms": {"atomic": {"weight": 3}, "global": {"weight": 10}}},
                                out=str(root / "student"))
    student = train_student(student_cfg, [teacher.checkpoint])
    yield root, common, teacher, student, student_cfg
    torch.set_num_threads(threads)


def test_every_epoch_records_term_values_gradient_shares_feature_norm_and_train_map(tiny_runs):
    root, _, _, student, _ = tiny_runs
    record = json.loads((root / "student" / "run.json").read_text())
    assert record["objective"]["classification_reduction"] == "sum-classes"
    assert len(record["epochs"]) == 3
    for epoch in record["epochs"]:
        diag = epoch["diagnostics"]
        assert set(diag["terms"]) == set(diag["grad_norm"]) == set(diag["grad_share"]) == {"cls", "atomic", "global"}
        assert sum(diag["grad_share"].values()) == pytest.approx(1.0)
        assert all(g > 0 for g in diag["grad_norm"].values()) and diag["h_norm"] > 0
        assert 0 <= diag["train_subset"]["mAP"] <= 1 and diag["train_subset"]["loss"] > 0
    teacher_record = json.loads((root / "teacher" / "run.json").read_text())
    assert teacher_record["epochs"][0]["diagnostics"]["grad_share"] == {"cls": 1.0}


def test_diagnostics_never_change_the_run(tiny_runs, monkeypatch):
    """The diagnostics run under a forked RNG: a run without them has the same losses to the last bit."""
    from augrgb.distill.train import train_student
    from augrgb.distill.trainer import Trainer

    root, _, teacher, student, cfg = tiny_runs
    blank = {"terms": {}, "grad_norm": {}, "grad_share": {}, "h_norm": 0.0, "train_subset": {"mAP": 0.0, "loss": 0.0}}
    monkeypatch.setattr(Trainer, "_diagnose", lambda self: blank)
    again = train_student(cfg.model_copy(update={"out": str(root / "student_again")}), [teacher.checkpoint])
    assert [e["train"] for e in again.history] == [e["train"] for e in student.history]
    assert [e["validation"] for e in again.history] == [e["validation"] for e in student.history]


def test_plot_diagnostics_draws_a_run_and_refuses_a_record_without_them(tiny_runs, tmp_path):
    from augrgb.cli import main
    from augrgb.plot.diagnostics import read_diagnostics

    root = tiny_runs[0]
    out = tmp_path / "diag.png"
    assert main(["plot", "diagnostics", str(root / "student"), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    old = tmp_path / "run.json"
    old.write_text(json.dumps({"epochs": [{"epoch": 1, "train": {"cls": 0.5}}]}))
    with pytest.raises(InputError, match="no epoch with diagnostics"):
        read_diagnostics(old)
    assert np.isfinite(read_diagnostics(root / "student" / "run.json")[1][0]["diagnostics"]["h_norm"])
