"""The training diagnostics of one run (``run.json``) over epochs, so a collapsed student shows which term did it.

Four panels: each loss term's value (log scale), each term's share of the gradient at the filter output H,
the mean norm of H, and mAP on the fixed training subset beside validation mAP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augrgb.core.errors import InputError
from augrgb.plot.figure import new_figure, save_png


def read_diagnostics(run: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """``(run.json path, epochs that carry diagnostics)`` of a run folder or its ``run.json``."""
    path = Path(run)
    if path.is_dir():
        path = path / "run.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such run record (give a run folder or its run.json)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(path, f"not a readable run record ({exc.__class__.__name__})") from None
    epochs = [e for e in record.get("epochs", []) if isinstance(e, dict) and e.get("diagnostics")]
    if not epochs:
        raise InputError(path, "no epoch with diagnostics (runs before augrgb 0.1.0 did not record them)")
    return path, epochs


def plot_diagnostics(out: str | Path, run: str | Path, title: str | None = None) -> Path:
    """Draw the diagnostics of ``run`` into the PNG ``out``."""
    path, epochs = read_diagnostics(run)
    x = [e["epoch"] for e in epochs]
    diag = [e["diagnostics"] for e in epochs]
    names = list(diag[0]["terms"])
    fig = new_figure(11, 7)
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    for name in names:
        ax.plot(x, [max(d["terms"][name], 1e-12) for d in diag], label=name)
    ax.set_yscale("log")
    ax.set_title("term values (unweighted)")
    ax = axes[0, 1]
    ax.stackplot(x, [[d["grad_share"][name] for d in diag] for name in names], labels=names)
    ax.set_ylim(0, 1)
    ax.set_title("share of the weighted gradient at H")
    ax = axes[1, 0]
    ax.plot(x, [d["h_norm"] for d in diag], color="black")
    ax.set_title("mean norm of H (training batch)")
    ax = axes[1, 1]
    ax.plot(x, [100 * d["train_subset"]["mAP"] for d in diag], label="training subset, per-frame")
    ax.plot(x, [100 * e["validation"]["mAP"] for e in epochs], label="validation, per-frame")
    if all("event_mAP" in e["validation"] for e in epochs):   # sparse heads: the event mAP selection may use
        ax.plot(x, [100 * e["validation"]["event_mAP"] for e in epochs], label="validation, event", linestyle="--")
    ax.set_title("mAP (%)")
    for a in axes.flat:
        a.set_xlabel("epoch")
    axes[0, 0].legend(fontsize="small")
    axes[1, 1].legend(fontsize="small")
    fig.suptitle(title or str(path.parent))
    return save_png(fig, out)
