"""``faceattr extract``: one row of multi-view features per face, streamed to .parquet, .csv or .npz.

Columns: ``file``, ``frame`` and ``time_s`` (a video's sampled frame and its time in seconds; -1
and NaN for a photo), ``face`` (0 = the largest), then the features (``relu1_1__z000`` ...).

Inputs are processed in chunks; each chunk's rows are written at once as a complete part file
in ``OUT.parts/`` (atomically), so memory stays flat however many inputs there are, and a killed
run leaves every part written so far readable (``pandas.read_parquet("OUT.parts")`` reads a
parquet run's folder). When all inputs are done the parts are merged into OUT (atomically; parquet
one row group per part, CSV by appending, npz in memory: the one format that cannot stream) and
the folder is removed. ``resume=True`` skips the inputs whose faces are already in OUT or in its
parts, and appends the rest.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..atomic import atomic_path, check_writable
from ..faces.images import source_name
from ..faces.prepare import prepare_many
from ..faces.video import chunked, expand_inputs

FORMATS = (".parquet", ".csv", ".npz")
CHUNK = 256  # inputs per part file


@dataclass
class FeatureChunk:
    """The faces found in a run of inputs: one row per face, and what went wrong per input."""

    files: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)  # -1 for a photo
    times: list[float] = field(default_factory=list)  # seconds into a video; NaN for a photo
    faces: list[int] = field(default_factory=list)
    features: np.ndarray | None = None  # (rows, D) float32
    errors: list[dict] = field(default_factory=list)  # {"file", "error"}
    no_face: list[str] = field(default_factory=list)
    inputs: int = 0


def iter_features(items: Iterable, weights="pretrained", align: str = "auto", largest_face: bool = False,
                  batch_size: int | None = None, device=None, min_face_size: int = 20,
                  chunk: int = CHUNK, encoder=None, detector=None, detect_size: int | None = None,
                  every: int | None = None, fps: float | None = None) -> Iterator[FeatureChunk]:
    """Features of every face of every input (of every sampled frame of a video: ``every`` N
    frames or ``fps``), ``chunk`` photos or frames at a time."""
    from ..faces.detect import FaceDetector
    from .bundle import Bundle
    from .encoder import MultiViewEncoder
    enc = encoder or MultiViewEncoder.from_bundle(Bundle.load(weights), device=device, batch_size=batch_size)
    det = detector
    if align == "auto" and det is None:
        det = FaceDetector(min_face_size, largest_face=largest_face, device=enc.device,
                           **({"max_side": detect_size} if detect_size else {}))
    items = list(items)
    for group in chunked(expand_inputs(items, [source_name(i) for i in items], every, fps), chunk):
        out, crops = FeatureChunk(inputs=len(group)), []
        todo = [u for u in group if u.error is None]
        out.errors += [{"file": u.name, "error": u.error} for u in group if u.error is not None]
        for u, p in zip(todo, prepare_many([u.item for u in todo], align, det, [u.name for u in todo])):
            where = f"{p.name} frame {u.where['frame']}" if u.where else p.name
            if p.error:
                out.errors.append({"file": p.name, "error": p.error})
            elif not len(p.faces):
                out.no_face.append(where)
            for j, f in enumerate(p.faces):
                out.files.append(p.name)
                out.frames.append(u.where.get("frame", -1))
                out.times.append(u.where.get("time_s", float("nan")))
                out.faces.append(j)
                crops.append(f)
        out.features = enc.encode(np.stack(crops)) if crops else np.zeros((0, enc.n_features), np.float32)
        yield out


def check_output(out) -> Path:
    """OUT's format is one we write and its folder is writable: checked before any work."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: unknown output format {out.suffix.lower()!r}; use one of {', '.join(FORMATS)}")
    return check_writable(out)


