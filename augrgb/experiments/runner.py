"""Run a results grid: train every task once, score it on the test subset, append the scores.

Tasks run in ``jobs`` worker processes with one torch thread each (on a small CPU several one-thread
runs beat one multi-threaded run; these streams are small). Every finished task appends its records
to ``OUT/results.jsonl`` from the parent process only (one grid per OUT at a time: a second is refused),
each task's lines in one write followed by an fsync; a rerun skips the tasks already recorded and resumes
an interrupted training from its ``last.pt``. A last line without its newline is what a kill during an
append leaves: readers ignore it and the next run cuts it off before appending.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from augrgb.core.errors import InputError
from augrgb.core.locks import FolderLock
from augrgb.experiments.grid import Grid, Task, plan

RESULTS = "results.jsonl"


def finished(run: Path) -> bool:
    """True when ``run`` holds a best checkpoint and a run record that says training ended."""
    record = run / "run.json"
    if not (run / "best.pt").is_file() or not record.is_file():
        return False
    return json.loads(record.read_text()).get("status") in ("finished", "early-stopped")


def train(task: Task) -> None:
    """Train ``task``'s stream unless already done; resume it from ``last.pt`` when interrupted."""
    from augrgb.distill.train import train_student, train_teacher

    if finished(task.out):
        return
    resume = (task.out / "last.pt").is_file()
    if task.kind == "teacher":
        train_teacher(task.config, resume=resume)
    else:
        train_student(task.config, resume=resume)


def _record(task: Task, group: str, name: str, score: dict[str, Any], metric: str, **extra: Any) -> dict[str, Any]:
    """One results line: the row, its seed and run, and ``score`` (mAP; event rows also each tIoU's in ``scores``)."""
    variant = task.variant
    scores = {"scores": score["scores"]} if len(score["scores"]) > 1 else {}
    return {"group": group, "name": name, "teacher": task.teacher, "filter": task.filter, "seed": task.seed,
            "param": variant.param if variant else None, "value": variant.value if variant else None,
            "metric": metric, "score": score["mAP"], **scores, "run": str(task.out), **extra}


def best_validation(run: Path) -> tuple[float | None, str]:
    """``(score, metric)``: what model selection saw at a finished run's selected epoch (None if nothing was
    selected) and by which metric, ``frame`` or ``event`` (records written before event selection: frame)."""
    from augrgb.distill.validation import SELECTION_KEYS

    record = json.loads((run / "run.json").read_text())
    metric = (record.get("selection") or {}).get("metric", "frame")
    best = next((e for e in record.get("epochs", []) if e.get("epoch") == record.get("best_epoch")), None)
    return (None if best is None else best["validation"][SELECTION_KEYS[metric]]), metric


def gradient_shares(run: Path) -> dict[str, float] | None:
    """Each objective term's share of the weighted gradient at H, averaged over the epochs up to the selected one
    (the epochs that shaped the kept model); None when the run recorded no diagnostics."""
    record = json.loads((run / "run.json").read_text())
    epochs = [e["diagnostics"]["grad_share"] for e in record.get("epochs", [])
              if e.get("diagnostics") and e.get("epoch", 0) <= record.get("best_epoch", 0)]
    if not epochs:
        return None
    return {name: float(sum(e.get(name, 0.0) for e in epochs) / len(epochs)) for name in epochs[0]}


def score(task: Task, teachers: dict[str, Path], grid: Grid) -> list[dict[str, Any]]:
    """Test-subset records of a finished task by the grid's metric: a student's own score; for the vanilla stream,
    per teacher, the vanilla, teacher and two-stream (averaged logits) rows. Each stream's record also carries
    its ``validation`` mAP (the split settings are chosen on; two-stream has none)."""
    from augrgb.evaluate.checkpoints import evaluate_streams

    if task.kind == "teacher":
        return []
    records = []
    names = [task.teacher] if task.kind == "student" else list(teachers)
    for teacher in names:
        result = evaluate_streams(task.out / "best.pt", [teachers[teacher] / "best.pt"], grid.features,
                                  grid.annotations, metric=grid.metric, tiou=grid.tiou)
        rows = {row["stream"]: row for row in result["rows"]}
        (own, selected), metric = best_validation(task.out), grid.metric_name
        if task.kind == "student":
            records.append(_record(task, task.variant.group, task.variant.name, rows["RGB"], metric, validation=own,
                                   validation_metric=selected, grad_share=gradient_shares(task.out)))
        else:
            one = Task(task.kind, task.filter, task.seed, task.out, None, teacher=teacher)
            teacher_val, teacher_selected = best_validation(teachers[teacher])
            records += [_record(one, "main", "vanilla", rows["RGB"], metric, validation=own,
                                validation_metric=selected),
                        _record(one, "main", "teacher", rows["teacher"], metric, teacher_run=str(teachers[teacher]),
                                validation=teacher_val, validation_metric=teacher_selected),
                        _record(one, "main", "two-stream", rows["two-stream"], metric, validation=None)]
    return records


