"""``FacePipeline``: the one road from inputs to faces to features to attributes.

Every entry point (``AttributePredictor``, ``faceattr extract``, Ray Data, ``faceattr serve`` and
``MultiViewVAEFeatures``) runs its inputs through this class, so an input type or an option that
works in one works in all of them:

    inputs (paths, folders' files, videos, PIL images, arrays, bytes)
      -> units        a photo, or one sampled frame of a video            (faces.video)
      -> prepared     its aligned 64x64 faces and detections, or an error (faces.finder, as FaceOptions say)
      -> encoded      the multi-view features of all faces of a chunk at once, then the heads
      -> FrameResult  one per unit: its faces (FaceResult) or its error   (inference.results)

"No face" has one meaning everywhere: a result with no error and no faces (``no_face``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ..faces.finder import FaceFinder, units_of
from ..faces.images import source_name
from ..faces.options import FaceOptions
from ..faces.prepare import PreparedImage
from ..faces.video import EVERY_FRAME, FrameSampling, Unit, chunked, expand_inputs
from ..errors import InputError
from .results import FaceResult, FrameResult

CHUNK = 64  # units (photos or frames) prepared and encoded together


@dataclass
class Encoded:
    """The encoder's and heads' output for a stack of faces, on the CPU."""

    features: np.ndarray  # (N, D)
    scores: np.ndarray | None = None  # (N, 40)
    probabilities: np.ndarray | None = None

    def rows(self, sl: slice) -> "Encoded":
        return Encoded(self.features[sl], _row(self.scores, sl), _row(self.probabilities, sl))


class FacePipeline:
    """Faces of any input (``FaceFinder``, as ``options`` say), their features and (with
    ``heads``) their attributes. ``encoder``: a ``MultiViewEncoder``; ``heads``: ``LinearHeads``
    or None (features only)."""

    def __init__(self, encoder, heads=None, options: FaceOptions | None = None):
        if heads is not None and heads.n_features != encoder.n_features:
            raise InputError(f"heads expect {heads.n_features} features, views give {encoder.n_features}")
        self.encoder, self.heads = encoder, heads
        self.finder = FaceFinder(options, encoder.device)
        self.bundle = None  # the bundle it was made from (from_bundle), which outputs record

    @classmethod
    def from_bundle(cls, bundle, views=None, heads: bool = True, device=None, batch_size: int | None = None,
                    options: FaceOptions | None = None) -> "FacePipeline":
        """The bundle's views (by default those its heads were fitted on, when ``heads``) on
        ``device``, and its heads."""
        from .encoder import MultiViewEncoder
        from .heads import LinearHeads
        if views is None:
            views = bundle.head_views() if heads else bundle.views
        encoder = MultiViewEncoder.from_bundle(bundle, views, device=device, batch_size=batch_size)
        pipeline = cls(encoder, LinearHeads(bundle.heads(), encoder.device) if heads else None, options)
        pipeline.bundle = bundle
        return pipeline

    device = property(lambda self: self.encoder.device)
    options = property(lambda self: self.finder.options)

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

    def results(self, units: list[Unit], prepared: list[PreparedImage], encoded: Encoded,
                decision: str | None = None) -> list[FrameResult]:
        """Join each unit's faces to its rows of ``encoded`` (all faces of ``prepared``, in order);
        with heads, each face's ``present`` under ``decision`` (default: the sign rule)."""
        rule = decision or "accuracy"
        thresholds = None if self.heads is None else self.heads.threshold(rule)
        out, k = [], 0
        for u, p in zip(units, prepared):
            faces = []
            for j in range(len(p.faces)):
                scores = _row(encoded.scores, k)
                present = None if scores is None else scores > thresholds
                faces.append(FaceResult(j, p.faces[j], p.detections[j] if p.detections else None,
                                        encoded.features[k], scores, _row(encoded.probabilities, k), present))
                k += 1
            out.append(FrameResult(p.name, u.where, p.error, p.error_kind, faces, p.image, p.scale,
                                   rule if self.heads is not None else None))
        return out

    def empty(self) -> Encoded:
        k = None if self.heads is None else np.zeros((0, len(self.heads.bias)), np.float32)
        return Encoded(np.zeros((0, self.encoder.n_features), np.float32), k, k)

    # ---- the whole road -----------------------------------------------------------------------
    def run_units(self, units: list[Unit], keep_images: bool = False, decision: str | None = None) -> list[FrameResult]:
        prepared = self.prepare(units, keep_images=keep_images)
        faces = [p.faces for p in prepared if len(p.faces)]
        encoded = self.encode(np.concatenate(faces)) if faces else self.empty()
        return self.results(units, prepared, encoded, decision)

    def run(self, items: Iterable, names=None, chunk: int = CHUNK, sampling: FrameSampling = EVERY_FRAME,
            skip=None, keep_images: bool = False, decision: str | None = None) -> Iterator[list[FrameResult]]:
        """Results ``chunk`` units at a time, in input order: photos as they are, videos as the
        frames ``sampling`` takes; ``skip(name, frame)`` true leaves that photo (frame -1) or
        frame out (what a resumed run has done)."""
        items = list(items)
        names = list(names) if names is not None else [source_name(i) for i in items]
        for group in chunked(expand_inputs(items, names, sampling, skip), chunk):
            yield self.run_units(group, keep_images, decision)


def _row(a: np.ndarray | None, k: int):
    return None if a is None else a[k]


__all__ = ["CHUNK", "Encoded", "FaceFinder", "FacePipeline", "FaceResult", "FrameResult", "units_of"]
