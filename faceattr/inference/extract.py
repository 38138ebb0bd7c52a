"""``faceattr extract``: one row of multi-view features per face, streamed to .parquet, .csv or .npz.

Columns: ``file``, ``frame`` and ``time_s`` (a video's sampled frame and its time in seconds; -1
and NaN for a photo), ``face`` (0 = the largest), then the features (``relu1_1__z000`` ...).

Inputs are processed in chunks; each chunk's rows are written at once as a complete part file
in ``OUT.parts/`` (atomically), so memory stays flat however many inputs there are, and a killed
run leaves every part written so far readable (``pandas.read_parquet("OUT.parts")`` reads a
parquet run's folder). When all inputs are done the parts are merged into OUT (atomically; parquet
one row group per part, CSV by appending, npz in memory: the one format that cannot stream) and
the folder is removed. ``resume=True`` skips the photos and frames whose faces are already in OUT
or in its parts, and appends the rest. What the writer guarantees (one writer per output, nothing
replaced that the run did not make, no row lost or doubled by a kill) is in ``feature_writer``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ..faces.detect import DETECT_MAX_SIDE
from .feature_writer import FORMATS, FeatureWriter, check_output
from .pipeline import DEFAULT_MIN_FACE_SIZE, FacePipeline, FrameResult

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
                  batch_size: int | None = None, device=None, min_face_size: int = DEFAULT_MIN_FACE_SIZE,
                  chunk: int = CHUNK, pipeline: FacePipeline | None = None, detect_size: int = DETECT_MAX_SIDE,
                  every: int | None = None, fps: float | None = None, skip=None) -> Iterator[FeatureChunk]:
    """Features of every face of every input (of every sampled frame of a video: ``every`` N
    frames or ``fps``), ``chunk`` photos or frames at a time; ``skip(name, frame)`` true leaves
    that photo (frame -1) or frame out. ``pipeline`` (a features-only ``FacePipeline``) is used
    as it is; otherwise one is built from ``weights`` and the options."""
    if pipeline is None:
        from .bundle import Bundle
        pipeline = FacePipeline.from_bundle(Bundle.load(weights), heads=False, device=device, batch_size=batch_size,
                                            align=align, largest_face=largest_face, min_face_size=min_face_size,
                                            detect_size=detect_size)
    for results in pipeline.run(items, chunk=chunk, every=every, fps=fps, skip=skip):
        yield _chunk_of(results, pipeline.encoder.n_features)


def _chunk_of(results: list[FrameResult], n_features: int) -> FeatureChunk:
    out = FeatureChunk(inputs=len(results))
    for r in results:
        if r.error:
            out.errors.append({"file": r.name, "error": r.error})
        elif r.no_face:
            out.no_face.append(f"{r.name} frame {r.frame}" if r.where else r.name)
        for f in r.faces:
            out.files.append(r.name)
            out.frames.append(r.frame)
            out.times.append(r.time_s)
            out.faces.append(f.index)
    rows = [f.features for r in results for f in r.faces]
    out.features = np.stack(rows) if rows else np.zeros((0, n_features), np.float32)
    return out


def extract_to_file(items, out, weights="pretrained", align: str = "auto", largest_face: bool = False,
                    batch_size: int | None = None, device=None, min_face_size: int = DEFAULT_MIN_FACE_SIZE,
                    resume: bool = False, chunk: int = CHUNK, progress: bool = False,
                    detect_size: int = DETECT_MAX_SIDE,
                    every: int | None = None, fps: float | None = None, overwrite: bool = False) -> dict:
    """Stream the features of ``items`` to ``out``. Returns a summary: inputs, skipped (photos and
    frames already there, on resume), rows (faces written this run), total rows in OUT, the errors
    and the inputs with no face. An existing OUT is refused unless ``resume`` (add to it) or
    ``overwrite`` (replace it)."""
    from .bundle import Bundle
    check_output(out)  # before the models load
    bundle = Bundle.load(weights)
    pipeline = FacePipeline.from_bundle(bundle, heads=False, device=device, batch_size=batch_size, align=align,
                                        largest_face=largest_face, min_face_size=min_face_size,
                                        detect_size=detect_size)
    enc = pipeline.encoder
    options = {"align": align, "largest_face": largest_face, "min_face_size": min_face_size,
               "detect_size": detect_size, "every": every, "fps": fps,
               # the features depend on the views alone: new heads or vectors in the bundle change nothing
               "views_sha256": bundle.views_sha256(enc.names), "weights_sha256": bundle.sha256}
    items = list(items)
    with FeatureWriter(out, enc.feature_names, options, resume=resume, overwrite=overwrite) as writer:
        summary = {"inputs": len(items), "skipped": 0, "rows": 0, "errors": [], "no_face": []}
        skip = _skipper(writer, summary) if resume else None
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(items), desc="extracting", unit="img")
        for c in iter_features(items, chunk=chunk, pipeline=pipeline, every=every, fps=fps, skip=skip):
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


def _skipper(writer: FeatureWriter, summary: dict):
    """``skip(name, frame)`` for a resume: true for what the writer already holds, counted."""
    done = writer.done_keys()

    def skip(name: str, frame: int) -> bool:
        if writer.key(name, frame) in done:
            summary["skipped"] += 1
            return True
        return False
    return skip


__all__ = ["CHUNK", "FORMATS", "FeatureChunk", "check_output", "extract_to_file", "iter_features"]
