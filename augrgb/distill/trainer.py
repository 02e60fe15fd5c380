"""The epoch loop shared by teachers and students: optimisation, AMP, DDP, an optional exponential moving
average of the weights, validation-based model selection, LR schedule, early stopping, per-epoch
checkpoints and exact resume.

A run is a list of training :class:`Phase` (one for most runs; CRD's two steps are two). The phase that
``selects`` drives the LR schedule, early stopping and ``best.pt`` (the epoch validation scores highest, or
the final one with ``training.keep: last``); earlier phases run all their
epochs (a phase's index and name are stored under the key ``stage`` in ``last.pt`` and the history,
the names existing run records use). ``last.pt`` (written after every epoch) holds the weights, optimiser, scheduler, scaler,
RNG states and history, so a resumed run continues with the same next-epoch loss. It also holds the
best checkpoint, and is written first: ``best.pt`` is written from it afterwards, and again on resume,
so a kill between the two writes loses no epoch and leaves nothing that resume cannot make consistent.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from augrgb.core.errors import InputError
from augrgb.core.files import save_atomic
from augrgb.distill import distributed
from augrgb.distill.data import Batch, ShardedBatchSampler, SnippetDataset, VideoItem
from augrgb.distill.distributed import DistContext
from augrgb.distill.losses import DistillationObjective, ObjectiveConfig
from augrgb.distill.records import RunRecord, ScalarLogger, peak_memory
from augrgb.distill.validation import SELECTION_KEYS, EventTarget, validation_metrics
from augrgb.models.checkpoint import STATE_FORMAT, StreamCheckpoint, load_safe
from augrgb.models.stream import Stream, StreamOutput

log = logging.getLogger(__name__)


@dataclass
class Phase:
    """Part of a schedule: an objective for ``epochs`` epochs; ``selects`` = model selection happens here."""

    name: str
    objective: ObjectiveConfig
    epochs: int
    selects: bool = True
    freeze_filter: bool = False


@dataclass
class Teacher:
    """A frozen stream, the modality it reads, and its checkpoint metadata."""

    stream: Stream
    modality: str
    meta: StreamCheckpoint


class TrainModule(nn.Module):
    """What DDP wraps: the stream being trained and the objective's own trainable heads."""

    def __init__(self, stream: Stream, objective: DistillationObjective) -> None:
        super().__init__()
        self.stream, self.objective = stream, objective

    def forward(self, features: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                teachers: Sequence[StreamOutput]) -> tuple[torch.Tensor, dict[str, torch.Tensor], StreamOutput]:
        student = self.stream(features, mask)
        total, parts = self.objective(student, teachers, mask, labels)
        return total, parts, student


@dataclass
class RunState:
    """Everything the loop carries between epochs (and saves in ``last.pt``)."""

    epoch: int = 0
    phase: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    monitor_best: float = -math.inf  # best score of the metric that paces the run (training.schedule)
    stale: int = 0  # epochs since monitor_best improved
    stopped: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0


