"""How large each trained stream's features H are, and how much of them changes in time.

For every stream a grid trained on the built-in dense benchmark (the ``synth`` dataset; vanilla and students, not the
teacher, which reads another modality), run its selected checkpoint in eval mode on the test videos and split each
video's H ``(C, T)`` into its temporal mean (one vector per video, the "constant" part) and the rest (the part that
changes from snippet to snippet). Printed per variant and teacher, mean over seeds: test score, the mean L2 norm of
H's snippets, of the constant part and of the changing part, the changing part's share of H's energy, the
classifier's weight norm and the spread of the logits. Every KD term of augrgb is invariant to H's scale, so this
shows what the terms do to it.

Usage (numbers and commands: docs/results.md, *The scale of H*)::

    OMP_NUM_THREADS=1 python tools/feature_scale.py results feats bench/annotations.json
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

COLUMNS = ("test", "|H|", "|constant|", "|changing|", "changing share", "|W_cls|", "logit std")


def scale_parts(h: Tensor) -> tuple[float, float, float]:
    """One video's H ``(C, T)`` -> (mean snippet norm of H, norm of its temporal mean, mean snippet norm of H minus
    that mean)."""
    constant = h.mean(dim=1, keepdim=True)
    return float(h.norm(dim=0).mean()), float(constant.norm()), float((h - constant).norm(dim=0).mean())


def changing_share(constant: float, changing: float) -> float:
    """The changing part's share of the energy, ``changing^2 / (constant^2 + changing^2)``."""
    total = constant ** 2 + changing ** 2
    return changing ** 2 / total if total > 0 else 0.0


def stream_scale(checkpoint: Path, videos: list[Tensor]) -> dict[str, float]:
    """The columns after ``test`` for one stream checkpoint over ``videos`` (each ``(C_in, T)``)."""
    from augrgb.models.checkpoint import load_stream

    stream, _ = load_stream(checkpoint)
    parts, logit_std = [], []
    with torch.no_grad():
        for x in videos:
            out = stream(x[None], torch.ones(1, 1, x.shape[-1]))
            parts.append(scale_parts(out.features[0]))
            logit_std.append(float(out.logits.std()))
    norm, constant, changing = np.mean(parts, axis=0)
    return {"|H|": norm, "|constant|": constant, "|changing|": changing,
            "changing share": changing_share(constant, changing),
            "|W_cls|": float(stream.classifier.conv.weight.detach().norm()), "logit std": float(np.mean(logit_std))}


def test_videos(store: Path, annotations: Path, modality: str) -> list[Tensor]:
    """The test subset's features of one modality, ``(C, T)`` float32 each."""
    from augrgb.experiments.probe import split_videos

    items = split_videos(store, annotations, [modality], "test")
    return [torch.from_numpy(item.features[modality].astype(np.float32)).T.contiguous() for item in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a grid's results folder (results.jsonl, runs/), from the folder "
                                                   "the grid was run from")
    parser.add_argument("store", type=Path, help="the feature store the grid trained on")
    parser.add_argument("annotations", type=Path, help="the benchmark's annotations.json")
    parser.add_argument("--modality", default="rgb", help="the streams' input modality (default rgb)")
    args = parser.parse_args()
    from augrgb.experiments.runner import read_results

    videos = test_videos(args.store, args.annotations, args.modality)
    table: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    seen = set()  # run folders: a vanilla stream is one run however many teachers its rows name
    for record in read_results(args.results / "results.jsonl"):
        if record.get("validation") is None or record["name"] == "teacher" or record["run"] in seen:
            continue  # the teacher reads another modality; two-stream has no checkpoint of its own
        checkpoint = Path(record["run"]) / "best.pt"  # as the runner wrote it: relative to where the grid ran
        if not checkpoint.is_file():
            raise SystemExit(f"{checkpoint}: no checkpoint (run this tool from the folder the grid was run from)")
        seen.add(record["run"])
        scale = stream_scale(checkpoint, videos)
        table[record["name"], record.get("teacher", "")].append({"test": 100 * record["score"], **scale})
    print("| variant | teacher | seeds | " + " | ".join(COLUMNS) + " |\n|---|---|---" + "|---:" * len(COLUMNS) + "|")
    for (name, teacher), rows in table.items():
        cells = [f"{np.mean([r[c] for r in rows]):.2f} ± {np.std([r[c] for r in rows]):.2f}" for c in COLUMNS]
        print(f"| {name} | {teacher} | {len(rows)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
