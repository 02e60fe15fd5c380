"""Named distillation objectives (``--kd``): ours, none (vanilla stream) or one baseline term.

Kept free of torch imports so the command line can list the names without loading torch.
"""

from __future__ import annotations

from typing import Any

KD_PRESETS: tuple[str, ...] = ("ours", "none", "logit", "hint", "rkd-da", "sp", "skd", "chen", "crd")


def kd_terms(kd: str) -> dict[str, Any]:
    """The objective terms of a preset: ``ours`` = the paper's atomic/global/boundary, ``none`` = no
    term, a baseline name = that term with its default weight and options."""
    from augrgb.distill.losses import ObjectiveConfig, TermConfig

    if kd not in KD_PRESETS:
        raise ValueError(f"unknown kd preset '{kd}' (known: {', '.join(KD_PRESETS)})")
    if kd == "ours":
        return ObjectiveConfig().terms
    return {} if kd == "none" else {kd: TermConfig()}
