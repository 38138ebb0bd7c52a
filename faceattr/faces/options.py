"""``FaceOptions``: how faces are found and prepared, one frozen, validated object.

Built once where a user speaks (the CLI's options, an API call's arguments) and passed down whole
to whatever finds faces: the predictor, extract, the transformer, Ray Data, the server.

    FaceOptions()                                   # detect and align every face (the defaults)
    FaceOptions(align="celeba")                     # CelebA aligned images: crop only
    FaceOptions(largest_face=True, detect_size=1280)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from numbers import Integral

from ..errors import InputError
from .detect import DEFAULT_MIN_FACE_SIZE, DETECT_MAX_SIDE, MIN_FACE_SIZE_FLOOR

ALIGN_MODES = ("auto", "celeba", "none")


@dataclass(frozen=True)
class FaceOptions:
    """``align``: "auto" (detect and align every face), "celeba" (CelebA aligned 178x218 images:
    crop only) or "none" (ready 64x64 faces). ``largest_face`` keeps one face per photo.
    ``min_face_size``: the smallest face side searched for, in pixels of the detection copy.
    ``detect_size``: faces are detected on a copy of each photo at most this many pixels on its
    longer side (larger finds smaller faces in big photos, slower). ``second_search``: a photo in
    which no face is found is searched again at lower thresholds (``faces.detect.Sensitivity``;
    experiments/results/second_pass.md: it finds 2 of celeba-mini's 4 val/test misses, and no
    face on 48 photos that hold none)."""

    align: str = "auto"
    largest_face: bool = False
    min_face_size: int = DEFAULT_MIN_FACE_SIZE
    detect_size: int = DETECT_MAX_SIDE
    second_search: bool = True

    def __post_init__(self):
        if self.align not in ALIGN_MODES:
            raise InputError(f"align must be one of {', '.join(ALIGN_MODES)}, got {self.align!r}")
        for name in ("largest_face", "second_search"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("min_face_size", "detect_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < MIN_FACE_SIZE_FLOOR:
                raise InputError(f"{name} must be a whole number of pixels, at least {MIN_FACE_SIZE_FLOOR}, "
                                 f"got {value!r}")
        if self.detect_size < self.min_face_size:
            raise InputError(f"detect_size ({self.detect_size}) must be at least min_face_size ({self.min_face_size})")

    @property
    def detects(self) -> bool:
        """Whether faces are detected (align="auto"), rather than taken as they are."""
        return self.align == "auto"

    def replace(self, **changes) -> "FaceOptions":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


LEGACY_NAMES = tuple(f.name for f in dataclasses.fields(FaceOptions))


def options_from(faces: FaceOptions | None, legacy: dict, where: str) -> FaceOptions:
    """``faces``, or one made from the separate keyword arguments of before FaceOptions (kept
    for one release, with a DeprecationWarning naming ``where``)."""
    unknown = sorted(set(legacy) - set(LEGACY_NAMES))
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
    if not legacy:
        return faces or FaceOptions()
    if faces is not None:
        raise InputError(f"{where}: give faces=FaceOptions(...) or {', '.join(sorted(legacy))}, not both")
    import warnings
    warnings.warn(f"{where}({', '.join(f'{k}=...' for k in sorted(legacy))}) is deprecated; pass "
                  f"faces=FaceOptions({', '.join(f'{k}=...' for k in sorted(legacy))})", DeprecationWarning, stacklevel=3)
    return FaceOptions(**legacy)
