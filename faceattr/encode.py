"""Batched multi-view encoding of 64x64 faces: the fast path shared by every feature consumer."""
from __future__ import annotations

import numpy as np
import torch

from .device import autocast, memory_format, resolve_device, use_bf16
from .trainer import to_float_images


class MultiViewEncoder:
    """The encoders of several views on one device, returning the concatenated latent means.

    Batches run in inference mode, with bfloat16 autocast and channels_last where the device has
    fast bf16 (``precision="auto"``); the features stay on the device until one transfer at the end.
    """

    def __init__(self, vaes: dict, device=None, precision: str = "auto", batch_size: int = 256):
        self.device = resolve_device(device)
        self.bf16 = use_bf16(self.device, precision)
        self.fmt = memory_format(self.device, self.bf16)
        self.names = list(vaes)
        self.encoders = [vaes[n].encoder.to(self.device).to(memory_format=self.fmt).eval() for n in self.names]
        self.decoders = {n: vaes[n].decoder.to(self.device).eval() for n in self.names}
        self.batch_size = batch_size
        self.latent_dims = [e.mean.out_features for e in self.encoders]

    @property
    def n_features(self) -> int:
        return sum(self.latent_dims)

    @torch.inference_mode()
    def encode_tensor(self, faces_uint8: torch.Tensor) -> torch.Tensor:
        """(N, 64, 64, 3) uint8 -> (N, sum of latent dims) float32 on the device."""
        out = []
        for chunk in faces_uint8.split(self.batch_size):
            x = to_float_images(chunk.to(self.device, non_blocking=True), self.fmt)
            with autocast(self.device, self.bf16):
                out.append(torch.cat([e(x)[0] for e in self.encoders], dim=1).float())
        if not out:
            return torch.empty((0, self.n_features), device=self.device)
        return torch.cat(out)

    def encode(self, faces_uint8: np.ndarray) -> np.ndarray:
        faces = torch.from_numpy(np.ascontiguousarray(faces_uint8, dtype=np.uint8))
        return self.encode_tensor(faces).cpu().numpy()

    @classmethod
    def from_bundle(cls, bundle, views=None, **kw) -> "MultiViewEncoder":
        names = list(views) if views else bundle.views
        return cls({n: bundle.load_vae(n) for n in names}, **kw)
