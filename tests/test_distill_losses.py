"""Stage 2 losses: our KD terms (hand-computed, vs a naive reference), baselines, the objective."""

import math

import pytest
import torch
import torch.nn.functional as F

from augrgb.core.config import load_config
from augrgb.core.errors import InputError
from augrgb.distill.losses import KD_LOSSES, DistillationObjective, KDContext, ObjectiveConfig
from augrgb.distill.losses.atomic import info_nce, label_groups, sample_negatives
from augrgb.distill.losses.crd import nce_loss
from augrgb.distill.losses.logit import soft_kl
from augrgb.distill.losses.rkd import angle_potential, distance_potential
from augrgb.distill.losses.sequence import boundary_saliency, relation_matrix
from augrgb.models.masks import valid_snippets
from augrgb.models.stream import Stream, StreamOutput
from benchmarks.distill import naive_boundary, naive_global, naive_sample_negatives

ALL_TERMS = ["atomic", "boundary", "chen", "crd", "global", "hint", "logit", "rkd-da", "skd", "sp"]
K = 3


def _term(name, head="sigmoid", student_dim=5, teacher_dim=5, **options):
    torch.manual_seed(0)
    ctx = KDContext(student_dim, teacher_dim, K + (head == "softmax"), head)
    return KD_LOSSES.build(name, ctx, **options)


def _outputs(b=2, t=6, dim=5, head="sigmoid", seed=0):
    g = torch.Generator().manual_seed(seed)
    k = K + (head == "softmax")
    return StreamOutput(torch.randn(b, dim, t, generator=g), torch.randn(b, k, t, generator=g))


def _labels(b, t, head, seed=0):
    g = torch.Generator().manual_seed(seed)
    if head == "sigmoid":
        return (torch.rand(b, K, t, generator=g) > 0.5).float()
    return torch.randint(0, K + 1, (b, t), generator=g)


def test_registered_terms():
    assert KD_LOSSES.names() == ALL_TERMS


# ---------------------------------------------------------------- hand-computed values

def test_global_relation_hand_computed_three_snippets():
    # teacher snippets (1,0), (0,1), (1,0): centred and normalised they are +-(1,-1)/sqrt(2)
    teacher = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    student = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    mask = torch.ones(1, 1, 3)
    torch.testing.assert_close(relation_matrix(teacher, mask)[0],
                               torch.tensor([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]]))
    term = _term("global", student_dim=2, teacher_dim=2)
    logits = torch.zeros(1, K, 3)
    value = term(StreamOutput(student, logits), StreamOutput(teacher, logits), mask, torch.zeros(1, K, 3))
    assert value.item() == pytest.approx(16 / 9, rel=1e-6)   # entries (0,1),(1,0),(0,2),(2,0) differ by 2


def test_boundary_saliency_hand_computed_three_snippets():
    teacher = torch.tensor([[[0.0, 2.0, 2.0], [0.0, 0.0, 1.0]]])   # |diffs|/C: 1, 0.5 -> max-normalised 1, 0.5
    student = torch.tensor([[[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]])   # 1, 0 -> 1, 0
    mask = torch.ones(1, 1, 3)
    s, valid = boundary_saliency(teacher, mask)
    torch.testing.assert_close(s, torch.tensor([[1.0, 0.5]]), rtol=1e-6, atol=1e-6)
    assert valid.tolist() == [[1.0, 1.0]]
    term = _term("boundary", student_dim=2, teacher_dim=2)
    logits = torch.zeros(1, K, 3)
    value = term(StreamOutput(student, logits), StreamOutput(teacher, logits), mask, torch.zeros(1, K, 3))
    assert value.item() == pytest.approx(0.125, rel=1e-6)


def test_rkd_potentials_hand_computed():
    x = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]])          # collinear: distances 1, 3, 2; mean 2
    pairs = 1 - torch.eye(3)[None]
    d = distance_potential(x, pairs)[0]
    torch.testing.assert_close(d, torch.tensor([[0, 0.5, 1.5], [0.5, 0, 1.0], [1.5, 1.0, 0]]), atol=1e-5, rtol=1e-5)
    right = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])      # right angle at snippet 1
    a = angle_potential(right)[0]
    assert a[1, 0, 2].item() == pytest.approx(0.0, abs=1e-6)
    assert a[0, 1, 2].item() == pytest.approx(math.cos(math.pi / 4), rel=1e-5)


