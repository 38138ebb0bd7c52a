"""``AttributePredictor``: photos in, 40 attributes per face out."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.attributes import ATTRIBUTE_NAMES
from ..device import resolve_device
from ..faces.detect import DETECT_MAX_SIDE
from ..faces.prepare import PreparedImage, prepare_many
from .heads import LinearHeads, attribute_records
from ..faces.images import clean_message, is_image_path, source_name
from ..faces.video import chunked, expand_inputs, is_video_path


def collect_inputs(paths) -> tuple[list[Path], list[Path]]:
    """(inputs, skipped): files as given (a missing one stays, to be reported as that input's
    error), and every image or video file under each directory, recursively and sorted; files in
    those directories with another extension are returned as skipped. What is named like an image
    but is not a readable file (a broken link, a FIFO, a socket, a device) is an input too, so it
    gets its own error saying what it is, instead of vanishing."""
    out, skipped = [], []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if not f.is_dir()):
                (out if is_image_path(f) or is_video_path(f) else skipped).append(f)
        else:
            out.append(p)
    return out, skipped


MAX_NAMED = 10  # rows a warning names before "and N more"


class UndecidedWarning(UserWarning):
    """Rows of features that give no decision (NaN: no face was found in that input)."""


class AttributePredictor:
    """The shipped views and the 40 linear heads, applied as one (40 x features) product.

    ``align``: "auto" (detect and align every face), "celeba" (inputs are CelebA aligned images)
    or "none" (inputs are 64x64 faces). ``largest_face`` keeps one face per photo.
    """

    def __init__(self, weights="pretrained", device=None, batch_size: int | None = None, align: str = "auto",
                 largest_face: bool = False, min_face_size: int = 20, detect_size: int = DETECT_MAX_SIDE):
        from .encoder import MultiViewEncoder
        from .bundle import Bundle
        self.bundle = Bundle.load(weights)
        self.device = resolve_device(device)
        heads = self.bundle.heads()
        views = self.bundle.manifest["heads"].get("views", self.bundle.views)
        self.encoder = MultiViewEncoder.from_bundle(self.bundle, views, device=self.device, batch_size=batch_size)
        self.heads = LinearHeads(heads, self.device)
        if len(self.heads.bias) != len(ATTRIBUTE_NAMES):
            raise ValueError(f"{self.bundle.root}: heads must have {len(ATTRIBUTE_NAMES)} rows, got {len(self.heads.bias)}")
        if self.heads.n_features != self.encoder.n_features:
            raise ValueError(f"heads expect {self.heads.n_features} features, views give {self.encoder.n_features}")
        self.align, self.largest_face, self.min_face_size = align, largest_face, min_face_size
        self.detect_size = detect_size
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            from ..faces.detect import FaceDetector
            self._detector = FaceDetector(min_face_size=self.min_face_size, largest_face=self.largest_face,
                                          device=self.device, max_side=self.detect_size)
        return self._detector

    # ---- on features and faces ----------------------------------------------------------------
    def decision_function(self, features) -> np.ndarray:
        return self.heads.scores(features).cpu().numpy()

    def predict_proba(self, features) -> np.ndarray:
        return self.heads.probabilities(self.heads.scores(features)).cpu().numpy()

    def predict(self, features, names=None) -> np.ma.MaskedArray:
        """(n, 40) decisions, masked on rows with no decision: a NaN row (an input with no face
        in ``extract``'s features) is unknown, never a confident "absent". Each such row is named
        in a warning, by ``names[i]`` when given."""
        scores = self.decision_function(features)
        undecided = ~np.isfinite(scores).all(axis=1)
        if undecided.any():
            rows = np.flatnonzero(undecided)
            which = [str(names[i]) if names is not None else f"row {i}" for i in rows[:MAX_NAMED]]
            more = f" and {len(rows) - MAX_NAMED} more" if len(rows) > MAX_NAMED else ""
            warnings.warn(f"no decision for {', '.join(which)}{more}: features are NaN (no face found); "
                          f"those rows are masked", UndecidedWarning, stacklevel=2)
        return np.ma.masked_array(scores > 0, mask=np.repeat(undecided[:, None], scores.shape[1], axis=1))

    def score_faces(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 64, 64, 3) uint8 faces -> (scores, probabilities), each (N, 40); one transfer back."""
        import torch
        feats = self.encoder.encode_tensor(torch.from_numpy(np.require(faces, np.uint8, ['C', 'W'])))
        scores = self.heads.scores(feats)
        probs = self.heads.probabilities(scores)
        both = torch.stack([scores, probs]).cpu().numpy()
        return both[0], both[1]

    # ---- on files -----------------------------------------------------------------------------
    def predict_images(self, items, names=None, progress: bool = False, chunk: int = 64, **kw) -> list[dict]:
        """One record per input (per sampled frame of a video): {"file", "error", "faces": [{box,
        confidence, landmarks, attributes}]}, plus "frame" and "time_s" for a video's frames.

        A failing input gets its error recorded and the others go on.
        """
        return list(self.iter_records(items, names, progress, chunk, **kw))

    def iter_records(self, items, names=None, progress: bool = False, chunk: int = 64, every: int | None = None,
                     fps: float | None = None, annotate_dir=None):
        """``predict_images`` as a stream: records are yielded ``chunk`` inputs (or frames) at a
        time, so a caller can write them out while the rest is computed (memory stays flat).
        Video files (faceattr.faces.video) are sampled ``every`` N frames or at ``fps``;
        ``annotate_dir`` receives each photo or frame with its faces drawn."""
        items = list(items)
        names = names or [source_name(i) for i in items]
        bar = None
        if progress:
            from tqdm import tqdm
            has_video = any(is_video_path(i) for i in items)
            bar = tqdm(total=None if has_video else len(items), desc="predicting",
                       unit="frame" if has_video else "img")
        used: set[str] = set()
        try:
            for group in chunked(expand_inputs(items, names, every, fps), chunk):
                yield from self._group_records(group, annotate_dir, used)
                if bar is not None:
                    bar.update(len(group))
        finally:
            if bar is not None:
                bar.close()

    def _group_records(self, group, annotate_dir, used: set[str]):
        todo = [u for u in group if u.error is None]
        prepared = prepare_many([u.item for u in todo], self.align,
                                self.detector if self.align == "auto" else None, [u.name for u in todo],
                                keep_images=annotate_dir is not None)
        by_unit = dict(zip(map(id, todo), zip(prepared, self._records(prepared))))
        for u in group:
            if u.error is not None:  # a video that could not be decoded
                yield {"file": u.name, **u.where, "error": u.error, "faces": []}
                continue
            p, record = by_unit[id(u)]
            record = {"file": record["file"], **u.where, "error": record["error"], "faces": record["faces"]}
            if annotate_dir is not None and not record["error"]:
                record["error"] = _annotate(p, u, record, annotate_dir, used)
            yield record

    def _records(self, prepared: list[PreparedImage]) -> list[dict]:
        all_faces = [p.faces for p in prepared if len(p.faces)]
        if all_faces:
            scores, probs = self.score_faces(np.concatenate(all_faces))
        else:
            scores = probs = np.zeros((0, len(ATTRIBUTE_NAMES)), np.float32)
        return build_records(prepared, scores, probs)


def _annotate(p: PreparedImage, unit, record: dict, folder, used: set[str]) -> str | None:
    """Draw the record on the photo decoded for it (never the file read again: it may have changed
    or gone); a failure to write is that input's error, and the batch goes on."""
    from .annotate import save_annotated
    img = p.image if p.image is not None else unit.item
    scale = p.scale if p.image is not None else 1.0
    if not isinstance(img, Image.Image):  # aligned inputs keep no photo: draw on the face crop
        img, scale = Image.fromarray(p.faces[0]), 1.0
    try:
        save_annotated(img, record, folder, used, scale=scale)
    except (OSError, ValueError) as e:
        name = record["file"]
        return f"{name}: annotation not written ({clean_message(str(e), name)})"
    return None


def build_records(prepared: list[PreparedImage], scores: np.ndarray, probs: np.ndarray) -> list[dict]:
    """Records of prepared inputs from the scores and probabilities (N, 40) of all their faces, in
    order: the JSON schema of ``faceattr predict`` and ``faceattr serve``."""
    attrs = attribute_records(scores, probs)
    out, k = [], 0
    for p in prepared:
        faces = []
        for j in range(len(p.faces)):
            face = p.detections[j].to_dict() if p.detections else {"box": None, "confidence": None, "landmarks": None}
            face["attributes"] = attrs[k]
            faces.append(face)
            k += 1
        out.append({"file": p.name, "error": p.error, "faces": faces})
    return out


__all__ = ["AttributePredictor", "UndecidedWarning", "build_records", "collect_inputs", "ATTRIBUTE_NAMES"]
