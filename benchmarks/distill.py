"""Distillation benchmarks: the KD terms per batch, and whole training epochs, each beside a naive reference.

Part ``losses``: vectorised L_atomic + L_global + L_boundary vs a naive reference that loops in
Python (L_global and L_boundary video by video, negative sampling anchor by anchor, then the same
InfoNCE); same heads and weights; forward + backward time per batch on Charades-sized features.

Part ``epoch``: one training epoch of the trainer's steps on Charades-sized random features (7,985
videos, T uniform in 30..200, 1024-d RGB and flow, batch 32, SS-TCN 256-d, 157 classes) for
(a) the vanilla RGB stream, (b) + the frozen teacher's forward pass (no KD term), (c) + the three
KD terms, vectorised, and (d) the same with the naive KD reference, which is timed on the first
``--naive-batches`` batches only because it is slow. The set-ups are interleaved batch by batch, so
load from other processes slows them alike. An epoch is the collation time plus the step times.
KD terms alone = (c) - (b) and naive terms alone = (d) - (b), on the same batches.
``--videos N`` times N videos and extrapolates linearly to 7,985.

    PYTHONPATH=. python benchmarks/distill.py [--part losses|epoch|all] [--videos 7985] [--batch 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from torch import Tensor

from augrgb.distill.data import VideoItem
from augrgb.distill.distributed import DistContext
from augrgb.distill.losses import DistillationObjective, ObjectiveConfig, ObjectiveOutput
from augrgb.distill.losses.atomic import info_nce
from augrgb.models.heads import classification_loss
from augrgb.models.masks import valid_snippets
from augrgb.models.stream import StreamOutput


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


def loss_benchmark(args: argparse.Namespace) -> None:
    """The KD terms alone, per batch: vectorised vs naive loops."""
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


def charades_like_items(videos: int, min_len: int, max_len: int, in_dim: int, classes: int,
                        seed: int = 0) -> list[VideoItem]:
    """Random float16 RGB and flow features per video (T uniform in min..max) with 1-3 labelled actions."""
    rng = np.random.default_rng(seed)
    items = []
    for v in range(videos):
        t = int(rng.integers(min_len, max_len + 1))
        labels = np.zeros((t, classes), dtype=bool)
        for c in rng.integers(classes, size=int(rng.integers(1, 4))):
            start = int(rng.integers(t))
            labels[start:start + int(rng.integers(min(5, t), t + 1)), c] = True
        features = {m: rng.standard_normal((t, in_dim), dtype=np.float32).astype(np.float16) for m in ("rgb", "flow")}
        items.append(VideoItem(f"v{v:05d}", features, labels, t))
    return items


def naive_objective(objective: DistillationObjective):
    """A drop-in ``forward`` for ``objective``: the same L_cls + KD sum with the naive KD reference."""
    def forward(student: StreamOutput, teachers, mask: Tensor, labels: Tensor) -> ObjectiveOutput:
        cls = classification_loss(student.logits, labels, mask, objective.head)
        total = cls + naive_objective_kd(objective, student, teachers[0], mask, labels)
        return ObjectiveOutput(total, {"cls": cls.detach(), "total": total.detach()})
    return forward


def epoch_benchmark(args: argparse.Namespace) -> None:
    """One epoch of the trainer's steps for four set-ups, interleaved batch by batch (a busy shared
    machine then slows every set-up alike): vanilla, + teacher forward, + KD (vectorised), + KD (naive,
    on the first ``--naive-batches`` batches only)."""
    from augrgb.distill.data import ShardedBatchSampler, SnippetDataset
    from augrgb.distill.settings import TrainingConfig
    from augrgb.distill.trainer import Phase, Teacher, Trainer
    from augrgb.models.stream import Stream

    start = time.perf_counter()
    items = charades_like_items(args.videos, args.min_len, args.max_len, args.in_dim, args.classes)
    print(f"epoch: {args.videos} videos, {sum(i.length for i in items)} snippets (T {args.min_len}..{args.max_len}), "
          f"{args.in_dim}-d RGB + flow, batch {args.batch}, SS-TCN {args.dim}-d, K={args.classes}, "
          f"threads {torch.get_num_threads()} (features generated in {time.perf_counter() - start:.0f} s)")
    torch.manual_seed(1)
    teacher = Teacher(Stream(args.in_dim, args.classes, hidden=args.dim), "flow", {})
    modes = {"vanilla": ([], {}), "teacher": ([teacher], {}), "kd": ([teacher], None), "naive": ([teacher], None)}
    trainers = {}
    with tempfile.TemporaryDirectory() as out:
        for name, (teachers, terms) in modes.items():
            torch.manual_seed(0)
            trainer = Trainer(stream=Stream(args.in_dim, args.classes, hidden=args.dim), modality="rgb",
                              teachers=teachers, phases=[Phase(name, ObjectiveConfig(terms=terms) if terms == {}
                                                              else ObjectiveConfig(), 1)],
                              head="sigmoid", num_classes=args.classes, train_items=items, val_items=items[:1],
                              training=TrainingConfig(batch_size=args.batch, max_length=None), seed=0, amp=False,
                              ctx=DistContext(0, 1, 0, torch.device("cpu")), out=out, best_checkpoint=lambda *a: {},
                              record_header={}, fingerprint={})
            trainer._build(trainer.phases[0])
            trainers[name] = trainer
        trainers["naive"].objective.forward = naive_objective(trainers["naive"].objective)
        datasets = {"vanilla": SnippetDataset(items, ["rgb"], "sigmoid", args.classes),
                    "teacher": SnippetDataset(items, ["rgb", "flow"], "sigmoid", args.classes)}
        sampler = ShardedBatchSampler(len(items), args.batch, seed=0)
        data = dict.fromkeys(datasets, 0.0)
        steps = dict.fromkeys(modes, 0.0)
        subset = dict.fromkeys(modes, 0.0)          # the first --naive-batches batches
        order = list(modes)
        for step, indices in enumerate(sampler):
            batches = {}
            for key, ds in datasets.items():
                begin = time.perf_counter()
                batches[key] = ds.collate([ds[i] for i in indices]).to("cpu")
                data[key] += time.perf_counter() - begin
            for name in order[step % 4:] + order[:step % 4]:
                if name == "naive" and step >= args.naive_batches:
                    continue
                begin = time.perf_counter()
                trainers[name]._train_step(batches["vanilla" if name == "vanilla" else "teacher"])
                spent = time.perf_counter() - begin
                steps[name] += spent
                if step < args.naive_batches:
                    subset[name] += spent
    scale = 7985 / args.videos
    epochs = {"vanilla": data["vanilla"] + steps["vanilla"], "teacher": data["teacher"] + steps["teacher"],
              "kd": data["teacher"] + steps["kd"]}
    labels = {"vanilla": "vanilla RGB stream", "teacher": "+ teacher forward, no KD term",
              "kd": "+ atomic/global/boundary (vectorised)"}
    for name, seconds in epochs.items():
        note = "" if args.videos == 7985 else f"  -> {seconds * scale:7.0f} s extrapolated to 7,985 videos"
        print(f"  {labels[name]:<40}{seconds:8.1f} s/epoch{note}")
    print(f"KD epoch / vanilla epoch: {epochs['kd'] / epochs['vanilla']:.2f}x (target <= 1.6x)")
    k = min(args.naive_batches, len(sampler))
    fast, slow = subset["kd"] - subset["teacher"], subset["naive"] - subset["teacher"]
    print(f"KD terms alone on the first {k} batches (step with KD - step with teacher forward only): "
          f"vectorised {fast:.2f} s, naive loops {slow:.2f} s: {slow / max(fast, 1e-9):.1f}x (target >= 5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["losses", "epoch", "all"], default="all", help="which benchmark to run")
    parser.add_argument("--batch", type=int, default=32, help="videos per batch")
    parser.add_argument("--min-len", type=int, default=30, help="shortest video, in snippets")
    parser.add_argument("--max-len", type=int, default=200, help="longest video, in snippets")
    parser.add_argument("--dim", type=int, default=256, help="feature width C2")
    parser.add_argument("--classes", type=int, default=157, help="number of classes (multi-hot labels)")
    parser.add_argument("--repeats", type=int, default=5, help="losses: timed repetitions of the vectorised version")
    parser.add_argument("--naive-repeats", type=int, default=1, help="losses: timed repetitions of the naive version")
    parser.add_argument("--videos", type=int, default=7985, help="epoch: videos in the epoch (Charades train: 7,985)")
    parser.add_argument("--in-dim", type=int, default=1024, help="epoch: encoder feature width C1")
    parser.add_argument("--naive-batches", type=int, default=3, help="epoch: batches also run with the naive KD loops")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part in ("losses", "all"):
        loss_benchmark(args)
    if args.part in ("epoch", "all"):
        epoch_benchmark(args)


if __name__ == "__main__":
    main()
