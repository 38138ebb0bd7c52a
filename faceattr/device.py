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
from .errors import InputError

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
        raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


# When bf16 autocast beats float32 on a CPU (benchmarks/results/precision_speed_*.md, same-run
# ratios): AMX tiles (Intel Xeon 4th gen and later) always; AVX512-BF16 alone only on AMD. On an
# AMD EPYC Zen 4 bf16 + channels_last ran extraction 2.14x and training 1.96-2.10x faster; on an
# Intel Xeon exposing AVX512-BF16 but no AMX, two runs gave extraction 0.78-1.00x and training
# steps 0.86x (relu5_1) to 1.37x (relu1_1): no consistent gain, so there float32 (exact) is used.
AMX_FEATURE, AVX512_BF16_FEATURE = "amx_bf16", "avx512_bf16"
BF16_CPU_FEATURES = (AMX_FEATURE, AVX512_BF16_FEATURE)
AVX512_BF16_FAST_VENDORS = ("AuthenticAMD",)


@functools.lru_cache(maxsize=None)
def cpuinfo_field(key: str) -> str | None:
    """The first ``key : value`` line of /proc/cpuinfo (the first core's), or None."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def cpu_flags() -> frozenset[str]:
    return frozenset((cpuinfo_field("flags") or "").split())


def cpu_vendor() -> str:
    return cpuinfo_field("vendor_id") or ""


@functools.lru_cache(maxsize=None)
def cpu_description() -> str:
    """The CPU model and its bfloat16 features, written beside every speed figure."""
    model = cpuinfo_field("model name") or platform.processor() or platform.machine()
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
    """True where bf16 autocast was measured to make convolutions faster: AMX, or AVX512-BF16 on
    an AMD CPU (see BF16_CPU_FEATURES' comment for the figures)."""
    flags = cpu_flags()
    if AMX_FEATURE in flags:
        return True
    return AVX512_BF16_FEATURE in flags and cpu_vendor() in AVX512_BF16_FAST_VENDORS


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
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


# Faces per encoder batch when the caller does not say. On the CPU a 64-face batch keeps each
# layer's activations in cache (a 256-face batch's 32x32x32 maps are 16 MB each, and the adds and
# LeakyReLUs between convolutions then run at memory speed); see benchmarks/results/extract_speed.md.
CPU_BATCH_SIZE = 64
# On an H200, 1,024 extracts 1.9x the faces/s of 256 in bfloat16 and 4,096 only 10% more than 1,024
# (benchmarks/results/extract_speed_gpu.md); the smaller of the two leaves room on smaller cards
CUDA_BATCH_SIZE = 1024


def default_batch_size(device: "torch.device") -> int:
    return CUDA_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE
