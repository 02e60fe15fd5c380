"""Distillation-loss benchmark: vectorised L_atomic + L_global + L_boundary vs a naive reference.

The naive reference loops in Python: L_global and L_boundary video by video, and negative
sampling anchor by anchor (then the same InfoNCE). Both use the same projection heads and
weights; the figure is forward + backward time per batch on Charades-sized random features.

    PYTHONPATH=. python benchmarks/distill.py [--batch 32 --min-len 30 --max-len 200 --repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from augrgb.distill.losses import DistillationObjective, ObjectiveConfig
from augrgb.distill.losses.atomic import info_nce
from augrgb.distill.masks import valid_snippets
from augrgb.distill.stream import StreamOutput


def naive_global(student: Tensor, teacher: Tensor, lengths: list[int]) -> Tensor:
    """L_global one video at a time: centre, normalise, Gram, mean squared difference; mean over videos."""
    losses = []
    for b, n in enumerate(lengths):
        grams = []
        for h in (student[b, :, :n], teacher[b, :, :n]):
            h = h - h.mean(dim=0, keepdim=True)
            h = h / h.norm(dim=0, keepdim=True).clamp(min=1e-12)
            grams.append(h.T @ h)
        losses.append(((grams[0] - grams[1]) ** 2).mean())
    return torch.stack(losses).mean()


def naive_boundary(student: Tensor, teacher: Tensor, lengths: list[int]) -> Tensor:
    """L_boundary one video at a time: L1 saliency / C, divided by its max; MSE; mean over videos."""
    losses = []
    for b, n in enumerate(lengths):
        if n < 2:
            continue
        curves = []
        for h in (student[b, :, :n], teacher[b, :, :n]):
            s = (h[:, 1:] - h[:, :-1]).abs().mean(dim=0)
            curves.append(s / (s.max() + 1e-8))
        losses.append(((curves[0] - curves[1]) ** 2).mean())
    return torch.stack(losses).mean() if losses else student.sum() * 0.0


def naive_sample_negatives(labels: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Per anchor: list the snippets whose label set differs, draw ``n`` of them with replacement."""
    rows = labels > 0.5 if labels.dim() == 2 else labels[:, None]
    picks, has = [], []
    for i in range(rows.shape[0]):
        candidates = torch.nonzero((rows != rows[i]).any(dim=1)).flatten()
        has.append(candidates.numel() > 0)
        none = torch.zeros(n, dtype=torch.long)
        picks.append(candidates[torch.randint(candidates.numel(), (n,))] if has[-1] else none)
    return torch.stack(picks), torch.tensor(has)


def naive_objective_kd(objective: DistillationObjective, student: StreamOutput, teacher: StreamOutput,
                       mask: Tensor, labels: Tensor) -> Tensor:
    """The same weighted KD sum as ``objective`` (atomic, global, boundary), the naive way."""
    lengths = [int(n) for n in mask[:, 0].sum(1)]
    atomic = objective.terms["atomic"][0]
    z_s, z_t = atomic.embed(student, teacher.detach(), mask)
    negatives, valid = naive_sample_negatives(valid_snippets(labels, mask), atomic.negatives)
    h_t = teacher.features.detach()
    w = objective.weights
    return (w["atomic"] * info_nce(z_s, z_t, z_t, negatives, valid, atomic.temperature)
            + w["global"] * naive_global(student.features, h_t, lengths)
            + w["boundary"] * naive_boundary(student.features, h_t, lengths))


def charades_like_batch(batch: int, min_len: int, max_len: int, dim: int, classes: int, seed: int = 0):
    """Random features (B, dim, T) padded, mask, and multi-hot labels with a few actions per video."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=g)
    t = int(lengths.max())
    mask = (torch.arange(t)[None, :] < lengths[:, None]).float()[:, None, :]
    labels = torch.zeros(batch, classes, t)
    for b, n in enumerate(lengths.tolist()):
        for c in torch.randint(classes, (int(torch.randint(1, 4, (1,), generator=g)),), generator=g).tolist():
            start = int(torch.randint(n, (1,), generator=g))
            labels[b, c, start:start + int(torch.randint(5, n + 1, (1,), generator=g))] = 1.0
    features = [torch.randn(batch, dim, t, generator=g) * mask for _ in range(2)]
    return features[0], features[1], mask, labels * mask


def _time(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="videos per batch")
    parser.add_argument("--min-len", type=int, default=30, help="shortest video, in snippets")
    parser.add_argument("--max-len", type=int, default=200, help="longest video, in snippets")
    parser.add_argument("--dim", type=int, default=256, help="feature width C2")
    parser.add_argument("--classes", type=int, default=157, help="number of classes (multi-hot labels)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of the vectorised version")
    parser.add_argument("--naive-repeats", type=int, default=1, help="timed repetitions of the naive version")
    args = parser.parse_args()
    torch.manual_seed(0)
    s_feat, t_feat, mask, labels = charades_like_batch(args.batch, args.min_len, args.max_len, args.dim, args.classes)
    objective = DistillationObjective(ObjectiveConfig(), head="sigmoid", num_classes=args.classes,
                                      student_dim=args.dim, teacher_dims=[args.dim])
    logits = torch.zeros(args.batch, args.classes, mask.shape[-1])
    teacher = StreamOutput(t_feat, logits)

    def vectorised() -> None:
        student = StreamOutput(s_feat.clone().requires_grad_(True), logits)
        total = sum(objective.weights[n] * objective.terms[n][0](student, teacher, mask, labels)
                    for n in ("atomic", "global", "boundary"))
        total.backward()

    def naive() -> None:
        student = StreamOutput(s_feat.clone().requires_grad_(True), logits)
        naive_objective_kd(objective, student, teacher, mask, labels).backward()

    lengths = [int(n) for n in mask[:, 0].sum(1)]

    def sequence_vectorised() -> None:
        student = StreamOutput(s_feat.clone().requires_grad_(True), logits)
        sum(objective.terms[n][0](student, teacher, mask, labels) for n in ("global", "boundary")).backward()

    def sequence_naive() -> None:
        student = s_feat.clone().requires_grad_(True)
        (naive_global(student, t_feat, lengths) + naive_boundary(student, t_feat, lengths)).backward()

    vectorised()                                                             # warm-up
    fast = _time(vectorised, args.repeats)
    slow = _time(naive, args.naive_repeats)
    sequence_vectorised()
    seq_fast = _time(sequence_vectorised, args.repeats)
    seq_slow = _time(sequence_naive, args.repeats)
    snippets = int(mask.sum())
    print(f"batch {args.batch} videos, {snippets} snippets (T {args.min_len}..{args.max_len}), C={args.dim}, "
          f"K={args.classes}, device cpu, threads {torch.get_num_threads()}")
    print(f"vectorised atomic+global+boundary (fwd+bwd): {fast:8.1f} ms/batch")
    print(f"naive per-video/per-anchor loops  (fwd+bwd): {slow:8.1f} ms/batch")
    print(f"speed-up: {slow / fast:.1f}x")
    print(f"global+boundary only: vectorised {seq_fast:.1f} ms, per-video loop {seq_slow:.1f} ms, "
          f"speed-up {seq_slow / seq_fast:.1f}x")


if __name__ == "__main__":
    main()
