"""How much better a view knows its training faces than faces it never saw: its own VGG19-layer
reconstruction error of the latent mean, and its KL per face, on train and on held-out faces,
and their ratio (issue: the views fit their 13,603 training faces). Printed at each epoch's end
by the trainer and measured on the shipped views by experiments/generalisation.py."""
from __future__ import annotations

import numpy as np
import torch

from .losses import feature_loss, kl_per_sample, layer_weight
from .models import to_float_images

BATCH = 128


@torch.no_grad()
def reconstruction_and_kl(vae, loss_net, faces: np.ndarray | torch.Tensor, device="cpu") -> tuple[float, float]:
    """(mean over faces of the view's eq. 6 error, its layers' weighted feature loss between a face
    and the decoding of its latent mean, unscaled; mean KL per face in nats), in float32."""
    was_training = vae.training
    vae.eval()
    if not isinstance(faces, torch.Tensor):  # a read-only memory map is copied, never written through
        faces = torch.from_numpy(np.require(faces, np.uint8, ["C", "W"]))
    layers = vae.cfg.layers
    rec, kl, n = 0.0, 0.0, 0
    for chunk in faces.split(BATCH):
        x = to_float_images(chunk.to(device))
        mean, logvar = vae.encoder(x)
        x_hat = vae.decoder(mean)
        fx, fh = loss_net(x, layers), loss_net(x_hat, layers)
        rec += float(sum(layer_weight(l) * feature_loss(fx[l], fh[l]) for l in layers)) * len(chunk)
        kl += float(kl_per_sample(mean, logvar).sum())
        n += len(chunk)
    vae.train(was_training)
    return rec / max(n, 1), kl / max(n, 1)


def generalisation(vae, loss_net, train_faces, held_out_faces, device="cpu") -> dict:
    """{train_rec, held_out_rec, rec_ratio (held-out / train), train_kl, held_out_kl}."""
    tr, tk = reconstruction_and_kl(vae, loss_net, train_faces, device)
    hr, hk = reconstruction_and_kl(vae, loss_net, held_out_faces, device)
    return {"train_rec": tr, "held_out_rec": hr, "rec_ratio": hr / tr if tr > 0 else float("nan"),
            "train_kl": tk, "held_out_kl": hk, "faces": [int(len(train_faces)), int(len(held_out_faces))]}
