"""Multi-process training with ``torchrun``: process-group setup from the environment, DDP wrapping.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`setup` reads them (NCCL on CUDA, gloo on CPU). Without them training runs in one process.
Gradients are averaged by ``DistributedDataParallel``; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from augrgb.core.errors import InputError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, records and logs."""
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda (this process's GPU) if available, else cpu; explicit names are checked."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}", "CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def setup(device: str = "auto") -> DistContext:
    """Join the process group when launched by ``torchrun`` (env vars), else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://",
                                rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, dev)


def teardown(ctx: DistContext) -> None:
    """Leave the process group (after the last collective)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, ctx: DistContext) -> nn.Module:
    """``module`` on its device, inside DDP when distributed (DDP broadcasts rank 0's weights)."""
    module = module.to(ctx.device)
    if not ctx.distributed:
        return module
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside DDP (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def average_gradients(parameters: list[nn.Parameter], ctx: DistContext) -> None:
    """All-reduce mean of gradients computed outside DDP's forward (the SKD critic's own step)."""
    if not ctx.distributed:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= ctx.world_size


def broadcast_value(value: float, ctx: DistContext) -> float:
    """Rank 0's number on every rank (the validation metric), so LR cuts and early stopping agree."""
    if not ctx.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())
