"""Face detection with MTCNN from facenet-pytorch (its weights ship inside the wheel)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .device import resolve_device


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels
    confidence: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    def to_dict(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "confidence": round(float(self.confidence), 4),
                "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks]}


class FaceDetector:
    """Every face in a photo with its box, confidence and 5 landmarks.

    ``min_face_size``: smallest face side in pixels searched for; ``largest_only`` keeps the
    largest face; ``threshold`` is the minimum confidence kept.
    """

    def __init__(self, min_face_size: int = 20, largest_only: bool = False, threshold: float = 0.9,
                 device=None):
        if min_face_size < 12:
            raise ValueError(f"min_face_size must be at least 12 pixels, got {min_face_size}")
        self.min_face_size, self.largest_only, self.threshold = min_face_size, largest_only, threshold
        self.device = resolve_device(device)
        self._mtcnn = None

    @property
    def mtcnn(self):
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN
            self._mtcnn = MTCNN(keep_all=True, min_face_size=self.min_face_size, device=self.device)
        return self._mtcnn

    def detect(self, img: Image.Image) -> list[Face]:
        boxes, probs, points = self.mtcnn.detect(img, landmarks=True)
        if boxes is None:
            return []
        faces = [Face(tuple(map(float, b)), float(p), np.asarray(pt, np.float64))
                 for b, p, pt in zip(boxes, probs, points) if p is not None and p >= self.threshold]
        faces.sort(key=lambda f: -f.area)
        return faces[:1] if self.largest_only else faces

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_mtcnn"] = None
        return state
