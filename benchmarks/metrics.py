"""Speed of the vectorised metrics beside naive baselines measured in the same run.

- per-frame AP: ours vs scikit-learn's ``average_precision_score`` called per class;
- PKU-MMD mAP_action: ours vs a plain-Python loop over proposals and ground truths.

Usage: ``python benchmarks/metrics.py [--frames N] [--classes K] [--videos V]``; prints seconds and
the speed-up ratio, and checks both sides agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score

from augrgb.metrics import frame_average_precision, pku_mmd_event_map


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def naive_pku_action_ap(props: list[list[float]], grounds: list[list[float]], theta: float) -> float:
    """One label's PKU-MMD AP with plain loops (rows: label, start, end, conf, video)."""
    if not props or not grounds:
        return 0.0
    props = sorted(props, key=lambda r: r[3])
    owner = []
    for p in props:
        best, best_ov = -1, None
        for j, g in enumerate(grounds):
            if g[4] != p[4]:
                continue
            hull = max(p[2], g[2]) - min(p[1], g[1])
            ov = 0.0 if hull == 0 else (min(p[2], g[2]) - max(p[1], g[1])) / hull
            if ov >= theta and (best_ov is None or ov >= best_ov):
                best, best_ov = j, ov
        owner.append(best)
    counts = {}
    for j in owner:
        if j >= 0:
            counts[j] = counts.get(j, 0) + 1
    positive, left = len(counts), len(props)
    old_p, old_r = positive / left, positive / len(grounds)
    score = 0.0
    for j in owner:
        left -= 1
        if j < 0:
            continue
        counts[j] -= 1
        positive -= counts[j] == 0
        p, r = (positive / left, positive / len(grounds)) if left else (0.0, 0.0)
        old_p = max(old_p, p)
        score += old_p * (old_r - r)
        old_r = r
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames for the per-frame AP benchmark")
    parser.add_argument("--classes", type=int, default=20, help="classes for both benchmarks")
    parser.add_argument("--videos", type=int, default=40, help="videos for the PKU-MMD benchmark")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    scores = rng.random((args.frames, args.classes)).astype(np.float32).astype(np.float64)
    labels = rng.random((args.frames, args.classes)) < 0.1
    ours, t_ours = timed(lambda: frame_average_precision(scores, labels))
    ref, t_ref = timed(lambda: np.array([average_precision_score(labels[:, k], scores[:, k]) for k in range(args.classes)]))
    assert np.allclose(ours, ref, atol=1e-12)
    print(f"per-frame AP, {args.frames} frames x {args.classes} classes: ours {t_ours:.3f} s, "
          f"sklearn per class {t_ref:.3f} s, ratio {t_ref / t_ours:.1f}x")

    gt, pred = {}, {}
    for v in range(args.videos):
        starts = np.sort(rng.uniform(0, 5000, 20))
        g = np.column_stack([rng.integers(0, args.classes, 20), starts, starts + rng.uniform(30, 150, 20), np.ones(20)])
        jitter = rng.normal(0, 15, (60, 2))
        base = g[rng.integers(0, 20, 60)]
        p = np.column_stack([np.where(rng.random(60) < 0.8, base[:, 0], rng.integers(0, args.classes, 60)),
                             base[:, 1] + jitter[:, 0], base[:, 2] + jitter[:, 1], rng.random(60)])
        gt[f"{v:04d}.txt"], pred[f"{v:04d}.txt"] = g, p
    result, t_ours = timed(lambda: pku_mmd_event_map(gt, pred, args.classes, 0, [0.5]))

    def naive():
        rows_p = [list(r) + [v] for v in pred for r in pred[v].tolist()]
        rows_g = [list(r) + [v] for v in gt for r in gt[v].tolist()]
        aps = [naive_pku_action_ap([r for r in rows_p if r[0] == c], [r for r in rows_g if r[0] == c], 0.5) for c in range(args.classes)]
        return sum(aps) / args.classes

    ref, t_ref = timed(naive)
    assert abs(result.mAP_action[0] - ref) < 1e-12
    print(f"PKU-MMD mAP_action, {args.videos} videos x 60 proposals: ours {t_ours:.3f} s, "
          f"plain loops {t_ref:.3f} s, ratio {t_ref / t_ours:.1f}x")


if __name__ == "__main__":
    main()
