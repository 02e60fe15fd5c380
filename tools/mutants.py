"""Plant small model bugs one at a time in a copy of the repository and check that the tests catch each.

Each mutant replaces one exact snippet of source (it must occur exactly once) in a temporary copy of
the tree and runs the test files that cover that module against the copy, one file at a time
(``-m "not slow" -x``, each in a fork of an interpreter that has torch and the other heavy
dependencies already imported): it is *killed* when a file fails, *survived* when they all pass.
Every file must pass alone on the unmutated copy first, so a kill is the mutant's doing. The bug kinds are those of issue 20 (L_atomic,
temporal filters, classification loss) plus the analogues for the L_atomic options and the L_cls
reduction of issue 14, and a few for L_global / L_boundary and interval decoding.

Usage (from the repository root)::

    python tools/mutants.py                      # every mutant against this tree's tests
    python tools/mutants.py --source DIR         # against another tree (e.g. an older commit's export)
    python tools/mutants.py --only atomic-        # mutants whose id starts with a prefix
    python tools/mutants.py --markdown out.md     # also write the table

Run it under ``nice -n 15 env OMP_NUM_THREADS=1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ATOMIC = "augrgb/distill/losses/atomic.py"
HEADS = "augrgb/models/heads.py"
SS_TCN = "augrgb/models/filters/ss_tcn.py"
PDAN = "augrgb/models/filters/pdan.py"
TGM = "augrgb/models/filters/tgm.py"
SEQUENCE = "augrgb/distill/losses/sequence.py"
INTERVALS = "augrgb/detect/intervals.py"
GRID = "augrgb/core/grid.py"

OBJECTIVE_TESTS = ("tests/test_known_answers_atomic.py", "tests/test_objective.py", "tests/test_distill_losses.py")
CLS_TESTS = ("tests/test_known_answers_atomic.py", "tests/test_objective.py", "tests/test_distill_models.py")
FILTER_TESTS = ("tests/test_known_answers_filters.py", "tests/test_distill_models.py")
SEQUENCE_TESTS = ("tests/test_distill_losses.py",)
INTERVAL_TESTS = ("tests/test_detect_intervals.py",)
_VIDEO_MEAN = '__import__("augrgb.models.masks", fromlist=["x"]).video_mean'  # per-video mean, without an import edit


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` by ``new`` in ``path``; ``tests`` are the files run against it."""

    id: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS: tuple[Mutant, ...] = (
    # ---- L_atomic (issue 20's four)
    Mutant("atomic-student-negatives", "negatives taken from the student instead of the teacher", ATOMIC,
           "return info_nce(z_s, z_t, z_t, negatives", "return info_nce(z_s, z_t, z_s, negatives", OBJECTIVE_TESTS),
    Mutant("atomic-wrong-positive", "positive paired with the wrong snippet", ATOMIC,
           "return info_nce(z_s, z_t, z_t, negatives", "return info_nce(z_s, z_t.roll(1, 0), z_t, negatives",
           OBJECTIVE_TESTS),
    Mutant("atomic-teacher-unnormalised", "teacher features not L2-normalised", ATOMIC,
           "z_t = F.normalize(self.teacher_head(valid_snippets(teacher.features, mask)), dim=-1)",
           "z_t = self.teacher_head(valid_snippets(teacher.features, mask))", OBJECTIVE_TESTS),
    Mutant("atomic-student-unnormalised", "student features not L2-normalised", ATOMIC,
           "z_s = F.normalize(self.student_head(valid_snippets(student.features, mask)), dim=-1)",
           "z_s = self.student_head(valid_snippets(student.features, mask))", OBJECTIVE_TESTS),
    Mutant("atomic-temperature-ignored", "temperature ignored", ATOMIC,
           "logits = torch.cat([positive, negative], dim=1) / temperature",
           "logits = torch.cat([positive, negative], dim=1)", OBJECTIVE_TESTS),
    Mutant("atomic-temperature-multiplied", "logits multiplied by the temperature", ATOMIC,
           "logits = torch.cat([positive, negative], dim=1) / temperature",
           "logits = torch.cat([positive, negative], dim=1) * temperature", OBJECTIVE_TESTS),
    Mutant("atomic-skipped-anchors-count", "anchors without a negative still averaged in", ATOMIC,
           "return masked_mean(-torch.log_softmax(logits, dim=1)[:, 0], valid.float())",
           "return masked_mean(-torch.log_softmax(logits, dim=1)[:, 0], torch.ones_like(valid.float()))",
           OBJECTIVE_TESTS),
    # ---- L_atomic options (issue 14)
    Mutant("atomic-head-none-is-linear", "student_head none builds a linear layer", ATOMIC,
           "        return nn.Identity()\n", "        return nn.Linear(in_dim, out_dim)\n", OBJECTIVE_TESTS),
    Mutant("atomic-head-linear-is-mlp", "linear head built as an MLP", ATOMIC,
           "    if kind == \"linear\":\n        return nn.Linear(in_dim, out_dim)",
           "    if kind == \"linear\":\n        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(), "
           "nn.Linear(in_dim, out_dim))", OBJECTIVE_TESTS),
    Mutant("atomic-mlp-without-relu", "MLP head without its non-linearity", ATOMIC,
           "nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))",
           "nn.Sequential(nn.Linear(in_dim, in_dim), nn.Identity(), nn.Linear(in_dim, out_dim))", OBJECTIVE_TESTS),
    Mutant("atomic-embedding-dim", "a side without a head projected to projection_dim anyway", ATOMIC,
           "    return student_dim if student_head == \"none\" else projection_dim",
           "    return projection_dim", OBJECTIVE_TESTS),
    Mutant("atomic-teacher-head-always-trainable", "teacher_head_trainable ignored", ATOMIC,
           ".requires_grad_(teacher_head_trainable)", ".requires_grad_(True)", OBJECTIVE_TESTS),
    Mutant("atomic-teacher-head-is-student-head", "teacher embedded by the student head", ATOMIC,
           "z_t = F.normalize(self.teacher_head(", "z_t = F.normalize(self.student_head(", OBJECTIVE_TESTS),
    Mutant("atomic-pool-same-video-swapped", "same-video pool takes other videos", ATOMIC,
           "    if pool == \"same-video\":\n        allowed &= videos[rows, None] == videos[None, :]",
           "    if pool == \"same-video\":\n        allowed &= videos[rows, None] != videos[None, :]", OBJECTIVE_TESTS),
    Mutant("atomic-same-video-sampler-one-group", "same-video sampler treats the batch as one video", ATOMIC,
           "for count in torch.unique_consecutive(videos[order], return_counts=True)[1].tolist():",
           "for count in [len(order)]:", OBJECTIVE_TESTS),
    Mutant("atomic-pool-other-videos-keeps-own", "other-videos pool keeps the anchor's own video", ATOMIC,
           "    elif pool == \"other-videos\":\n        allowed &= videos[rows, None] != videos[None, :]",
           "    elif pool == \"other-videos\":\n        allowed &= videos[rows, None] == videos[rows, None]",
           OBJECTIVE_TESTS),
    Mutant("atomic-pool-option-dropped", "the loss ignores negative_pool", ATOMIC,
           "self.negative_pool, self.label_disjoint)", "\"any\", self.label_disjoint)", OBJECTIVE_TESTS),
    Mutant("atomic-label-disjoint-ignored", "label_disjoint ignored by the sampler", ATOMIC,
           "    if label_disjoint:\n        allowed &=", "    if False:\n        allowed &=", OBJECTIVE_TESTS),
    Mutant("atomic-label-disjoint-dropped", "the loss ignores label_disjoint", ATOMIC,
           "self.negative_pool, self.label_disjoint)", "self.negative_pool, False)", OBJECTIVE_TESTS),
    Mutant("atomic-same-label-negatives", "snippets of the same label set admitted as negatives", ATOMIC,
           "allowed = groups[rows, None] != groups[None, :]", "allowed = groups[rows, None] == groups[rows, None]",
           OBJECTIVE_TESTS),
    Mutant("atomic-sampler-not-uniform", "sampler always takes the first admissible negative", ATOMIC,
           "indices[rows] = torch.multinomial(weights, n, replacement=True, generator=generator)",
           "indices[rows] = weights.argmax(1, keepdim=True).expand(-1, n)", OBJECTIVE_TESTS),
    Mutant("atomic-default-pool", "default negative pool is any video", ATOMIC,
           "negative_pool: str = \"same-video\", label_disjoint", "negative_pool: str = \"any\", label_disjoint",
           OBJECTIVE_TESTS),
    Mutant("atomic-default-temperature", "default temperature 0.07", ATOMIC,
           "temperature: float = 0.5,", "temperature: float = 0.07,", OBJECTIVE_TESTS),
    Mutant("atomic-default-heads", "default heads MLP on both sides", ATOMIC,
           "student_head: str = \"linear\", teacher_head: str = \"none\",",
           "student_head: str = \"mlp\", teacher_head: str = \"mlp\",", OBJECTIVE_TESTS),
    Mutant("atomic-multihot-threshold", "multi-hot labels read as any positive value", ATOMIC,
           "return labels > 0.5", "return labels > 0", OBJECTIVE_TESTS),
    # ---- L_cls
    Mutant("cls-sum-is-mean", "sum-classes averages over classes", HEADS,
           "return masked_mean(per_entry.sum(1), mask[:, 0])", "return masked_mean(per_entry.mean(1), mask[:, 0])",
           CLS_TESTS),
    Mutant("cls-mean-is-sum", "mean-classes sums over classes", HEADS,
           "return masked_mean(per_entry, mask)", "return masked_mean(per_entry.sum(1), mask[:, 0])", CLS_TESTS),
    Mutant("cls-sigmoid-per-video", "sigmoid batch averaged per video", HEADS,
           "return masked_mean(per_entry.sum(1), mask[:, 0])", f"return {_VIDEO_MEAN}(per_entry.sum(1), mask[:, 0])",
           CLS_TESTS),
    Mutant("cls-softmax-per-video", "softmax batch averaged per video instead of per snippet", HEADS,
           "return masked_mean(per_snippet, mask[:, 0])", f"return {_VIDEO_MEAN}(per_snippet, mask[:, 0])", CLS_TESTS),
    Mutant("cls-padding-counted", "padded snippets counted in the mean", HEADS,
           "return masked_mean(per_entry.sum(1), mask[:, 0])",
           "return per_entry.sum(1).mean()", CLS_TESTS),
    Mutant("cls-default-mean-classes", "default reduction is mean-classes", HEADS,
           "reduction: str = \"sum-classes\") -> Tensor:", "reduction: str = \"mean-classes\") -> Tensor:", CLS_TESTS),
    # ---- temporal filters
    Mutant("sstcn-dilation-1", "SS-TCN with every dilation 1", SS_TCN,
           "DilatedResidualLayer(2 ** i, hidden, dropout)", "DilatedResidualLayer(1, hidden, dropout)", FILTER_TESTS),
    Mutant("sstcn-dilation-off-by-one", "SS-TCN dilations 2, 4, 8, ...", SS_TCN,
           "DilatedResidualLayer(2 ** i, hidden, dropout)", "DilatedResidualLayer(2 ** (i + 1), hidden, dropout)",
           FILTER_TESTS),
    Mutant("sstcn-no-residual", "SS-TCN layer without its residual", SS_TCN,
           "return (x + out) * mask", "return out * mask", FILTER_TESTS),
    Mutant("pdan-padding-in-softmax", "PDAN lets padded or outside positions into its softmax", PDAN,
           ".masked_fill(~allowed, float(\"-inf\"))", "", FILTER_TESTS),
    Mutant("pdan-no-relative-position", "PDAN without its relative-position term", PDAN,
           "values = _window(self.value(x), self.dilation) + self.relative_position",
           "values = _window(self.value(x), self.dilation)", FILTER_TESTS),
    Mutant("pdan-keys-as-values", "PDAN uses the keys as values (no value projection)", PDAN,
           "values = _window(self.value(x), self.dilation)", "values = _window(self.key(x), self.dilation)",
           FILTER_TESTS),
    Mutant("pdan-dilation-1", "PDAN with every dilation 1", PDAN,
           "PDANBlock(2 ** i, hidden, dropout)", "PDANBlock(1, hidden, dropout)", FILTER_TESTS),
    Mutant("pdan-softmax-over-channels", "PDAN softmax over channels instead of window positions", PDAN,
           "weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores.clamp(min=-1e4), dim=1)",
           FILTER_TESTS),
    Mutant("tgm-mean-over-channels", "TGM averages instead of taking the max over channels", TGM,
           "sub_events = sub_events.max(dim=1).values", "sub_events = sub_events.mean(dim=1)", FILTER_TESTS),
    Mutant("tgm-sum-over-channels", "TGM sums over channels", TGM,
           "sub_events = sub_events.max(dim=1).values", "sub_events = sub_events.sum(dim=1)", FILTER_TESTS),
    # ---- L_global / L_boundary
    Mutant("global-not-centred", "relation matrix without centring", SEQUENCE,
           "h = h - h.mean(dim=1, keepdim=True)", "h = h", SEQUENCE_TESTS),
    Mutant("boundary-not-normalised", "saliency not divided by its maximum", SEQUENCE,
           "return saliency / (saliency.amax(dim=1, keepdim=True) + SALIENCY_EPS), valid",
           "return saliency, valid", SEQUENCE_TESTS),
    # ---- interval decoding
    Mutant("intervals-end-not-clipped", "interval end not clipped at the last frame", GRID,
           "(end if self.frames is None else min(end, self.frames)) / self.fps",
           "end / self.fps", INTERVAL_TESTS),
    Mutant("intervals-threshold-strict", "dense threshold compared strictly", INTERVALS,
           "for first, last in runs(p >= threshold):", "for first, last in runs(p > threshold):", INTERVAL_TESTS),
    Mutant("intervals-gap-strict", "gap closing excludes a gap of exactly close_gap", INTERVALS,
           "<= close_gap + _EPS:", "< close_gap - _EPS:", INTERVAL_TESTS),
    Mutant("intervals-run-off-by-one", "runs end one snippet late", INTERVALS,
           "return [(int(a), int(b) - 1) for a, b", "return [(int(a), int(b)) for a, b", INTERVAL_TESTS),
)

