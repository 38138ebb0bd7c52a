"""``faceattr extract``: one row of multi-view features per face, written to .parquet, .csv or .npz."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..faces.prepare import prepare

FORMATS = (".parquet", ".csv", ".npz")


def extract_features(items, weights="pretrained", align: str = "auto", largest_face: bool = False,
                     batch_size: int | None = None, device=None, min_face_size: int = 20, progress: bool = False):
    """Features of every face of every input: (table of file/face/error rows, feature names, matrix)."""
    from ..faces.detect import FaceDetector
    from .encoder import MultiViewEncoder
    from .bundle import Bundle
    bundle = Bundle.load(weights)
    enc = MultiViewEncoder.from_bundle(bundle, device=device, batch_size=batch_size)
    det = FaceDetector(min_face_size, largest_face, device=enc.device) if align == "auto" else None
    files, face_idx, faces, errors = [], [], [], []
    it = list(items)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="extracting", unit="img")
    for item in it:
        p = prepare(item, align, det)
        if p.error:
            errors.append({"file": p.name, "error": p.error})
        for j, f in enumerate(p.faces):
            files.append(p.name)
            face_idx.append(j)
            faces.append(f)
    feats = enc.encode(np.stack(faces)) if faces else np.zeros((0, enc.n_features), np.float32)
    return {"file": files, "face": face_idx}, enc.feature_names, feats, errors


def write_features(path: str | os.PathLike, index: dict, names: list[str], feats: np.ndarray) -> None:
    """Write by extension, atomically: the file appears whole or not at all."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown output format {suffix!r}; use one of {', '.join(FORMATS)}")
    with atomic_path(path) as tmp:
        if suffix == ".npz":
            with open(tmp, "wb") as fh:
                # np.savez's own first parameter is called "file", hence the plural keys.
                np.savez(fh, features=feats.astype(np.float32), files=np.asarray(index["file"], dtype=str),
                         faces=np.asarray(index["face"], dtype=np.int64), feature_names=np.asarray(names))
        else:
            import pandas as pd
            df = pd.concat([pd.DataFrame(index), pd.DataFrame(feats, columns=names)], axis=1)
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
