"""Unlabeled faces for training the views (``faceattr train --extra-faces DIR``): ready 64x64
aligned crops, or photos that are detected and aligned once (their largest face) and cached. They
never enter the heads, the benchmark or any accuracy figure."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..faces.geometry import IMAGE_SIZE
from ..errors import InputError


def face_files(folder) -> list[Path]:
    """Every image file under ``folder``, recursively, sorted."""
    from ..faces.images import is_image_path
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file" if folder.exists() else "it does not exist"
        raise InputError(f"{folder}: not a folder ({what}); --extra-faces takes a folder of faces")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    if not files:
        raise InputError(f"{folder}: no image files in it")
    return files


def list_sha256(folder, files: list[Path]) -> str:
    """What identifies the set: the sha256 of its files' relative names and contents, in order.
    Contents, not sizes: a face rewritten with other pixels at the same size is another set
    (the cache computes it afresh and a resumed run sees the change)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(folder)}\t{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _faces_of(files: list[Path]) -> np.ndarray:
    """(N, 64, 64, 3) uint8: a 64x64 file as it is, any other image's largest face aligned; files
    without a face (or unreadable) are left out."""
    from ..faces.images import ImageError, load_rgb
    from ..faces.finder import FaceFinder
    from ..faces.options import FaceOptions
    ready, photos = [], []
    for f in files:
        try:
            img = load_rgb(f)
        except ImageError:
            continue
        if img.size == (IMAGE_SIZE, IMAGE_SIZE):
            ready.append(np.asarray(img, np.uint8))
        else:
            photos.append(f)
    if photos:
        ready += [p.faces[0] for p in FaceFinder(FaceOptions(largest_face=True)).faces(map(str, photos)) if len(p.faces)]
    return np.stack(ready) if ready else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)


def load_extra_faces(folder, use_cache: bool = True, max_faces: int | None = None) -> tuple[np.ndarray, dict]:
    """(faces (N, 64, 64, 3) uint8, {"source", "count", "sha256"}) of a folder of faces, the faces
    cached under the sha256 of the folder's files; ``max_faces`` keeps the first N (``faceattr
    train --max-images`` bounds both sets, so a run meant to be tiny is)."""
    from ..cache import cached_array
    folder = Path(folder)
    files = face_files(folder)
    digest = list_sha256(folder, files)
    faces = np.asarray(cached_array(f"extra-faces-{digest[:20]}.npy", lambda a: a.ndim == 4,
                                          lambda: _faces_of(files), use_cache=use_cache))
    if len(faces) == 0:
        raise InputError(f"{folder}: no face found in its {len(files)} image files")
    faces = faces[:max_faces]
    return faces, {"source": folder.name, "count": int(len(faces)), "sha256": digest}
