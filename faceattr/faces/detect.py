"""Face detection with MTCNN from facenet-pytorch (its weights ship inside the wheel)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..device import resolve_device
from ..errors import ImageTooSmall, InputError
from .images import MIN_SIDE

# MTCNN's smallest window: no smaller face can be searched for (and no smaller image hold one).
MIN_FACE_SIZE_FLOOR = MIN_SIDE
DEFAULT_MIN_FACE_SIZE = 20  # the smallest face searched for unless asked (--min-face-size)


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


# Photos are searched on a copy whose longer side is at most this many pixels (as insightface's
# det_size), and the boxes and landmarks mapped back to the photo's pixels; alignment then warps
# the photo itself. MTCNN holds float copies of its input at every pyramid scale (a 48-megapixel
# photo at full size peaked at 3.1 GB), and its time grows with the pixels. The cost: on a photo
# larger than this, the smallest face found grows with it: min_face_size * longer side / 640,
# e.g. 20 px up to 640 px, 125 px on a 4000x3000 photo. ``--detect-size`` raises it.
DETECT_MAX_SIDE = 640
DETECT_BATCH = 32  # photos per MTCNN call


@dataclass(frozen=True)
class Sensitivity:
    """The thresholds of a second, more permissive search for photos in which no face was found:
    each MTCNN stage's minimum probability and the minimum confidence a face is kept at."""

    stages: tuple[float, float, float] = (0.5, 0.6, 0.6)
    confidence: float = 0.8


