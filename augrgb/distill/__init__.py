"""Stage 2: train a teacher stream and the Augmented-RGB student with cross-modal knowledge distillation.

The network is :mod:`augrgb.models`. Here: ``losses`` (``KD_LOSSES`` and the ``DistillationObjective``),
``presets`` (``--kd`` names), ``settings`` (typed configs), ``data`` (features, labels, batches, sampler),
``train`` (``train_teacher``, ``train_student``), ``trainer`` (the epoch loop over training phases, resume),
``validation`` (validation mAP, thresholds), ``distributed`` (torchrun/DDP), ``records`` (run.json,
TensorBoard), ``cli``.
"""
