import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.nn import checkpoint as ckpt
from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.nn.models import to_float_images
from faceattr.train import FaceFeed, Runtime, Trainer

CPU = Runtime("cpu", "float32", progress=False)


def _trainer(tmp_path, cfg, images, vgg, terms=(), **kw):
    tc = dict(epochs=2, batch_size=16, log_every=1, checkpoint_every=3, reference_images=32, seed=3)
    tc.update(kw)
    return Trainer(cfg, TrainConfig(**tc), images, tmp_path, vgg, CPU, terms=terms)


@pytest.mark.slow
def test_loss_falls_on_real_faces_with_real_vgg(tmp_path, real_faces):
    from faceattr.nn.vgg import load_loss_network
    from faceattr.nn.vgg import LossNetworkUnavailable
    try:
        vgg = load_loss_network()
    except LossNetworkUnavailable as e:  # pragma: no cover - only a missing install skips
        pytest.skip(str(e))
    cfg = ModelConfig(latent_dim=16, encoder_widths=(8, 16, 16, 32), decoder_widths=(16, 16, 8),
                      critic_widths=(8, 8, 16, 16), layers=("relu1_1",))
    t = _trainer(tmp_path, cfg, real_faces[:128], vgg, epochs=1, batch_size=16)
    x = to_float_images(t.images[:16])
    recs = [float(t.train_step(x)["rec"]) for _ in range(30)]
    assert np.mean(recs[-5:]) < 0.7 * np.mean(recs[:3]), recs
    assert all(np.isfinite(recs))


