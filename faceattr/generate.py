"""The generative side (paper sections 4.2-4.3): reconstruct, sample, interpolate, manipulate, t-SNE."""
from __future__ import annotations

import numpy as np

from .attributes import ATTRIBUTE_NAMES

MAX_PER_CLASS = 2000


def attribute_vectors(latents: np.ndarray, labels: np.ndarray, slices: dict, max_per_class: int = MAX_PER_CLASS,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Per view: (40, latent_dim) = mean latent of up to ``max_per_class`` positive faces minus the
    mean of up to ``max_per_class`` negative ones (a seeded random draw when there are more)."""
    rng = np.random.default_rng(seed)
    out = {}
    for view, sl in slices.items():
        z = latents[:, sl]
        vecs = np.zeros((len(ATTRIBUTE_NAMES), z.shape[1]), np.float32)
        for a in range(len(ATTRIBUTE_NAMES)):
            pos, neg = np.flatnonzero(labels[:, a] == 1), np.flatnonzero(labels[:, a] == 0)
            if len(pos) == 0 or len(neg) == 0:
                continue
            pos = rng.choice(pos, min(len(pos), max_per_class), replace=False)
            neg = rng.choice(neg, min(len(neg), max_per_class), replace=False)
            vecs[a] = z[pos].mean(0) - z[neg].mean(0)
        out[view] = vecs
    return out
