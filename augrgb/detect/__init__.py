"""Stage 3: RGB-only inference to action intervals, exports, and the evaluation metrics."""