_IGNORE = shutil.ignore_patterns(".git", ".venv*", "__pycache__", ".pytest_cache", ".hypothesis", "runs", "*.pyc")


def copy_tree(source: Path, dest: Path) -> None:
    """Copy the repository at ``source`` (without VCS, venvs and caches) to ``dest``."""
    shutil.copytree(source, dest, ignore=_IGNORE)


def apply(tree: Path, mutant: Mutant) -> str | None:
    """Plant ``mutant`` in ``tree``; returns the original text of the file (to restore it), or None when the code it
    changes is not in this tree (an older commit)."""
    path = tree / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count == 0:
        return None
    if count != 1:
        raise SystemExit(f"{mutant.id}: the snippet to replace occurs {count} times in {mutant.path}")
    path.write_text(text.replace(mutant.old, mutant.new))
    return text


PRELOAD = ("torch", "numpy", "scipy", "sklearn", "h5py", "yaml", "pydantic", "matplotlib", "hypothesis", "pytest")
"""Heavy third-party modules imported once in the parent: each test run is a fork that inherits them, so a run
costs the project's own imports and the tests, not a fresh torch import (minutes on a loaded machine)."""


def preload() -> None:
    """Import :data:`PRELOAD` (those installed) before any fork; the project itself is never imported here."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _pytest_in_fork(tree: Path, args: list[str], timeout: float) -> int | None:
    """``pytest.main(args)`` in a forked child working in ``tree``; its exit code, or None after ``timeout`` s."""
    pid = os.fork()
    if pid == 0:  # child: the copy first on sys.path, output discarded, never returns
        rc = 70
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(tree)
            sys.path.insert(0, str(tree))
            sys.dont_write_bytecode = True
            import pytest

            rc = int(pytest.main(args))
            imported = getattr(sys.modules.get("augrgb"), "__file__", None)
            if imported and not Path(imported).resolve().is_relative_to(tree.resolve()):
                rc = 71  # the tests ran against an installed augrgb, not the mutated copy
        finally:
            os._exit(rc)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.2)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, str, float]:
    """Run the existing files of ``tests`` in ``tree`` one by one, in order, stopping at the first failure (a mutant
    is killed by any one file): (``killed``, ``survived`` or ``no-tests``; the file that failed; seconds)."""
    files = [t for t in tests if (tree / t).is_file()]
    start = time.monotonic()
    ran = False
    for file in files:
        rc = _pytest_in_fork(tree, ["-x", "-q", "-m", "not slow", "-p", "no:cacheprovider", file], timeout)
        if rc is None:
            return "killed (timeout)", file, time.monotonic() - start
        if rc == 71:
            raise SystemExit(f"the tests imported augrgb from outside the copy {tree}")
        if rc not in (0, 5):
            return "killed", file, time.monotonic() - start
        ran = ran or rc == 0
    return ("survived" if ran else "no-tests"), "", time.monotonic() - start


def check_imports_copy(tree: Path) -> None:
    """Fail unless ``import augrgb`` inside the copy resolves to the copy (not an installed tree)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", "import augrgb; print(augrgb.__file__)"], cwd=tree, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"augrgb imports from {out}, not from the copy {tree}")


