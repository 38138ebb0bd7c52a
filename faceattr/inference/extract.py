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

from ..errors import InputError
from ..faces.video import EVERY_FRAME, FrameSampling
from .feature_writer import FORMATS, FeatureWriter, check_output
from .pipeline import FacePipeline
from .results import FrameResult

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


def iter_features(items: Iterable, pipeline: FacePipeline, chunk: int = CHUNK,
                  sampling: FrameSampling = EVERY_FRAME, skip=None) -> Iterator[FeatureChunk]:
    """Features of every face of every input (of every frame of a video that ``sampling``
    takes), ``chunk`` photos or frames at a time, through ``pipeline`` (a features-only
    ``FacePipeline``, e.g. ``FacePipeline.from_bundle(bundle, heads=False, options=...)``);
    ``skip(name, frame)`` true leaves that photo (frame -1) or frame out."""
    for results in pipeline.run(items, chunk=chunk, sampling=sampling, skip=skip):
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


def extract_to_file(items, out, pipeline: FacePipeline, sampling: FrameSampling = EVERY_FRAME, *,
                    resume: bool = False, overwrite: bool = False, chunk: int = CHUNK, progress: bool = False) -> dict:
    """Stream the features of ``items`` through ``pipeline`` (features only, made from a bundle:
    ``FacePipeline.from_bundle(bundle, heads=False, options=...)``) to ``out``. Returns a summary:
    inputs, skipped (photos and frames already there, on resume), rows (faces written this run),
    total rows in OUT, the errors and the inputs with no face. An existing OUT is refused unless
    ``resume`` (add to it) or ``overwrite`` (replace it)."""
    check_output(out)
    enc, bundle = pipeline.encoder, pipeline.bundle
    if bundle is None:
        raise InputError("extract_to_file needs a pipeline made from a bundle (FacePipeline.from_bundle): "
                         "the output records the views' sha256")
    options = {**pipeline.options.to_dict(), **sampling.to_dict(),
               # the features depend on the views alone: new heads or vectors in the bundle change nothing
               "views_sha256": bundle.views_sha256(enc.names), "weights_sha256": bundle.sha256}
    items = list(items)
    with FeatureWriter(out, enc.feature_names, options, resume=resume, overwrite=overwrite) as writer:
        summary = {"inputs": len(items), "skipped": 0, "rows": 0, "errors": [], "no_face": []}
        skip = _skipper(writer, summary) if resume else None
        bar = _progress_bar(len(items)) if progress else None
        for c in iter_features(items, pipeline, chunk, sampling, skip):
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


def _progress_bar(n: int):
    from tqdm import tqdm
    return tqdm(total=n, desc="extracting", unit="img")


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
