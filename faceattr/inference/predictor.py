"""``AttributePredictor``: photos in, 40 attributes per face out."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.attributes import ATTRIBUTE_NAMES
from ..device import resolve_device
from ..faces.images import clean_message, is_image_path, source_name
from ..faces.options import FaceOptions, options_from
from ..faces.video import EVERY_FRAME, FrameSampling, is_video_path
from .heads import DEFAULT_DECISION
from .pipeline import FacePipeline
from .results import FrameResult
from ..errors import InputError


def collect_inputs(paths) -> tuple[list[Path], list[Path]]:
    """(inputs, skipped): files as given (a missing one stays, to be reported as that input's
    error), and every image or video file under each directory, recursively and sorted; files in
    those directories with another extension, and the pictures an earlier ``--annotate`` drew
    (``*.annotated.png``: a run's outputs are never its inputs), are returned as skipped. What is
    named like an image but is not a readable file (a broken link, a FIFO, a socket, a device) is
    an input too, so it gets its own error saying what it is, instead of vanishing."""
    from .annotate import is_annotated_output
    out, skipped = [], []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if not f.is_dir()):
                wanted = (is_image_path(f) or is_video_path(f)) and not is_annotated_output(f)
                (out if wanted else skipped).append(f)
        else:
            out.append(p)
    return out, skipped


MAX_NAMED = 10  # rows a warning names before "and N more"


class UndecidedWarning(UserWarning):
    """Rows of features that give no decision (NaN: no face was found in that input)."""


class AttributePredictor:
    """The shipped views and the 40 linear heads, applied as one (40 x features) product.

    ``faces``: how faces are found and prepared (``FaceOptions``: alignment, largest face only,
    minimum face size, detection size). ``decision``: the rule that makes ``present``
    (faceattr.inference.heads.DECISION_RULES): "accuracy", the sign of the score (the paper's
    rule), or "balanced", per-attribute thresholds chosen on val that find rare attributes (or
    another operating point the heads carry). Probabilities are the calibrated ones whatever the
    rule. The face options as separate keywords (``align=``, ...) still work, deprecated.
    """

    def __init__(self, weights="pretrained", device=None, batch_size: int | None = None,
                 faces: FaceOptions | None = None, decision: str = DEFAULT_DECISION, **legacy):
        from .bundle import Bundle
        self.bundle = Bundle.load(weights)
        self.pipeline = FacePipeline.from_bundle(self.bundle, device=resolve_device(device), batch_size=batch_size,
                                                 options=options_from(faces, legacy, "AttributePredictor"))
        if len(self.heads.bias) != len(ATTRIBUTE_NAMES):
            raise InputError(f"{self.bundle.root}: heads must have {len(ATTRIBUTE_NAMES)} rows, got {len(self.heads.bias)}")
        self.heads.threshold(decision)  # an unknown rule fails here, naming those there are
        self.decision = decision

    encoder = property(lambda self: self.pipeline.encoder)
    heads = property(lambda self: self.pipeline.heads)
    device = property(lambda self: self.pipeline.device)
    options = property(lambda self: self.pipeline.options)
    detector = property(lambda self: self.pipeline.detector())

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
        return np.ma.masked_array(scores > self.heads.threshold(self.decision), mask=np.repeat(undecided[:, None], scores.shape[1], axis=1))

    def score_faces(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 64, 64, 3) uint8 faces -> (scores, probabilities), each (N, 40)."""
        encoded = self.pipeline.encode(faces)
        return encoded.scores, encoded.probabilities

    # ---- on files -----------------------------------------------------------------------------
    def predict_images(self, items, names=None, progress: bool = False, chunk: int = 64, **kw) -> list[FrameResult]:
        """One ``FrameResult`` per input (per sampled frame of a video); ``to_dict()`` is its JSON
        record, ``faceattr.inference.results.to_df`` the table of them. A failing input gets its
        error recorded and the others go on."""
        return list(self.iter_results(items, names, progress, chunk, **kw))

    def iter_results(self, items, names=None, progress: bool = False, chunk: int = 64,
                     sampling: FrameSampling = EVERY_FRAME, annotate_dir=None):
        """``predict_images`` as a stream: results are yielded ``chunk`` inputs (or frames) at a
        time, so a caller can write them out while the rest is computed (memory stays flat).
        Video files (faceattr.faces.video) give the frames ``sampling`` takes; ``annotate_dir``
        receives each photo or frame with its faces drawn."""
        items = list(items)
        names = names or [source_name(i) for i in items]
        bar = _progress_bar(items) if progress else None
        used: set[str] = set()
        try:
            for results in self.pipeline.run(items, names, chunk, sampling, keep_images=annotate_dir is not None,
                                             decision=self.decision):
                for r in results:
                    if annotate_dir is not None and not r.error:
                        r.error = _annotate(r, annotate_dir, used)
                    yield r
                if bar is not None:
                    bar.update(len(results))
        finally:
            if bar is not None:
                bar.close()

    def iter_records(self, items, names=None, progress: bool = False, chunk: int = 64, **kw):
        """``iter_results``' JSON records (``FrameResult.to_dict()``)."""
        return (r.to_dict() for r in self.iter_results(items, names, progress, chunk, **kw))


def _progress_bar(items):
    from tqdm import tqdm
    has_video = any(is_video_path(i) for i in items)
    return tqdm(total=None if has_video else len(items), desc="predicting", unit="frame" if has_video else "img")


def _annotate(r: FrameResult, folder, used: set[str]) -> str | None:
    """Draw the result on the photo decoded for it (never the file read again: it may have changed
    or gone); a failure to write is that input's error, and the batch goes on."""
    from .annotate import save_annotated
    img, scale = r.image, r.scale
    if not isinstance(img, Image.Image):  # aligned inputs keep no photo: draw on the face crop
        img, scale = Image.fromarray(r.faces[0].crop), 1.0
    record = r.to_dict()
    try:
        save_annotated(img, record, folder, used, scale=scale)
    except (OSError, ValueError) as e:
        return f"{r.name}: annotation not written ({clean_message(str(e), r.name)})"
    return None


__all__ = ["AttributePredictor", "UndecidedWarning", "collect_inputs", "ATTRIBUTE_NAMES"]