def test_clipping_holds_after_a_step(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(0).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    t = _trainer(tmp_path, tiny_cfg, images, random_vgg)
    t.train_step(to_float_images(t.images[:16]))
    assert all(p.abs().max() <= 0.01 + 1e-9 for p in t.critic.parameters())


def test_reference_balancing_recorded(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(0).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    t = _trainer(tmp_path, tiny_cfg, images, random_vgg)
    ref = t.reference
    assert set(ref["per_layer"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    assert ref["scale"] == pytest.approx(ref["total"] / ref["per_layer"]["relu2_1"])
    lit = _trainer(tmp_path / "lit", tiny_cfg, images, random_vgg, rec_balance="literal")
    assert lit.reference["scale"] == 1.0


def test_fit_writes_log_grid_checkpoint_and_view(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(1).integers(0, 255, (48, 64, 64, 3), dtype=np.uint8)
    res = _trainer(tmp_path, tiny_cfg, images, random_vgg).fit()
    assert res.steps == 2 * 3 and res.epochs == 2
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "kl" in r and "event" not in r]
    assert {"step", "kl", "rec", "critic", "wasserstein", "images_per_s"} <= set(steps[0])
    ends = [r for r in records if r.get("event") == "epoch_end"]
    assert [e["epoch"] for e in ends] == [1, 2] and "active_dims" in ends[0] and "kl_per_sample" in ends[0]
    assert (tmp_path / "reconstructions_epoch2.png").is_file()
    vae = ckpt.load_view(tmp_path / "view.pt")
    assert vae.cfg == tiny_cfg
    obj = ckpt.load(tmp_path / "checkpoint.pt")
    assert obj["step"] == 6 and ModelConfig.from_dict(obj["model_config"]) == tiny_cfg
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def test_checkpoint_round_trip(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(2).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    t = _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1)
    t.fit()
    t2 = _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1)
    t2.load_state(ckpt.load(t.checkpoint_path))
    for a, b in zip(t.vae.state_dict().values(), t2.vae.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(t.critic.parameters(), t2.critic.parameters()):
        assert torch.equal(a, b)
    assert t2.step == t.step and t2.reference == t.reference


@pytest.mark.slow
def test_resume_equals_uninterrupted_run(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(3).integers(0, 255, (48, 64, 64, 3), dtype=np.uint8)
    full = _trainer(tmp_path / "full", tiny_cfg, images, random_vgg)
    full.fit()
    part = _trainer(tmp_path / "part", tiny_cfg, images, random_vgg)
    part.fit(max_steps=4)  # stops mid-epoch 2, after a checkpoint
    assert part.step == 4
    resumed = _trainer(tmp_path / "part", tiny_cfg, images, random_vgg)
    res = resumed.fit(resume=True)
    assert res.steps == 6
    for (k, a), b in zip(full.vae.state_dict().items(), resumed.vae.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    log = [json.loads(l) for l in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "kl" in r and "event" not in r] == [1, 2, 3, 4, 5, 6]


def test_a_stopped_run_hands_over_its_view_so_far_and_still_resumes(tmp_path, tiny_cfg, random_vgg):
    # what tools/train_views_gpu.py does when a device call's time is up
    images = np.random.default_rng(4).integers(0, 255, (48, 64, 64, 3), dtype=np.uint8)
    part = _trainer(tmp_path, tiny_cfg, images, random_vgg)
    part.fit(max_steps=4)
    assert not (tmp_path / "view.pt").exists()
    part.save_view(measure_latent=True)
    meta = ckpt.load(tmp_path / "view.pt")["meta"]
    assert meta["steps"] == 4 and meta["latent"]["latent_dim"] == tiny_cfg.latent_dim
    assert meta["latent"]["kl_per_sample"] > 0
    resumed = _trainer(tmp_path, tiny_cfg, images, random_vgg)
    assert resumed.fit(resume=True).steps == 6
    assert ckpt.load(tmp_path / "view.pt")["meta"]["steps"] == 6


def test_too_few_images_is_a_clear_error(tmp_path, tiny_cfg, random_vgg):
    images = np.zeros((4, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="fewer than one batch"):
        _trainer(tmp_path, tiny_cfg, images, random_vgg)


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(Path(__file__).with_name("ddp_train.py")), str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [l for l in out.stdout.splitlines() if l.startswith("RANK")]
    assert len(lines) == 2 and all("WORLD 2" in l and "STEPS 4" in l for l in lines)
    sums = {l.split("SUM ")[1] for l in lines}
    assert len(sums) == 1  # DDP kept both replicas identical
    assert (tmp_path / "view.pt").is_file()


def test_one_critic_backward_step_equals_plain_algorithm_1(tmp_path, tiny_cfg, random_vgg):
    """The trainer reuses the critic's backward for the VAE's adversarial gradient; the plain
    reference step back-propagates twice. Same start, same batch: same networks after."""
    from benchmarks.train_speed import plain_algorithm1_step
    images = np.random.default_rng(2).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    ours, plain = (_trainer(tmp_path / name, tiny_cfg, images, random_vgg) for name in ("ours", "plain"))
    x = to_float_images(ours.images[:16])
    for _ in range(2):
        ours.train_step(x)
        plain_algorithm1_step(plain, x)
    for net in ("vae", "critic"):
        a, b = getattr(ours, net).state_dict(), getattr(plain, net).state_dict()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=f"{net}.{k}")


def test_flip_augmentation_mirrors_about_half_the_faces(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(2).integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)
    t = _trainer(tmp_path, tiny_cfg, images, random_vgg, augment=("flip",))
    x = to_float_images(t.images)
    y = t.feed.augment(x)
    flipped = [bool(torch.equal(a, b.flip(-1))) for a, b in zip(y, x)]
    kept = [bool(torch.equal(a, b)) for a, b in zip(y, x)]
    assert all(f != k for f, k in zip(flipped, kept))  # each face is either mirrored or untouched
    assert 16 <= sum(flipped) <= 48
    none = _trainer(tmp_path / "plain", tiny_cfg, images, random_vgg)
    assert none.feed.augment(x) is x


def test_shift_augmentation_moves_faces_within_the_limit(tmp_path, tiny_cfg, random_vgg):
    from faceattr.nn.config import SHIFT_PIXELS
    images = np.random.default_rng(3).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    t = _trainer(tmp_path, tiny_cfg, images, random_vgg, augment=("shift",))
    x = to_float_images(t.images)
    y = t.feed.augment(x)
    assert y.shape == x.shape
    s = SHIFT_PIXELS
    moved = 0
    for a, b in zip(y, x):
        # The centre of the shifted face is the original, offset by at most SHIFT_PIXELS.
        hits = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)
                if torch.equal(a[:, s:-s, s:-s], b[:, s + dy:64 - s + dy, s + dx:64 - s + dx])]
        assert hits, "shifted face is not a translate of its input"
        moved += hits[0] != (0, 0)
    assert moved >= 8


def test_train_config_rejects_bad_levers():
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        TrainConfig(augment=("rotate",))
    with pytest.raises(ValueError, match="beta must be positive"):
        TrainConfig(beta=0)
    assert TrainConfig.from_dict(TrainConfig(augment=["flip"]).to_dict()).augment == ("flip",)


class _Shrink:
    """A loss term for the tests: pulls the latent means towards 0."""

    name = "shrink"

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, batch):
        return self.weight * batch.mean.pow(2).mean()

    def record(self) -> dict:
        return {"weight": self.weight}


def test_a_loss_term_is_added_to_the_step_logged_and_recorded(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(11).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    seen = []

    class Spy(_Shrink):
        def __call__(self, batch):
            seen.append((tuple(batch.idx.shape), tuple(batch.mean.shape), tuple(batch.x_hat.shape)))
            return super().__call__(batch)
    t = _trainer(tmp_path, tiny_cfg, images, random_vgg, terms=[Spy(1.0)], epochs=1)
    t.fit()
    assert seen[0] == ((16,), (16, tiny_cfg.latent_dim), (16, 3, 64, 64))
    logged = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged[0]["terms"] == {"shrink": {"weight": 1.0}}
    assert all(np.isfinite(r["shrink"]) for r in logged if "kl" in r)
    assert ckpt.load(t.checkpoint_path)["terms"] == {"shrink": {"weight": 1.0}}


def test_a_loss_term_changes_the_gradient_the_vae_gets(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(12).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    plain, shrunk = (_trainer(tmp_path / n, tiny_cfg, images, random_vgg, terms=terms)
                     for n, terms in (("a", ()), ("b", [_Shrink(100.0)])))
    shrunk.vae.load_state_dict(plain.vae.state_dict())
    x, idx = to_float_images(plain.images[:16]), torch.arange(16)
    plain.train_step(x, idx)
    m = shrunk.train_step(x, idx)
    assert float(m["shrink"]) > 0
    a, b = plain.vae.encoder.state_dict(), shrunk.vae.encoder.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_loss_terms_and_a_study_of_an_older_faceattr(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(13).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    _trainer(tmp_path, tiny_cfg, images, random_vgg, terms=[_Shrink(1.0)]).fit(max_steps=1)
    with pytest.raises(ValueError, match="started with loss terms"):
        _trainer(tmp_path, tiny_cfg, images, random_vgg, terms=[_Shrink(2.0)]).fit(resume=True)
    obj = ckpt.load(tmp_path / "checkpoint.pt")
    obj["train_config"]["decorrelate"], obj["terms"] = 5.0, {}  # what a run of the former --decorrelate wrote
    ckpt.save(obj, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="decorrelate=5.0, an option this faceattr no longer has"):
        _trainer(tmp_path, tiny_cfg, images, random_vgg).fit(resume=True)
    obj["train_config"]["decorrelate"] = 0.0  # at its default it changed nothing: the run resumes
    ckpt.save(obj, tmp_path / "checkpoint.pt")
    assert _trainer(tmp_path, tiny_cfg, images, random_vgg).fit(resume=True, max_steps=2).steps == 2


def test_init_starts_from_the_given_view_and_is_recorded(tmp_path, tiny_cfg, random_vgg, monkeypatch):
    from faceattr.train import loop as trainer_mod, view as view_mod
    from faceattr.nn.models import VAE
    torch.manual_seed(5)
    start = VAE(tiny_cfg)
    ckpt.save_view(start, tmp_path / "start.pt")
    images = np.random.default_rng(4).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)

    class _DS:
        root = tmp_path

        def __len__(self):
            return len(images)

        def crops(self, progress=False):
            return images
    monkeypatch.setattr("faceattr.data.celeba.CelebA.load", classmethod(lambda cls, *a, **k: _DS()))
    monkeypatch.setattr("faceattr.nn.vgg.load_loss_network", lambda w=None: random_vgg)
    seen = {}
    real_fit = trainer_mod.Trainer.fit

    def fit(self, resume=False, **kw):
        seen["state"] = {k: v.clone() for k, v in self.vae.state_dict().items()}
        seen["cfg"] = self.model_cfg
        return real_fit(self, resume, max_steps=1)
    monkeypatch.setattr(trainer_mod.Trainer, "fit", fit)
    tcfg = TrainConfig(epochs=1, batch_size=16, reference_images=16, init=str(tmp_path / "start.pt"))
    view_mod.train_view("unused", tmp_path / "run", tcfg, runtime=CPU)
    assert seen["cfg"] == tiny_cfg  # the architecture comes from the init file
    for k, v in start.state_dict().items():
        assert torch.equal(seen["state"][k], v), k
    saved = ckpt.load(tmp_path / "run" / "checkpoint.pt")["train_config"]
    from faceattr.inference.bundle import sha256_file
    assert saved["init"] == str(tmp_path / "start.pt")
    assert saved["init_sha256"] == sha256_file(tmp_path / "start.pt")
    with pytest.raises(ValueError, match="is a relu2_1 view"):
        view_mod.train_view("unused", tmp_path / "run2", tcfg, layers=("relu3_1",), runtime=CPU)


def test_init_from_the_shipped_bundle(pretrained_bundle):
    from faceattr.train import resolve_init
    path, obj = resolve_init("pretrained:relu4_1")
    assert path == pretrained_bundle.file(pretrained_bundle.view_entry("relu4_1"))
    assert ModelConfig.from_dict(obj["model_config"]).layers == ("relu4_1",)


def test_a_run_folder_is_not_overwritten_without_asking(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(6).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1).fit()
    log = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(FileExistsError, match="already holds a training run.*--resume.*--overwrite"):
        _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1).fit()
    assert (tmp_path / "metrics.jsonl").read_text() == log  # untouched
    (tmp_path / "reconstructions_epoch7.png").write_bytes(b"old")
    _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1, seed=9).fit(overwrite=True)
    assert not (tmp_path / "reconstructions_epoch7.png").exists()  # nothing of the old run mixed in
    assert ckpt.load(tmp_path / "checkpoint.pt")["train_config"]["seed"] == 9


def test_a_second_process_cannot_write_the_same_run(tmp_path, tiny_cfg, random_vgg):
    """Another process holding the run folder (as a running ``faceattr train`` does) makes fit
    refuse, even with --resume or --overwrite, before it touches a file; once that process is
    gone (here: killed, so nothing released the lock but the kernel) the run goes ahead."""
    from faceattr.locks import FolderInUse
    images = np.random.default_rng(6).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1, checkpoint_every=1).fit(max_steps=1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from faceattr.locks import FolderLock; "
                               "FolderLock(sys.argv[1], 'a test').acquire(); print('held', flush=True); time.sleep(120)",
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for kw in ({"resume": True}, {"overwrite": True}):
            with pytest.raises(FolderInUse, match=f"{tmp_path}: another faceattr train is writing it.*another --out"):
                _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1).fit(**kw)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    finally:
        holder.kill()
        holder.wait()
    result = _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=1).fit(resume=True)
    assert result.epochs == 1 and (tmp_path / "view.pt").is_file()
    # and this process let go of it at the end of fit
    from faceattr.locks import FolderLock
    with FolderLock(tmp_path, "the test"):
        pass


@pytest.mark.parametrize("field,value", [("seed", 4), ("batch_size", 8), ("max_images", 20), ("beta", 1.0)])
def test_resume_refuses_other_hyperparameters(tmp_path, tiny_cfg, random_vgg, field, value):
    images = np.random.default_rng(7).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=2).fit(max_steps=1)
    with pytest.raises(ValueError, match=f"started with {field}="):
        _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=2, **{field: value}).fit(resume=True)
    # More epochs is allowed: training longer is what resuming is for.
    assert _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=3).fit(resume=True, max_steps=2).steps == 2


