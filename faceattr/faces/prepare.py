"""From any input (path, PIL image, array) to aligned 64x64 faces, for each ``align`` mode."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import warp_face
from .detect import Face, FaceDetector, ImageTooSmall
from .geometry import ALIGNED_SIZE, IMAGE_SIZE, crop_aligned
from .images import ImageError, array_to_image, load_rgb, source_name

ALIGN_MODES = ("auto", "celeba", "none")
FLAT_SIZE = IMAGE_SIZE * IMAGE_SIZE * 3


@dataclass
class PreparedImage:
    """One input: its aligned faces (uint8 (k, 64, 64, 3)) and their detections, or an error."""

    name: str
    faces: np.ndarray = field(default_factory=lambda: np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))
    detections: list = field(default_factory=list)  # Face per face; empty for align != "auto"
    error: str | None = None


def _ready_face(item, name: str) -> np.ndarray:
    """A ready 64x64 face: uint8/float (64, 64, 3), a flat vector of 12,288 values, or an image."""
    if isinstance(item, np.ndarray) and item.ndim == 1:
        if item.size != FLAT_SIZE:
            raise ImageError(f"{name}: a flat face must have {FLAT_SIZE} values (64*64*3), got {item.size}")
        item = item.reshape(IMAGE_SIZE, IMAGE_SIZE, 3)
    img = load_rgb(item) if not isinstance(item, np.ndarray) else array_to_image(item, name).convert("RGB")
    if img.size != (IMAGE_SIZE, IMAGE_SIZE):
        raise ImageError(f"{name}: align='none' needs {IMAGE_SIZE}x{IMAGE_SIZE} faces, got {img.size[0]}x{img.size[1]}")
    return np.asarray(img, dtype=np.uint8)


def prepare(item, align: str = "auto", detector: FaceDetector | None = None, name: str | None = None) -> PreparedImage:
    """Faces of one input. Errors are recorded on the result, never raised, so a batch goes on."""
    if align not in ALIGN_MODES:
        raise ValueError(f"align must be one of {', '.join(ALIGN_MODES)}, got {align!r}")
    name = name or source_name(item)
    try:
        if align == "none":
            return PreparedImage(name, _ready_face(item, name)[None])
        img = load_rgb(item)
        if align == "celeba":
            if img.size != ALIGNED_SIZE:
                raise ImageError(f"{name}: align='celeba' needs CelebA aligned {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} "
                                 f"images, got {img.size[0]}x{img.size[1]}")
            return PreparedImage(name, crop_aligned(img)[None])
        detector = detector or FaceDetector()
        try:
            found: list[Face] = detector.detect(img)
        except ImageTooSmall as e:
            raise ImageError(f"{name}: {e}") from None
        except Exception as e:  # noqa: BLE001 - one input's detector failure is that input's error
            raise ImageError(f"{name}: face detection failed ({type(e).__name__}: {e})") from None
        if not found:
            return PreparedImage(name)
        faces = np.stack([warp_face(img, f.landmarks) for f in found])
        return PreparedImage(name, faces, found)
    except ImageError as e:
        return PreparedImage(name, error=str(e))