def test_soft_kl_matches_definitions():
    s, t = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    kl, per_snippet = soft_kl(s, t, "softmax", temperature=2.0)
    ref = F.kl_div(F.log_softmax(s / 2, 1), F.log_softmax(t / 2, 1), log_target=True, reduction="none").sum(1)
    assert per_snippet and torch.allclose(kl, ref, atol=1e-6)
    kl, per_snippet = soft_kl(s, t, "sigmoid", temperature=2.0)
    p, q = torch.sigmoid(t / 2), torch.sigmoid(s / 2)
    ref = p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
    assert not per_snippet and torch.allclose(kl, ref, atol=1e-5)


def test_crd_nce_matches_formula():
    torch.manual_seed(0)
    a, c = F.normalize(torch.randn(3, 4), dim=1), F.normalize(torch.randn(3, 4), dim=1)
    negatives = torch.tensor([0, 2])
    tau, m, n = 0.5, 3, 2
    dots = (a @ c.T / tau).exp()
    z = torch.cat([dots.diag(), dots[:, negatives].flatten()]).mean() * m
    total = 0.0
    for i in range(m):
        p = dots[i, i] / z
        total -= math.log(p / (p + n / m))
        for j in negatives.tolist():
            if j != i:
                total -= math.log((n / m) / (dots[i, j] / z + n / m))
    assert nce_loss(a, c, negatives, tau).item() == pytest.approx(total / m, rel=1e-5)


# ---------------------------------------------------------------- negatives

def test_label_groups_equal_iff_same_label_set():
    multi = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 0, 1], [0.9, 0, 0.7], [0, 1, 0]])
    g = label_groups(multi)
    assert g[0] == g[2] == g[3] and len({g[0].item(), g[1].item(), g[4].item()}) == 3
    idx = label_groups(torch.tensor([3, 1, 3, 0]))
    assert idx[0] == idx[2] and len(set(idx.tolist())) == 3


def test_sampled_negatives_always_have_other_labels_and_cover_all_candidates():
    torch.manual_seed(0)
    groups = torch.tensor([2, 0, 2, 1, 0, 2, 2, 1])
    negatives, has = sample_negatives(groups, torch.zeros(8), 500)
    assert has.all() and negatives.shape == (8, 500)
    assert (groups[negatives] != groups[:, None]).all()
    for i in range(8):
        assert set(negatives[i].tolist()) == set(torch.nonzero(groups != groups[i]).flatten().tolist())


def test_anchor_without_negative_is_skipped():
    negatives, has = sample_negatives(torch.tensor([4, 4, 4]), torch.zeros(3), 2)
    assert not has.any() and negatives.shape == (3, 2)
    z = F.normalize(torch.randn(3, 4), dim=1)
    assert info_nce(z, z, z, negatives, has, 0.1).item() == 0
    # one anchor of another label: every anchor has a negative again
    negatives, has = sample_negatives(torch.tensor([4, 4, 1]), torch.zeros(3), 2)
    assert has.all() and (negatives[:2] == 2).all() and (negatives[2] < 2).all()


def test_atomic_sampling_uses_batch_labels():
    """Inside the loss: snippets of different label sets, gathered across videos, are the negatives."""
    labels = torch.tensor([[0, 0, 1], [1, 2, 2]])                     # softmax labels, 2 videos
    mask = torch.ones(2, 1, 3)
    flat = valid_snippets(labels, mask)
    assert flat.tolist() == [0, 0, 1, 1, 2, 2]
    negatives, has = sample_negatives(flat, torch.tensor([0, 0, 0, 1, 1, 1]), 50)
    assert has.all() and (flat[negatives] != flat[:, None]).all()


# ---------------------------------------------------------------- vectorised == naive reference