def test_resume_refuses_other_data(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(8).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    Trainer(tiny_cfg, TrainConfig(batch_size=16, reference_images=16),
            FaceFeed(images, description="A train split, 32 faces"), tmp_path, random_vgg, CPU).fit(max_steps=1)
    with pytest.raises(ValueError, match="started on A train split, 32 faces, not B"):
        Trainer(tiny_cfg, TrainConfig(batch_size=16, reference_images=16),
                FaceFeed(images, description="B train split, 32 faces"), tmp_path, random_vgg, CPU).fit(resume=True)


def test_resume_skips_a_torn_last_log_line(tmp_path, tiny_cfg, random_vgg):
    images = np.random.default_rng(9).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=2).fit(max_steps=3)
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "kl": 1.')  # killed mid-write
    res = _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=2).fit(resume=True)
    assert res.steps == 4
    log = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "kl" in r and "event" not in r] == [1, 2, 3, 4]
    with open(tmp_path / "metrics.jsonl", "r+") as fh:
        lines = fh.read().splitlines()
        fh.seek(0)
        fh.write("\n".join(lines[:2] + ["garbage"] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match="metrics.jsonl, line 3: not a JSON record"):
        _trainer(tmp_path, tiny_cfg, images, random_vgg, epochs=3).fit(resume=True)
