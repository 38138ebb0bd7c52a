"""The trainer's one extension point: extra loss terms.

A term is called at every step with the batch (``StepBatch``) and returns a scalar tensor that is
added to the VAE's loss (eq. 8's ``alpha L_kl + beta L_rec``, before the adversarial term), and
logged under its ``name``. ``record()`` says what the term is (its weight, its source); it is
written in the run's log and checkpoint, and a resume with another term, or another record, is
refused. Studies live beside the product this way (experiments/ holds one that keeps a view's
latent apart from the other views'): the trainer carries none of them.

    class Sparsity:
        name = "sparsity"
        def __init__(self, weight): self.weight = weight
        def __call__(self, batch): return self.weight * batch.mean.abs().mean()
        def record(self): return {"weight": self.weight}

    Trainer(model_cfg, train_cfg, feed, out, loss_net, terms=[Sparsity(0.1)]).fit()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class StepBatch:
    """One step's batch: the faces' indices into the feed (``idx``, (B,) on the device), the
    input ``x`` (B, 3, 64, 64), the latent ``mean`` and ``logvar`` (B, latent_dim) and the
    reconstruction ``x_hat``."""

    idx: torch.Tensor
    x: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    x_hat: torch.Tensor


class LossTerm(Protocol):
    name: str

    def __call__(self, batch: StepBatch) -> torch.Tensor: ...

    def record(self) -> dict: ...


def term_records(terms) -> dict:
    return {t.name: t.record() for t in terms}
