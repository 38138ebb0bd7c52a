"""Checkpoints (everything needed to resume) and view files (what a user needs to encode/decode)."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from .config import ModelConfig
from .models import VAE
from ..errors import InputError

VIEW_FORMAT = "faceattr-view/1"


def save(obj: dict, path: str | os.PathLike) -> None:
    """Write ``obj`` whole or not at all. Through a file object, because torch.save names the zip's
    records after a path's stem: the random temporary name would make equal objects differ in bytes
    (and in the manifest's sha256)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def load(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a torn or foreign file
        raise InputError(f"{path}: not a readable faceattr checkpoint ({load_error(e)})") from None


def load_error(e: Exception) -> str:
    """A one-line reason a file failed to load. torch's own message on a file that is not plain
    tensors suggests ``weights_only=False``, i.e. running the file's code: never pass that on."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if "weights_only" in str(e) or "Unpickl" in type(e).__name__:
        return "it holds objects other than tensors, or is not a torch file"
    if "failed reading zip archive" in first:
        return f"the file is truncated or corrupted: {first.split('. ')[0].rstrip('.')}"
    return whole_sentences(first, MAX_REASON_CHARS)


MAX_REASON_CHARS = 200


def whole_sentences(text: str, limit: int) -> str:
    """As many whole sentences of ``text`` as fit in ``limit`` characters; a first sentence longer
    than that is cut at a word boundary and marked with an ellipsis, never mid-word."""
    kept = ""
    for sentence in text.replace(". ", ".\n").splitlines():
        candidate = f"{kept} {sentence}".strip()
        if len(candidate) > limit:
            break
        kept = candidate
    if kept:
        return kept
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + " ..."


def save_view(vae: VAE, path: str | os.PathLike, meta: dict | None = None, dtype=torch.float32) -> None:
    """Encoder + decoder with the config that rebuilds them; ``dtype`` float16 halves the size."""
    state = {k: (v.to(dtype) if v.is_floating_point() else v).cpu() for k, v in vae.state_dict().items()}
    save({"format": VIEW_FORMAT, "model_config": vae.cfg.to_dict(), "state_dict": state,
          "meta": meta or {}}, path)


@torch.no_grad()
def float16_drift(vae: VAE, faces_uint8: np.ndarray) -> dict:
    """How far storing ``vae`` in float16 (``save_view(..., dtype=torch.float16)``) moves its latent
    means on these (N, 64, 64, 3) uint8 faces: the largest and mean absolute change, beside the
    latent means' standard deviation for scale."""
    from .models import to_float_images
    rounded = copy.deepcopy(vae)
    for p in rounded.state_dict().values():
        if p.is_floating_point():
            p.copy_(p.half().float())
    dev = next(vae.parameters()).device
    x = to_float_images(torch.from_numpy(np.require(faces_uint8, np.uint8, ["C", "W"])).to(dev))
    m32, m16 = vae.encoder(x)[0], rounded.encoder(x)[0]
    return {"max_abs_diff": float((m32 - m16).abs().max()), "latent_std": float(m32.std()),
            "mean_abs_diff": float((m32 - m16).abs().mean())}


def vae_state(obj: dict) -> dict:
    """The VAE's weights in a loaded view file (``state_dict``) or training checkpoint (``vae``)."""
    return obj["state_dict"] if "state_dict" in obj else obj["vae"]


def view_from(obj: dict, device="cpu") -> VAE:
    """Rebuild a VAE from a loaded view file or training checkpoint, in float32, in eval mode."""
    return VAE.from_state_dict(ModelConfig.from_dict(obj["model_config"]), vae_state(obj)).to(device)


def load_view(path: str | os.PathLike, device="cpu") -> VAE:
    """Rebuild a VAE from a view file or a training checkpoint, in float32, in eval mode."""
    return view_from(load(path), device)
