"""Face alignment: a similarity transform from 5 detected landmarks to CelebA's aligned template,
composed with the training crop into one warp to the 64x64 face."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .geometry import IMAGE_SIZE, aligned_to_crop_matrix
from ..errors import InputError

# Mean MTCNN landmarks on CelebA aligned 178x218 images (x, y): left eye, right eye, nose,
# mouth left, mouth right (image left/right). Derived by tools/derive_template.py: MTCNN
# (facenet-pytorch 2.5.3, CPU) run on the first 2,000 train-split images of celeba-mini, the most
# confident face of each (1,994 detected), points averaged. Per-point standard deviations were
# 1.5-6.4 pixels. The mean positions in CelebA's official landmark file, (69,111), (108,111), (88,136),
# (72,152), (105,152), agree within 2 pixels.
CELEBA_TEMPLATE = np.array([
    [70.08, 112.17],
    [109.05, 112.16],
    [89.03, 136.25],
    [71.97, 153.70],
    [106.91, 153.63],
])


# How much each landmark counts in the fit (left eye, right eye, nose, mouth left, mouth right).
LANDMARK_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights=None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst (Umeyama),
    each point counted ``weights[k]`` times (default: all alike).

    src, dst: (K, 2) points. Returns a 2x3 matrix M with dst ~ M @ [x, y, 1].
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise InputError(f"need matching (K, 2) point sets with K >= 2, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(src),) or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"weights must be {len(src)} values, none negative, not all 0; got {weights!r}")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (w * (s_c ** 2).sum(1)).sum()
    if var_s <= 0:
        raise InputError("landmarks are all at one point")
    cov = (d_c * w[:, None]).T @ s_c
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1  # no reflections
    r = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 affine a after 2x3 affine b."""
    a3, b3 = np.vstack([a, [0, 0, 1]]), np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def photo_to_face_matrix(landmarks: np.ndarray, weights=None) -> np.ndarray:
    """2x3 map from photo pixels to 64x64 face pixels, through the aligned-image template, the
    landmarks counted by ``weights`` (default: LANDMARK_WEIGHTS)."""
    w = LANDMARK_WEIGHTS if weights is None else weights
    return _compose(aligned_to_crop_matrix(), similarity_transform(landmarks, CELEBA_TEMPLATE, w))


def warp_face(img: Image.Image, landmarks: np.ndarray, size: int = IMAGE_SIZE, weights=None) -> np.ndarray:
    """Align and crop one face to (size, size, 3) uint8 in a single resampling.

    The warp renders at k times the size with bilinear sampling and box-averages down by k, so a
    large face is low-pass filtered like the training crop's antialiased resize, without first
    warping to an intermediate 178x218 image.
    """
    m = photo_to_face_matrix(landmarks, weights)
    scale = math.hypot(m[0, 0], m[0, 1])  # face pixels per photo pixel
    k = int(min(8, max(1, math.ceil(1.0 / max(scale, 1e-6)))))
    mk = np.vstack([m * k, [0, 0, 1]])
    inv = np.linalg.inv(mk)[:2]
    # PIL samples at pixel centres: output (x+0.5) maps to input (u+0.5), hence the half shifts.
    shift_out = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    shift_in = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    inv_c = (shift_in @ np.vstack([inv, [0, 0, 1]]) @ shift_out)[:2]
    big = img.transform((size * k, size * k), Image.AFFINE, data=tuple(inv_c.ravel()),
                        resample=Image.BILINEAR, fillcolor=(0, 0, 0))
    if k > 1:
        big = big.reduce(k)
    return np.asarray(big.convert("RGB"), dtype=np.uint8)
