"""The losses of eq. 5-8 and the relaxed WGAN terms (docs/method.md "Losses")."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .taps import TAP_CHANNELS


def kl_per_sample(mean, logvar):
    """KL(q(z|x) || N(0, I)) of each sample, summed over latent dimensions: (B,)."""
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def kl_divergence(mean, logvar):
    """The KL term of eq. 8: ``kl_per_sample`` averaged over the batch."""
    return kl_per_sample(mean, logvar).mean()


def feature_loss(phi_x, phi_xhat):
    """Eq. 5: 1/(2 C W H) * sum of squared differences, averaged over the batch.

    Computed in the feature maps' own precision: on bfloat16 maps it is one fused pass each way
    (the sum still accumulates in float32 inside ``mse_loss``, and the gradient equals the
    float32 route's, rounded to bfloat16); only the returned scalar is rounded to bfloat16.
    Casting both maps to float32 first meant two extra full-size copies of relu1_1's
    (64, 64, 64, 64) maps each way.
    """
    dtype = torch.promote_types(phi_x.dtype, phi_xhat.dtype)
    return 0.5 * F.mse_loss(phi_xhat.to(dtype), phi_x.to(dtype)).float()


def layer_weight(layer: str) -> float:
    """Eq. 6's weight 100 / C_l^2."""
    return 100.0 / TAP_CHANNELS[layer] ** 2


def reconstruction_loss(feats_x: dict, feats_xhat: dict, layers, scale: float = 1.0):
    """Eq. 6: sum over layers of (100 / C_l^2) * L_l, times the view's balancing scale."""
    total = sum(layer_weight(l) * feature_loss(feats_x[l], feats_xhat[l]) for l in layers)
    return scale * total


def critic_loss(d_real, d_fake, label: float = 10.0):
    """The critic separates real (+label) from reconstructed (-label): label*(E D(x^) - E D(x))."""
    return label * (d_fake.float().mean() - d_real.float().mean())


def generator_loss(d_fake, label: float = 10.0):
    """The VAE side's adversarial term: -label * E D(x^)."""
    return -label * d_fake.float().mean()


def vae_loss(kl, rec, gan, alpha: float = 1.0, beta: float = 0.5):
    """Eq. 8: alpha * L_kl + beta * L_rec + L_GAN."""
    return alpha * kl + beta * rec + gan
