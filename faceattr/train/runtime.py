"""Where and how a run computes: what the user asks (``Runtime``) and what it resolves to in this
process (``Placement``: the device, bfloat16 or not, the memory format, the process's rank)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..device import memory_format, resolve_device, use_bf16


@dataclass(frozen=True)
class Runtime:
    """``device``: "auto", "cpu", "cuda"...; ``precision``: "auto", "bf16" or "float32" (auto:
    bfloat16 where it was measured faster); ``compile``: torch.compile the networks (speed only);
    ``progress``: a progress bar and per-epoch lines on stderr."""

    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Placement:
    device: torch.device
    bf16: bool
    fmt: torch.memory_format
    rank: int = 0
    world: int = 1

    @classmethod
    def of(cls, runtime: Runtime) -> "Placement":
        device = resolve_device(runtime.device)
        bf16 = use_bf16(device, runtime.precision)
        rank, world, device = join_process_group(device)
        return cls(device, bf16, memory_format(device, bf16), rank, world)


def join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device). Under torchrun (WORLD_SIZE > 1) the process
    group is started (nccl on CUDA, gloo on the CPU) and each CUDA process takes its LOCAL_RANK's
    GPU; a single process is rank 0 of 1 on ``device``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device
