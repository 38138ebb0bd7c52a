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


def cross_correlation(a, b, eps: float = 1e-4):
    """Per column of ``a`` (B, d), the sum of its squared batch correlations with the columns of
    ``b`` (B, e), averaged over a's columns: 0 when a's latent repeats nothing of b's linearly.

    The decorrelation lever (``TrainConfig.decorrelate``, not in the paper): a view whose latent
    carries what the other views already carry adds little to the multi-view feature. Its floor
    on independent columns is about e / B (sampling noise of a batch correlation).
    """
    a, b = a.float(), b.float()
    a = (a - a.mean(0)) / (a.std(0) + eps)
    b = (b - b.mean(0)) / (b.std(0) + eps)
    r = a.T @ b / a.shape[0]  # (d, e)
    return r.pow(2).sum(dim=1).mean()


def vae_loss(kl, rec, gan, alpha: float = 1.0, beta: float = 0.5):
    """Eq. 8: alpha * L_kl + beta * L_rec + L_GAN."""
    return alpha * kl + beta * rec + gan
