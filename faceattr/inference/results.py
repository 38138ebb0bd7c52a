"""What faceattr found in one input: ``FrameResult`` (a photo, or one sampled frame of a video)
and its ``FaceResult``s. Every entry point returns these (the predictor, extract, the
transformer, Ray Data, the server and its page) and formats them: ``to_dict()`` is the JSON
record of ``faceattr predict --format json`` and of ``POST /predict``; ``to_df(results)`` the
table of ``--format csv``, one row per face, as a pandas DataFrame.

    for result in predictor.predict_images(["photo.jpg"]):
        for face in result.faces:
            print(result.name, face.detection.box, face.present_names())
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..data.attributes import ATTRIBUTE_NAMES
from ..faces.detect import Face

NO_BOX = {"box": None, "confidence": None, "landmarks": None}  # a face given aligned: not found in a photo


@dataclass
class FaceResult:
    """One face: where it is (``detection``: None when the input was aligned already), its aligned
    crop, its multi-view features and, when the pipeline has heads, the 40 scores, calibrated
    probabilities and decisions (``present``, under the rule its FrameResult names)."""

    index: int  # 0 = the first (the largest with largest_face)
    crop: np.ndarray  # (64, 64, 3) uint8
    detection: Face | None
    features: np.ndarray  # (D,) float32
    scores: np.ndarray | None = None  # (40,)
    probabilities: np.ndarray | None = None  # (40,)
    present: np.ndarray | None = None  # (40,) bool

    def present_names(self) -> list[str]:
        """The attributes decided present, in CelebA's order."""
        return [] if self.present is None else [n for n, p in zip(ATTRIBUTE_NAMES, self.present) if p]

    def attributes(self) -> dict:
        """{attribute: {"present", "probability", "score"}} for all 40 (rounded as JSON shows them)."""
        if self.scores is None:
            return {}
        return {name: {"present": bool(self.present[i]), "probability": round(float(self.probabilities[i]), 4),
                       "score": round(float(self.scores[i]), 4)} for i, name in enumerate(ATTRIBUTE_NAMES)}

    def to_dict(self, features: bool = False) -> dict:
        out = self.detection.to_dict() if self.detection else dict(NO_BOX)
        out["attributes"] = self.attributes()
        if features:
            out["features"] = [float(v) for v in self.features]
        return out


@dataclass
class FrameResult:
    """A photo, or one sampled frame of a video (``frame``, ``time_s``), and what was found in it:
    its faces, or its error (``error_kind``: "bad_input", "too_large", "internal", ...)."""

    name: str
    where: dict = field(default_factory=dict)  # {"frame", "time_s"} for a video's frame, {} for a photo
    error: str | None = None
    error_kind: str | None = None
    faces: list[FaceResult] = field(default_factory=list)
    image: object = None  # the decoded photo, kept only with keep_images=True
    scale: float = 1.0  # photo pixels per pixel of ``image``
    decision: str | None = None  # the rule that made each face's ``present``

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

    def to_dict(self, features: bool = False) -> dict:
        """The JSON record: {"file", ["frame", "time_s",] "error", "decision", "faces": [{"box",
        "confidence", "landmarks", "attributes"}]}; ``features`` adds each face's features."""
        return {"file": self.name, **self.where, "error": self.error, "decision": self.decision,
                "faces": [f.to_dict(features) for f in self.faces]}

    def to_df(self):
        return to_df([self])

    def __getitem__(self, key):
        # predict_images yielded dicts before it yielded FrameResults; kept for one release.
        warnings.warn("indexing a FrameResult like a dict is deprecated; use its attributes or .to_dict()",
                      DeprecationWarning, stacklevel=2)
        return self.to_dict()[key]


def to_df(results):
    """One row per face of ``results`` (an input without one: one row with its error or "no face
    found"), with the columns of ``faceattr predict --format csv``."""
    import pandas as pd
    from .formats import CSV_FIELDS, csv_rows
    rows = [row for r in results for row in csv_rows(r.to_dict(), for_spreadsheet=False)]
    return pd.DataFrame(rows, columns=CSV_FIELDS)


__all__ = ["FaceResult", "FrameResult", "to_df"]
