"""Known answers, computed by hand in the comments, for L_atomic (every option) and L_cls (both heads).

Each case is small enough to check on paper; the arithmetic is written next to the expected value,
so a planted bug (tools/mutants.py) changes a number these tests pin rather than a property.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from augrgb.models.heads import classification_loss
from augrgb.distill.losses import KDContext
from augrgb.distill.losses.atomic import AtomicLoss, label_groups, label_sets, negative_candidates, sample_negatives
from augrgb.models.stream import StreamOutput

L2, L3, L4 = math.log(2), math.log(3), math.log(4)


def atomic(student_dim: int = 2, teacher_dim: int = 2, head: str = "softmax", **options) -> AtomicLoss:
    """An L_atomic term for 2 classes."""
    return AtomicLoss(KDContext(student_dim, teacher_dim, 2 + (head == "softmax"), head), **options)


def video_batch(student: list[list[list[float]]], teacher: list[list[list[float]]],
                lengths: list[int] | None = None) -> tuple[StreamOutput, StreamOutput, torch.Tensor]:
    """Videos given snippet by snippet (``[video][t][channel]``) -> padded outputs ``(B, C, T)`` and mask."""
    t = max(len(v) for v in student)
    lengths = lengths or [len(v) for v in student]

    def pad(videos):
        out = torch.full((len(videos), len(videos[0][0]), t), 1e3)   # garbage in padding
        for i, v in enumerate(videos):
            out[i, :, :len(v)] = torch.tensor(v).T
        return out

    s, te = pad(student), pad(teacher)
    mask = (torch.arange(t)[None] < torch.tensor(lengths)[:, None]).float()[:, None]
    logits = torch.zeros(len(student), 3, t)
    return StreamOutput(s, logits), StreamOutput(te, logits), mask


def softplus(x: float) -> float:
    """log(1 + e^x): InfoNCE of one anchor whose logits are (positive, negative) with negative - positive = x."""
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------- L_atomic, identity heads

def test_identity_heads_forced_negative_temperature_quarter():
    # One video, 2 snippets of labels 0 and 1: each snippet's only admissible negative is the other one.
    # student s0 = (3, 4) -> (0.6, 0.8);  s1 = (0, -2) -> (0, -1)
    # teacher t0 = (4, 0) -> (1, 0);      t1 = (0, 0.5) -> (0, 1)        tau = 0.25 (logits x 4)
    # anchor 0: positive s0.t0 = 0.6, negative s0.t1 = 0.8  -> logits (2.4, 3.2)  -> loss softplus(0.8)
    # anchor 1: positive s1.t1 = -1,  negative s1.t0 = 0    -> logits (-4, 0)     -> loss softplus(4)
    expected = (softplus(0.8) + softplus(4.0)) / 2                      # = 1.3709...
    student, teacher, mask = video_batch([[[3, 4], [0, -2]]], [[[4, 0], [0, 0.5]]])
    loss = atomic(student_head="none", teacher_head="none", temperature=0.25, negatives=1)
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(expected, rel=1e-6)
    # N = 3 draws of the same forced negative: log(1 + 3 e^x)
    loss = atomic(student_head="none", teacher_head="none", temperature=0.25, negatives=3)
    expected3 = (math.log(1 + 3 * math.exp(0.8)) + math.log(1 + 3 * math.exp(4.0))) / 2
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(expected3, rel=1e-6)


def test_identity_heads_two_videos_with_padding_and_a_skipped_anchor():
    # Video 0: 2 snippets, labels (0, 1); video 1: 1 snippet, label 1, then padding (garbage 1e3).
    # Pool "same-video": video 1's only snippet has no negative and is skipped (not averaged in as 0).
    # Video 0 as in the test above but tau = 2 (logits / 2):
    #   anchor 0: softplus((0.8 - 0.6) / 2) = softplus(0.1);  anchor 1: softplus((0 - (-1)) / 2) = softplus(0.5)
    expected = (softplus(0.1) + softplus(0.5)) / 2
    student, teacher, mask = video_batch([[[3, 4], [0, -2]], [[1, 0]]], [[[4, 0], [0, 0.5]], [[0, 1]]])
    labels = torch.tensor([[0, 1], [1, 7]])                              # 7 sits in padding: ignored
    loss = atomic(student_head="none", teacher_head="none", temperature=2.0, negative_pool="same-video")
    assert loss(student, teacher, mask, labels).item() == pytest.approx(expected, rel=1e-6)


def test_pool_any_other_videos_and_same_video_known_answers():
    # Two videos of 2 snippets, labels (0, 1) in each; student = teacher (unit vectors), tau = 1, N = 8:
    #   t0 = (1, 0), t1 = (0, 1)  (video 0);   t2 = (0, 1), t3 = (1, 0)  (video 1)
    # With one admissible negative j drawn 8 times: loss_i = log(1 + 8 e^(t_i.t_j - 1)).
    # same-video:   0<->1, 2<->3, all dots 0   -> every anchor log(1 + 8/e)
    # other-videos: 0<->3, 1<->2 (other label), dots 1 -> every anchor log(1 + 8) = log 9
    rows = [[[1, 0], [0, 1]], [[0, 1], [1, 0]]]
    student, teacher, mask = video_batch(rows, rows)
    labels = torch.tensor([[0, 1], [0, 1]])

    def value(pool: str) -> float:
        loss = atomic(student_head="none", teacher_head="none", temperature=1.0, negatives=8, negative_pool=pool)
        return loss(student, teacher, mask, labels).item()

    assert value("same-video") == pytest.approx(math.log(1 + 8 / math.e), rel=1e-6)
    assert value("other-videos") == pytest.approx(math.log(9), rel=1e-6)
    # any: anchor 0's candidates are 1 (dot 0) and 3 (dot 1); with k of the 8 draws on 3 the loss is
    # log(1 + (8 - k)/e + k), strictly between the two values above unless all 8 draws agree (p = 2^-7)
    torch.manual_seed(0)
    mixed = value("any")
    assert math.log(1 + 8 / math.e) < mixed < math.log(9)


def test_label_disjoint_in_the_loss_with_soft_multi_hot_labels():
    # One video of 3 snippets, sigmoid labels read at 0.5 (0.3 is "absent"):
    #   0: {0}      1: {0, 1}      2: {1}
    # label-disjoint negatives: 0 -> {2}; 1 -> none (shares a class with both: skipped); 2 -> {0}
    # student = teacher: t0 = (1, 0), t1 = (0.6, 0.8), t2 = (0, 1); tau = 1, N = 8, dots t0.t2 = 0:
    #   anchors 0 and 2: log(1 + 8 e^(0 - 1)) each; mean log(1 + 8/e)
    rows = [[[1, 0], [0.6, 0.8], [0, 1]]]
    student, teacher, mask = video_batch(rows, rows)
    labels = torch.tensor([[[1.0, 0.9, 0.3], [0.3, 1.0, 1.0]]])         # (B, K, T)
    loss = atomic(head="sigmoid", student_head="none", teacher_head="none", temperature=1.0, negatives=8,
                  label_disjoint=True)
    assert loss(student, teacher, mask, labels).item() == pytest.approx(math.log(1 + 8 / math.e), rel=1e-6)
    # not disjoint: anchor 1 takes 0 and 2 (dots 0.6, 0.8) and anchor 0 may take 1: the value moves
    torch.manual_seed(0)
    loose = atomic(head="sigmoid", student_head="none", teacher_head="none", temperature=1.0, negatives=8,
                   label_disjoint=False)
    assert loose(student, teacher, mask, labels).item() > math.log(1 + 8 / math.e) + 0.1


# ---------------------------------------------------------------- L_atomic, projection heads

def set_linear(layer: nn.Linear, weight: list[list[float]], bias: list[float] | None = None) -> None:
    """Hand-set a linear layer."""
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias) if bias is not None else torch.zeros(len(weight)))


def test_linear_heads_on_both_sides_hand_set():
    # student 3-d, teacher 2-d, both heads linear onto projection_dim = 2:
    #   student head: (a, b, c) -> (a, c);            teacher head: (a, b) -> (b, a) + (0, 1) = (b, a + 1)
    # student s0 = (3, 9, 4) -> (3, 4) -> (0.6, 0.8);  s1 = (1, 5, 0) -> (1, 0)
    # teacher t0 = (0, 0) -> (0, 1);                   t1 = (1, 2) -> (2, 2) -> (0.7071, 0.7071)
    # tau = 0.5, labels (0, 1):
    #   anchor 0: pos s0.t0 = 0.8, neg s0.t1 = 1.4/sqrt2 = 0.98995  -> softplus((0.98995 - 0.8) / 0.5)
    #   anchor 1: pos s1.t1 = 0.70711, neg s1.t0 = 0               -> softplus((0 - 0.70711) / 0.5)
    r = 1 / math.sqrt(2)
    expected = (softplus((1.4 * r - 0.8) / 0.5) + softplus((0 - r) / 0.5)) / 2
    loss = atomic(student_dim=3, teacher_dim=2, student_head="linear", teacher_head="linear", projection_dim=2,
                  temperature=0.5)
    assert isinstance(loss.student_head, nn.Linear) and isinstance(loss.teacher_head, nn.Linear)
    set_linear(loss.student_head, [[1, 0, 0], [0, 0, 1]])
    set_linear(loss.teacher_head, [[0, 1], [1, 0]], [0, 1])
    student, teacher, mask = video_batch([[[3, 9, 4], [1, 5, 0]]], [[[0, 0], [1, 2]]])
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(expected, rel=1e-6)


def test_mlp_head_applies_its_relu():
    # student head "mlp" 2 -> 2 -> 2, both layers the identity: z = relu(s). Teacher without head.
    # s0 = (3, -4) -> relu (3, 0) -> (1, 0)     (without the ReLU it would be (0.6, -0.8))
    # s1 = (-1, 2) -> relu (0, 2) -> (0, 1)
    # teacher t0 = (1, 0), t1 = (0.6, 0.8); tau = 1, labels (0, 1):
    #   anchor 0: pos 1, neg 0.6  -> softplus(-0.4);   anchor 1: pos 0.8, neg 0 -> softplus(-0.8)
    expected = (softplus(-0.4) + softplus(-0.8)) / 2
    loss = atomic(student_head="mlp", teacher_head="none", temperature=1.0)
    first, act, last = loss.student_head
    assert isinstance(act, nn.ReLU) and (first.in_features, first.out_features, last.out_features) == (2, 2, 2)
    set_linear(first, [[1, 0], [0, 1]])
    set_linear(last, [[1, 0], [0, 1]])
    student, teacher, mask = video_batch([[[3, -4], [-1, 2]]], [[[1, 0], [0.6, 0.8]]])
    assert loss(student, teacher, mask, torch.tensor([[0, 1]])).item() == pytest.approx(expected, rel=1e-6)


def test_default_reading_is_a_linear_student_head_onto_the_teacher_features_same_video_tau_half():
    # the default chosen on validation (docs/results.md): student 3-d -> linear 3 -> 2, teacher 2-d without a head,
    # negatives from the anchor's own video, tau 0.5, N = 1
    loss = atomic(3, 2)
    assert isinstance(loss.student_head, nn.Linear) and (loss.student_head.in_features, loss.student_head.out_features) == (3, 2)
    assert isinstance(loss.teacher_head, nn.Identity)
    assert (loss.negative_pool, loss.label_disjoint, loss.temperature, loss.negatives) == ("same-video", False, 0.5, 1)
    # with the head hand-set to drop the third channel, the two-video case above with the default (same-video) pool:
    # video 1's lone snippet is skipped, video 0 gives softplus((0.8 - 0.6) / 0.5) and softplus((0 + 1) / 0.5)
    set_linear(loss.student_head, [[1, 0, 0], [0, 1, 0]])
    student, teacher, mask = video_batch([[[3, 4, 9], [0, -2, 9]], [[1, 0, 9]]], [[[4, 0], [0, 0.5]], [[0, 1]]])
    value = loss(student, teacher, mask, torch.tensor([[0, 1], [1, 1]])).item()
    assert value == pytest.approx((softplus(0.4) + softplus(2.0)) / 2, rel=1e-6)


def test_embedding_width_follows_the_side_without_a_head():
    # none on one side keeps that side's width; the other side is projected onto it
    assert atomic(3, 5, student_head="none", teacher_head="linear", projection_dim=7).teacher_head.out_features == 3
    assert atomic(3, 5, student_head="linear", teacher_head="none", projection_dim=7).student_head.out_features == 5
    assert atomic(3, 5, student_head="mlp", teacher_head="none", projection_dim=7).student_head[-1].out_features == 5
    both = atomic(3, 5, student_head="linear", teacher_head="mlp", projection_dim=7)
    assert both.student_head.out_features == 7 and both.teacher_head[-1].out_features == 7
    assert isinstance(atomic(2, 2, student_head="none", teacher_head="none").student_head, nn.Identity)


@pytest.mark.parametrize("trainable", [True, False])
def test_teacher_head_trainable_or_frozen_gets_gradient_accordingly(trainable):
    loss = atomic(student_head="linear", teacher_head="linear", projection_dim=2, temperature=0.5,
                  teacher_head_trainable=trainable)
    student, teacher, mask = video_batch([[[3, 4], [0, -2]]], [[[4, 0], [0, 0.5]]])
    loss(student, teacher, mask, torch.tensor([[0, 1]])).backward()
    assert loss.student_head.weight.grad is not None and loss.student_head.weight.grad.abs().sum() > 0
    grad = loss.teacher_head.weight.grad
    assert all(p.requires_grad == trainable for p in loss.teacher_head.parameters())
    assert (grad is not None and grad.abs().sum() > 0) if trainable else grad is None


# ---------------------------------------------------------------- the negative sampler

def test_sampler_draws_uniformly_among_admissible_negatives():
    # 5 snippets, labels (0, 1, 1, 2, 0), one video: anchor 0's admissible negatives are 1, 2, 3 (1/3 each);
    # anchor 1's are 0, 3, 4. 6000 draws: each share within 1/3 +- 0.03 (about 6 standard deviations)
    g = torch.Generator().manual_seed(0)
    idx, has = sample_negatives(torch.tensor([0, 1, 1, 2, 0]), torch.zeros(5), 6000, generator=g)
    assert has.all()
    for anchor, allowed in ((0, [1, 2, 3]), (1, [0, 3, 4])):
        counts = torch.bincount(idx[anchor], minlength=5).float() / 6000
        assert counts[allowed].sum() == 1
        assert ((counts[allowed] - 1 / 3).abs() < 0.03).all()
    # same generator seed, same draws
    again, _ = sample_negatives(torch.tensor([0, 1, 1, 2, 0]), torch.zeros(5), 6000,
                                generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


def test_sampler_pools_and_label_disjoint_on_one_batch():
    # snippets 0..4, videos (0, 0, 1, 1, 1); multi-hot sets over 3 classes:
    #   0: {0}   1: {1}   2: {0}   3: {0, 2}   4: {}
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.float)
    videos = torch.tensor([0, 0, 1, 1, 1])
    g = torch.Generator().manual_seed(1)

    def support(pool: str, disjoint: bool) -> list[list[int] | None]:
        idx, has = sample_negatives(labels, videos, 300, pool, disjoint, generator=g)
        return [sorted(set(idx[i].tolist())) if has[i] else None for i in range(5)]

    #          anchor: 0             1                2           3             4
    assert support("any", False) == [[1, 3, 4], [0, 2, 3, 4], [1, 3, 4], [0, 1, 2, 4], [0, 1, 2, 3]]
    assert support("any", True) == [[1, 4], [0, 2, 3, 4], [1, 4], [1, 4], [0, 1, 2, 3]]
    assert support("same-video", False) == [[1], [0], [3, 4], [2, 4], [2, 3]]
    assert support("same-video", True) == [[1], [0], [4], [4], [2, 3]]
    assert support("other-videos", False) == [[3, 4], [2, 3, 4], [1], [0, 1], [0, 1]]
    assert support("other-videos", True) == [[4], [2, 3, 4], [1], [1], [0, 1]]


def test_negative_candidates_masks_by_pool():
    # the same batch as above; rows are anchors 0..4, columns candidates 0..4 (1 = admissible)
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.float)
    videos = torch.tensor([0, 0, 1, 1, 1])
    sets, groups = label_sets(labels), label_groups(labels)

    def mask(pool: str) -> list[list[int]]:
        return negative_candidates(sets, groups, videos, slice(None), pool).int().tolist()

    assert mask("same-video") == [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 1, 0, 1], [0, 0, 1, 1, 0]]
    assert mask("other-videos") == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [0, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]
    assert mask("any") == [[0, 1, 0, 1, 1], [1, 0, 1, 1, 1], [0, 1, 0, 1, 1], [1, 1, 1, 0, 1], [1, 1, 1, 1, 0]]


# ---------------------------------------------------------------- L_cls on two videos of different lengths

# sigmoid with logit ln 3: p = 3/4, BCE(target 1) = ln(4/3), BCE(target 0) = ln 4; logit 0: BCE = ln 2
# sigmoid with logit -ln 3: p = 1/4, BCE(target 1) = ln 4,   BCE(target 0) = ln(4/3)

def test_sigmoid_lcls_two_videos_of_different_lengths():
    # K = 2; video 0 has 3 snippets, video 1 has 1 (padded to 3 with garbage logits 50 and targets 1).
    # logits (class x time):   video 0: [[ln3, 0, -ln3], [0, ln3, ln3]]     video 1: [[-ln3, 50, 50], [0, 50, 50]]
    # targets:                 video 0: [[1,   1,  0  ], [0, 0,   1  ]]     video 1: [[1,    1,  1 ], [1, 1,  1 ]]
    # per snippet, summed over the 2 classes:
    #   v0 t0: ln(4/3) + ln2      v0 t1: ln2 + ln4      v0 t2: ln(4/3) + ln(4/3)      v1 t0: ln4 + ln2
    a, b = math.log(4 / 3), L4
    s = [a + L2, L2 + b, a + a, b + L2]
    sum_classes = sum(s) / 4                       # mean over the 4 valid snippets of the batch
    mean_classes = sum(s) / 8                      # mean over the 8 valid (snippet, class) entries
    per_video = (sum(s[:3]) / 3 + s[3]) / 2        # what averaging per video first would give
    logits = torch.tensor([[[L3, 0, -L3], [0, L3, L3]], [[-L3, 50, 50], [0, 50, 50]]])
    targets = torch.tensor([[[1, 1, 0], [0, 0, 1]], [[1, 1, 1], [1, 1, 1]]], dtype=torch.float)
    mask = torch.tensor([[[1.0, 1, 1]], [[1.0, 0, 0]]])
    assert classification_loss(logits, targets, mask, "sigmoid").item() == pytest.approx(sum_classes, rel=1e-6)
    assert classification_loss(logits, targets, mask, "sigmoid", "sum-classes").item() == pytest.approx(
        sum_classes, rel=1e-6)
    assert classification_loss(logits, targets, mask, "sigmoid", "mean-classes").item() == pytest.approx(
        mean_classes, rel=1e-6)
    assert abs(sum_classes - per_video) > 0.05


def test_softmax_lcls_two_videos_of_different_lengths():
    # K = 2 + background (index 2). Video 0: 3 snippets; video 1: 1 snippet, then padding (garbage logits).
    # A row (ln2, 0, 0) has softmax (1/2, 1/4, 1/4); a row (0, 0, 0) has (1/3, 1/3, 1/3).
    #   v0 t0: row (ln2, 0, 0), target 0 -> CE ln2      v0 t1: same row, target 2 (background) -> ln4
    #   v0 t2: row (0, 0, 0), target 1   -> ln3         v1 t0: row (ln2, 0, 0), target 1 -> ln4
    per_snippet = (L2 + L4 + L3 + L4) / 4
    per_video = ((L2 + L4 + L3) / 3 + L4) / 2
    logits = torch.tensor([[[L2, L2, 0], [0, 0, 0], [0, 0, 0]], [[L2, 9, 9], [0, -9, 9], [0, 9, -9]]])
    targets = torch.tensor([[0, 2, 1], [1, 5, 5]])          # 5 (out of range) sits in padding: ignored
    mask = torch.tensor([[[1.0, 1, 1]], [[1.0, 0, 0]]])
    value = classification_loss(logits, targets, mask, "softmax").item()
    assert value == pytest.approx(per_snippet, rel=1e-6)
    assert abs(per_snippet - per_video) > 0.05
