"""Multi-view features of a CelebA split, kept in the cache (faceattr.cache) keyed by the views'
sha256 and the split's images, so refitting heads or baselines never re-encodes a face."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from ..data.celeba import CelebA


class FeatureCache:
    """Multi-view features of a dataset, on disk keyed by the weights' sha256 and the image list."""

    def __init__(self, bundle, views=None, device=None, batch_size: int | None = None, cache_dir=None,
                 use_cache: bool = True):
        self.bundle = bundle
        self.views = list(views) if views else bundle.views
        self.device, self.batch_size = device, batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.use_cache = use_cache
        self._encoder = None
        self.timings: dict[str, float] = {}

    def key(self, ds: CelebA) -> str:
        # The views' own hashes, not the bundle's: refitting the heads must not invalidate features.
        views = ",".join(f"{v}:{self.bundle.view_entry(v)['sha256']}" for v in self.views)
        return hashlib.sha256(f"{views}|{ds.cache_key()}".encode()).hexdigest()[:20]

    def features(self, ds: CelebA, crops: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
        from ..cache import cached_array
        return cached_array(f"features-{self.key(ds)}.npy", lambda a: a.shape[0] == len(ds),
                                  lambda: self._compute(ds, crops, progress), folder=self.cache_dir,
                                  use_cache=self.use_cache)

    def _compute(self, ds: CelebA, crops: np.ndarray | None, progress: bool) -> np.ndarray:
        t = time.perf_counter()
        if crops is None:
            crops = ds.crops(progress=progress, use_cache=self.use_cache)
        self.timings["decode_s"] = self.timings.get("decode_s", 0) + time.perf_counter() - t
        if self._encoder is None:
            from .encoder import MultiViewEncoder
            self._encoder = MultiViewEncoder.from_bundle(self.bundle, self.views, device=self.device,
                                                         batch_size=self.batch_size)
        t = time.perf_counter()
        out = []
        chunks = range(0, len(crops), 2048)
        if progress:
            from tqdm import tqdm
            chunks = tqdm(chunks, desc=f"extracting {ds.split}", unit="chunk")
        for s in chunks:
            out.append(self._encoder.encode(crops[s:s + 2048]))
        feats = np.concatenate(out) if out else np.zeros((0, self._encoder.n_features), np.float32)
        self.timings["extract_s"] = self.timings.get("extract_s", 0) + time.perf_counter() - t
        self.timings["extract_images"] = self.timings.get("extract_images", 0) + len(crops)
        return feats
