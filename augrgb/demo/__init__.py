"""``augrgb demo``: the whole pipeline on a generated benchmark in one resumable command.

``settings`` (size presets in ``configs/demo.yaml``), ``stages`` (headers, resume record), ``pipeline``
(the ten stages, ``run_demo``), ``results`` (the table), ``figures`` (the last stage's hook), ``cli``.
"""