@dataclass
class RunResult:
    """Where a finished run put its outputs and what it selected."""

    checkpoint: Path
    record: Path
    best_epoch: int
    best_validation: dict[str, float]
    history: list[dict[str, Any]]


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels."""
    import os
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 autocast on CUDA where supported, else fp16; None (no autocast) on CPU or when disabled."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Runs the phases of one run on ``train``/``val`` items; only rank 0 writes into ``out``. Validation also
    scores event mAP when ``events`` is given; ``selection`` (frame or event) says which mAP selects, ``schedule``
    (selection or frame) which one drives the LR schedule and early stopping."""

    def __init__(self, *, stream: Stream, modality: str, teachers: Sequence[Teacher], phases: Sequence[Phase],
                 head: str, num_classes: int, train_items: Sequence[VideoItem], val_items: Sequence[VideoItem],
                 training: Any, seed: int, amp: bool, ctx: DistContext, out: str | Path,
                 best_checkpoint: Callable[[Stream, dict[str, Any], np.ndarray, np.ndarray], dict[str, Any]],
                 record_header: dict[str, Any], fingerprint: dict[str, Any], events: EventTarget | None = None,
                 selection: str = "frame", schedule: str = "selection", progress: bool = False) -> None:
        self.stream, self.modality, self.teachers, self.phases = stream, modality, list(teachers), list(phases)
        self.head, self.num_classes, self.training, self.seed = head, num_classes, training, seed
        self.ctx, self.out, self.best_checkpoint, self.progress = ctx, Path(out), best_checkpoint, progress
        self.best: dict[str, Any] | None = None  # the best stream checkpoint so far (rank 0), saved in last.pt
        self.train_items, self.val_items = list(train_items), list(val_items)
        self.events, self.selection = events, selection
        self.schedule = selection if schedule == "selection" else schedule
        self.fingerprint = fingerprint
        self.dtype = amp_dtype(ctx.device, amp)
        modalities = list(dict.fromkeys([modality, *(t.modality for t in teachers)]))
        self.dataset = SnippetDataset(train_items, modalities, head, num_classes, training.max_length, seed)
        self.sampler = ShardedBatchSampler(len(train_items), training.batch_size, ctx.world_size, ctx.rank, seed)
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, collate_fn=self.dataset.collate,
                                 num_workers=training.workers, pin_memory=ctx.device.type == "cuda")
        for teacher in self.teachers:
            teacher.stream.to(ctx.device).eval().requires_grad_(False)
        self.diagnostic_batch = SnippetDataset(train_items, modalities, head, num_classes, training.max_length, seed)
        self.train_subset = self.train_items[:max(1, len(self.val_items))]
        self.record = RunRecord(self.out / "run.json", record_header) if ctx.is_main else None
        self.threads_before: list[int] = []  # torch thread counts of the epochs before a resume (last.pt)
        self.logger = ScalarLogger(self.out / "tensorboard") if ctx.is_main else None

    # ------------------------------------------------------------------ phase setup
    def _build(self, phase: Phase) -> None:
        self.stream.requires_grad_(True)
        if phase.freeze_filter:
            self.stream.filter.requires_grad_(False)
        objective = DistillationObjective(phase.objective, head=self.head, num_classes=self.num_classes,
                                          student_dim=self.stream.filter.out_dim,
                                          teacher_dims=[t.stream.filter.out_dim for t in self.teachers])
        self.module = distributed.wrap(TrainModule(self.stream, objective), self.ctx)
        self.objective = objective
        params = [p for p in self.stream.parameters() if p.requires_grad] + objective.trainable_parameters()
        self.optimizer = torch.optim.Adam(params, lr=self.training.lr, weight_decay=self.training.weight_decay)
        critic = objective.critic_parameters()
        self.critic_optimizer = torch.optim.Adam(critic, lr=self.training.lr, betas=(0.5, 0.9)) if critic else None
        self.average = None if self.training.ema is None else AveragedModel(
            self.stream, multi_avg_fn=get_ema_multi_avg_fn(self.training.ema), use_buffers=True)
        self.scheduler = None if self.training.lr_patience is None else torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=self.training.lr_factor, patience=self.training.lr_patience)
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=self.dtype == torch.float16)

    @property
    def evaluated(self) -> Stream:
        """The stream that is validated and selected: the weight average with ``training.ema``, else the live one."""
        return self.stream if self.average is None else self.average.module

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.ctx.device.type, dtype=self.dtype)

    def _phase_bounds(self) -> list[tuple[int, int]]:
        bounds, start = [], 0
        for phase in self.phases:
            bounds.append((start, start + phase.epochs))
            start += phase.epochs
        return bounds

    # ------------------------------------------------------------------ state
    def _save_state(self, state: RunState) -> None:
        if not self.ctx.is_main:
            return
        save_atomic({
            "format": STATE_FORMAT, "fingerprint": self.fingerprint, "epoch": state.epoch, "stage": state.phase,
            "stream": self.stream.state_dict(), "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "critic_optimizer": None if self.critic_optimizer is None else self.critic_optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": _rng_state(),
            "average": None if self.average is None else self.average.state_dict(), "best_score": state.best_score,
            "best_epoch": state.best_epoch, "monitor_best": state.monitor_best, "stale": state.stale,
            "stopped": state.stopped,
            "history": state.history, "wall_seconds": state.wall_seconds, "best": self.best,
            "torch_threads_used": sorted({*self.threads_before, torch.get_num_threads()}),
        }, self.out / "last.pt")

    def _save_best(self) -> None:
        """Write ``best.pt`` from the best checkpoint that ``last.pt`` holds (after it, never before)."""
        if self.ctx.is_main and self.best is not None:
            save_atomic(self.best, self.out / "best.pt")

    def _load_state(self) -> tuple[RunState, dict[str, Any]]:
        data = load_safe(self.out / "last.pt", STATE_FORMAT)
        diff = sorted(k for k in set(self.fingerprint) | set(data["fingerprint"])
                      if self.fingerprint.get(k) != data["fingerprint"].get(k))
        if diff:
            raise InputError(self.out / "last.pt", f"cannot resume: the run was made with different {', '.join(diff)}")
        # a last.pt from before training.schedule paced the run on the selecting metric: its best is best_score
        state = RunState(data["epoch"], data["stage"], data["best_score"], data["best_epoch"],
                         data.get("monitor_best", data["best_score"]), data["stale"], data["stopped"],
                         list(data["history"]), data["wall_seconds"])
        self.threads_before = list(data.get("torch_threads_used", []))  # absent before it was recorded
        if self.ctx.is_main and any(t != torch.get_num_threads() for t in self.threads_before):
            log.warning("%s: resuming with %d torch thread(s), the epochs so far ran with %s: CPU results depend on "
                        "the thread count, so this run will not be the same bytes as an uninterrupted one",
                        self.out, torch.get_num_threads(), " and ".join(map(str, self.threads_before)))
            self.record.header["torch_threads_before_resume"] = self.threads_before
        self.stream.load_state_dict(data["stream"])
        self.best = data.get("best")
        self._save_best()  # a kill after last.pt but before best.pt left best.pt an epoch behind
        return state, data

    # ------------------------------------------------------------------ epochs
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        from tqdm import tqdm

        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.module.train()
        sums: dict[str, float] = {}
        steps = 0
        for batch in tqdm(self.loader, desc=f"epoch {epoch}", unit="batch", leave=False,
                          disable=not (self.progress and self.ctx.is_main)):
            try:
                parts = self._train_step(batch.to(self.ctx.device))
            except FloatingPointError as err:
                raise FloatingPointError(f"epoch {epoch}, step {steps + 1}: {err}") from None
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value
            steps += 1
        return self._mean_over_ranks(sums, steps)

    def _train_step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step on a batch already on the device; returns the loss parts."""
        with self._autocast():
            with torch.no_grad():
                teachers = [t.stream(batch.features[t.modality], batch.mask) for t in self.teachers]
            total, parts, student = self.module(batch.features[self.modality], batch.mask, batch.labels, teachers)
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is {total.item()} (parts: { {k: round(float(v), 4) for k, v in parts.items()} })")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            self.average.update_parameters(self.stream)
        if self.critic_optimizer is not None:
            self._critic_step(student, teachers, batch.mask)
        return {name: float(value) for name, value in parts.items()}

    def _critic_step(self, student: StreamOutput, teachers: Sequence[StreamOutput], mask: torch.Tensor) -> None:
        """One step of the adversarial critic (SKD) on detached outputs; gradients averaged over ranks."""
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss = self.objective.critic_loss(student.detach(), [t.detach() for t in teachers], mask)
        loss.backward()
        distributed.average_gradients(self.objective.critic_parameters(), self.ctx)
        self.critic_optimizer.step()

    def _diagnose(self) -> dict[str, Any]:
        """What each term does to the student, on one fixed training batch (the first ``batch_size`` videos, epoch-0
        crops, training mode): every term's value, the norm of its weighted gradient at the filter output H and its
        share of their sum, the mean L2 norm of H's valid snippets; and per-frame mAP of the validated stream on a
        fixed training subset (as many videos as validation) beside validation mAP, so overfitting and collapse can be
        told apart.

        Runs under a forked RNG: reading the diagnostics never changes the training run."""
        data = self.diagnostic_batch
        batch = data.collate([data[i] for i in range(min(self.training.batch_size, len(data)))]).to(self.ctx.device)
        with torch.random.fork_rng(devices=[self.ctx.device] if self.ctx.device.type == "cuda" else []):
            with torch.no_grad():
                teachers = [t.stream(batch.features[t.modality], batch.mask) for t in self.teachers]
            self.stream.train()
            student = self.stream(batch.features[self.modality], batch.mask)
            parts = self.objective.parts(student, teachers, batch.mask, batch.labels)
            grads = {}
            for name, (weight, value) in parts.items():
                if weight == 0 or not (value.requires_grad and student.features.requires_grad):  # e.g. a frozen filter
                    grads[name] = 0.0
                    continue
                grad = torch.autograd.grad(weight * value, student.features, retain_graph=True, allow_unused=True)[0]
                grads[name] = 0.0 if grad is None else float(grad.norm())
        h_norm = student.features.detach().norm(dim=1)[batch.mask[:, 0] > 0].mean()
        total = sum(grads.values())
        train_subset, _, _ = validation_metrics(self.evaluated, self.train_subset, self.modality, self.ctx.device,
                                                self.training.eval_batch_size)
        return {"terms": {name: float(value.detach()) for name, (_, value) in parts.items()},
                "grad_norm": grads, "grad_share": {n: (g / total if total > 0 else 0.0) for n, g in grads.items()},
                "h_norm": float(h_norm), "train_subset": train_subset}

    def _mean_over_ranks(self, sums: dict[str, float], steps: int) -> dict[str, float]:
        names = sorted(sums)
        values = torch.tensor([sums[n] for n in names] + [float(steps)], dtype=torch.float64, device=self.ctx.device)
        if self.ctx.distributed:
            dist.all_reduce(values)
        return {n: float(v) / max(float(values[-1]), 1.0) for n, v in zip(names, values[:-1])}

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False) -> RunResult:
        state, saved = (self._load_state() if resume else (RunState(), None))
        bounds = self._phase_bounds()
        if self.record is not None:
            self.record.epochs = list(state.history)
            self.record.header["resumed_after_epoch"] = state.epoch if resume else None
        started = time.perf_counter() - state.wall_seconds
        for index, (phase, (first, last)) in enumerate(zip(self.phases, bounds)):
            if state.stopped or state.epoch >= last:
                continue
            if saved is not None and saved["stage"] != index:
                _set_rng_state(saved["rng"])      # resuming at a phase boundary: the new heads get the same init
            self._build(phase)
            if saved is not None and saved["stage"] == index:
                self._restore(saved)
            saved = None
            state.phase = index
            while state.epoch < last and not state.stopped:
                state.epoch += 1
                epoch_start = time.perf_counter()
                train_parts = self._train_epoch(state.epoch)
                diagnostics = self._diagnose() if self.ctx.is_main else None
                val, scores, targets = validation_metrics(self.evaluated, self.val_items, self.modality,
                                                          self.ctx.device, self.training.eval_batch_size, self.events)
                score = self._score(val, self.selection)
                monitor = score if self.schedule == self.selection else self._score(val, self.schedule)
                improved = False
                if phase.selects:
                    improved = score > state.best_score or self.training.keep == "last"
                    if improved:
                        state.best_score, state.best_epoch = score, state.epoch
                        if self.ctx.is_main:
                            self.best = self.best_checkpoint(self.evaluated, {"epoch": state.epoch, **val}, scores, targets)
                    if monitor > state.monitor_best:
                        state.monitor_best, state.stale = monitor, 0
                    else:
                        state.stale += 1
                    if self.scheduler is not None:
                        self.scheduler.step(monitor)
                    patience = self.training.early_stopping
                    state.stopped = patience is not None and state.stale >= patience
                entry = {"epoch": state.epoch, "stage": phase.name, "lr": self.optimizer.param_groups[0]["lr"],
                         "train": train_parts, "validation": val, "improved": improved,
                         "diagnostics": diagnostics, "seconds": time.perf_counter() - epoch_start}
                state.history.append(entry)
                state.wall_seconds = time.perf_counter() - started
                self._save_state(state)
                if improved:
                    self._save_best()
                self._log(entry, state)
        self._finish(state)
        return RunResult(self.out / "best.pt", self.out / "run.json", state.best_epoch,
                         next((e["validation"] for e in state.history if e["epoch"] == state.best_epoch), {}),
                         state.history)

    def _score(self, val: dict[str, Any], metric: str) -> float:
        """The validation mAP named by ``metric`` (frame or event), minus the loss where it is undefined; the
        same on every rank."""
        value = val[SELECTION_KEYS[metric]]
        return distributed.broadcast_value(value if math.isfinite(value) else -val["loss"], self.ctx)

    def _restore(self, saved: dict[str, Any]) -> None:
        self.objective.load_state_dict(saved["objective"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        if self.average is not None:
            self.average.load_state_dict(saved["average"])
        if self.critic_optimizer is not None and saved["critic_optimizer"] is not None:
            self.critic_optimizer.load_state_dict(saved["critic_optimizer"])
        _set_rng_state(saved["rng"])

    def _log(self, entry: dict[str, Any], state: RunState) -> None:
        if not self.ctx.is_main:
            return
        self.record.add_epoch(entry)
        self.record.write(best_epoch=state.best_epoch, wall_seconds=state.wall_seconds,
                          peak_memory=peak_memory(self.ctx.device))
        scalars = {f"train/{k}": v for k, v in entry["train"].items()}
        scalars.update({f"validation/{k}": v for k, v in entry["validation"].items()}, lr=entry["lr"])
        diagnostics = entry["diagnostics"]
        scalars.update({f"grad_share/{k}": v for k, v in diagnostics["grad_share"].items()},
                       h_norm=diagnostics["h_norm"], **{"train_subset/mAP": diagnostics["train_subset"]["mAP"]})
        self.logger.scalars(scalars, entry["epoch"])
        val = entry["validation"]
        event = f" event mAP {val['event_mAP']:.4f}" if "event_mAP" in val else ""
        log.info("epoch %d [%s] train %s | validation loss %.4f mAP %.4f%s%s", entry["epoch"], entry["stage"],
                 " ".join(f"{k} {v:.4f}" for k, v in entry["train"].items()), val["loss"], val["mAP"], event,
                 " *" if entry["improved"] else "")

    def _finish(self, state: RunState) -> None:
        if self.ctx.is_main:
            status = "early-stopped" if state.stopped else "finished"
            self.record.write(status=status, best_epoch=state.best_epoch, wall_seconds=state.wall_seconds,
                              peak_memory=peak_memory(self.ctx.device), checkpoint=str(self.out / "best.pt"))
            self.logger.close()
        self.module = None
        gc.collect()