def main(argv: list[str] | None = None) -> int:
    """Run the selected mutants and print (and optionally write) killed/survived per mutant."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=ROOT, help="repository tree to copy (default: this one)")
    parser.add_argument("--only", default="", help="run only mutants whose id starts with this prefix")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant before it counts as killed")
    parser.add_argument("--markdown", type=Path, help="write the result table here")
    args = parser.parse_args(argv)

    selected = [m for m in MUTANTS if m.id.startswith(args.only)]
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    preload()
    rows: list[tuple[Mutant, str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="augrgb-mutants-") as tmp:
        tree = Path(tmp) / "repo"
        copy_tree(args.source.resolve(), tree)
        check_imports_copy(tree)
        for file in sorted({t for m in selected for t in m.tests}):  # each file alone passes on the unmutated tree
            outcome, _, seconds = run_tests(tree, (file,), args.timeout)
            print(f"unmutated: {file}: {'passes' if outcome == 'survived' else outcome} ({seconds:.0f} s)", flush=True)
            if outcome.startswith("killed"):
                raise SystemExit(f"{file} fails on the unmutated tree: nothing to measure")
        for mutant in selected:
            original = apply(tree, mutant)
            if original is None:
                rows.append((mutant, "n/a (code absent)", "", 0.0))
                print(f"{'n/a':>16}  {mutant.id:<40}  the code it changes is not in this tree", flush=True)
                continue
            try:
                outcome, killer, seconds = run_tests(tree, mutant.tests, args.timeout)
            finally:
                (tree / mutant.path).write_text(original)
            rows.append((mutant, outcome, killer, seconds))
            print(f"{outcome:>16}  {mutant.id:<40} {seconds:5.0f} s  {mutant.what}  {killer}", flush=True)
    killed = sum(outcome.startswith("killed") for _, outcome, _, _ in rows)
    survived = sum(outcome == "survived" for _, outcome, _, _ in rows)
    print(f"\nkilled {killed} of {len(rows)}; survived {survived}")
    if args.markdown:
        lines = ["| mutant | bug | module | result | first failing file |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{m.id}` | {m.what} | `{m.path}` | {outcome} | {killer and f'`{killer}`'} |"
                  for m, outcome, killer, _ in rows]
        lines.append(f"\nkilled {killed} of {len(rows)}, survived {survived}")
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0 if survived == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
