"""``augrgb demo``: the whole pipeline on a generated benchmark in one resumable command.

``settings`` (size presets in ``augrgb/configs/demo.yaml``), ``steps`` (headers, resume record), ``pipeline``
(the ten steps, ``run_demo``), ``results`` (the table), ``figures`` (the last step's hook), ``cli``.
"""
