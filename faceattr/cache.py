"""The on-disk cache of decoded crops and extracted features: one folder, content-keyed entries.

Where: ``FACEATTR_CACHE`` or ``~/.cache/faceattr``. Keys hash what the entry was computed from
(each image's name, size and modification time; the views' sha256), so replacing an image or a
view computes afresh instead of returning stale values. ``FACEATTR_CACHE_MAX_GB`` (default 10)
bounds the folder: after each write the least recently used entries go first. ``FACEATTR_NO_CACHE=1``
or ``--no-cache`` turns it off; ``faceattr cache`` shows it and ``faceattr cache --clear`` empties it.
A cache file that cannot be read is recomputed and replaced.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import atomic_path

DEFAULT_MAX_GB = 10.0
PATTERNS = ("crops-*.npy", "features-*.npy")


def cache_dir() -> Path:
    return Path(os.environ.get("FACEATTR_CACHE", Path.home() / ".cache" / "faceattr"))


def enabled() -> bool:
    return os.environ.get("FACEATTR_NO_CACHE", "") in ("", "0")


def max_bytes() -> int:
    raw = os.environ.get("FACEATTR_CACHE_MAX_GB", str(DEFAULT_MAX_GB))
    try:
        return int(float(raw) * 1e9)
    except ValueError:
        raise ValueError(f"FACEATTR_CACHE_MAX_GB must be a number of gigabytes, got {raw!r}") from None


def entries(folder: Path | None = None) -> list[Path]:
    folder = folder or cache_dir()
    return sorted(p for pat in PATTERNS for p in folder.glob(pat) if p.is_file())


def cached_array(name: str, shape_check: Callable[[np.ndarray], bool], build: Callable[[], np.ndarray],
                 folder: Path | None = None) -> np.ndarray:
    """The array cached as ``name`` (e.g. ``crops-<key>.npy``), or ``build()``'s result, stored."""
    if not enabled():
        return build()
    folder = Path(folder) if folder is not None else cache_dir()
    path = folder / name
    if path.is_file():
        try:
            arr = np.load(path, mmap_mode="r")
            if shape_check(arr):
                os.utime(path)  # recently used: evicted last
                return np.ascontiguousarray(arr)
        except (OSError, ValueError, EOFError) as e:
            warnings.warn(f"{path}: unreadable cache file ({e}); recomputing it", UserWarning, stacklevel=2)
    arr = build()
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        evict(folder, keep=path)
    except OSError as e:  # a full or read-only cache disk must not fail the work itself
        warnings.warn(f"{path}: could not write the cache ({e})", UserWarning, stacklevel=2)
    return arr


def evict(folder: Path | None = None, keep: Path | None = None) -> list[Path]:
    """Delete least recently used entries until the folder fits FACEATTR_CACHE_MAX_GB."""
    files = sorted(entries(folder), key=lambda p: p.stat().st_mtime)
    total, limit, removed = sum(p.stat().st_size for p in files), max_bytes(), []
    for p in files:
        if total <= limit:
            break
        if p == keep:
            continue
        total -= p.stat().st_size
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def clear(folder: Path | None = None) -> tuple[int, int]:
    """Remove every cache entry; (files, bytes) removed."""
    files = entries(folder)
    size = sum(p.stat().st_size for p in files)
    for p in files:
        p.unlink(missing_ok=True)
    return len(files), size
