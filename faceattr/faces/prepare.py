"""From any input (path, PIL image, array) to aligned 64x64 faces, for each ``align`` mode."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .align import warp_face
from .detect import Face, FaceDetector, ImageTooSmall
from .geometry import ALIGNED_SIZE, IMAGE_SIZE, crop_aligned
from .options import ALIGN_MODES
from .images import ImageError, array_to_image, load_photo, load_rgb, source_name
from ..errors import InputError

FLAT_SIZE = IMAGE_SIZE * IMAGE_SIZE * 3


@dataclass
class PreparedImage:
    """One input: its aligned faces (uint8 (k, 64, 64, 3)) and their detections, or an error."""

    name: str
    faces: np.ndarray = field(default_factory=lambda: np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))
    detections: list = field(default_factory=list)  # Face per face; empty for align != "auto"
    error: str | None = None
    error_kind: str | None = None  # ImageError.kind: "bad_input", "too_large", ...
    image: object = None  # the decoded photo (PIL), kept only when asked (keep_images=True)
    scale: float = 1.0  # photo pixels per pixel of ``image``


def failed(name: str, e: ImageError | str, kind: str | None = None) -> PreparedImage:
    """The result of an input that failed: its message and the kind of problem."""
    return PreparedImage(name, error=str(e), error_kind=kind or getattr(e, "kind", ImageError.kind))


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


def whole_image_face(item) -> np.ndarray:
    """The image itself as a 64x64 face: its centred square (the shorter side), resized. What
    stands in for a face that detection did not find (MultiViewVAEFeatures(no_face="image"))."""
    img = load_rgb(item)
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    square = img.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR), dtype=np.uint8)


def prepare(item, align: str = "auto", detector: FaceDetector | None = None, name: str | None = None) -> PreparedImage:
    """Faces of one input. Errors are recorded on the result, never raised, so a batch goes on."""
    return prepare_many([item], align, detector, None if name is None else [name], workers=1)[0]


def _prepare_aligned(item, align: str, name: str) -> PreparedImage:
    """align="none" (a ready 64x64 face) or "celeba" (crop a CelebA aligned image)."""
    try:
        if align == "none":
            return PreparedImage(name, _ready_face(item, name)[None])
        img = load_rgb(item)
        if img.size != ALIGNED_SIZE:
            raise ImageError(f"{name}: align='celeba' needs CelebA aligned {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} "
                             f"images, got {img.size[0]}x{img.size[1]}")
        return PreparedImage(name, crop_aligned(img)[None])
    except ImageError as e:
        return failed(name, e)


# Photos are decoded at no less than twice the detection size: enough for detection, and for the
# smallest face found there to be warped from at least 2 * min_face_size pixels.
DECODE_OVER_DETECT = 2


_POOLS: dict = {}


def _pool(workers: int):
    """One lasting thread pool per size: threads made afresh for every batch would each bring the
    allocator a new arena, and a long run's memory would creep up with the number of batches."""
    from concurrent.futures import ThreadPoolExecutor
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="faceattr-prepare")
    return _POOLS[workers]


def prepare_many(items, align: str = "auto", detector: FaceDetector | None = None, names=None,
                 workers: int | None = None, keep_images: bool = False) -> list[PreparedImage]:
    """``prepare`` for a batch: photos decoded (and faces warped) in a thread pool, detection in
    batches of same-size photos (``FaceDetector.detect_batch``). Large JPEGs are decoded at a
    reduced size (``load_photo``); boxes and landmarks are reported in the photo's own pixels.
    ``keep_images`` keeps each decoded photo on its result (to draw on it without reading the
    file again)."""
    if align not in ALIGN_MODES:
        raise InputError(f"align must be one of {', '.join(ALIGN_MODES)}, got {align!r}")
    items = list(items)
    names = list(names) if names is not None else [source_name(i) for i in items]
    workers = workers or os.cpu_count() or 1
    # One input, or a caller that asks for one worker: no threads at all.
    pmap = map if workers == 1 else _pool(workers).map
    if align != "auto":
        return list(pmap(lambda a: _prepare_aligned(a[0], align, a[1]), zip(items, names)))
    detector = detector or FaceDetector()
    min_side = DECODE_OVER_DETECT * detector.max_side

    def decode(i):
        try:
            return load_photo(items[i], min_side)
        except ImageError as e:
            return e
    decoded = list(pmap(decode, range(len(items))))
    ok = [i for i, d in enumerate(decoded) if not isinstance(d, Exception)]
    found = dict(zip(ok, detector.detect_batch([decoded[i][0] for i in ok])))

    def finish(i):
        try:
            return _finish(i)
        except Exception as e:  # noqa: BLE001 - one photo's fault is its own result, never the batch's
            return failed(names[i], f"{names[i]}: face alignment failed ({type(e).__name__}: {e})", "internal")

    def _finish(i):
        name = names[i]
        if isinstance(decoded[i], Exception):
            return failed(name, decoded[i])
        img, scale = decoded[i]
        faces = found[i]
        if isinstance(faces, ImageTooSmall):
            return failed(name, f"{name}: {faces}")
        if isinstance(faces, Exception):
            return failed(name, f"{name}: face detection failed ({type(faces).__name__}: {faces})", "internal")
        kept = {"image": img, "scale": scale} if keep_images else {}
        if not faces:
            return PreparedImage(name, **kept)
        crops = np.stack([warp_face(img, f.landmarks) for f in faces])
        in_photo = [Face(tuple(v * scale for v in f.box), f.confidence, f.landmarks * scale) for f in faces]
        return PreparedImage(name, crops, in_photo, **kept)
    return list(pmap(finish, range(len(items))))
