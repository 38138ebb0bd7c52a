"""The faces a view trains on and the order it sees them in: ``FaceFeed``.

A feed holds the labelled set's faces and any extra (unlabeled) faces, which training samples
from as one more source (``TrainConfig.extra_share``), and the held-out faces of the
generalisation measure. ``put`` moves them to the run's device; ``order`` draws an epoch;
``augment`` applies ``TrainConfig.augment``."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..nn.config import SHIFT_PIXELS, TrainConfig
from .runtime import Placement

# The seeds of the feed's streams, derived from TrainConfig.seed, primes apart from the noise's
# (faceattr.train.networks).
AUGMENT_SEED_FACTOR = 104_729  # flips and shifts, on the CPU
EPOCH_ORDER_SEED_FACTOR = 100_003  # each epoch's shuffle, shared by all processes


def _passes(n: int, count: int, g: torch.Generator) -> torch.Tensor:
    """``count`` indices of 0..n-1: as many reshuffled passes over them as it takes."""
    return torch.cat([torch.randperm(n, generator=g) for _ in range(-(-count // n))])[:count]


class FaceFeed:
    """``images``: the labelled set's (N, 64, 64, 3) uint8 training crops; ``extra``: unlabeled
    faces drawn from as well; ``held_out``: faces never trained on (the generalisation measure);
    ``description``: what the faces are ("ROOT train split, 13603 faces"), checked on resume."""

    def __init__(self, images: np.ndarray, extra: np.ndarray | None = None, held_out: np.ndarray | None = None,
                 description: str | None = None):
        self.n_main = len(images)  # the labelled faces come first, the extra faces after
        self._faces = images if extra is None else np.concatenate([images, extra])
        self.held_out = None if held_out is None else torch.from_numpy(np.require(held_out, np.uint8, ["C", "W"]))
        self.description = description
        self.images: torch.Tensor | None = None

    def put(self, cfg: TrainConfig, place: Placement, side: int) -> "FaceFeed":
        """The faces on the device, after checking there is a batch of them per process."""
        faces = self._faces
        if faces.ndim != 4 or faces.shape[1:] != (side, side, 3):
            raise InputError(f"images must be (N, {side}, {side}, 3) uint8, got {faces.shape}")
        if len(faces) // place.world < cfg.batch_size:
            raise InputError(f"{len(faces)} images are fewer than one batch of {cfg.batch_size} per process")
        self.cfg, self.place = cfg, place
        self.epoch_images = cfg.epoch_images or len(faces)
        self.steps_per_epoch = self.epoch_images // place.world // cfg.batch_size
        self.images = torch.from_numpy(np.require(faces, np.uint8, ["C", "W"])).to(place.device)
        self.augment_rng = torch.Generator()  # on the CPU: the draws are per face, not per pixel
        self.augment_rng.manual_seed(cfg.seed * AUGMENT_SEED_FACTOR + place.rank)
        return self

    def order(self, epoch: int) -> torch.Tensor:
        """The epoch's draws, this process's share: reshuffled passes over the faces; with
        ``extra_share``, each batch takes that share from the extra faces and the rest from the
        labelled set's, each set in its own reshuffled passes."""
        cfg, place = self.cfg, self.place
        g = torch.Generator().manual_seed(cfg.seed * EPOCH_ORDER_SEED_FACTOR + epoch)
        n_extra = len(self.images) - self.n_main
        if n_extra == 0 or cfg.extra_share is None:  # one pool: the extra faces in proportion to their number
            perm = _passes(len(self.images), self.epoch_images, g)
        else:
            b = cfg.batch_size
            k = int(round(cfg.extra_share * b))
            batches = -(-self.epoch_images // b)
            main = _passes(self.n_main, batches * (b - k), g).view(batches, b - k)
            extra = (self.n_main + _passes(n_extra, batches * k, g)).view(batches, k)
            perm = torch.cat([main, extra], dim=1).flatten()
        return perm[: self.epoch_images][place.rank::place.world][: self.steps_per_epoch * cfg.batch_size]

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """TrainConfig.augment applied to a (B, 3, H, W) batch; new tensor, same memory format."""
        if not self.cfg.augment:
            return x
        b = x.shape[0]
        if "flip" in self.cfg.augment:
            flip = (torch.rand(b, generator=self.augment_rng) < 0.5).to(x.device)
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        if "shift" in self.cfg.augment:
            s, side = SHIFT_PIXELS, x.shape[-1]
            d = torch.randint(0, 2 * s + 1, (b, 2), generator=self.augment_rng).tolist()
            padded = torch.nn.functional.pad(x, (s, s, s, s), mode="replicate")  # (B, 3, H+2s, W+2s)
            x = torch.stack([padded[i, :, dy:dy + side, dx:dx + side] for i, (dy, dx) in enumerate(d)])
        return x.contiguous(memory_format=self.place.fmt)