def execute(task: Task, teachers: dict[str, Path], grid: Grid) -> list[dict[str, Any]] | str:
    """Train then score one task (runs in a worker process); a failure comes back as its one-line reason
    (not raised: the project's exceptions do not all survive pickling back to the parent)."""
    try:
        train(task)
        return score(task, teachers, grid)
    except Exception as exc:  # one failing run must not stop the grid
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _check_record(record: Any, where: str) -> None:
    """A results record has a string group and name, an integer seed and a numeric score."""
    if not isinstance(record, dict):
        raise InputError(where, f"not a JSON object but {type(record).__name__}")
    for key, kinds, what in (("group", str, "a string"), ("name", str, "a string"), ("seed", int, "an integer"),
                             ("score", (int, float), "a number")):
        if key not in record:
            raise InputError(where, f"no '{key}' field")
        if not isinstance(record[key], kinds) or isinstance(record[key], bool):
            raise InputError(where, f"'{key}' is {record[key]!r}, expected {what}")


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Records of a results file, one JSON object a line (missing file: none); a malformed line is an
    :class:`InputError` naming ``file:line``, except a torn last line (no newline: an interrupted append),
    which is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    records = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                break  # torn by a kill mid-append; the task is not recorded and runs again
            raise InputError(where, f"not valid JSON ({exc.msg}, column {exc.colno})") from None
        _check_record(record, where)
        records.append(record)
    return records


def cut_torn_tail(path: Path) -> bool:
    """Cut a last line that lacks its newline (an append a kill interrupted) off ``path``; True if one was cut."""
    if not path.is_file():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with path.open("r+b") as handle:
        handle.truncate(data.rfind(b"\n") + 1)
        os.fsync(handle.fileno())
    return True


def append_records(sink: Any, records: list[dict[str, Any]]) -> None:
    """Append ``records`` to the open results file in one write, durable before the next task is recorded."""
    sink.write("".join(json.dumps(record) + "\n" for record in records))
    sink.flush()
    os.fsync(sink.fileno())


def run_grid(grid: Grid, out: str | Path, *, jobs: int = 2, progress: bool = True,
             report: Callable[[str], None] = print) -> Path:
    """Run every task of ``grid`` not yet in ``OUT/results.jsonl``; returns that file.

    A failing task is reported in one line and its dependants are skipped; the others go on.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, "experiment folder"):
        return _run_grid(grid, out, jobs, progress, report)


def _run_grid(grid: Grid, out: Path, jobs: int, progress: bool, report: Callable[[str], None]) -> Path:
    results = out / RESULTS
    if cut_torn_tail(results):
        report(f"{results}: removed a torn last line (an interrupted append); its task runs again")
    done = {(r["run"], r["teacher"]) for r in read_results(results)}
    tasks = plan(grid, out)
    teachers_of = {(t.filter, t.seed): {} for t in tasks}
    for t in tasks:
        if t.kind == "teacher":
            teachers_of[(t.filter, t.seed)][t.teacher] = t.out
    def recorded(t: Task) -> bool:
        """A teacher is done when trained; a student when recorded; the vanilla stream when recorded
        against every teacher (a grid may gain a teacher later)."""
        if t.kind == "teacher":
            return finished(t.out)
        teachers = [t.teacher] if t.kind == "student" else list(teachers_of[(t.filter, t.seed)])
        return all((t.key, name) in done for name in teachers)

    todo = [t for t in tasks if not recorded(t)]
    ready = {t.key for t in tasks if t.kind == "teacher" and finished(t.out)}
    failed: set[str] = set()
    bar = tqdm(total=len(todo), desc="experiment runs", unit="run", disable=not progress)
    running: dict[Future, Task] = {}

    def needs(t: Task) -> set[str]:
        """Teacher runs ``t`` waits for: a student its own, the vanilla stream all of its filter and seed."""
        teachers = teachers_of[(t.filter, t.seed)]
        if t.kind == "teacher":
            return set()
        return {str(teachers[t.teacher])} if t.kind == "student" else {str(p) for p in teachers.values()}

    with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread) as pool, results.open("a") as sink:
        while todo or running:
            for t in list(todo):
                deps = needs(t)
                if deps and deps <= failed:
                    report(f"{t.out}: skipped, its teacher {sorted(deps)[0]} failed")
                    todo.remove(t)
                    bar.update()
                elif deps <= ready | failed and len(running) < jobs:
                    # the vanilla stream is scored against the teachers that trained
                    usable = {k: p for k, p in teachers_of[(t.filter, t.seed)].items()
                              if str(p) in ready and (t.key, k) not in done}
                    running[pool.submit(execute, t, usable, grid)] = t
                    todo.remove(t)
            if not running:
                if todo:  # nothing can start: a dependency is missing (should not happen; say so rather than spin)
                    report(f"{len(todo)} run(s) could not start: their teachers are neither trained nor planned")
                    break
                continue
            finished_now, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished_now:
                t = running.pop(future)
                bar.update()
                records = future.result()
                if isinstance(records, str):
                    failed.add(t.key)
                    report(f"{t.out}: failed: {records}")
                    continue
                ready.add(t.key)
                append_records(sink, records)
    bar.close()
    if failed:
        print(f"{len(failed)} run(s) failed; rerun the same command to retry them", file=sys.stderr)
    return results
