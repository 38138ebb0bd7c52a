"""Device and numeric precision choices, shared by training and inference.

torch is imported inside the functions: the command line imports this module for its choices
(PRECISIONS), and ``faceattr --help`` must not wait for torch.
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing torch here would slow every --help
    import torch

PRECISIONS = ("auto", "bf16", "float32")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) picks CUDA when present, else the CPU; 'cuda' without a GPU is an error."""
    import torch
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


# CPU features under which oneDNN runs bfloat16 convolutions natively: AMX tiles (Intel Xeon 4th
# gen and later) and AVX512-BF16 dot products (AMD EPYC Zen 4 and later, Intel Cooper Lake). Measured
# in benchmarks/results/precision_speed.md: bf16 + channels_last beats float32 on both.
BF16_CPU_FEATURES = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_description() -> str:
    """The CPU model and its bfloat16 features, written beside every speed figure."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    bf16 = [f for f in BF16_CPU_FEATURES if f in cpu_flags()]
    return f"{model}, {os.cpu_count()} cores, bf16 features: {', '.join(bf16) or 'none'}"


def machine_description() -> dict:
    """What every speed result records beside its figures, so one CPU's figure is never read as
    another's."""
    import torch
    return {"cpu": cpu_description(), "bf16_features": [f for f in BF16_CPU_FEATURES if f in cpu_flags()],
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 autocast makes convolutions faster."""
    return any(f in cpu_flags() for f in BF16_CPU_FEATURES)


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        import torch
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_fast_bf16()


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    import torch
    return torch.autocast(device.type, dtype=torch.bfloat16)


def memory_format(device: torch.device, bf16: bool):
    # channels_last is what lets oneDNN's AMX kernels and cuDNN's tensor-core kernels run without
    # layout conversions around every convolution.
    import torch
    return torch.channels_last if bf16 else torch.contiguous_format
