"""AGCN encoding throughput on CPU: snippets/s of encode_snippets (batched) against a naive one-snippet loop.

Usage: PYTHONPATH=. python benchmarks/agcn_snippets.py [--frames 1600] [--batch-size 64] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from augrgb.extract.agcn import AGCN, TwoStreamAGCN
from augrgb.extract.pose_snippets import encode_snippets


def snippets_per_second(model: torch.nn.Module, joints: np.ndarray, batch_size: int) -> float:
    encode_snippets(model, joints[:32], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    features = encode_snippets(model, joints, batch_size=batch_size)
    return len(features) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1600, help="frames of the synthetic sequence (16-frame snippets, stride 16)")
    parser.add_argument("--batch-size", type=int, default=64, help="snippets per forward pass in the batched run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.3, (args.frames, 2, 25, 3)).astype(np.float32)
    print(f"{args.frames // 16} snippets of 16 frames, 2 bodies, {args.threads} thread(s)")
    for name, model in (("AGCN (joint stream)", AGCN(None)), ("2s-AGCN (joint + bone)", TwoStreamAGCN(None))):
        naive = snippets_per_second(model, joints[:16 * 32], batch_size=1)
        batched = snippets_per_second(model, joints, batch_size=args.batch_size)
        print(f"{name:24s} batched({args.batch_size}): {batched:7.1f} snippets/s   "
              f"one at a time: {naive:7.1f} snippets/s   ratio {batched / naive:4.2f}x")


if __name__ == "__main__":
    main()
