"""The decorrelation study (not in the paper; its result, "no gain", is in docs/results.md): train
one view with a penalty on the batch correlation of its latent means with the other views',
through the trainer's extension point (a loss term, faceattr.train.terms).

    python -m experiments.decorrelate --root CELEBA_MINI --layer relu2_1 --weight 5 --out runs/decor
    python -m experiments.decorrelate --root CELEBA_MINI --init pretrained:relu2_1 --weight 5 --from pretrained

A view whose latent carries what the other views already carry adds little to the multi-view
feature; the term pushes this view's latent away from the others' linear span. The other views
(``--from``: the shipped bundle, or a folder of view_*.pt) stay frozen; their latent means of
every training face are computed once, before training, so the faces are used as stored (no
augmentation, no extra faces). ``--resume`` continues a run with the same term.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.nn import checkpoint as ckpt
from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.nn.taps import LAYER_NAMES
from faceattr.train import FaceFeed, Runtime, Trainer, held_out_faces, load_init


def cross_correlation(a, b, eps: float = 1e-4):
    """Per column of ``a`` (B, d), the sum of its squared batch correlations with the columns of
    ``b`` (B, e), averaged over a's columns: 0 when a's latent repeats nothing of b's linearly.
    Its floor on independent columns is about e / B (sampling noise of a batch correlation)."""
    a, b = a.float(), b.float()
    a = (a - a.mean(0)) / (a.std(0) + eps)
    b = (b - b.mean(0)) / (b.std(0) + eps)
    r = a.T @ b / a.shape[0]  # (d, e)
    return r.pow(2).sum(dim=1).mean()


class Decorrelation:
    """The loss term: ``weight`` x the cross-correlation of the batch's latent means with the
    other views' latent means of the same faces (``others``: (N, e), one row per feed face)."""

    name = "decorrelation"

    def __init__(self, weight: float, others: np.ndarray, source: str = "pretrained"):
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight must be at least 0 and finite, got {weight}")
        self.weight, self.source = weight, source
        self.others = torch.as_tensor(np.asarray(others, np.float32))

    def __call__(self, batch):
        others = self.others.to(batch.mean.device)[batch.idx]
        return self.weight * cross_correlation(batch.mean, others)

    def record(self) -> dict:
        return {"weight": self.weight, "source": self.source, "other_dims": int(self.others.shape[1])}


def other_view_latents(source: str, model_cfg: ModelConfig, images: np.ndarray, device="auto") -> np.ndarray:
    """The latent means (N, e) of ``images`` under every view of ``source`` ("pretrained": the
    shipped bundle, or a folder of view_*.pt files) except the one being trained (same layers)."""
    from faceattr.inference.bundle import Bundle
    from faceattr.inference.encoder import MultiViewEncoder
    if source == "pretrained":
        bundle = Bundle.load()
        vaes = {v: bundle.load_vae(v) for v in bundle.views if v != model_cfg.name}
    else:
        files = sorted(Path(source).glob("view_*.pt"))
        vaes = {f.stem.removeprefix("view_"): ckpt.view_from(ckpt.load(f)) for f in files}
        vaes = {v: vae for v, vae in vaes.items() if vae.cfg.name != model_cfg.name}
    if not vaes:
        raise ValueError(f"--from {source!r}: no view other than {model_cfg.name} to keep apart from")
    return MultiViewEncoder(vaes, device=device).encode(images)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--layer", default="relu3_1", choices=LAYER_NAMES)
    ap.add_argument("--init", default=None, help="pretrained:VIEW or a view file (the critic starts fresh)")
    ap.add_argument("--weight", type=float, default=5.0, help="weight of the decorrelation term")
    ap.add_argument("--from", dest="source", default="pretrained", help="pretrained, or a folder of view_*.pt")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--out", default="runs/decorrelate")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    tcfg = TrainConfig(epochs=args.epochs, max_images=args.max_images, init=args.init)
    model_cfg, vae_state = load_init(tcfg) if args.init else (ModelConfig(layers=(args.layer,)), None)
    ds = CelebA.load(args.root, "train", max_images=args.max_images)
    images = ds.crops()
    term = Decorrelation(args.weight, other_view_latents(args.source, model_cfg, images, args.device), args.source)
    from faceattr.nn.vgg import load_loss_network
    feed = FaceFeed(images, held_out=held_out_faces(args.root), description=f"{ds.root.resolve()} train split, {len(ds)} faces")
    res = Trainer(model_cfg, tcfg, feed, args.out, load_loss_network(), Runtime(args.device), vae_state,
                  terms=[term]).fit(resume=args.resume)
    print(f"trained {res.name} with decorrelation weight {args.weight}: {res.steps} steps -> {res.out_dir}")


if __name__ == "__main__":
    main()