class FaceDetector:
    """Every face in a photo with its box, confidence and 5 landmarks.

    ``min_face_size``: smallest face side searched for, in pixels of the detection copy (the photo
    itself up to ``max_side`` pixels on its longer side); ``largest_face`` keeps the largest face;
    ``threshold`` is the minimum confidence kept.
    """

    def __init__(self, min_face_size: int = DEFAULT_MIN_FACE_SIZE, largest_face: bool = False,
                 threshold: float = 0.9, device=None, max_side: int = DETECT_MAX_SIDE, second_pass: "Sensitivity | None" = None):
        if min_face_size < MIN_FACE_SIZE_FLOOR:
            raise InputError(f"min_face_size must be at least {MIN_FACE_SIZE_FLOOR} pixels, got {min_face_size}")
        if max_side < min_face_size:
            raise InputError(f"max_side must be at least min_face_size ({min_face_size}), got {max_side}")
        self.min_face_size, self.largest_face, self.threshold = min_face_size, largest_face, threshold
        self.max_side = max_side
        self.device = resolve_device(device)
        self.stages = None  # each MTCNN stage's minimum probability; None: facenet-pytorch's
        self.second_pass = second_pass
        self._mtcnn = None

    @property
    def mtcnn(self):
        """(pnet, rnet, onet), loaded on first use (faceattr.faces.mtcnn_nets)."""
        if self._mtcnn is None:
            from .mtcnn_nets import load_networks
            self._mtcnn = load_networks(self.device)
        return self._mtcnn

    def detection_copy(self, img: Image.Image) -> tuple[Image.Image, float]:
        """The image detection runs on, and its scale relative to ``img``."""
        scale = min(1.0, self.max_side / max(img.size))
        if scale == 1.0:
            return img, 1.0
        size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
        return img.resize(size, Image.BILINEAR, reducing_gap=2.0), scale

    def detect(self, img: Image.Image) -> list[Face]:
        (found,) = self.detect_batch([img])
        if isinstance(found, Exception):
            raise found
        return found

    def detect_batch(self, imgs: list[Image.Image], batch: int = DETECT_BATCH) -> list[list[Face] | Exception]:
        """Faces of several photos: MTCNN's first stage once per group of same-size detection copies
        (padding to a common size would change its image pyramid, hence its boxes), its second and
        third stages once for the candidates of all photos, whatever their sizes
        (faceattr.faces.mtcnn.SatTable). Per photo: its faces, or the exception that is its error."""
        copies = [self.detection_copy(img) for img in imgs]
        out: list = [None] * len(imgs)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (img, (small, _)) in enumerate(zip(imgs, copies)):
            if min(small.size) < self.min_face_size:
                # MTCNN's image pyramid would be empty (and it fails with an opaque torch.cat error).
                out[i] = ImageTooSmall(f"image is {img.size[0]}x{img.size[1]} pixels, smaller than the "
                                       f"minimum face size of {self.min_face_size} (--min-face-size)")
            else:
                groups.setdefault(small.size, []).append(i)
        batches = [members[k:k + batch] for members in groups.values() for k in range(0, len(members), batch)]
        for idx, found in zip(batches, self._detect_groups([[copies[i] for i in idx] for idx in batches])):
            for i, faces in zip(idx, found):
                out[i] = faces
        if self.second_pass is not None:
            self._search_again(imgs, out, batch)
        return out

    def _search_again(self, imgs, out: list, batch: int) -> None:
        """The photos in which no face was found, searched again at ``second_pass``'s thresholds."""
        missed = [i for i, faces in enumerate(out) if isinstance(faces, list) and not faces]
        if not missed:
            return
        again = self.permissive()
        for i, faces in zip(missed, again.detect_batch([imgs[i] for i in missed], batch)):
            if isinstance(faces, list):  # a box below the minimum face size is noise at these thresholds
                scale = self.detection_copy(imgs[i])[1]
                faces = [f for f in faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) * scale >= self.min_face_size]
            out[i] = faces

    def permissive(self) -> "FaceDetector":
        """This detector at ``second_pass``'s lower thresholds (its networks shared), with no third pass."""
        p = self.second_pass
        other = FaceDetector(self.min_face_size, self.largest_face, p.confidence, self.device, self.max_side)
        other.stages, other._mtcnn = p.stages, self._mtcnn
        return other

    def _detect_groups(self, groups: list[list[tuple[Image.Image, float]]]) -> list[list]:
        """Every group (same-size detection copies) at once: MTCNN's first stage per group, its
        second and third on all candidates together. A failure falls back to group by group, so
        it stays the error of the photo that caused it."""
        if len(groups) > 1:
            try:
                stacks = [np.stack([np.asarray(small) for small, _ in g]) for g in groups]
                found = self._run_mtcnn_groups(stacks)
                return [self._faces(g, f) for g, f in zip(groups, found)]
            except Exception:  # noqa: BLE001 - retried group by group below
                pass
        return [self._detect_same_size(g) for g in groups]

    def _detect_same_size(self, copies: list[tuple[Image.Image, float]]) -> list[list[Face] | Exception]:
        try:
            stack = np.stack([np.asarray(small) for small, _ in copies])  # (B, H, W, 3) uint8
            found = self._run_mtcnn(stack)
        except Exception as e:  # noqa: BLE001 - a detector failure is each photo's error, not the batch's
            if len(copies) == 1:
                return [e]
            return [self._detect_same_size([c])[0] for c in copies]  # find the photo that fails
        return self._faces(copies, found)

    def _faces(self, copies, found) -> list[list[Face]]:
        """MTCNN's boxes and landmarks of each detection copy, in the photo's pixels, kept by
        confidence, largest first."""
        out = []
        for (_, scale), (boxes, points) in zip(copies, found):
            faces = [Face(tuple(float(v) / scale for v in b[:4]), float(b[4]), np.asarray(pt, np.float64) / scale)
                     for b, pt in zip(boxes, points) if b[4] >= self.threshold]
            faces.sort(key=lambda f: -f.area)
            out.append(faces[:1] if self.largest_face else faces)
        return out

    def _run_mtcnn(self, stack: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per photo of a same-size (B, H, W, 3) uint8 batch: boxes (n, 5 with score), landmarks (n, 5, 2)."""
        return self._run_mtcnn_groups([stack])[0]

    def _run_mtcnn_groups(self, stacks: list[np.ndarray]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        import torch

        from .mtcnn import detect_faces_groups
        from .mtcnn_nets import FACTOR, THRESHOLDS
        pnet, rnet, onet = self.mtcnn
        with torch.inference_mode():
            return detect_faces_groups(stacks, self.min_face_size, pnet, rnet, onet, self.stages or THRESHOLDS,
                                       FACTOR, self.device)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_mtcnn"] = None
        return state
