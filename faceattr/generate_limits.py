"""The bounds of the generative commands (reconstruct, sample, interpolate, manipulate, tsne),
checked before any work; apart from faceattr.generate so that the CLI's ``--help`` needs no torch."""
from __future__ import annotations

import math
from numbers import Integral
from .errors import InputError

# Attribute vectors added to a latent at most: the page's slider range, and the command's. A
# strength of 1e30 decodes to noise, not a face with more of the attribute.
MAX_STRENGTH = 3.0
# A row of 64 tiles at scale 2 is 8,450 pixels wide, about what an image viewer still shows whole.
MAX_STEPS = 64
# A t-SNE map of n faces assigns them to cells with an (n x n) cost matrix: 4,096 faces (64 x 64)
# is 134 MB of float64.
MAX_TSNE_FACES = 4096
MAX_SAMPLES = 1024  # faces per sample grid (32 rows of 8 at scale 2)


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, Integral) or not 2 <= steps <= MAX_STEPS:
        raise InputError(f"steps must be a whole number from 2 to {MAX_STEPS}, got {steps!r}")
    return int(steps)


def check_strength(strength: float) -> float:
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and abs(strength) <= MAX_STRENGTH):
        raise InputError(f"strength must be a number from -{MAX_STRENGTH:g} to {MAX_STRENGTH:g}, got {strength!r}")
    return float(strength)
