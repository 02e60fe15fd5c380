"""Results tables: mean +- std over seeds of the records in ``results.jsonl``, as Markdown.

One table per group (main, ablation, kd, filters, sensitivity); columns are the teachers. The main
table adds the share of the vanilla-to-two-stream gap the Augmented-RGB stream closes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from augrgb.experiments.grid import Grid

Key = tuple[str, str, str | None, str]  # group, name, teacher, filter


def summarise(records: Iterable[dict[str, Any]]) -> dict[Key, tuple[float, float, int]]:
    """``(group, name, teacher, filter) -> (mean, std, seeds)`` of the scores (std with ddof=0 over seeds)."""
    scores: dict[Key, list[float]] = defaultdict(list)
    for r in records:
        scores[(r["group"], r["name"], r["teacher"], r["filter"])].append(r["score"])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in scores.items()}


MIN_GAP = 0.01  # two-stream must beat vanilla RGB by one mAP point, else the ratio divides by noise


def gap_closed(vanilla: float, two_stream: float, augmented: float) -> float | None:
    """(augmented - vanilla) / (two-stream - vanilla); None when two-stream does not beat vanilla RGB by
    :data:`MIN_GAP` (a ratio over a smaller gap is seed noise, e.g. -269 for a 0.05-point gap)."""
    if not all(map(math.isfinite, (vanilla, two_stream, augmented))) or two_stream - vanilla < MIN_GAP:
        return None
    return (augmented - vanilla) / (two_stream - vanilla)


def _cell(stats: dict[Key, tuple[float, float, int]], key: Key) -> str:
    if key not in stats:
        return "–"
    mean, std, n = stats[key]
    return f"{100 * mean:.1f} ± {100 * std:.1f}" + ("" if n >= 3 else f" (n={n})")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def main_table(stats: dict[Key, tuple[float, float, int]], teachers: Sequence[str], filter: str,
               extra: Sequence[str] = ()) -> str:
    """Vanilla RGB, teacher, two-stream and Augmented-RGB per teacher (plus the ``extra`` main-group
    variants), each Augmented-RGB row followed by the share of the vanilla-to-two-stream gap it closes."""
    rows = []
    for label, name in (("vanilla RGB", "vanilla"), ("teacher", "teacher"), ("two-stream (RGB + teacher)", "two-stream")):
        rows.append([label, *(_cell(stats, ("main", name, t, filter)) for t in teachers)])
    for name in ("augmented", *extra):
        label = "Augmented-RGB (ours)" if name == "augmented" else f"Augmented-RGB ({name})"
        rows.append([label, *(_cell(stats, ("main", name, t, filter)) for t in teachers)])
        gaps = []
        for t in teachers:
            parts = [stats.get(("main", n, t, filter)) for n in ("vanilla", "two-stream", name)]
            share = gap_closed(*(p[0] for p in parts)) if all(parts) else None
            gaps.append("–" if share is None else f"{100 * share:.0f}%")
        rows.append(["  gap closed (aug − vanilla) / (two-stream − vanilla)", *gaps])
    return _table(["per-frame mAP (%)", *teachers], rows)


def group_table(stats: dict[Key, tuple[float, float, int]], grid: Grid, group: str, teachers: Sequence[str]) -> str:
    """The rows of ``group`` in grid order, with the vanilla RGB row first for reference."""
    rows = [["vanilla RGB", *(_cell(stats, ("main", "vanilla", t, grid.filter)) for t in teachers)]]
    for v in grid.variants:
        if v.group == group:
            rows.append([v.name, *(_cell(stats, (group, v.name, t, v.filter or grid.filter)) for t in teachers)])
    return _table(["per-frame mAP (%)", *teachers], rows)


def filters_table(stats: dict[Key, tuple[float, float, int]], grid: Grid, teachers: Sequence[str]) -> str:
    """Per temporal filter: vanilla RGB, teacher, two-stream and Augmented-RGB."""
    rows = []
    for name in grid.filters():
        augmented = next((("filters", v.name) for v in grid.variants if v.group == "filters" and v.filter == name),
                         ("main", "augmented"))
        for label, key in (("vanilla RGB", ("main", "vanilla")), ("teacher", ("main", "teacher")),
                           ("two-stream", ("main", "two-stream")), ("Augmented-RGB", augmented)):
            rows.append([name, label, *(_cell(stats, (*key, t, name)) for t in teachers)])
    return _table(["filter", "stream", *teachers], rows)


def sensitivity_table(stats: dict[Key, tuple[float, float, int]], grid: Grid, teachers: Sequence[str]) -> str:
    """One row per swept value, sorted by parameter and value; the main row sits at the reference value."""
    points = [(v.param or "", v.value, ("sensitivity", v.name)) for v in grid.variants if v.group == "sensitivity"]
    points += [(param, value, ("main", "augmented")) for param, value in grid.reference.items()]
    rows = [[param, f"{value:g}" if value is not None else "",
             *(_cell(stats, (*key, t, grid.filter)) for t in teachers)]
            for param, value, key in sorted(points, key=lambda p: (p[0], p[1] if p[1] is not None else 0.0))]
    return _table(["parameter", "value", *teachers], rows)


def render(records: Sequence[dict[str, Any]], grid: Grid) -> str:
    """Every table of ``grid`` from ``records`` (Markdown), in the order of the paper."""
    stats = summarise(records)
    teachers = list(grid.teachers)
    groups = list(dict.fromkeys(v.group for v in grid.variants))
    seeds = sorted({r["seed"] for r in records})
    parts = [f"Test-subset per-frame mAP (%), mean ± std over seeds {', '.join(map(str, seeds))}.",
             "## Main table", main_table(stats, teachers, grid.filter, [v.name for v in grid.variants
                                                                         if v.group == "main" and v.name != "augmented"])]
    for group in groups:
        if group == "main":
            continue
        parts.append(f"## {group}")
        if group == "filters":
            parts.append(filters_table(stats, grid, teachers))
        elif group == "sensitivity":
            parts.append(sensitivity_table(stats, grid, teachers))
        else:
            parts.append(group_table(stats, grid, group, teachers))
    return "\n\n".join(parts) + "\n"
