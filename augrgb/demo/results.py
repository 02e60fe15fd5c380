"""The demo's results table: scores of every row, and how much of the gap between vanilla RGB and
two-stream each Augmented-RGB student closes, as Markdown (printed and ``results.md``) and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augrgb.core.files import write_text_atomic
from augrgb.experiments.report import MIN_GAP, gap_closed, stat

VANILLA = "vanilla RGB"


def table_rows(teachers: dict[str, str], vanilla: str, students: dict[str, str]) -> dict[str, list[str]]:
    """The rows (name -> checkpoints) for ``teachers`` and ``students`` keyed by teacher modality: vanilla RGB,
    each teacher, each two-stream fusion (vanilla RGB + teacher), each Augmented-RGB student."""
    rows = {VANILLA: [vanilla]}
    rows.update({f"{m} teacher": [path] for m, path in teachers.items()})
    rows.update({f"two-stream RGB+{m}": [vanilla, path] for m, path in teachers.items()})
    rows.update({f"Augmented-RGB ({m})": [path] for m, path in students.items()})
    return rows


def add_gap_closed(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` (from :func:`~augrgb.evaluate.checkpoints.evaluate_checkpoints` with :func:`table_rows`) with
    ``gap_closed`` ({column: value or None}) on each Augmented-RGB row."""
    by_name = {row["name"]: row["scores"] for row in result["rows"]}
    for row in result["rows"]:
        if row["name"].startswith("Augmented-RGB ("):
            modality = row["name"][len("Augmented-RGB ("):-1]
            two = by_name[f"two-stream RGB+{modality}"]
            row["gap_closed"] = {c: gap_closed(by_name[VANILLA][c], two[c], row["scores"][c]) for c in result["columns"]}
    return result


def mean_over_seeds(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """One result from the same rows scored for each training seed: ``scores`` are the means, ``std`` the standard
    deviations (:func:`~augrgb.experiments.report.stat`, as in the results tables), ``per_seed`` each seed's
    checkpoints and scores (gap closed is then of the means)."""
    first = results[0]
    rows = []
    for i, row in enumerate(first["rows"]):
        runs = [r["rows"][i] for r in results]
        if any(run["name"] != row["name"] for run in runs):
            raise ValueError(f"row {i} differs between seeds: {[run['name'] for run in runs]}")
        stats = {c: stat([run["scores"][c] for run in runs]) for c in first["columns"]}
        rows.append({"name": row["name"], "modality": row.get("modality"),
                     "scores": {c: s.mean for c, s in stats.items()},
                     "std": {c: s.std for c, s in stats.items()},
                     "per_seed": [{"seed": seed, "checkpoints": run["checkpoints"], "scores": run["scores"]}
                                  for seed, run in zip(seeds, runs)]})
    return {**{k: v for k, v in first.items() if k != "rows"}, "seeds": list(seeds), "rows": rows}


def markdown_table(result: dict[str, Any]) -> str:
    """The table in Markdown: scores in % (mean ± std over seeds when there are several), and the gap closed on
    the Augmented-RGB rows."""
    columns = result["columns"]
    score_names = [f"{result['metric']} (%)" if c == "mAP" else f"{c} (%)" for c in columns]
    gap_names = ["gap closed" if c == "mAP" else f"gap closed {c[len('mAP'):]}" for c in columns]
    lines = [f"| row | {' | '.join(score_names + gap_names)} |", "|---|" + "---:|" * (2 * len(columns))]
    for row in result["rows"]:
        scores = [f"{100 * row['scores'][c]:.2f}" + (f" ± {100 * row['std'][c]:.2f}" if "std" in row else "")
                  for c in columns]
        gaps = [_fraction(row["gap_closed"][c]) if "gap_closed" in row else "" for c in columns]
        lines.append(f"| {row['name']} | {' | '.join(scores + gaps)} |")
    return "\n".join(lines) + "\n"


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def write_results(out: Path, result: dict[str, Any], heading: str) -> tuple[Path, Path]:
    """``out/results.json`` and ``out/results.md`` (heading, table, how to read it), written atomically."""
    seeds = (f" Mean ± std over the {len(result['seeds'])} training seeds; gap closed of the means."
             if "seeds" in result else "")
    md = (f"{heading}\n\n{markdown_table(result)}\n"
          f"{result['metric']} on the {result['videos']} '{result['subset']}' videos. Two-stream = the average of the "
          "vanilla RGB and teacher logits. Gap closed = (Augmented-RGB - vanilla) / (two-stream - vanilla); n/a when "
          f"two-stream does not beat vanilla RGB by {100 * MIN_GAP:g} point or more.{seeds}\n")
    json_path = write_text_atomic(out / "results.json", json.dumps(result, indent=1) + "\n")
    return json_path, write_text_atomic(out / "results.md", md)
