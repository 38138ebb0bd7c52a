"""The on-disk cache of decoded crops and extracted features: one folder, content-keyed entries.

Where: ``FACEATTR_CACHE`` or ``~/.cache/faceattr``. Keys hash what the entry was computed from
(each image's name, size and modification time; the views' sha256; an extra-faces folder's
file contents), so replacing an image or a
view computes afresh instead of returning stale values. ``FACEATTR_CACHE_MAX_GB`` (default 10)
bounds the folder: after each write the least recently used entries go first. ``FACEATTR_NO_CACHE=1``
or ``--no-cache`` turns it off; ``faceattr cache`` shows it and ``faceattr cache --clear`` empties it.
A cache file that cannot be read is recomputed and replaced.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import atomic_path
from .errors import InputError

DEFAULT_MAX_GB = 10.0
PATTERNS = ("crops-*.npy", "features-*.npy", "extra-faces-*.npy")  # every name cached_array is given


def cache_dir() -> Path:
    return Path(os.environ.get("FACEATTR_CACHE", Path.home() / ".cache" / "faceattr"))


def enabled() -> bool:
    return os.environ.get("FACEATTR_NO_CACHE", "") in ("", "0")


def max_bytes() -> int:
    raw = os.environ.get("FACEATTR_CACHE_MAX_GB", str(DEFAULT_MAX_GB))
    try:
        gb = float(raw)
    except ValueError:
        gb = float("nan")
    if not (math.isfinite(gb) and gb >= 0):
        raise InputError(f"FACEATTR_CACHE_MAX_GB must be a number of gigabytes (0 or more), got {raw!r}")
    return int(gb * 1e9)


def _stat(path: Path) -> os.stat_result | None:
    """The file's stat, or None when another process has just evicted it."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def total_bytes(files: list[Path]) -> int:
    return sum(st.st_size for st in map(_stat, files) if st is not None)


def entries(folder: Path | None = None) -> list[Path]:
    folder = Path(folder) if folder is not None else cache_dir()
    return sorted(p for pat in PATTERNS for p in folder.glob(pat) if p.is_file())


def cached_array(name: str, shape_check: Callable[[np.ndarray], bool], build: Callable[[], np.ndarray],
                 folder: Path | None = None, use_cache: bool = True) -> np.ndarray:
    """The array cached as ``name`` (e.g. ``crops-<key>.npy``), or ``build()``'s result, stored.
    ``use_cache=False`` (``--no-cache``) neither reads nor writes, like FACEATTR_NO_CACHE=1."""
    if not (use_cache and enabled()):
        return build()
    max_bytes()  # a bad FACEATTR_CACHE_MAX_GB is reported before the work, not after it
    folder = Path(folder) if folder is not None else cache_dir()
    path = folder / name
    if path.is_file():
        try:
            arr = np.load(path, mmap_mode="r")
            if shape_check(arr):
                _touch(path)
                return np.ascontiguousarray(arr)
        except FileNotFoundError:
            pass  # evicted by another process since is_file(): compute it afresh
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


def _touch(path: Path) -> None:
    """Mark an entry recently used (evicted last); one evicted meanwhile stays gone."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


def evict(folder: Path | None = None, keep: Path | None = None) -> list[Path]:
    """Delete least recently used entries until the folder fits FACEATTR_CACHE_MAX_GB. Safe beside
    another process using the same folder: an entry it removed first is skipped."""
    stats = [(p, st) for p in entries(folder) if (st := _stat(p)) is not None]
    stats.sort(key=lambda ps: ps[1].st_mtime)
    total, limit, removed = sum(st.st_size for _, st in stats), max_bytes(), []
    for p, st in stats:
        if total <= limit:
            break
        if p == keep:
            continue
        total -= st.st_size
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def clear(folder: Path | None = None) -> tuple[int, int]:
    """Remove every cache entry; (files, bytes) removed."""
    files = entries(folder)
    size = total_bytes(files)
    for p in files:
        p.unlink(missing_ok=True)
    return len(files), size
