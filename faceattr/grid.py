"""PNG grids of faces."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from .atomic import atomic_new_path, atomic_path


def to_uint8(images) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] or (N, H, W, 3) uint8 -> (N, H, W, 3) uint8."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    a = np.asarray(images)
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if a.ndim == 4 and a.shape[1] == 3:
            a = a.transpose(0, 2, 3, 1)
    return a


def tile(images: np.ndarray, per_row: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """(N, H, W, 3) uint8 -> one image with ``per_row`` faces a row."""
    n, h, w, _ = images.shape
    rows = max(1, -(-n // per_row))
    out = np.full((rows * (h + pad) + pad, per_row * (w + pad) + pad, 3), fill, np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[i]
    return out


def save_grid(path: str | os.PathLike, groups, per_row: int = 8, scale: int = 1, overwrite: bool = True) -> None:
    """Save groups of faces interleaved row by row: row k of each group, then row k+1 of each.
    ``overwrite=False`` never replaces a file at ``path`` (FileExistsError), even one made a
    moment ago by another process; the trainer's own grids are replaced."""
    arrays = [to_uint8(g) for g in groups]
    n = len(arrays[0])
    rows = []
    for start in range(0, n, per_row):
        for a in arrays:
            rows.append(a[start:start + per_row])
    stacked = np.concatenate(rows)
    img = Image.fromarray(tile(stacked, per_row))
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with (atomic_path if overwrite else atomic_new_path)(path) as tmp:
        img.save(tmp, format="PNG")