class FeatureWriter:
    """Streams chunks to ``OUT.parts/part-NNNNNN.EXT`` and merges them into OUT on ``close``."""

    def __init__(self, out: str | os.PathLike, names: list[str], resume: bool = False):
        self.out = check_output(out)
        self.suffix = self.out.suffix.lower()
        self.names = list(names)
        self.parts = self.out.with_name(self.out.name + ".parts")
        if not resume:
            if self.parts.exists():
                shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)
        self.n_parts = len(self._part_files())
        self.rows = 0

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob(f"part-*{self.suffix}"))

    def done_files(self) -> set[str]:
        """Inputs with rows already written (in OUT from an earlier run, or in its parts)."""
        done: set[str] = set()
        for path in ([self.out] if self.out.is_file() else []) + self._part_files():
            done.update(_read(path, columns=["file"])["file"])
        return done

    def write(self, chunk: FeatureChunk) -> None:
        if not chunk.files:
            return
        self.n_parts += 1
        with atomic_path(self.parts / f"part-{self.n_parts:06d}{self.suffix}") as tmp:
            _write(tmp, self.suffix, _index(chunk.files, chunk.frames, chunk.times, chunk.faces),
                   chunk.features, self.names)
        self.rows += len(chunk.files)

    def close(self) -> int:
        """Merge OUT (if resuming onto a finished file) and the parts into OUT; returns its rows."""
        sources = ([self.out] if self.out.is_file() else []) + self._part_files()
        total = 0
        with atomic_path(self.out) as tmp:
            if self.suffix == ".parquet":
                import pyarrow.parquet as pq
                writer = None
                try:
                    for src in sources:
                        table = pq.read_table(src)
                        if writer is None:
                            writer = pq.ParquetWriter(tmp, table.schema)
                        writer.write_table(table)
                        total += table.num_rows
                    if writer is None:  # no face at all: an empty table with the columns
                        _write(tmp, self.suffix, _index([], [], [], []), np.zeros((0, len(self.names)), np.float32),
                               self.names)
                finally:
                    if writer is not None:
                        writer.close()
            elif self.suffix == ".csv":
                with open(tmp, "w", encoding="utf-8", newline="") as fh:
                    fh.write(",".join(list(INDEX_COLUMNS) + self.names) + "\n")
                    for src in sources:
                        with open(src, encoding="utf-8") as part:
                            next(part)  # its header
                            for line in part:
                                fh.write(line)
                                total += 1
            else:
                data = [_read(src) for src in sources]
                index = {c: [v for d in data for v in d[c]] for c in INDEX_COLUMNS}
                feats = np.concatenate([d["features"] for d in data]) if data else \
                    np.zeros((0, len(self.names)), np.float32)
                _write(tmp, self.suffix, index, feats, self.names)
                total = len(index["file"])
        shutil.rmtree(self.parts, ignore_errors=True)
        return total


INDEX_COLUMNS = ("file", "frame", "time_s", "face")


def _index(files, frames, times, faces) -> dict:
    return {"file": list(files), "frame": list(frames), "time_s": list(times), "face": list(faces)}


def _write(path: Path, fmt: str, index: dict, feats: np.ndarray, names) -> None:
    """One table of rows to ``path`` in format ``fmt`` (.parquet, .csv or .npz), directly."""
    if fmt == ".npz":
        with open(path, "wb") as fh:
            # np.savez's own first parameter is called "file", hence the plural keys.
            np.savez(fh, features=feats.astype(np.float32), files=np.asarray(index["file"], dtype=str),
                     frames=np.asarray(index["frame"], dtype=np.int64),
                     times=np.asarray(index["time_s"], dtype=np.float64),
                     faces=np.asarray(index["face"], dtype=np.int64), feature_names=np.asarray(names))
        return
    import pandas as pd
    df = pd.concat([pd.DataFrame({"file": pd.Series(index["file"], dtype=object),
                                  "frame": pd.Series(index["frame"], dtype=np.int64),
                                  "time_s": pd.Series(index["time_s"], dtype=np.float64),
                                  "face": pd.Series(index["face"], dtype=np.int64)}),
                    pd.DataFrame(feats, columns=names)], axis=1)
    if fmt == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _read(path: Path, columns=None) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {"file": list(z["files"]), "frame": list(z["frames"]), "time_s": list(z["times"]),
                    "face": list(z["faces"]), "features": z["features"]}
    import pandas as pd
    df = pd.read_csv(path, usecols=columns) if suffix == ".csv" else pd.read_parquet(path, columns=columns)
    return {"file": list(df["file"])}


def extract_to_file(items, out, weights="pretrained", align: str = "auto", largest_face: bool = False,
                    batch_size: int | None = None, device=None, min_face_size: int = 20, resume: bool = False,
                    chunk: int = CHUNK, progress: bool = False, detect_size: int | None = None,
                    every: int | None = None, fps: float | None = None) -> dict:
    """Stream the features of ``items`` to ``out``. Returns a summary: inputs, skipped (resume),
    rows (faces written this run), total rows in OUT, the errors and the inputs with no face."""
    from .bundle import Bundle
    from .encoder import MultiViewEncoder
    check_output(out)  # before the models load
    enc = MultiViewEncoder.from_bundle(Bundle.load(weights), device=device, batch_size=batch_size)
    writer = FeatureWriter(out, enc.feature_names, resume=resume)
    items = list(items)
    done = writer.done_files() if resume else set()
    todo = [it for it in items if source_name(it) not in done]
    summary = {"inputs": len(items), "skipped": len(items) - len(todo), "rows": 0, "errors": [], "no_face": []}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="extracting", unit="img")
    for c in iter_features(todo, align=align, largest_face=largest_face, min_face_size=min_face_size,
                           chunk=chunk, encoder=enc, detect_size=detect_size, every=every, fps=fps):
        writer.write(c)
        summary["rows"] += len(c.files)
        summary["errors"] += c.errors
        summary["no_face"] += c.no_face
        if bar is not None:
            bar.update(c.inputs)
    if bar is not None:
        bar.close()
    summary["total_rows"] = writer.close()
    summary["features"] = len(enc.feature_names)
    return summary
