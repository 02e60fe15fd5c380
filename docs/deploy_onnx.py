"""Run an `augrgb detect export --format onnx --end-to-end` folder on a video, without augrgb or PyTorch.

Needs only ONNX Runtime, OpenCV (decoder and resize) and numpy:

    pip install onnxruntime opencv-python-headless numpy
    python deploy_onnx.py VIDEO EXPORT_DIR [--out result.json] [--batch 8] [--threads N]

It repeats `augrgb detect`'s preprocessing as EXPORT_DIR/augrgb.json describes it (resample by frame
index, short side resize + centre crop, x / 127.5 - 1, 16-frame snippets with the tail padded), encodes
the snippets in batches with encoder.onnx, runs temporal.onnx on the whole video's features and writes
the per-snippet probabilities (the same as `augrgb detect --backend opencv` writes to
probabilities/<video>.h5 `snippets`) and simple intervals: runs of snippets above the class threshold
(sigmoid heads) or whose most likely row is that class (softmax heads). augrgb's own decoders work on
per-frame probabilities, so interval edges can differ from theirs by up to one snippet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

UNIT = ((2 * np.arange(256, dtype=np.float64) - 255) / 255).astype(np.float32)  # uint8 x -> x / 127.5 - 1


def frames_at(path: Path, fps: float) -> Iterator[np.ndarray]:
    """RGB uint8 frames resampled to ``fps``: output frame k shows source frame floor(k * source_fps / fps)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"{path}: cannot be opened as a video")
    source = Fraction(capture.get(cv2.CAP_PROP_FPS) or fps).limit_denominator(1001)  # 29.97002997 -> 30000/1001
    target = Fraction(str(fps))
    i = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        # output frames k with floor(k * S / T) == i: ceil(i * T / S) <= k < ceil((i + 1) * T / S)
        repeats = -(-(i + 1) * target // source) - -(-i * target // source)
        i += 1
        if repeats:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for _ in range(int(repeats)):
                yield rgb
    capture.release()


def preprocess(frame: np.ndarray, crop: str, size: int, short_side: int) -> np.ndarray:
    """Resize (short side to ``short_side``, OpenCV bilinear) and centre-crop to ``size`` x ``size``."""
    height, width = frame.shape[:2]
    if crop == "resize":
        new_w, new_h = size, size
    elif width <= height:
        new_w, new_h = short_side, round(height * short_side / min(width, height))
    else:
        new_w, new_h = round(width * short_side / min(width, height)), short_side
    if (new_w, new_h) != (width, height):
        frame = cv2.resize(np.ascontiguousarray(frame), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return frame[top:top + size, left:left + size]


def snippets(frames: Iterator[np.ndarray], snippet: int, stride: int) -> Iterator[np.ndarray]:
    """(snippet, H, W, 3) windows every ``stride`` frames until the last frame is covered; the tail repeats the last frame."""
    window: deque[np.ndarray] = deque(maxlen=snippet)
    seen = next_start = count = 0
    for frame in frames:
        window.append(frame)
        seen += 1
        if seen == next_start + snippet:
            yield np.stack(window)
            next_start, count = next_start + stride, count + 1
    if seen and 1 + -(-max(seen - snippet, 0) // stride) > count:  # frames no snippet covered yet
        real = list(window)[-(seen - next_start):]
        yield np.stack(real + [real[-1]] * (snippet - len(real)))


def session(path: Path, threads: int | None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(video: Path, folder: Path, batch: int = 8, threads: int | None = None) -> dict:
    """Per-snippet probabilities and intervals of ``video`` (see module docstring)."""
    meta = json.loads((folder / "augrgb.json").read_text())
    for graph in meta["graphs"].values():
        if hashlib.sha256((folder / graph["file"]).read_bytes()).hexdigest() != graph["sha256"]:
            raise SystemExit(f"{folder / graph['file']}: not the file augrgb.json describes")
    grid, prep = meta["grid"], meta["preprocessing"]
    encoder, temporal = session(folder / "encoder.onnx", threads), session(folder / "temporal.onnx", threads)
    features, pending = [], []

    def flush() -> None:
        x = UNIT[np.stack(pending)].transpose(0, 4, 1, 2, 3)  # (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) in [-1, 1]
        features.append(encoder.run(None, {"snippets": np.ascontiguousarray(x)})[0])
        pending.clear()

    frames = (preprocess(f, prep["crop"], prep["size"], prep["short_side"]) for f in frames_at(video, grid["fps"]))
    for clip in snippets(frames, grid["snippet"], grid["stride"]):
        pending.append(clip)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    if not features:
        raise SystemExit(f"{video}: no decodable frames")
    x = np.concatenate(features).T[None]  # (1, 1024, T)
    probs = temporal.run(None, {"features": np.ascontiguousarray(x), "mask": np.ones((1, 1, x.shape[2]), np.float32)})[0][0].T
    classes, k = meta["classes"], len(meta["classes"])
    if meta["head"] == "softmax":
        active = probs.argmax(axis=1)[:, None] == np.arange(k)[None, :]
    else:
        active = probs[:, :k] >= np.asarray(meta["thresholds"] or [0.5] * k)[None, :]
    fps, stride, snippet = grid["fps"], grid["stride"], grid["snippet"]
    intervals = []
    for c in range(k):  # snippet i spans [i * stride, i * stride + snippet) frames
        edges = np.flatnonzero(np.diff(np.concatenate([[0], active[:, c].astype(int), [0]])))
        for first, end in zip(edges[::2], edges[1::2]):
            intervals.append({"label": classes[c], "start": first * stride / fps, "end": ((end - 1) * stride + snippet) / fps,
                              "score": float(probs[first:end, c].mean())})
    return {"video": str(video), "classes": classes, "head": meta["head"], "fps": fps,
            "snippet_probabilities": probs.tolist(), "intervals": sorted(intervals, key=lambda d: d["start"])}


def main() -> None:
    """Command line: VIDEO EXPORT_DIR [--out FILE] [--batch N] [--threads N]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("export", type=Path, help="folder written by augrgb detect export --format onnx --end-to-end")
    parser.add_argument("--out", type=Path, help="write the result as JSON here (default: print the intervals)")
    parser.add_argument("--batch", type=int, default=8, help="snippets per encoder call")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
    args = parser.parse_args()
    result = run(args.video, args.export, args.batch, args.threads)
    if args.out:
        args.out.write_text(json.dumps(result))
    for d in result["intervals"]:
        print(f"{d['label']}\t{d['start']:.2f}\t{d['end']:.2f}\t{d['score']:.3f}")


if __name__ == "__main__":
    main()
