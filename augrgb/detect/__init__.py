"""Stage 3: RGB-only inference to action intervals, exports, and the evaluation metrics.

``pipeline.detect`` (the ``augrgb detect`` command) runs ``model`` (the student checkpoint),
``probabilities`` (per-frame scores), ``intervals`` (decoders, ``nms``) and ``outputs``/``plot``;
``export`` writes TorchScript/ONNX; ``metrics`` and ``evaluate`` implement the official protocols.
"""
