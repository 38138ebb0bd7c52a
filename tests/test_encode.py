import numpy as np
import pytest
import torch

from faceattr import MultiViewVAEFeatures
from faceattr.inference.encoder import CPU_BATCH_SIZE, MultiViewEncoder, default_batch_size, fold_batchnorm
from faceattr.nn.models import VAE


def _vae_with_trained_looking_batchnorm(cfg, seed=0):
    torch.manual_seed(seed)
    vae = VAE(cfg)
    for m in vae.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return vae.eval()


def test_folding_batchnorm_is_exact_in_eval_mode(tiny_cfg):
    enc = _vae_with_trained_looking_batchnorm(tiny_cfg).encoder
    folded = fold_batchnorm(enc)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())  # the original is untouched
    x = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(enc(x), folded(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_features_do_not_depend_on_the_batch_size(tiny_cfg):
    vaes = {"a": _vae_with_trained_looking_batchnorm(tiny_cfg, 1), "b": _vae_with_trained_looking_batchnorm(tiny_cfg, 2)}
    faces = np.random.default_rng(0).integers(0, 256, (11, 64, 64, 3), dtype=np.uint8)
    ones = MultiViewEncoder(vaes, device="cpu", precision="float32", batch_size=1).encode(faces)
    all_at_once = MultiViewEncoder(vaes, device="cpu", precision="float32", batch_size=64).encode(faces)
    threes = MultiViewEncoder(vaes, device="cpu", precision="float32", batch_size=3).encode(faces)
    assert ones.shape == (11, 2 * tiny_cfg.latent_dim)
    np.testing.assert_allclose(ones, all_at_once, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(threes, all_at_once, rtol=1e-4, atol=1e-5)
    assert MultiViewEncoder(vaes, device="cpu", precision="float32").encode(faces[:0]).shape == (0, 16)


def test_default_batch_size_on_the_cpu_and_explicit_values(tiny_cfg):
    vaes = {"a": VAE(tiny_cfg)}
    assert MultiViewEncoder(vaes, device="cpu").batch_size == CPU_BATCH_SIZE == 64
    assert default_batch_size(torch.device("cuda")) == 1024  # measured on an H200: extract_speed_gpu.md
    assert MultiViewEncoder(vaes, device="cpu", batch_size=5).batch_size == 5
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None, got 0"):
        MultiViewVAEFeatures(batch_size=0).fit()
