"""``FaceFinder``: inputs -> aligned 64x64 faces and their detections, as every entry point
finds them (the first half of faceattr.inference.pipeline's road; it needs no encoder)."""
from __future__ import annotations

from .detect import FaceDetector, Sensitivity
from .images import source_name
from .options import FaceOptions
from .prepare import PreparedImage, prepare_many
from .video import Unit


class FaceFinder:
    """Finds and aligns faces as ``options`` (a ``FaceOptions``) say; the detector is built on
    first use, on ``device``, one per ``largest_face`` setting (the server takes it per request)."""

    def __init__(self, options: FaceOptions | None = None, device=None):
        from ..device import resolve_device
        self.options = options or FaceOptions()
        self.device = resolve_device(device)
        self._detectors: dict[bool, FaceDetector] = {}

    def detector(self, largest_face: bool | None = None) -> FaceDetector:
        flag = self.options.largest_face if largest_face is None else largest_face
        if flag not in self._detectors:
            o = self.options
            self._detectors[flag] = FaceDetector(o.min_face_size, largest_face=flag, device=self.device,
                                                 max_side=o.detect_size,
                                                 second_pass=Sensitivity() if o.second_search else None)
        return self._detectors[flag]

    def prepare(self, units: list[Unit], largest_face: bool | None = None, keep_images: bool = False,
                workers: int | None = None) -> list[PreparedImage]:
        """Decode, detect and align: one ``PreparedImage`` per unit (a failed unit's error kept)."""
        todo = [u for u in units if u.error is None]
        detector = self.detector(largest_face) if self.options.detects else None
        done = prepare_many([u.item for u in todo], self.options.align, detector, [u.name for u in todo],
                            workers=workers, keep_images=keep_images)
        by_unit = dict(zip(map(id, todo), done))
        return [by_unit.get(id(u)) or PreparedImage(u.name, error=u.error, error_kind=u.error_kind) for u in units]

    def faces(self, items, names=None) -> list[PreparedImage]:
        """``prepare`` for a list of photos (or ready faces), named by ``names`` or by themselves."""
        return self.prepare(units_of(items, names))


def units_of(items, names=None) -> list[Unit]:
    """One unit per input as it is (videos are not expanded), named by ``names`` or by itself."""
    items = list(items)
    names = list(names) if names is not None else [source_name(i) for i in items]
    return [Unit(x, n) for x, n in zip(items, names)]
