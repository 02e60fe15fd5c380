"""Stage 2: train a teacher stream and the Augmented-RGB student with cross-modal knowledge distillation.

Modules: ``stream`` (filter + head = a stream), ``filters`` (``TEMPORAL_FILTERS``: ss-tcn, pdan, tgm),
``heads`` (sigmoid / softmax classifiers and L_cls), ``losses`` (``KD_LOSSES`` and the
``DistillationObjective``), ``registry``, ``masks`` (padding helpers).
"""
