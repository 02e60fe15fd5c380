"""Where extraction runs: ``local`` (processes on this machine) or ``ray`` (a pool of actors on a Ray cluster).

An engine gets a job (any modality's :class:`~augrgb.extract.jobs.Job`) and the videos still to do
and yields one :class:`VideoResult` per video as it finishes. Input checks, skipping finished videos,
the manifest and failure reports stay with the driver (``pipeline.run_batch``), so every engine behaves
the same; workers start the job once (loading its models) and only write feature files.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from augrgb.core.errors import InputError
from augrgb.core.registry import Registry
from augrgb.extract.jobs import Job, VideoResult, Worker, attempt


class Engine(Protocol):
    """Runs ``job`` on every ``(video_id, path)`` of ``todo``, yielding results in completion order."""

    def run(self, job: Job, todo: Sequence[tuple[str, Path]]) -> Iterator[VideoResult]: ...


ENGINES: Registry = Registry("extraction engine")


_PROCESS_STATE: dict[str, Worker] = {}  # per worker process: the started job, built once


def _init_worker(job: Job) -> None:
    from augrgb.core.memory import bound_heap_growth

    bound_heap_growth()  # inherited under fork, not under forkserver or spawn: set it in every worker
    _PROCESS_STATE["worker"] = job.start()


def _extract_in_worker(video_id: str, path: Path) -> VideoResult:
    return attempt(_PROCESS_STATE["worker"], video_id, path)


DIED = "worker process died (killed by the system, e.g. out of memory, or crashed)"


@ENGINES.register("local")
class LocalEngine:
    """This machine: videos one after another, or in ``cfg.workers`` processes sharing the CPU threads.

    A worker process that dies (the out-of-memory killer, a crash in a decoder) takes no other video with
    it: the videos that were in flight run again one at a time in a fresh worker, and the one that kills
    its worker again is failed with that reason; the rest of the batch goes on in a fresh pool.
    """

    def run(self, job: Job, todo: Sequence[tuple[str, Path]]) -> Iterator[VideoResult]:
        workers = min(job.cfg.workers, max(len(todo), 1))
        job = job.sized(workers, os.cpu_count() or 1)
        if workers <= 1:
            worker = job.start()  # fails early (e.g. weights missing) before touching any video
            try:
                for vid, path in todo:
                    yield attempt(worker, vid, path)
            finally:
                worker.close()
            return
        pending = deque(todo)
        while pending:
            suspects = yield from self._pool(job, workers, pending)
            for vid, path in suspects:  # alone, so a second death names the video that causes it
                yield from self._pool(job, 1, deque([(vid, path)]), last_chance=True)

    @staticmethod
    def _pool(job: Job, workers: int, pending: deque, last_chance: bool = False) -> Iterator[VideoResult]:
        """Run ``pending`` (consumed) in a pool of ``workers`` processes, at most ``workers`` in flight; returns the
        videos in flight when a worker died (retried by the caller), or fails them when ``last_chance``."""
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(job,))
        running: dict[Future, tuple[str, Path]] = {}
        try:
            while pending or running:
                while pending and len(running) < workers:
                    try:
                        future = pool.submit(_extract_in_worker, *pending[0])
                    except BrokenProcessPool:  # a worker died since the last wait: its future says which videos it took
                        if not running:
                            return []  # nothing of this pool's in flight: the rest runs in a fresh pool
                        break
                    running[future] = pending.popleft()
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        if not last_chance:
                            return list(running.values())
                        vid, path = running.pop(future)
                        yield VideoResult(vid, str(path), "failed", DIED)
                        continue
                    running.pop(future)
                    yield result
            return []
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray", "Ray is not installed; install it with: pip install 'augrgb[distributed]'") from None
    return ray


class _RayWorker:
    """A Ray actor holding one started job (its encoder, flow processes ...), so the weights load once per worker."""

    def __init__(self, job: Job) -> None:
        from augrgb.core.memory import bound_heap_growth

        bound_heap_growth()  # an actor is a fresh process: the driver's allocator settings do not reach it
        self.failure: tuple[str, str] | None = None
        try:
            self.worker = job.start()
        except InputError as exc:
            self.failure = (exc.source, exc.reason)
        except Exception as exc:  # noqa: BLE001 - reported as one line by the driver
            first = str(exc).splitlines()[0] if str(exc) else ""
            self.failure = (f"Ray worker on {socket.gethostname()}", f"{exc.__class__.__name__}: {first}")

    def ready(self) -> tuple[str, str] | None:
        """None once the encoder is loaded, else (input, reason) of why it could not be."""
        return self.failure

    def run(self, video_id: str, path: Path) -> VideoResult:
        if self.failure is not None:
            return VideoResult(video_id, str(path), "failed", f"worker could not load the encoder: {': '.join(self.failure)}")
        return attempt(self.worker, video_id, path)


@ENGINES.register("ray")
class RayEngine:
    """A Ray cluster: as many actors as its resources fit (``cpus_per_task`` CPUs, ``gpus_per_task`` GPUs each).

    ``address`` None starts a private Ray instance on this machine (or uses the connection this process
    already has), ``"auto"`` joins the cluster started with ``ray start`` here, ``HOST:PORT`` a remote head.
    Every node must see the inputs and the store at the same paths. A worker that dies fails its video;
    a fresh worker takes its place.
    """

    def __init__(self, address: str | None = None, cpus_per_task: int = 1, gpus_per_task: float = 0.0) -> None:
        self.ray = import_ray()
        if cpus_per_task < 1:
            raise InputError("--ray-cpus-per-task", f"must be at least 1, got {cpus_per_task}")
        if gpus_per_task < 0:
            raise InputError("--ray-gpus-per-task", f"must not be negative, got {gpus_per_task}")
        self.address, self.cpus_per_task, self.gpus_per_task = address, cpus_per_task, gpus_per_task

    def check_device(self, device: str) -> None:
        """A CUDA job needs GPUs reserved per worker, and reserved GPUs need a CUDA job."""
        on_gpu = device.startswith("cuda")
        if on_gpu and not self.gpus_per_task:
            raise InputError("--device", f"{device} with --engine ray needs --ray-gpus-per-task (e.g. 1) so Ray gives each worker a GPU")
        if self.gpus_per_task and not on_gpu:
            raise InputError("--ray-gpus-per-task", f"reserves GPUs but --device is {device}; add --device cuda")

    def _pool_size(self, videos: int) -> int:
        total = self.ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        fits = int(cpus / self.cpus_per_task + 1e-9)
        if self.gpus_per_task:
            fits = min(fits, int(gpus / self.gpus_per_task + 1e-9))
        if fits < 1:
            raise InputError("--engine ray", f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; one worker needs "
                                             f"{self.cpus_per_task} CPUs and {self.gpus_per_task:g} GPUs")
        return min(fits, videos)

    def run(self, job: Job, todo: Sequence[tuple[str, Path]]) -> Iterator[VideoResult]:
        ray = self.ray
        self.check_device(job.cfg.device)
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address or "local")
            except (ConnectionError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
                raise InputError(f"--address {self.address}" if self.address else "--engine ray",
                                 f"cannot start or join Ray ({first})") from None
        try:
            yield from self._run(job, todo)
        finally:
            if started:
                ray.shutdown()

    def _run(self, job: Job, todo: Sequence[tuple[str, Path]]) -> Iterator[VideoResult]:
        ray = self.ray
        job = job.sized(1, self.cpus_per_task)  # each actor is one worker with its reserved CPUs
        worker = ray.remote(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task)(_RayWorker)
        actors = [worker.remote(job) for _ in range(self._pool_size(len(todo)))]
        for failure in ray.get([actor.ready.remote() for actor in actors]):
            if failure is not None:  # fails early (e.g. weights missing) before touching any video
                raise InputError(*failure)
        pending = deque(todo)
        running: dict[Any, tuple[Any, str, Path]] = {}

        def submit(actor: Any) -> None:
            vid, path = pending.popleft()
            running[actor.run.remote(vid, path)] = (actor, vid, path)

        for actor in actors:
            submit(actor)
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, vid, path = running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                result = VideoResult(vid, str(path), "failed", f"Ray worker died ({exc.__class__.__name__}: {first})")
                actor = worker.remote(job)
            yield result
            if pending:
                submit(actor)
