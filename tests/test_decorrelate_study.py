"""The decorrelation study (experiments/decorrelate.py), on the trainer's extension point: its
term, the other views' latents it reads, and that it moves a view's latent away from them."""
import json

import numpy as np
import pytest
import torch

from faceattr.nn import checkpoint as ckpt
from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.nn.models import to_float_images
from faceattr.train import Runtime, Trainer

CPU = Runtime("cpu", "float32", progress=False)


@pytest.fixture(scope="module")
def study(benchmark_script):
    return benchmark_script("decorrelate")


def test_cross_correlation_is_zero_for_unrelated_latents_and_high_for_repeated_ones(study):
    g = torch.Generator().manual_seed(0)
    others = torch.randn(4096, 8, generator=g)
    unrelated = torch.randn(4096, 4, generator=g)
    assert float(study.cross_correlation(unrelated, others)) < 0.01  # floor about e / B = 8 / 4096
    repeated = others[:, :4] * 3 + 1  # scale and shift do not hide a repeat
    assert float(study.cross_correlation(repeated, others)) == pytest.approx(1.0, abs=0.01)
    a = unrelated[:64].clone().requires_grad_()
    study.cross_correlation(a, others[:64]).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


@pytest.mark.slow
def test_the_term_moves_the_latent_away_from_the_other_views(study, tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(11).integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)

    def trainer(out, terms=()):
        cfg = TrainConfig(epochs=1, batch_size=32, lr=3e-4, epoch_images=64 * 4, log_every=1, checkpoint_every=3,
                          reference_images=32, seed=3)
        return Trainer(tiny_cfg, cfg, images, out, random_vgg, CPU, terms=terms)

    def latents(t):  # batch statistics, as the penalty sees them (a few steps leave running ones unsettled)
        t.vae.train()
        with torch.no_grad():
            return t.vae.encoder(to_float_images(t.images))[0]
    # The "other view" is this view's own start: at step 0 its latent repeats it entirely.
    start = trainer(tmp_path / "s")
    others = latents(start)
    runs = {}
    for w in (0.0, 30.0):
        t = trainer(tmp_path / str(w), [study.Decorrelation(w, others.numpy())] if w else [])
        t.vae.load_state_dict(start.vae.state_dict())
        t.fit()
        runs[w] = float(study.cross_correlation(latents(t), others))
        if w:
            logged = [json.loads(l) for l in (tmp_path / str(w) / "metrics.jsonl").read_text().splitlines()]
            assert all(np.isfinite(r["decorrelation"]) for r in logged if "kl" in r)
            assert ckpt.load(t.checkpoint_path)["terms"]["decorrelation"]["weight"] == w
    assert runs[30.0] < runs[0.0] - 0.2, runs  # measured 0.52 against 0.87


def test_the_other_views_come_from_the_bundle_or_a_folder_without_the_view_itself(study, tmp_path, pretrained_bundle):
    from faceattr.nn.models import VAE
    faces = np.random.default_rng(12).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    shipped = study.other_view_latents("pretrained", ModelConfig(layers=("relu3_1",)), faces, device="cpu")
    assert shipped.shape == (4, 400) and np.isfinite(shipped).all()
    small = dict(latent_dim=8, encoder_widths=(8, 8, 16, 16), decoder_widths=(16, 8, 8), critic_widths=(8, 8, 16, 16))
    for layer in ("relu1_1", "relu2_1"):
        ckpt.save_view(VAE(ModelConfig(layers=(layer,), **small)), tmp_path / f"view_{layer}.pt")
    own = ModelConfig(layers=("relu2_1",), **small)
    assert study.other_view_latents(str(tmp_path), own, faces, device="cpu").shape == (4, 8)  # relu1_1 only
    with pytest.raises(ValueError, match="no view other than relu1_1"):
        study.other_view_latents(str(tmp_path / "none"), ModelConfig(layers=("relu1_1",), **small), faces, device="cpu")
    with pytest.raises(ValueError, match="weight must be at least 0"):
        study.Decorrelation(-1.0, shipped)


def test_the_study_runs_from_experiments(study, tmp_path, celeba_root, monkeypatch, random_vgg):
    monkeypatch.setattr("faceattr.nn.vgg.load_loss_network", lambda w=None: random_vgg)
    monkeypatch.setattr(study, "other_view_latents", lambda source, cfg, images, device: np.zeros((len(images), 3)))
    study.main(["--root", str(celeba_root), "--layer", "relu1_1", "--max-images", "64", "--epochs", "1",
                "--weight", "2", "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert ckpt.load(tmp_path / "run" / "checkpoint.pt")["terms"]["decorrelation"]["weight"] == 2.0
