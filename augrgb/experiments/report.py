"""Results tables: mean +- std over seeds of the records in ``results.jsonl``, as Markdown.

One table per group (main, ablation, kd, filters, sensitivity); columns are the teachers. The main
table adds the share of the vanilla-to-two-stream gap the Augmented-RGB stream closes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from augrgb.experiments.grid import Grid

Key = tuple[str, str, str | None, str]  # group, name, teacher, filter


SPLITS = {"test": "score", "validation": "validation"}  # report split -> record field


@dataclass(frozen=True)
class Stat:
    """Mean and std (ddof=0) over seeds of one row's scores, and the scores (in seed order where known)."""

    mean: float
    std: float
    scores: tuple[float, ...]

    @property
    def seeds(self) -> int:
        return len(self.scores)


def stat(scores: Sequence[float]) -> Stat:
    """The :class:`Stat` of a row's scores."""
    return Stat(float(np.mean(scores)), float(np.std(scores)), tuple(scores))


def summarise(records: Iterable[dict[str, Any]], split: str = "test") -> dict[Key, Stat]:
    """``(group, name, teacher, filter) -> Stat`` of the ``split``'s scores (records without one are left out)."""
    field = SPLITS[split]
    scores: dict[Key, list[tuple[int, float]]] = defaultdict(list)
    for r in records:
        if r.get(field) is not None:
            scores[(r["group"], r["name"], r["teacher"], r["filter"])].append((r["seed"], r[field]))
    return {k: stat([s for _, s in sorted(v)]) for k, v in scores.items()}


MIN_GAP = 0.01  # two-stream must beat vanilla RGB by one mAP point, else the ratio divides by noise


def gap_closed(vanilla: float, two_stream: float, augmented: float) -> float | None:
    """(augmented - vanilla) / (two-stream - vanilla); None when two-stream does not beat vanilla RGB by
    :data:`MIN_GAP` (a ratio over a smaller gap is seed noise, e.g. -269 for a 0.05-point gap)."""
    if not all(map(math.isfinite, (vanilla, two_stream, augmented))) or two_stream - vanilla < MIN_GAP:
        return None
    return (augmented - vanilla) / (two_stream - vanilla)


def _cell(stats: dict[Key, Stat], key: Key, per_seed: bool = False) -> str:
    """``mean ± std`` in percent; with ``per_seed`` every seed's score follows, else a note when under 3 seeds."""
    if key not in stats:
        return "–"
    row = stats[key]
    text = f"{100 * row.mean:.1f} ± {100 * row.std:.1f}"
    if per_seed:
        return text + " (" + ", ".join(f"{100 * s:.1f}" for s in row.scores) + ")"
    return text + ("" if row.seeds >= 3 else f" (n={row.seeds})")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def main_table(stats: dict[Key, Stat], teachers: Sequence[str], filter: str,
               extra: Sequence[str] = (), per_seed: bool = False, metric: str = "per-frame mAP") -> str:
    """Vanilla RGB, teacher, two-stream and Augmented-RGB per teacher (plus the ``extra`` main-group
    variants), each Augmented-RGB row followed by the share of the vanilla-to-two-stream gap it closes."""
    rows = []
    for label, name in (("vanilla RGB", "vanilla"), ("teacher", "teacher"), ("two-stream (RGB + teacher)", "two-stream")):
        rows.append([label, *(_cell(stats, ("main", name, t, filter), per_seed) for t in teachers)])
    for name in ("augmented", *extra):
        label = "Augmented-RGB (ours)" if name == "augmented" else f"Augmented-RGB ({name})"
        rows.append([label, *(_cell(stats, ("main", name, t, filter), per_seed) for t in teachers)])
        gaps = []
        for t in teachers:
            parts = [stats.get(("main", n, t, filter)) for n in ("vanilla", "two-stream", name)]
            share = gap_closed(*(p.mean for p in parts)) if all(parts) else None
            gaps.append("–" if share is None else f"{100 * share:.0f}%")
        rows.append(["  gap closed (aug − vanilla) / (two-stream − vanilla)", *gaps])
    return _table([f"{metric} (%)", *teachers], rows)


def group_table(stats: dict[Key, Stat], grid: Grid, group: str, teachers: Sequence[str],
                per_seed: bool = False, metric: str = "per-frame mAP") -> str:
    """The rows of ``group`` in grid order, with the vanilla RGB row first for reference (that of the group's filter
    when all its rows share one, else the grid's)."""
    variants = [v for v in grid.variants if v.group == group]
    filters = {v.filter or grid.filter for v in variants}
    reference = filters.pop() if len(filters) == 1 else grid.filter
    rows = [["vanilla RGB", *(_cell(stats, ("main", "vanilla", t, reference), per_seed) for t in teachers)]]
    for v in variants:
        rows.append([v.name, *(_cell(stats, (group, v.name, t, v.filter or grid.filter), per_seed) for t in teachers)])
    return _table([f"{metric} (%)", *teachers], rows)


