"""Features and attributes of a Ray Data dataset of images, on a pool of actors that each keep the
views and heads loaded (``pip install 'faceattr[ray]'``).

    import ray
    from faceattr.inference.ray_data import predict_dataset
    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)   # or from_items
    out = predict_dataset(ds, concurrency=8, num_gpus=1)                         # one GPU per actor
    out.write_parquet("s3://bucket/faceattr/")

Videos (by their path's extension, as paths or as bytes) are read as their frames, sampled
``every`` N frames or at ``fps`` (actor options). Each output row is one face (``face`` = 0, 1,
...) or one photo or frame without a usable face (``face`` = -1 with its ``error``, or "no face
found"): ``path``, ``frame`` and ``time_s`` (-1 and NaN for a photo), ``face``, ``error``, ``box``
(4 floats, NaN without detection), ``features`` (the 500 multi-view values), and per attribute its probability
(``Smiling``, ...). The rows equal ``AttributePredictor``'s and ``MultiViewVAEFeatures``' on the
same inputs in one process.
"""
from __future__ import annotations

import numpy as np

from ..data.attributes import ATTRIBUTE_NAMES
from ..faces.options import FaceOptions, options_from
from ..faces.video import FrameSampling
from .pipeline import CHUNK


class FaceAttrActor:
    """The callable class ``map_batches`` runs in each actor: built once, then fed batches.
    ``faces``: how faces are found (``FaceOptions``); ``every`` / ``fps``: a video's frames."""

    def __init__(self, weights="pretrained", faces: FaceOptions | None = None, device=None,
                 batch_size: int | None = None, every: int | None = None, fps: float | None = None, **legacy):
        from .bundle import Bundle
        from .pipeline import FacePipeline
        self.pipeline = FacePipeline.from_bundle(Bundle.load(weights), device=device, batch_size=batch_size,
                                                 options=options_from(faces, legacy, "FaceAttrActor"))
        self.sampling = FrameSampling(every, fps)

    def __call__(self, batch: dict) -> dict:
        items, names = _batch_inputs(batch)
        rows = _Rows(self.pipeline.encoder.n_features)
        # The batch's photos together, and a video's frames CHUNK at a time (a chunk of len(items)
        # would encode a lone video's frames one by one).
        for results in self.pipeline.run(items, names, chunk=max(CHUNK, len(items)), sampling=self.sampling):
            for r in results:
                rows.add(r)
        return rows.columns()


def _batch_inputs(batch: dict) -> tuple[list, list[str]]:
    """A batch's inputs and names: ``bytes`` (with ``path`` for names; a video's bytes are read as
    a video when its path says so) or ``path`` alone."""
    from ..faces.video import VideoBytes, is_video_path
    if "bytes" not in batch:
        names = [str(x) for x in batch["path"]]
        return list(names), names
    data = [bytes(b) for b in batch["bytes"]]
    names = [str(x) for x in batch["path"]] if "path" in batch else [f"<item {i}>" for i in range(len(data))]
    return [VideoBytes(d, n) if is_video_path(n) else d for d, n in zip(data, names)], names


class _Rows:
    """Output columns, one row per face, or one per photo or frame without one (``face`` -1)."""

    def __init__(self, n_features: int):
        self.n_features = n_features
        self.cols = {k: [] for k in ("path", "frame", "time_s", "face", "error", "box", "features", "probs")}

    def _append(self, r, face: int, error: str, box, features, probs) -> None:
        for key, value in zip(self.cols, (r.name, r.frame, r.time_s, face, error, box, features, probs)):
            self.cols[key].append(value)

    def add(self, r) -> None:
        if not r.faces:
            nan = np.float32(np.nan)
            self._append(r, -1, r.error or "no face found", np.full(4, nan), np.full(self.n_features, nan),
                         np.full(len(ATTRIBUTE_NAMES), nan))
        for f in r.faces:
            box = f.detection.box if f.detection else (np.nan,) * 4
            self._append(r, f.index, "", np.asarray(box, np.float32), f.features, f.probabilities)

    def columns(self) -> dict:
        c = self.cols
        frames = [-1 if f is None else f for f in c["frame"]]  # a video that failed to decode
        times = [np.nan if t is None else t for t in c["time_s"]]
        out = {"path": np.asarray(c["path"], dtype=object), "frame": np.asarray(frames, np.int64),
               "time_s": np.asarray(times, np.float64), "face": np.asarray(c["face"], np.int64),
               "error": np.asarray(c["error"], dtype=object),
               "box": np.stack(c["box"]).astype(np.float32) if c["box"] else np.zeros((0, 4), np.float32),
               "features": (np.stack(c["features"]).astype(np.float32) if c["features"]
                            else np.zeros((0, self.n_features), np.float32))}
        probs = np.stack(c["probs"]).astype(np.float32) if c["probs"] else np.zeros((0, len(ATTRIBUTE_NAMES)), np.float32)
        for i, name in enumerate(ATTRIBUTE_NAMES):
            out[name] = probs[:, i]
        return out


def predict_dataset(ds, concurrency: int = 1, batch_size: int = 64, num_gpus: float = 0, num_cpus: float = 1,
                    **actor_kwargs):
    """``ds`` (a ``ray.data.Dataset`` with a ``path`` column of image paths, or ``bytes`` and
    ``path`` from ``read_binary_files(..., include_paths=True)``) -> a dataset of one row per face.

    ``concurrency`` actors, each holding the models (on its GPU when ``num_gpus`` > 0); inputs go
    in batches of ``batch_size``. ``actor_kwargs`` go to ``FaceAttrActor`` (weights, faces=FaceOptions(...), every, ...)."""
    if num_gpus and "device" not in actor_kwargs:
        actor_kwargs["device"] = "cuda"
    return ds.map_batches(FaceAttrActor, fn_constructor_kwargs=actor_kwargs, batch_size=batch_size,
                          batch_format="numpy", concurrency=concurrency, num_gpus=num_gpus, num_cpus=num_cpus)