def _charades_like(b=4, t=9, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = [9, 4, 1, 7]
    mask = (torch.arange(t)[None] < torch.tensor(lengths)[:, None]).float()[:, None]
    return torch.randn(b, dim, t, generator=g), torch.randn(b, dim, t, generator=g), mask, lengths


def test_global_and_boundary_equal_naive_reference():
    s, t, mask, lengths = _charades_like()
    s[mask.expand_as(s) == 0] = 1e6                                   # garbage in padding
    logits = torch.zeros(4, K, 9)
    for name, naive in (("global", naive_global), ("boundary", naive_boundary)):
        value = _term(name, student_dim=6, teacher_dim=6)(StreamOutput(s, logits), StreamOutput(t, logits),
                                                          mask, torch.zeros(4, K, 9))
        assert value.item() == pytest.approx(naive(s, t, lengths).item(), rel=1e-5, abs=1e-7)


def naive_info_nce(anchors, positives, bank, negatives, valid, temperature):
    """InfoNCE anchor by anchor (reference for the vectorised version)."""
    losses = []
    for i in range(anchors.shape[0]):
        if bool(valid[i]):
            logits = torch.cat([(anchors[i] * positives[i]).sum()[None], bank[negatives[i]] @ anchors[i]])
            losses.append(-torch.log_softmax(logits / temperature, dim=0)[0])
    return torch.stack(losses).mean()


def test_atomic_equals_naive_reference_with_same_negatives():
    torch.manual_seed(0)
    z_s, z_t = F.normalize(torch.randn(12, 4), dim=1), F.normalize(torch.randn(12, 4), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2, 2, 1, 0, 0])
    negatives, has = naive_sample_negatives(labels, 3)
    assert (labels[negatives] != labels[:, None]).all()
    fast = info_nce(z_s, z_t, z_t, negatives, has, 0.07)
    slow = naive_info_nce(z_s, z_t, z_t, negatives, has, 0.07)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-6)
    negatives, has = sample_negatives(labels, torch.zeros(12), 3)
    assert info_nce(z_s, z_t, z_t, negatives, has, 0.07).item() == pytest.approx(
        naive_info_nce(z_s, z_t, z_t, negatives, has, 0.07).item(), rel=1e-6)


# ---------------------------------------------------------------- properties of every term

ZERO_WHEN_EQUAL = [("global", {}), ("boundary", {}), ("hint", {}), ("sp", {}), ("rkd-da", {}), ("logit", {}),
                   ("skd", {"holistic_weight": 0.0})]


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
@pytest.mark.parametrize("name,options", ZERO_WHEN_EQUAL)
def test_zero_when_student_equals_teacher(name, options, head):
    out = _outputs(head=head)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0
    value = _term(name, head, **options)(out, out, mask, _labels(2, 6, head))
    assert abs(value.item()) < 1e-6


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
@pytest.mark.parametrize("name", ALL_TERMS)
def test_invariant_to_padding(name, head):
    """Appending masked garbage snippets to a video (and padding labels) changes nothing."""
    term = _term(name, head)
    student, teacher = _outputs(head=head, seed=1), _outputs(head=head, seed=2)
    labels = _labels(2, 6, head)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0
    torch.manual_seed(5)
    reference = term(student, teacher, mask, labels)

    def pad(x, fill):
        extra = torch.full((*x.shape[:-1], 5), fill, dtype=x.dtype)
        return torch.cat([x, extra], dim=-1)

    padded_s = StreamOutput(pad(student.features, float("nan")), pad(student.logits, 1e4))
    padded_t = StreamOutput(pad(teacher.features, 7.0), pad(teacher.logits, float("-inf")))
    garbage = pad(labels, 1 if head == "softmax" else 1.0)
    torch.manual_seed(5)
    value = term(padded_s, padded_t, pad(mask, 0.0), garbage)
    assert value.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
@pytest.mark.parametrize("name", ALL_TERMS)
def test_edge_cases_single_snippet_and_all_padding(name, head):
    term = _term(name, head)
    for t, mask in ((1, torch.ones(2, 1, 1)), (4, torch.zeros(2, 1, 4))):
        student = _outputs(t=t, head=head)
        student = StreamOutput(student.features.requires_grad_(True), student.logits.requires_grad_(True))
        value = term(student, _outputs(t=t, head=head, seed=3), mask, _labels(2, t, head))
        assert torch.isfinite(value)
        if mask.sum() == 0:
            assert value.item() == 0
        if value.requires_grad:
            value.backward()
            for g in (student.features.grad, student.logits.grad):
                assert g is None or torch.isfinite(g).all()


def test_gradient_reaches_only_the_student_and_the_objective_heads():
    torch.manual_seed(0)
    student, teacher = Stream(6, K, "softmax", hidden=5), Stream(4, K, "softmax", hidden=5)
    objective = DistillationObjective(ObjectiveConfig(terms={n: {} for n in ALL_TERMS}), head="softmax",
                                      num_classes=K, student_dim=5, teacher_dims=[5])
    mask = torch.ones(2, 1, 8)
    mask[1, :, 5:] = 0
    labels = _labels(2, 8, "softmax")
    out = objective(student(torch.randn(2, 6, 8), mask), [teacher(torch.randn(2, 4, 8), mask)], mask, labels)
    out.total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in student.parameters())
    heads = objective.terms["atomic"][0]
    assert all(p.grad is not None for p in heads.parameters())
    assert set(out.parts) == {"cls", "total", *ALL_TERMS}


