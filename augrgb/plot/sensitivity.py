"""Hyper-parameter curves (supplement Fig. 6): the test score against a swept parameter, mean +- std
over seeds, a line per teacher, with the vanilla RGB and two-stream baselines as dashed lines.

Rows come from a results file (``augrgb experiments run`` writes ``results.jsonl``): sensitivity rows
(``group`` "sensitivity", ``param``, ``value``) make the curves; ``group`` "main" rows named "vanilla" and
"two-stream" the baselines. The main "augmented" rows are the sweep's point at the reference value of a
parameter when that value is given (the grid's ``reference``: the sweep itself leaves it out).
Std is over seeds with ddof=0, as in ``augrgb experiments report``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from augrgb.core.errors import InputError
from augrgb.experiments.report import Stat, stat
from augrgb.experiments.runner import read_results
from augrgb.plot.figure import new_figure, save_png

BASELINES = {"vanilla": "vanilla RGB", "two-stream": "two-stream"}
LOG_SPAN = 10.0  # values spanning more than this factor get a log x axis


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a results file; a missing or empty file is an error here (nothing to draw)."""
    if not Path(path).is_file():
        raise InputError(path, "results file not found")
    records = read_results(path)
    if not records:
        raise InputError(path, "no results in the file")
    return records


def select_metric(records: Sequence[dict[str, Any]], metric: str | None, source: str | Path = "results") -> list[dict[str, Any]]:
    """The records of ``metric``; without one, the file's only metric (several is an error: choose)."""
    metrics = sorted({str(r.get("metric")) for r in records})
    if metric is None:
        if len(metrics) > 1:
            raise InputError(source, f"several metrics ({', '.join(metrics)}): choose one with --metric")
        metric = metrics[0]
    chosen = [r for r in records if str(r.get("metric")) == metric]
    if not chosen:
        raise InputError(f"metric {metric!r}", f"not in {source} (metrics: {', '.join(metrics)})")
    return chosen


def sensitivity_table(records: Sequence[dict[str, Any]], param: str, reference: float | None = None,
                      source: str | Path = "results") -> tuple[dict[str, list[tuple[float, Stat]]], dict[tuple[str, str], Stat]]:
    """``(curves, baselines)`` of one parameter: per teacher the sorted ``(value, Stat)`` points, and per
    ``(baseline name, teacher)`` the Stat of the main rows, restricted to the sweep's temporal filters."""
    rows = [r for r in records if r["group"] == "sensitivity" and r.get("param") == param]
    if not rows:
        params = sorted({str(r.get("param")) for r in records if r["group"] == "sensitivity"})
        raise InputError(f"parameter {param!r}", f"has no sensitivity rows in {source} (parameters: {', '.join(params) or 'none'})")
    filters = {r.get("filter") for r in rows}
    main = [r for r in records if r["group"] == "main" and r.get("filter") in filters]
    points: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if not isinstance(r.get("value"), (int, float)) or isinstance(r.get("value"), bool):
            raise InputError(source, f"sensitivity row {r['name']!r} (seed {r['seed']}) has value {r.get('value')!r}, "
                                     "expected a number")
        points[str(r.get("teacher"))][float(r["value"])].append(r["score"])
    if reference is not None:
        for r in main:
            if r["name"] == "augmented" and str(r.get("teacher")) in points:
                points[str(r.get("teacher"))][float(reference)].append(r["score"])
    curves = {t: [(v, stat(s)) for v, s in sorted(by_value.items())] for t, by_value in points.items()}
    base: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in main:
        if r["name"] in BASELINES and str(r.get("teacher")) in curves:
            base[(r["name"], str(r.get("teacher")))].append(r["score"])
    return curves, {k: stat(v) for k, v in base.items()}


def log_axis(values: Sequence[float]) -> bool:
    """A log x axis when the (positive) values span more than ``LOG_SPAN`` times."""
    return min(values) > 0 and max(values) / min(values) > LOG_SPAN


def plot_sensitivity(out: str | Path, results: str | Path, params: Sequence[str], *, metric: str | None = None,
                     reference: Mapping[str, float] | None = None) -> Path:
    """Draw one panel per parameter of ``params`` from the results file ``results`` into ``out`` (PNG)."""
    if not params:
        raise InputError("--param", "give at least one swept parameter")
    records = select_metric(read_records(results), metric, results)
    metric = metric or str(records[0].get("metric"))
    tables = [(p, *sensitivity_table(records, p, (reference or {}).get(p), results)) for p in params]
    teachers = sorted({t for _, curves, _ in tables for t in curves})
    colour = {t: f"C{i % 10}" for i, t in enumerate(teachers)}
    fig = new_figure(4.6 * len(params) + 2.4, 4.0)
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    seeds = set()
    for ax, (param, curves, baselines) in zip(axes, tables):
        for teacher, pts in sorted(curves.items()):
            x = [v for v, _ in pts]
            ax.errorbar(x, [s.mean for _, s in pts], yerr=[s.std for _, s in pts], color=colour[teacher], marker="o",
                        capsize=3, linewidth=1.5, label=f"Augmented-RGB, {teacher} teacher")
            seeds.update(s.seeds for _, s in pts)
        _draw_baselines(ax, baselines, colour)
        values = sorted({v for pts in curves.values() for v, _ in pts})
        if log_axis(values):
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.set_xlabel(param)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)")
        ax.set_title(f"sensitivity to {param}", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    fig.legend([handles[label] for label in labels], labels, loc="outside right upper", fontsize=8)
    runs = "/".join(str(n) for n in sorted(seeds))
    fig.suptitle(f"Hyper-parameter sensitivity ({runs} seed{'s' if seeds != {1} else ''} per point)", fontsize=11)
    return save_png(fig, out)


def _draw_baselines(ax, baselines: Mapping[tuple[str, str], Stat], colour: Mapping[str, str]) -> None:
    """Dashed lines: vanilla RGB (the same runs for every teacher) once in black, else one per teacher in
    the teacher's colour (two-stream dashed, vanilla dotted)."""
    for name, title in BASELINES.items():
        rows = {t: s for (n, t), s in baselines.items() if n == name}
        if not rows:
            continue
        if name == "vanilla" and len({s.mean for s in rows.values()}) == 1:
            ax.axhline(next(iter(rows.values())).mean, color="black", linestyle="--", linewidth=1.2, label=title)
            continue
        for teacher, s in sorted(rows.items()):
            ax.axhline(s.mean, color=colour[teacher], linestyle="--" if name == "two-stream" else ":", linewidth=1.2,
                       label=f"{title} ({teacher})")
