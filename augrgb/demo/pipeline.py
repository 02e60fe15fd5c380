"""The whole pipeline on a generated benchmark, as resumable steps (see ``docs/demo.md``): weights, benchmark,
RGB / (optional) flow / pose features, teachers, students, evaluation, detection, figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from augrgb.core.config import load_config
from augrgb.core.errors import InputError
from augrgb.demo.figures import write_figures
from augrgb.demo.results import add_gap_closed, markdown_table, mean_over_seeds, table_rows, write_results
from augrgb.demo.settings import DemoSettings
from augrgb.demo.steps import DemoRecord, Step, run_steps
from augrgb.extract.settings import ExtractConfig

if TYPE_CHECKING:
    from augrgb.distill.settings import RunConfig
    from augrgb.distill.trainer import RunResult

RunConfigT = TypeVar("RunConfigT", bound="RunConfig")

FINISHED = ("finished", "early-stopped")  # run.json statuses of a completed training run
DATASETS = {"dense": "synth", "sparse": "synth_sparse"}
WORKERS = 2
"""Parallel processes of the benchmark generator and the extractors, one torch thread each (training runs in
this process on one thread): two OpenMP threads on two busy cores stall on small tensors (one AGCN training
step of the small size took 16 s with two threads and 1.9 s with one, measured while other jobs ran)."""
LAYOUT = """\
{out}/
  results.md, results.json   the table (also printed above)
  figures.md                 every figure of the run on one page
  figures/                   t-SNE, relation matrices, boundary saliency (augrgb plot ...)
  bench/                     the generated benchmark: videos/*.mp4, skeletons/*.npy, annotations.json, classes.txt
  features/                  feature store: one HDF5 per video with rgb, skeleton, pose (flow with --flow), manifest.json
  models/pose_encoder.pt     the AGCN pose encoder trained on the benchmark's skeletons
  runs/seed<S>/<run>/        best.pt, last.pt, run.json, config.yaml of pose_teacher, student_vanilla,
                             student_pose (and flow_teacher, student_flow with --flow), per training seed
  detect/                    detections.json/.csv, txt/, probabilities/, plots/*.png (RGB-only detector)
  demo.json                  the settings and finished steps (a rerun resumes)"""


@dataclass
class DemoRun:
    """One demo output folder and how to fill it."""

    out: Path
    settings: DemoSettings
    cache: str | None = None
    progress: bool = True

    @property
    def bench(self) -> Path:
        return self.out / "bench"

    @property
    def features(self) -> Path:
        return self.out / "features"

    @property
    def annotations(self) -> Path:
        return self.bench / "annotations.json"

    @property
    def encoder(self) -> Path:
        return self.out / "models" / "pose_encoder.pt"

    def run_dir(self, name: str, seed: int) -> Path:
        return self.out / "runs" / f"seed{seed}" / name

    def best(self, name: str, seed: int | None = None) -> str:
        """``best.pt`` of run ``name`` trained with ``seed`` (default: the first training seed)."""
        return str(self.run_dir(name, self.settings.seeds[0] if seed is None else seed) / "best.pt")

    def extract_config(self, precision: str = "fp32") -> ExtractConfig:
        """The snippet grid and crop of every feature: the benchmark's 25 fps, 16-frame snippets, frames resized
        to the size's I3D input, :data:`WORKERS` videos at a time."""
        size = self.settings.size.input_size
        return ExtractConfig(crop="resize", size=size, short_side=size, precision=precision, workers=WORKERS)

    # ------------------------------------------------------------------ steps
    def steps(self) -> list[Step]:
        teachers, seeds = ", ".join(self.settings.teachers), len(self.settings.seeds)
        per_seed = f" x {seeds} seeds" if seeds > 1 else ""
        flow = [Step("flow", f"flow features ({'DIS' if self.settings.flow == 'dis' else 'TV-L1'})",
                     self.flow_features)] if self.settings.flow else []
        return [
            Step("weights", "I3D RGB weights (Kinetics-400)", self.weights),
            Step("benchmark", f"benchmark ({self.settings.mode})", self.benchmark),
            Step("rgb", "RGB features (I3D)", self.rgb_features),
            *flow,
            Step("pose", "pose features (skeletons, AGCN encoder)", self.pose_features),
            Step("teachers", f"teachers ({teachers}){per_seed}", self.teachers),
            Step("students", f"students (vanilla RGB, Augmented-RGB from each teacher){per_seed}", self.students),
            Step("evaluation", "evaluation on the held-out videos", self.evaluation),
            Step("detect", "detection from raw video (RGB only)", self.detect),
            Step("figures", "figures", self.figures),
        ]

    def weights(self) -> str:
        from augrgb.extract.weights import fetch, weights_path

        path = weights_path("i3d-rgb", self.cache)
        if path.is_file():
            return f"found {path}"
        path, sha = fetch("i3d-rgb", cache=self.cache)
        return f"fetched {path} (sha256 {sha[:16]}...)"

    def benchmark(self) -> str:
        from augrgb.synth.generator import generate

        size = self.settings.size
        generate(self.bench, size.videos, size.seconds, self.settings.mode, size.frame_size, self.settings.seed,
                 workers=WORKERS, progress=self.progress)
        subsets = [v["subset"] for v in json.loads(self.annotations.read_text()).values()]
        return (f"{len(subsets)} videos of {size.seconds:g} s at {size.frame_size} px "
                f"({subsets.count('testing')} held out for testing) in {self.bench}")

    def _extract(self, modality: str, cfg: ExtractConfig, **options: Any) -> str:
        from augrgb.extract.pipeline import extract

        results = extract([self.bench / "videos"], self.features, cfg, modality=modality,
                          cache=self.cache, progress=self.progress, **options)
        return _batch_summary(results, self.features)

    def rgb_features(self) -> str:
        """I3D at the precision ``auto`` picks for this CPU (bf16 runs the 224 px I3D about twice as fast as fp32 on
        AVX-512-BF16 and AMX CPUs; ``extract`` prints the choice and records it in the store)."""
        return self._extract("rgb", self.extract_config("auto")) + f"; I3D at {self.settings.size.input_size} px"

    def flow_features(self) -> str:
        return self._extract("flow", self.extract_config(), flow_method=self.settings.flow)

    def pose_features(self) -> str:
        from augrgb.extract.pose_encoder_store import train_from_store
        from augrgb.extract.pose_pipeline import extract_poses

        cfg, size = self.extract_config(), self.settings.size
        _batch_summary(extract_poses([self.bench / "skeletons"], self.features, cfg, progress=self.progress),
                       self.features)
        if not self.encoder.is_file():
            train_from_store(self.features, self.annotations, self.encoder, widths=size.encoder_widths,
                             epochs=size.encoder_epochs, seed=self.settings.seed, progress=self.progress)
        return _batch_summary(extract_poses([self.bench / "skeletons"], self.features, cfg, encoder=str(self.encoder),
                                            progress=self.progress), self.features) + f"; encoder {self.encoder}"

    def run_config(self, model: type[RunConfigT], preset: str, name: str, seed: int, **overrides: Any) -> RunConfigT:
        """A training config: the experiment preset with this demo's data, output, training seed and epochs."""
        values = {"dataset": DATASETS[self.settings.mode], "features": str(self.features),
                  "annotations": [str(self.annotations)], "out": str(self.run_dir(name, seed)), "seed": seed,
                  "training.epochs": self.settings.size.epochs, **overrides}
        return load_config(model, preset, sets=values, note="with the demo's settings")

    def _train(self, name: str, train: Callable[..., RunResult], cfg: RunConfig) -> str:
        """Run ``train`` unless ``name`` finished; continue it from ``last.pt`` when it was interrupted."""
        out = Path(cfg.out)
        record = out / "run.json"
        if (out / "best.pt").is_file() and record.is_file() and json.loads(record.read_text()).get("status") in FINISHED:
            return f"{name}: finished earlier"
        started = time.perf_counter()
        result = train(cfg, resume=(out / "last.pt").is_file(), progress=self.progress)
        return (f"{name}: best epoch {result.best_epoch}, validation mAP "
                f"{result.best_validation.get('mAP', float('nan')):.3f} ({time.perf_counter() - started:.0f} s)")

    def teachers(self) -> str:
        from augrgb.distill.settings import TeacherConfig
        from augrgb.distill.train import train_teacher

        lines = []
        for seed in self.settings.seeds:
            for modality in self.settings.teachers:
                cfg = self.run_config(TeacherConfig, f"experiments/synth_{modality}_teacher", f"{modality}_teacher",
                                      seed)
                lines.append(self._train(f"{modality} teacher{self._seed_note(seed)}", train_teacher, cfg))
        return "; ".join(lines)

    def _seed_note(self, seed: int) -> str:
        return f" (seed {seed})" if len(self.settings.seeds) > 1 else ""

    def students(self) -> str:
        from augrgb.distill.settings import StudentConfig
        from augrgb.distill.train import train_student

        lines = []
        for seed in self.settings.seeds:
            vanilla = self.run_config(StudentConfig, "experiments/synth_student_vanilla", "student_vanilla", seed)
            lines.append(self._train(f"vanilla RGB{self._seed_note(seed)}", train_student, vanilla))
            for modality in self.settings.teachers:
                teacher = self.best(f"{modality}_teacher", seed)
                cfg = self.run_config(StudentConfig, "experiments/synth_student_ours", f"student_{modality}", seed,
                                      teachers=[teacher])
                lines.append(self._train(f"Augmented-RGB ({modality}){self._seed_note(seed)}", train_student, cfg))
        return "; ".join(lines)

    def evaluation(self) -> str:
        from augrgb.evaluate.checkpoints import evaluate_checkpoints

        teachers, per_seed = self.settings.teachers, []
        for seed in self.settings.seeds:
            rows = table_rows({m: self.best(f"{m}_teacher", seed) for m in teachers}, self.best("student_vanilla", seed),
                              {m: self.best(f"student_{m}", seed) for m in teachers})
            per_seed.append(evaluate_checkpoints(rows, self.features, self.annotations, fmt="dense-json",
                                                 subset="testing", tiou=(0.1, 0.5), device="cpu"))
        result = per_seed[0] if len(per_seed) == 1 else mean_over_seeds(per_seed, self.settings.seeds)
        settings, size = self.settings, self.settings.size
        flow = f"{settings.flow.upper()} flow teacher" if settings.flow else "pose teacher only (--flow dis adds a flow teacher)"
        seeds = (f"training seed {settings.seeds[0]}" if len(settings.seeds) == 1
                 else f"mean ± std over training seeds {','.join(map(str, settings.seeds))}")
        heading = (f"# augrgb demo: {settings.mode} benchmark, size {settings.size_name} ({size.videos} videos "
                   f"of {size.seconds:g} s, {size.frame_size} px, I3D at {size.input_size} px, seed {settings.seed}), "
                   f"{flow}, {seeds}")
        json_path, md_path = write_results(self.out, add_gap_closed(result), heading)
        return f"{md_path}, {json_path}"

    def test_videos(self) -> list[Path]:
        annotations = json.loads(self.annotations.read_text())
        return [self.bench / "videos" / f"{vid}.mp4" for vid, v in annotations.items() if v["subset"] == "testing"]

    def detect(self) -> str:
        from augrgb.detect.pipeline import detect
        from augrgb.extract.weights import weights_path

        out = self.out / "detect"
        results = detect(self.test_videos(), self.best("student_pose"), out, plot=True, annotations=self.annotations,
                         weights=str(weights_path("i3d-rgb", self.cache)), cache=self.cache, progress=self.progress)
        failed = [r for r in results if r.status == "failed"]
        if failed:
            raise InputError(out / "failed.txt", f"{len(failed)} of {len(results)} videos failed; rerun to retry")
        count = sum(r.detections for r in results)
        return (f"Augmented-RGB (pose) on {len(results)} held-out videos: {count} intervals in {out}/detections.json "
                f"(.csv, txt/), timelines in {out}/plots/")

    def figures(self) -> str:
        runs = {name: Path(self.best(name)) for name in ("student_vanilla", "student_pose", "pose_teacher")}
        figures = write_figures(self.out, self.out / "detect", features=self.features, annotations=self.annotations,
                                runs=runs, video=self.test_videos()[0].stem)
        return f"{len(figures)} figures listed in {self.out / 'figures.md'}"


def _batch_summary(results: list, store: Path) -> str:
    """``N done, M already there``; failed inputs (already reported one per line) stop the demo."""
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise InputError(store / "manifest.json", f"{len(failed)} of {len(results)} inputs failed "
                                                  f"(first: {failed[0].source}: {failed[0].reason}); rerun to retry")
    done = sum(r.status == "done" for r in results)
    return f"{done} extracted, {len(results) - done} already there"


def run_demo(out: str | Path, settings: DemoSettings, *, cache: str | None = None, progress: bool = True) -> dict[str, str]:
    """Run (or resume) every step into ``out``, then print the table, the folder layout and the wall time.

    Returns step key -> ``ran``/``skipped``. Other settings in an existing demo folder are refused.
    """
    import torch

    started = time.perf_counter()
    out = Path(out)
    record = DemoRecord(out, settings)
    run = DemoRun(out, settings, cache, progress)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see WORKERS: the networks trained and run in this process are small
    try:
        outcome = run_steps(run.steps(), record)
    finally:
        torch.set_num_threads(threads)
    result = json.loads((out / "results.json").read_text())
    print()
    print(markdown_table(result))
    print(f"{result['metric']} on {result['videos']} held-out videos; more in {out / 'results.md'}")
    print()
    print(LAYOUT.format(out=out))
    print()
    total = sum(record.finished.values())
    print(f"wall time: {time.perf_counter() - started:.0f} s this run; {total:.0f} s over all steps")
    return outcome
