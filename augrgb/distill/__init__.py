"""Stage 2: train a teacher stream and the Augmented-RGB student with cross-modal knowledge distillation.

Models: ``stream`` (filter + head = a stream), ``filters`` (``TEMPORAL_FILTERS``: ss-tcn, pdan, tgm),
``heads`` (sigmoid / softmax classifiers and L_cls), ``losses`` (``KD_LOSSES`` and the
``DistillationObjective``), ``presets`` (``--kd`` names), ``registry``, ``masks`` (padding helpers).
Training: ``settings`` (typed configs), ``data`` (features, labels, batches, sampler), ``train``
(``train_teacher``, ``train_student``), ``trainer`` (the epoch loop, resume), ``distributed`` (torchrun/DDP),
``checkpoint`` (``load_stream``), ``evaluation`` (validation mAP, thresholds, ``evaluate_streams``),
``records`` (run.json, TensorBoard), ``cli``.
"""
