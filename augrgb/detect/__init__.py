"""Stage 3: RGB-only inference to action intervals, and exports.

``pipeline.detect`` (``cli``: the ``augrgb detect`` command) runs ``model`` (the student checkpoint),
``probabilities`` (per-frame scores), ``intervals`` (decoders, ``nms``) and ``outputs``/``plot``;
``export`` writes TorchScript/ONNX. The official protocols are :mod:`augrgb.metrics` and :mod:`augrgb.evaluate`.
"""
