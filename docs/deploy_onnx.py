"""Run an `augrgb detect export --format onnx|openvino --end-to-end` folder on a video, without augrgb or PyTorch.

Needs only the export's runtime (ONNX Runtime for --format onnx, OpenVINO for --format openvino),
OpenCV (decoder and resize) and numpy:

    pip install onnxruntime opencv-python-headless numpy     # or: pip install openvino opencv-python-headless numpy
    python deploy_onnx.py VIDEO EXPORT_DIR [--out result.json] [--batch 8] [--threads N] [--precision fp32|bf16]

It repeats `augrgb detect`'s preprocessing as EXPORT_DIR/augrgb.json describes it (resample by frame
index, short side resize + centre crop, x / 127.5 - 1, 16-frame snippets with the tail padded), encodes
the snippets in batches with the encoder graph, runs the temporal graph on the whole video's features and writes
the per-snippet probabilities (the same as `augrgb detect --backend opencv` writes to
probabilities/<video>.h5 `snippets`) and simple intervals: runs of snippets above the class threshold
(sigmoid heads) or whose most likely row is that class (softmax heads). augrgb's own decoders work on
per-frame probabilities, so interval edges can differ from theirs by up to one snippet. OpenVINO
exports can run the encoder in bf16 (--precision bf16, on CPUs with bf16 support; the temporal graph stays fp32).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

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


Graph = Callable[[dict[str, np.ndarray]], np.ndarray]  # named inputs -> the first output


def load_graph(path: Path, threads: int | None, precision: str) -> Graph:
    """The graph at ``path`` on its runtime: ONNX Runtime (.onnx) or OpenVINO (.xml), on the CPU."""
    if path.suffix == ".xml":
        import openvino

        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision]}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = openvino.Core().compile_model(str(path), "CPU", config)
        return lambda inputs: np.array(compiled(inputs)[0])
    if precision != "fp32":
        raise SystemExit(f"--precision {precision}: runs OpenVINO exports only (augrgb detect export --format openvino)")
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda inputs: session.run(None, inputs)[0]


def run(video: Path, folder: Path, batch: int = 8, threads: int | None = None, precision: str = "fp32") -> dict:
    """Per-snippet probabilities and intervals of ``video`` (see module docstring)."""
    meta = json.loads((folder / "augrgb.json").read_text())
    for graph in meta["graphs"].values():
        for file, digest in ((graph["file"], graph["sha256"]), (graph.get("bin"), graph.get("bin_sha256"))):
            if file and hashlib.sha256((folder / file).read_bytes()).hexdigest() != digest:
                raise SystemExit(f"{folder / file}: not the file augrgb.json describes")
    grid, prep = meta["grid"], meta["preprocessing"]
    encoder = load_graph(folder / meta["graphs"]["encoder"]["file"], threads, precision)
    temporal = load_graph(folder / meta["graphs"]["temporal"]["file"], threads, "fp32")
    features, pending = [], []

    def flush() -> None:
        x = UNIT[np.stack(pending)].transpose(0, 4, 1, 2, 3)  # (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) in [-1, 1]
        features.append(encoder({"snippets": np.ascontiguousarray(x)}))
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
    probs = temporal({"features": np.ascontiguousarray(x), "mask": np.ones((1, 1, x.shape[2]), np.float32)})[0].T
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
    """Command line: VIDEO EXPORT_DIR [--out FILE] [--batch N] [--threads N] [--precision fp32|bf16]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("export", type=Path, help="folder written by augrgb detect export --format onnx|openvino --end-to-end")
    parser.add_argument("--out", type=Path, help="write the result as JSON here (default: print the intervals)")
    parser.add_argument("--batch", type=int, default=8, help="snippets per encoder call")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="encoder precision; bf16: OpenVINO exports, on CPUs with bf16 (default fp32)")
    args = parser.parse_args()
    result = run(args.video, args.export, args.batch, args.threads, args.precision)
    if args.out:
        args.out.write_text(json.dumps(result))
    for d in result["intervals"]:
        print(f"{d['label']}\t{d['start']:.2f}\t{d['end']:.2f}\t{d['score']:.3f}")


if __name__ == "__main__":
    main()
