import math

import pytest
import torch

from faceattr.nn.config import ModelConfig

from faceattr.nn.taps import LAYER_NAMES
from faceattr.nn.losses import (critic_loss, feature_loss, generator_loss, kl_divergence, layer_weight,
                             reconstruction_loss, vae_loss)
from faceattr.nn.models import VAE, Critic, Decoder, Encoder


def test_shapes_full_size():
    cfg = ModelConfig()
    enc, dec, crit = Encoder(cfg), Decoder(cfg), Critic(cfg)
    x = torch.rand(2, 3, 64, 64)
    mean, logvar = enc(x)
    assert mean.shape == logvar.shape == (2, 100)
    out = dec(mean)
    assert out.shape == (2, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert crit(torch.rand(2, 64, 64, 64)).shape == (2,)


def test_views_differ_only_by_configuration():
    a, b = VAE(ModelConfig(layers=("relu1_1",))), VAE(ModelConfig(layers=("relu5_1",)))
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    with pytest.raises(ValueError, match="unknown VGG19 layer 'relu6_1'"):
        ModelConfig(layers=("relu6_1",))
    assert ModelConfig.from_dict(ModelConfig(layers=("relu1_1", "relu2_1")).to_dict()).layers == ("relu1_1", "relu2_1")


def test_every_parameter_gets_a_finite_gradient(tiny_cfg):
    torch.manual_seed(0)
    enc, dec, crit = Encoder(tiny_cfg), Decoder(tiny_cfg), Critic(tiny_cfg, in_channels=3)
    x = torch.rand(4, 3, 64, 64)
    mean, logvar = enc(x)
    z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    xh = dec(z)
    loss = kl_divergence(mean, logvar) + (xh - x).pow(2).mean() + crit(xh).mean() + crit(x).mean()
    loss.backward()
    for module in (enc, dec, crit):
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_kl_by_hand():
    mean = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # per sample: 0.5 * sum(mu^2 + var - 1 - log var)
    s1 = 0.5 * (1 + 0 + (2 - 1 - math.log(2)))
    s2 = 0.5 * (4)
    assert kl_divergence(mean, logvar).item() == pytest.approx((s1 + s2) / 2)
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0


def test_feature_loss_is_eq5():
    a = torch.zeros(2, 2, 1, 2)
    b = torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]], [[[0.0, 0.0]], [[0.0, 1.0]]]])
    # per image: 1/(2*C*W*H) * sum sq = 1/(2*4) * 5 and 1/8 * 1; averaged over the batch
    assert feature_loss(a, b).item() == pytest.approx((5 / 8 + 1 / 8) / 2)


def test_feature_loss_on_bfloat16_maps_matches_float32():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 64, 16, 16, generator=g) * 5
    b = torch.rand(4, 64, 16, 16, generator=g) * 5
    a16, b16 = a.bfloat16(), b.bfloat16().requires_grad_(True)
    ref_in = b16.detach().float().requires_grad_(True)
    ref = feature_loss(a16.float(), ref_in)
    got = feature_loss(a16, b16)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), rel=2 ** -8)  # only the scalar is rounded
    ref.backward()
    got.backward()
    assert b16.grad.dtype == torch.bfloat16
    torch.testing.assert_close(b16.grad.float(), ref_in.grad.bfloat16().float(), rtol=2 ** -7, atol=0)
    # mixed precision promotes rather than failing
    assert feature_loss(a16, b).item() == pytest.approx(feature_loss(a16.float(), b).item())


def test_reconstruction_weighting_is_eq6():
    assert layer_weight("relu1_1") == pytest.approx(100 / 64 ** 2)
    assert layer_weight("relu5_1") == pytest.approx(100 / 512 ** 2)
    fx = {"relu1_1": torch.zeros(1, 64, 2, 2), "relu3_1": torch.zeros(1, 256, 1, 1)}
    fh = {"relu1_1": torch.ones(1, 64, 2, 2), "relu3_1": torch.full((1, 256, 1, 1), 2.0)}
    expected = 100 / 64 ** 2 * 0.5 + 100 / 256 ** 2 * 0.5 * 4
    assert reconstruction_loss(fx, fh, ("relu1_1", "relu3_1")).item() == pytest.approx(expected)
    assert reconstruction_loss(fx, fh, ("relu1_1",), scale=3.0).item() == pytest.approx(3 * 100 / 64 ** 2 * 0.5)


def test_wgan_terms_with_relaxed_labels():
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert critic_loss(d_real, d_fake).item() == pytest.approx(10 * (0.0 - 2.0))
    assert generator_loss(d_fake).item() == pytest.approx(0.0)
    assert generator_loss(torch.tensor([1.0])).item() == pytest.approx(-10.0)
    assert vae_loss(torch.tensor(2.0), torch.tensor(4.0), torch.tensor(-1.0)).item() == pytest.approx(2 + 0.5 * 4 - 1)


def test_layer_names_are_the_five_taps():
    assert LAYER_NAMES == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@pytest.mark.parametrize("tap", ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
def test_critic_reads_every_real_vgg19_tap(tap, real_faces):
    from faceattr.nn.models import to_float_images
    from faceattr.nn.vgg import load_loss_network
    from faceattr.nn.vgg import LossNetworkUnavailable
    try:
        vgg = load_loss_network()
    except LossNetworkUnavailable as e:  # pragma: no cover - only a missing install skips
        pytest.skip(str(e))
    cfg = ModelConfig(critic_input_layer=tap, critic_widths=(8, 16, 16, 32))
    crit = Critic(cfg)
    f = vgg(to_float_images(torch.from_numpy(real_faces[:4].copy())), (tap,))[tap]
    out = crit(f)
    assert out.shape == (4,) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in crit.parameters())


def test_trainer_step_with_a_deep_critic_tap(tmp_path, random_vgg):
    import numpy as np
    from faceattr.nn.config import TrainConfig
    from faceattr.train import Runtime, Trainer
    cfg = ModelConfig(latent_dim=8, encoder_widths=(8, 8, 16, 16), decoder_widths=(16, 8, 8),
                      critic_widths=(8, 8, 16, 16), layers=("relu3_1",), critic_input_layer="relu4_1")
    images = np.random.default_rng(0).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    t = Trainer(cfg, TrainConfig(epochs=1, batch_size=8, reference_images=8), images, tmp_path, random_vgg,
                Runtime("cpu", "float32", progress=False))
    assert t.fit().steps == 2


def test_a_view_saved_twice_is_the_same_bytes(tmp_path, tiny_cfg):
    # The manifest's sha256 names a view's bytes: equal weights must give equal files whatever the
    # temporary name they were written under.
    import hashlib
    from faceattr.nn import checkpoint as ckpt
    torch.manual_seed(0)
    vae = VAE(tiny_cfg)
    ckpt.save_view(vae, tmp_path / "a.pt")
    ckpt.save_view(vae, tmp_path / "b.pt")
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.pt", "b.pt")]
    assert digest[0] == digest[1]
    assert torch.equal(ckpt.view_from(ckpt.load(tmp_path / "a.pt")).encoder.mean.weight, vae.encoder.mean.weight)
