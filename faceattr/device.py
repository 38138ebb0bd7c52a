"""Device and numeric precision choices, shared by training and inference."""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "float32")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) picks CUDA when present, else the CPU; 'cuda' without a GPU is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


@functools.lru_cache(maxsize=None)
def cpu_has_bf16_matrix_units() -> bool:
    """True on CPUs with AMX bfloat16 tiles, where bf16 autocast makes convolutions much faster."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in text


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16_matrix_units()


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def memory_format(device: torch.device, bf16: bool):
    # channels_last is what lets oneDNN's AMX kernels and cuDNN's tensor-core kernels run without
    # layout conversions around every convolution.
    return torch.channels_last if bf16 else torch.contiguous_format
