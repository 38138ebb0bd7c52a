"""The crop geometry shared by training, the CelebA reader and face alignment. Defined here only.

CelebA's aligned images are 178x218 (width x height). The training crop is the box
(left=30, top=40, right=168, bottom=178), 138x138, resized to 64x64: the crop the paper's
authors used for their 64x64 CelebA models (docs/method.md, "Data").
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from ..errors import InputError

ALIGNED_SIZE = (178, 218)  # (width, height) of a CelebA aligned image
CROP_BOX = (30, 40, 168, 178)  # (left, top, right, bottom) in aligned-image pixels
IMAGE_SIZE = 64  # side of the square face the models see

CROP_SIDE = CROP_BOX[2] - CROP_BOX[0]
assert CROP_SIDE == CROP_BOX[3] - CROP_BOX[1]


def crop_aligned(img: Image.Image) -> np.ndarray:
    """A CelebA aligned RGB image -> the (64, 64, 3) uint8 training crop."""
    if img.size != ALIGNED_SIZE:
        raise InputError(
            f"expected a CelebA aligned image of {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} pixels, "
            f"got {img.size[0]}x{img.size[1]}"
        )
    face = img.convert("RGB").crop(CROP_BOX).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    return np.asarray(face, dtype=np.uint8)


def aligned_to_crop_matrix() -> np.ndarray:
    """2x3 affine map from aligned-image coordinates to 64x64 crop coordinates."""
    s = IMAGE_SIZE / CROP_SIDE
    return np.array([[s, 0.0, -CROP_BOX[0] * s], [0.0, s, -CROP_BOX[1] * s]])
