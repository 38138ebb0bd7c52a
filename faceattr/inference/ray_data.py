"""Features and attributes of a Ray Data dataset of images, on a pool of actors that each keep the
views and heads loaded (``pip install 'faceattr[ray]'``).

    import ray
    from faceattr.inference.ray_data import predict_dataset
    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)   # or from_items
    out = predict_dataset(ds, concurrency=8, num_gpus=1)                         # one GPU per actor
    out.write_parquet("s3://bucket/faceattr/")

Each output row is one face (``face`` = 0, 1, ...) or one input without a usable face (``face`` =
-1 with its ``error``, or "no face found"): ``path``, ``face``, ``error``, ``box`` (4 floats, NaN
without detection), ``features`` (the 500 multi-view values), and per attribute its probability
(``Smiling``, ...). The rows equal ``AttributePredictor``'s and ``MultiViewVAEFeatures``' on the
same inputs in one process.
"""
from __future__ import annotations

import numpy as np

from ..data.attributes import ATTRIBUTE_NAMES
from ..faces.detect import DETECT_MAX_SIDE


class FaceAttrActor:
    """The callable class ``map_batches`` runs in each actor: built once, then fed batches."""

    def __init__(self, weights="pretrained", align: str = "auto", largest_face: bool = False,
                 min_face_size: int = 20, device=None, batch_size: int | None = None,
                 detect_size: int = DETECT_MAX_SIDE):
        from .predictor import AttributePredictor
        self.predictor = AttributePredictor(weights, device=device, batch_size=batch_size, align=align,
                                            largest_face=largest_face, min_face_size=min_face_size,
                                            detect_size=detect_size)

    def __call__(self, batch: dict) -> dict:
        import torch
        from ..faces.prepare import prepare_many
        p = self.predictor
        if "bytes" in batch:
            items = [bytes(b) for b in batch["bytes"]]
            names = [str(x) for x in batch["path"]] if "path" in batch else [f"<item {i}>" for i in range(len(items))]
        else:
            items = names = [str(x) for x in batch["path"]]
        prepared = prepare_many(items, p.align, p.detector if p.align == "auto" else None, names)
        rows = {"path": [], "face": [], "error": [], "box": [], "features": []}
        probs = []
        faces = [f for x in prepared for f in x.faces]
        if faces:
            feats = p.encoder.encode_tensor(torch.from_numpy(np.stack(faces)))
            pr = p.heads.probabilities(p.heads.scores(feats)).cpu().numpy()
            feats = feats.cpu().numpy()
        k = 0
        nan_row = np.full(p.encoder.n_features, np.nan, np.float32)
        for x in prepared:
            if not len(x.faces):
                rows["path"].append(x.name)
                rows["face"].append(-1)
                rows["error"].append(x.error or "no face found")
                rows["box"].append(np.full(4, np.nan, np.float32))
                rows["features"].append(nan_row)
                probs.append(np.full(len(ATTRIBUTE_NAMES), np.nan, np.float32))
            for j in range(len(x.faces)):
                rows["path"].append(x.name)
                rows["face"].append(j)
                rows["error"].append("")
                box = x.detections[j].box if x.detections else (np.nan,) * 4
                rows["box"].append(np.asarray(box, np.float32))
                rows["features"].append(feats[k])
                probs.append(pr[k])
                k += 1
        out = {"path": np.asarray(rows["path"], dtype=object), "face": np.asarray(rows["face"], np.int64),
               "error": np.asarray(rows["error"], dtype=object), "box": np.stack(rows["box"]),
               "features": np.stack(rows["features"]).astype(np.float32)}
        pa = np.stack(probs).astype(np.float32) if probs else np.zeros((0, len(ATTRIBUTE_NAMES)), np.float32)
        for i, name in enumerate(ATTRIBUTE_NAMES):
            out[name] = pa[:, i]
        return out


def predict_dataset(ds, concurrency: int = 1, batch_size: int = 64, num_gpus: float = 0, num_cpus: float = 1,
                    **actor_kwargs):
    """``ds`` (a ``ray.data.Dataset`` with a ``path`` column of image paths, or ``bytes`` and
    ``path`` from ``read_binary_files(..., include_paths=True)``) -> a dataset of one row per face.

    ``concurrency`` actors, each holding the models (on its GPU when ``num_gpus`` > 0); inputs go
    in batches of ``batch_size``. ``actor_kwargs`` go to ``FaceAttrActor`` (weights, align, ...)."""
    if num_gpus and "device" not in actor_kwargs:
        actor_kwargs["device"] = "cuda"
    return ds.map_batches(FaceAttrActor, fn_constructor_kwargs=actor_kwargs, batch_size=batch_size,
                          batch_format="numpy", concurrency=concurrency, num_gpus=num_gpus, num_cpus=num_cpus)