def test_skd_critic_is_trained_apart():
    torch.manual_seed(0)
    objective = DistillationObjective(ObjectiveConfig(terms={"skd": {}}), head="sigmoid", num_classes=K,
                                      student_dim=5, teacher_dims=[5])
    critic = set(map(id, objective.critic_parameters()))
    assert critic and not critic & set(map(id, objective.trainable_parameters()))
    student = _outputs()
    student = StreamOutput(student.features, student.logits.requires_grad_(True))
    loss = objective.critic_loss(student, [_outputs(seed=1)], torch.ones(2, 1, 6))
    loss.backward()
    assert student.logits.grad is None                                 # critic step never moves the student
    assert all(p.grad is not None for p in objective.critic_parameters())
    plain = DistillationObjective(ObjectiveConfig(), head="sigmoid", num_classes=K, student_dim=5, teacher_dims=[5])
    assert plain.critic_loss(student, [_outputs()], torch.ones(2, 1, 6)) is None


# ---------------------------------------------------------------- objective and its config

def test_objective_defaults_are_the_paper_s():
    config = ObjectiveConfig()
    assert {n: t.weight for n, t in config.terms.items()} == {"atomic": 300, "global": 100, "boundary": 5}
    assert config.terms["atomic"].options == {"negatives": 1, "temperature": 0.07}
    objective = DistillationObjective(config, head="sigmoid", num_classes=K, student_dim=5)
    assert objective.terms["atomic"][0].negatives == 1


def test_objective_total_is_weighted_sum_and_terms_switch_off():
    config = ObjectiveConfig(classification_weight=2.0, terms={"global": {"weight": 10}, "boundary": {"weight": 0},
                                                               "sp": {}})
    objective = DistillationObjective(config, head="sigmoid", num_classes=K, student_dim=5, teacher_dims=[5])
    assert set(objective.terms) == {"global", "sp"} and objective.weights["sp"] == 3000.0
    s, t = _outputs(seed=1), _outputs(seed=2)
    mask, labels = torch.ones(2, 1, 6), _labels(2, 6, "sigmoid")
    out = objective(s, [t], mask, labels)
    expected = 2 * out.parts["cls"] + 10 * out.parts["global"] + 3000 * out.parts["sp"]
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert objective(s, t, mask, labels).total.item() == pytest.approx(out.total.item())   # a lone teacher


def test_objective_averages_over_several_teachers():
    objective = DistillationObjective(ObjectiveConfig(terms={"hint": {"weight": 1}}), head="sigmoid",
                                      num_classes=K, student_dim=5, teacher_dims=[5, 7])
    s, t1, t2 = _outputs(), _outputs(seed=1), _outputs(dim=7, seed=2)
    mask, labels = torch.ones(2, 1, 6), _labels(2, 6, "sigmoid")
    both = objective(s, [t1, t2], mask, labels).parts["hint"]
    one = objective.terms["hint"][0](s, t1, mask, labels)
    two = objective.terms["hint"][1](s, t2, mask, labels)
    assert both.item() == pytest.approx(((one + two) / 2).item(), rel=1e-6)
    with pytest.raises(ValueError, match="2 teacher"):
        objective(s, [t1], mask, labels)


def test_objective_config_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("objective:\n  terms:\n    atomik: {weight: 1}\n")
    with pytest.raises(InputError, match="unknown distillation loss 'atomik'"):
        load_config(ObjectiveConfig, path, section="objective")
    path.write_text("objective:\n  terms:\n    atomic: {weight: 1, negativs: 2}\n")
    with pytest.raises(InputError, match="unknown option"):
        load_config(ObjectiveConfig, path, section="objective")
    path.write_text("objective:\n  terms:\n    rkd-da: {weight: 2, angle_snippets: 8}\n")
    config = load_config(ObjectiveConfig, path, section="objective")
    assert config.terms["rkd-da"].weight == 2 and config.terms["rkd-da"].options == {"angle_snippets": 8}
