"""``FacePipeline``: the one road from inputs to faces to features to attributes.

Every entry point (``AttributePredictor``, ``faceattr extract``, Ray Data, ``faceattr serve`` and
``MultiViewVAEFeatures``) runs its inputs through this class, so an input type or an option that
works in one works in all of them:

    inputs (paths, folders' files, videos, PIL images, arrays, bytes)
      -> units        a photo, or one sampled frame of a video            (faces.video)
      -> prepared     its aligned 64x64 faces and detections, or an error (faces.prepare)
      -> encoded      the multi-view features of all faces of a chunk at once, then the heads
      -> FrameResult  one per unit: its faces (FaceResult) or its error

"No face" has one meaning everywhere: a result with no error and no faces (``no_face``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ..faces.detect import DETECT_MAX_SIDE, Face
from ..faces.images import source_name
from ..faces.prepare import PreparedImage, prepare_many
from ..faces.video import Unit, chunked, expand_inputs

DEFAULT_MIN_FACE_SIZE = 20
CHUNK = 64  # units (photos or frames) prepared and encoded together


@dataclass
class FaceResult:
    """One face: where it is (None when the input was aligned already), its aligned crop, its
    multi-view features and, when the pipeline has heads, the 40 scores and probabilities."""

    index: int  # 0 = the first (the largest with largest_face)
    crop: np.ndarray  # (64, 64, 3) uint8
    detection: Face | None
    features: np.ndarray  # (D,) float32
    scores: np.ndarray | None = None  # (40,)
    probabilities: np.ndarray | None = None  # (40,)


@dataclass
class FrameResult:
    """A photo, or one sampled frame of a video (``frame``, ``time_s``), and what was found in it."""

    name: str
    where: dict = field(default_factory=dict)  # {"frame", "time_s"} for a video's frame, {} for a photo
    error: str | None = None
    error_kind: str | None = None  # ImageError.kind: "bad_input", "too_large", "internal", ...
    faces: list[FaceResult] = field(default_factory=list)
    image: object = None  # the decoded photo, kept only with keep_images=True
    scale: float = 1.0  # photo pixels per pixel of ``image``

    @property
    def no_face(self) -> bool:
        return self.error is None and not self.faces

    @property
    def frame(self) -> int:
        """The frame index, -1 for a photo (the convention of extract's rows)."""
        return self.where.get("frame", -1)

    @property
    def time_s(self) -> float:
        """Seconds into the video, NaN for a photo."""
        return self.where.get("time_s", float("nan"))

    def to_record(self, decision: str = "accuracy", thresholds=None) -> dict:
        """The JSON record of ``faceattr predict`` and ``faceattr serve``: ``present`` is a score above
        the ``thresholds`` (k,) of the ``decision`` rule that the record names (default: the sign)."""
        from .heads import attribute_records
        faces = []
        for f in self.faces:
            face = f.detection.to_dict() if f.detection else {"box": None, "confidence": None, "landmarks": None}
            face["attributes"] = attribute_records(f.scores[None], f.probabilities[None], thresholds)[0]
            faces.append(face)
        return {"file": self.name, **self.where, "error": self.error, "decision": decision, "faces": faces}


@dataclass
class Encoded:
    """The encoder's and heads' output for a stack of faces, on the CPU."""

    features: np.ndarray  # (N, D)
    scores: np.ndarray | None = None  # (N, 40)
    probabilities: np.ndarray | None = None

    def rows(self, sl: slice) -> "Encoded":
        return Encoded(self.features[sl], _row(self.scores, sl), _row(self.probabilities, sl))


class FaceFinder:
    """The first half of the road: inputs -> aligned 64x64 faces and their detections.

    ``align``: "auto" (detect and align every face), "celeba" (CelebA aligned images) or "none"
    (ready 64x64 faces). ``largest_face`` keeps one face per photo; ``min_face_size`` and
    ``detect_size`` are the detector's (``FaceDetector``), which is built on first use.
    """

    def __init__(self, align: str = "auto", largest_face: bool = False,
                 min_face_size: int = DEFAULT_MIN_FACE_SIZE, detect_size: int = DETECT_MAX_SIDE, device=None):
        from ..device import resolve_device
        from ..faces.prepare import ALIGN_MODES
        if align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {', '.join(ALIGN_MODES)}, got {align!r}")
        self.align, self.largest_face = align, largest_face
        self.min_face_size, self.detect_size = min_face_size, detect_size
        self.device = resolve_device(device)
        self._detectors: dict[bool, object] = {}

    def detector(self, largest_face: bool | None = None):
        """The detector (one per ``largest_face`` setting)."""
        flag = self.largest_face if largest_face is None else largest_face
        if flag not in self._detectors:
            from ..faces.detect import FaceDetector
            self._detectors[flag] = FaceDetector(self.min_face_size, largest_face=flag, device=self.device,
                                                 max_side=self.detect_size)
        return self._detectors[flag]

    def prepare(self, units: list[Unit], largest_face: bool | None = None, keep_images: bool = False,
                workers: int | None = None) -> list[PreparedImage]:
        """Decode, detect and align: one ``PreparedImage`` per unit (a failed unit's error kept)."""
        todo = [u for u in units if u.error is None]
        done = prepare_many([u.item for u in todo], self.align,
                            self.detector(largest_face) if self.align == "auto" else None,
                            [u.name for u in todo], workers=workers, keep_images=keep_images)
        by_unit = dict(zip(map(id, todo), done))
        return [by_unit.get(id(u)) or PreparedImage(u.name, error=u.error, error_kind=u.error_kind) for u in units]

    def faces(self, items, names=None) -> list[PreparedImage]:
        """``prepare`` for a list of photos (or ready faces), named by ``names`` or by themselves."""
        return self.prepare(units_of(items, names))


class FacePipeline:
    """Faces of any input (``FaceFinder``), their features and (with ``heads``) their attributes.

    ``encoder``: a ``MultiViewEncoder``; ``heads``: ``LinearHeads`` or None (features only); the
    other options are ``FaceFinder``'s.
    """

    def __init__(self, encoder, heads=None, align: str = "auto", largest_face: bool = False,
                 min_face_size: int = DEFAULT_MIN_FACE_SIZE, detect_size: int = DETECT_MAX_SIDE):
        if heads is not None and heads.n_features != encoder.n_features:
            raise ValueError(f"heads expect {heads.n_features} features, views give {encoder.n_features}")
        self.encoder, self.heads = encoder, heads
        self.finder = FaceFinder(align, largest_face, min_face_size, detect_size, encoder.device)

    @classmethod
    def from_bundle(cls, bundle, views=None, heads: bool = True, device=None, batch_size: int | None = None,
                    **options) -> "FacePipeline":
        """The bundle's views (by default those its heads were fitted on, when ``heads``) on
        ``device``, and its heads."""
        from .encoder import MultiViewEncoder
        from .heads import LinearHeads
        if views is None:
            views = bundle.head_views() if heads else bundle.views
        encoder = MultiViewEncoder.from_bundle(bundle, views, device=device, batch_size=batch_size)
        return cls(encoder, LinearHeads(bundle.heads(), encoder.device) if heads else None, **options)

    device = property(lambda self: self.encoder.device)
    align = property(lambda self: self.finder.align)
    largest_face = property(lambda self: self.finder.largest_face)
    min_face_size = property(lambda self: self.finder.min_face_size)
    detect_size = property(lambda self: self.finder.detect_size)

    def detector(self, largest_face: bool | None = None):
        return self.finder.detector(largest_face)

    # ---- the stages, for a caller that runs them apart (serve) --------------------------------
    def prepare(self, units: list[Unit], largest_face: bool | None = None, keep_images: bool = False,
                workers: int | None = None) -> list[PreparedImage]:
        return self.finder.prepare(units, largest_face, keep_images, workers)

    def encode(self, faces: np.ndarray) -> Encoded:
        """(N, 64, 64, 3) uint8 faces -> features and, with heads, scores and probabilities; one
        transfer back from the device."""
        import torch
        feats = self.encoder.encode_tensor(torch.from_numpy(np.require(faces, np.uint8, ["C", "W"])))
        if self.heads is None:
            return Encoded(feats.cpu().numpy())
        scores = self.heads.scores(feats)
        both = torch.cat([feats, scores, self.heads.probabilities(scores)], dim=1).cpu().numpy()
        d, k = feats.shape[1], scores.shape[1]
        return Encoded(both[:, :d], both[:, d:d + k], both[:, d + k:])

    def results(self, units: list[Unit], prepared: list[PreparedImage], encoded: Encoded) -> list[FrameResult]:
        """Join each unit's faces to its rows of ``encoded`` (all faces of ``prepared``, in order)."""
        out, k = [], 0
        for u, p in zip(units, prepared):
            faces = []
            for j in range(len(p.faces)):
                faces.append(FaceResult(j, p.faces[j], p.detections[j] if p.detections else None,
                                        encoded.features[k], _row(encoded.scores, k), _row(encoded.probabilities, k)))
                k += 1
            out.append(FrameResult(p.name, u.where, p.error, p.error_kind, faces, p.image, p.scale))
        return out

    def empty(self) -> Encoded:
        k = None if self.heads is None else np.zeros((0, len(self.heads.bias)), np.float32)
        return Encoded(np.zeros((0, self.encoder.n_features), np.float32), k, k)

    # ---- the whole road -----------------------------------------------------------------------
    def run_units(self, units: list[Unit], largest_face: bool | None = None,
                  keep_images: bool = False) -> list[FrameResult]:
        prepared = self.prepare(units, largest_face, keep_images)
        faces = [p.faces for p in prepared if len(p.faces)]
        encoded = self.encode(np.concatenate(faces)) if faces else self.empty()
        return self.results(units, prepared, encoded)

    def run(self, items: Iterable, names=None, chunk: int = CHUNK, every: int | None = None,
            fps: float | None = None, skip=None, keep_images: bool = False) -> Iterator[list[FrameResult]]:
        """Results ``chunk`` units at a time, in input order: photos as they are, videos as their
        frames sampled ``every`` N frames or at ``fps``; ``skip(name, frame)`` true leaves that
        photo (frame -1) or frame out (what a resumed run has done)."""
        items = list(items)
        names = list(names) if names is not None else [source_name(i) for i in items]
        for group in chunked(expand_inputs(items, names, every, fps, skip), chunk):
            yield self.run_units(group, keep_images=keep_images)


def units_of(items, names=None) -> list[Unit]:
    """One unit per input as it is (videos are not expanded), named by ``names`` or by itself."""
    items = list(items)
    names = list(names) if names is not None else [source_name(i) for i in items]
    return [Unit(x, n) for x, n in zip(items, names)]


def _row(a: np.ndarray | None, k: int):
    return None if a is None else a[k]


__all__ = ["CHUNK", "DEFAULT_MIN_FACE_SIZE", "Encoded", "FaceFinder", "FacePipeline", "FaceResult", "FrameResult"]