def filters_table(stats: dict[Key, Stat], grid: Grid, teachers: Sequence[str], per_seed: bool = False) -> str:
    """Per temporal filter: vanilla RGB, teacher, two-stream and Augmented-RGB."""
    rows = []
    for name in grid.filters():
        augmented = next((("filters", v.name) for v in grid.variants if v.group == "filters" and v.filter == name),
                         ("main", "augmented"))
        for label, key in (("vanilla RGB", ("main", "vanilla")), ("teacher", ("main", "teacher")),
                           ("two-stream", ("main", "two-stream")), ("Augmented-RGB", augmented)):
            rows.append([name, label, *(_cell(stats, (*key, t, name), per_seed) for t in teachers)])
    return _table(["filter", "stream", *teachers], rows)


def sensitivity_table(stats: dict[Key, Stat], grid: Grid, teachers: Sequence[str], per_seed: bool = False) -> str:
    """One row per swept value, sorted by parameter and value; the main row sits at the reference value."""
    points = [(v.param or "", v.value, ("sensitivity", v.name)) for v in grid.variants if v.group == "sensitivity"]
    points += [(param, value, ("main", "augmented")) for param, value in grid.reference.items()]
    rows = [[param, f"{value:g}" if value is not None else "",
             *(_cell(stats, (*key, t, grid.filter), per_seed) for t in teachers)]
            for param, value, key in sorted(points, key=lambda p: (p[0], p[1] if p[1] is not None else 0.0))]
    return _table(["parameter", "value", *teachers], rows)


def gradient_table(records: Sequence[dict[str, Any]], grid: Grid, teacher: str) -> str | None:
    """Per student variant distilled from ``teacher``: each term's mean share (%) of the weighted gradient at H over
    the epochs up to the selected one, averaged over seeds, so a row's mAP can be read beside what drove it."""
    shares: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for r in records:
        if r.get("grad_share") and r["teacher"] == teacher:
            shares[(r["group"], r["name"])].append(r["grad_share"])
    if not shares:
        return None
    terms = list(dict.fromkeys(t for rows in shares.values() for row in rows for t in row))
    rows = []
    for v in grid.variants:
        runs = shares.get((v.group, v.name))
        if runs:
            rows.append([v.group, v.name, *(f"{100 * float(np.mean([r.get(t, 0.0) for r in runs])):.0f}" for t in terms)])
    return _table(["group", "variant", *(f"{t} (%)" for t in terms)], rows)


VALIDATION_LABELS = {"frame": "per-frame mAP", "event": "event mAP (the dataset protocol's tIoUs)"}


def validation_label(records: Iterable[dict[str, Any]]) -> str:
    """What validation scores are: what model selection saw, per-frame or event mAP (``training.selection``);
    records from before event selection existed say nothing and were per-frame."""
    metrics = sorted({r.get("validation_metric") or "frame" for r in records if r.get("validation") is not None})
    if len(metrics) == 1:
        return VALIDATION_LABELS[metrics[0]]
    return "model-selection mAP (per-frame; event mAP for the runs selected on it)"


def render(records: Sequence[dict[str, Any]], grid: Grid, split: str = "test", per_seed: bool = False) -> str:
    """Every table of ``grid`` from ``records`` (Markdown), in the order of the paper, on the ``split`` (test: the
    reported numbers; validation: what settings are chosen on), each seed's score after the mean if ``per_seed``."""
    stats = summarise(records, split)
    teachers = list(grid.teachers)
    groups = list(dict.fromkeys(v.group for v in grid.variants))
    seeds = sorted({r["seed"] for r in records})
    where = "Test-subset" if split == "test" else "Validation (carved from training, per seed)"
    metric = grid.metric_label if split == "test" else validation_label(records)
    parts = [f"{where} {metric} (%), mean ± std over seeds {', '.join(map(str, seeds))}"
             + (" (then each seed's score, in seed order)." if per_seed else "."),
             "## Main table", main_table(stats, teachers, grid.filter, [v.name for v in grid.variants
                                                                         if v.group == "main" and v.name != "augmented"],
                                         per_seed, metric=metric)]
    for group in groups:
        if group == "main":
            continue
        parts.append(f"## {group}")
        if group == "filters":
            parts.append(filters_table(stats, grid, teachers, per_seed))
        elif group == "sensitivity":
            parts.append(sensitivity_table(stats, grid, teachers, per_seed))
        else:
            parts.append(group_table(stats, grid, group, teachers, per_seed, metric=metric))
    for teacher in teachers:
        table = gradient_table(records, grid, teacher)
        if table is not None:
            parts += [f"## Gradient shares at H ({teacher} teacher)", "Each term's share of the summed norms of the "
                      "weighted gradients at the filter output H, mean over the epochs up to the selected one and over "
                      "seeds (diagnostics of run.json).", table]
    return "\n\n".join(parts) + "\n"
