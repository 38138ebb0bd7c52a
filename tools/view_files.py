"""Writing fine-tuned views as bundle files (what tools/finetuned_views.py and
experiments/recipe_multiview.py build bundles with); not part of the faceattr package, which
only reads bundles."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceattr.inference.bundle import Bundle, BundleError


# What a fine-tuned view keeps of the view it started from: enough to trace every training back to
# the first (a view fine-tuned twice nests the first fine-tune's record inside the second's).
LINEAGE_KEYS = ("sha256", "steps", "epochs", "train_config", "training_device", "training_seconds",
                "fine_tune", "fine_tuned_from")


def write_fine_tuned_view(src: str | os.PathLike, base: dict, dst: str | os.PathLike,
                          faces: np.ndarray, **fine_tune) -> dict:
    """Write the view trained in ``src`` (a ``faceattr train`` view.pt, started with ``--init``
    from the bundle view whose manifest entry is ``base``) as a bundle view file ``dst``: float16,
    its meta counting both trainings' steps (epochs stay the first training's: a fine-tune's epoch
    is another size), ``fine_tune`` (its steps and epochs plus ``fine_tune``'s keys) and
    ``fine_tuned_from`` (the base's record). Refuses a run that did not start from ``base``.
    ``faces`` (N, 64, 64, 3 uint8) measure what float16 storage moves. Returns the new meta."""
    import torch
    from faceattr.nn import checkpoint as ckpt
    obj = ckpt.load(src)
    meta = obj.get("meta", {})
    started_from = meta.get("train_config", {}).get("init_sha256")
    if started_from != base["sha256"]:
        raise BundleError(f"{src}: not fine-tuned from the bundle's view {base.get('file', '')} "
                          f"(its init_sha256 is {str(started_from)[:12]}, the view's {base['sha256'][:12]})")
    vae32 = ckpt.view_from(obj)
    new = {**meta, "steps": base["steps"] + meta["steps"], "epochs": base["epochs"],
           "data": base.get("data", meta.get("data")), "storage": "float16",
           "fine_tune": {"steps": meta["steps"], "epochs": meta["epochs"], **fine_tune},
           "fine_tuned_from": {k: base[k] for k in LINEAGE_KEYS if k in base}}
    drift = ckpt.float16_drift(vae32, faces)["max_abs_diff"]
    # a run handed over already in float16 (tools/train_views_gpu.py) measured its rounding
    # against its float32 weights before storing; measured again here it would read 0
    drift = max(drift, meta.get("float16_storage_max_latent_change", 0.0))
    new["float16_storage_max_latent_change"] = round(drift, 7)
    ckpt.save_view(vae32, dst, meta=new, dtype=torch.float16)
    return new


def write_view_set(bundle: "Bundle", out: str | os.PathLike, fine_tuned: dict[str, tuple[os.PathLike, dict]],
                   faces: np.ndarray) -> dict[str, dict]:
    """The five ``view_<layer>.pt`` files of a bundle in ``out``: for each layer in ``fine_tuned``
    (layer -> (run's view.pt, its fine_tune record)) the run, written by ``write_fine_tuned_view``;
    every other layer the bundle's own file, byte for byte. Returns the written views' meta."""
    from faceattr.atomic import copy_file
    from faceattr.nn.taps import LAYER_NAMES
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metas = {}
    for v in LAYER_NAMES:
        dst = out / f"view_{v}.pt"
        if v in fine_tuned:
            src, record = fine_tuned[v]
            metas[v] = write_fine_tuned_view(src, bundle.view_entry(v), dst, faces, **record)
        else:
            copy_file(bundle.file(bundle.view_entry(v)), dst)
    return metas
