"""What a run measures besides its losses: the balancing reference of the reconstruction term,
the latent's statistics, the generalisation measure and the reconstruction grids."""
from __future__ import annotations

import sys

import torch

from ..device import autocast, memory_format
from ..grid import save_grid
from ..nn.losses import feature_loss, kl_per_sample, layer_weight
from ..nn.models import to_float_images
from ..nn.taps import LAYER_NAMES

ACTIVE_VARIANCE = 0.01  # a latent dimension is active when Var_x[E(z|x)] exceeds this
GENERALISATION_FACES = 512  # train and held-out faces each, measured at every epoch's end
LATENT_FACES = 2048  # faces the latent statistics are measured on
GRID_FACES = 16


@torch.no_grad()
def reference_terms(loss_net, images: torch.Tensor) -> dict[str, float]:
    """Each layer's weighted term (100/C_l^2) L_l when every image is replaced by the average face."""
    x = images.float()
    mean_face = x.mean(dim=0, keepdim=True)
    f_mean = loss_net(mean_face, LAYER_NAMES)
    totals = {l: 0.0 for l in LAYER_NAMES}
    for chunk in x.split(64):
        f = loss_net(chunk, LAYER_NAMES)
        for l in LAYER_NAMES:
            totals[l] += layer_weight(l) * feature_loss(f[l], f_mean[l].expand_as(f[l])).item() * len(chunk)
    return {l: v / len(x) for l, v in totals.items()}


def balancing(loss_net, images: torch.Tensor, layers, rec_balance: str) -> dict:
    """The balancing of a view's reconstruction term (docs/method.md, "Balancing a single-layer
    view"): each layer's weighted term for the average-face output, their total, and the scale
    applied to ``layers``' ("reference"; 1 for "literal")."""
    per_layer = reference_terms(loss_net, images)
    total = sum(per_layer.values())
    chosen = sum(per_layer[l] for l in layers)
    scale = total / chosen if rec_balance == "reference" else 1.0
    return {"per_layer": per_layer, "total": total, "scale": scale, "images": len(images)}


@torch.no_grad()
def latent_statistics(encoder, images_uint8: torch.Tensor, device, bf16: bool, batch: int = 256) -> dict:
    """Mean KL per sample and the number of active latent dimensions on the given faces."""
    was_training = encoder.training
    encoder.eval()
    fmt = memory_format(device, bf16)
    means, kls = [], []
    for chunk in images_uint8.split(batch):
        x = to_float_images(chunk.to(device), fmt)
        with autocast(device, bf16):
            m, lv = encoder(x)
        means.append(m.float().cpu())
        kls.append(kl_per_sample(m, lv).cpu())
    encoder.train(was_training)
    mu = torch.cat(means)
    var = mu.var(dim=0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    return {"kl_per_sample": float(torch.cat(kls).mean()),
            "active_dims": int((var > ACTIVE_VARIANCE).sum()),
            "latent_dim": int(mu.shape[1])}


def generalisation_report(vae, loss_net, feed, device, epoch: int | None = None) -> dict:
    """The view's reconstruction error and KL on up to GENERALISATION_FACES training and held-out
    faces, and their ratio; printed to stderr as the line of ``epoch`` when given."""
    from ..nn.generalisation import generalisation
    n = min(GENERALISATION_FACES, feed.n_main, len(feed.held_out))
    g = generalisation(vae, loss_net, feed.images[:n], feed.held_out[:n], device)
    if epoch is not None:
        print(f"epoch {epoch}: reconstruction error held-out/train {g['rec_ratio']:.3f} "
              f"({g['held_out_rec']:.4g} / {g['train_rec']:.4g}), KL {g['held_out_kl']:.1f} / "
              f"{g['train_kl']:.1f} nats", file=sys.stderr, flush=True)
    return g


@torch.no_grad()
def write_grid(vae, images: torch.Tensor, place, path, n: int = GRID_FACES) -> None:
    """Inputs (odd rows) above their reconstructions from the latent mean (even rows)."""
    vae.eval()
    x = to_float_images(images[:n], place.fmt)
    with autocast(place.device, place.bf16):
        mean, _ = vae.encoder(x)
        x_hat = vae.decoder(mean)
    vae.train()
    save_grid(path, [x.float().cpu(), x_hat.float().cpu()], per_row=8)
