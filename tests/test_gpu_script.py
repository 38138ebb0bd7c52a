"""tools/train_views_gpu.py on the CPU: everything but the GPU timing."""
from argparse import Namespace

import numpy as np
import pytest
import torch


def _args(tmp_path, **kw):
    a = dict(epochs=1, epoch_images=None, lr=1e-4, lr_decay=1.0, kl_weight=1.0, rec_weight=1.0, augment="flip",
             init="pretrained", runs=str(tmp_path), decorrelate=0.0)
    a.update(kw)
    return Namespace(**a)


def test_trainers_carry_the_recipe_and_the_variant(tmp_path, random_vgg, benchmark_script):
    gpu = benchmark_script("train_views_gpu")
    crops = np.random.default_rng(0).integers(0, 255, (300, 64, 64, 3), dtype=np.uint8)
    t = gpu.make_trainer(_args(tmp_path), "relu3_1", crops, random_vgg, tmp_path / "a", "batch256", device="cpu")
    assert t.cfg.batch_size == 256 and t.cfg.lr == 2e-4 and t.cfg.beta == 1.0 and t.cfg.augment == ("flip",)
    from faceattr.inference.bundle import Bundle
    assert t.cfg.init == "pretrained:relu3_1"
    assert t.cfg.init_sha256 == Bundle.load().view_entry("relu3_1")["sha256"]  # bundling checks it
    shipped = Bundle.load().load_vae("relu3_1").state_dict()
    for k, v in t.vae.state_dict().items():
        assert torch.allclose(v.float(), shipped[k].float()), k  # fine-tuning starts from the shipped view


def test_trainers_keep_each_view_apart_from_the_shipped_others_when_asked(tmp_path, random_vgg, benchmark_script):
    gpu = benchmark_script("train_views_gpu")
    crops = np.random.default_rng(2).integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)
    t = gpu.make_trainer(_args(tmp_path, augment="", decorrelate=5.0), "relu2_1", crops, random_vgg, tmp_path / "d",
                         device="cpu")
    (term,) = t.terms
    assert term.name == "decorrelation" and term.weight == 5.0 and tuple(term.others.shape) == (64, 400)
    assert gpu.make_trainer(_args(tmp_path), "relu2_1", crops, random_vgg, tmp_path / "e", device="cpu").terms == []


@pytest.mark.slow
def test_speed_trial_times_every_variant(tmp_path, random_vgg, benchmark_script):
    gpu = benchmark_script("train_views_gpu")
    crops = np.random.default_rng(1).integers(0, 255, (300, 64, 64, 3), dtype=np.uint8)
    # One variant and one untimed-warm-up-free step: each builds a full-size trainer, and batch256's
    # steps alone take half a minute here. With --decorrelate, so the trial's steps get the other
    # views' latents as training's do.
    res = gpu.speed_trial(_args(tmp_path, init="none", augment="", decorrelate=5.0), crops, random_vgg, 1, ["eager"],
                          device="cpu", warmup=0)
    assert set(res) == {"eager"} and res["eager"] > 0


def test_recipe_study_best_arm_combines_the_levers_that_beat_control(benchmark_script):
    mod = benchmark_script("recipe_study")

    def rows(**acc):
        return {arm: {"val_accuracy": acc[arm]} for arm in ("control", "rec2", "rec4", "flip")}
    assert mod.best_arm(rows(control=.870, rec2=.871, rec4=.872, flip=.8705)) == {**mod.ARMS["rec4"], **mod.ARMS["flip"]}
    assert mod.best_arm(rows(control=.870, rec2=.873, rec4=.872, flip=.869)) == mod.ARMS["rec2"]  # = an arm already run
    assert mod.best_arm(rows(control=.870, rec2=.869, rec4=.868, flip=.870)) == {}  # = control
    extra = rows(control=.870, rec2=.871, rec4=.872, flip=.869)
    extra["rec8"] = {"val_accuracy": .875}
    assert mod.best_arm(extra) == mod.EXTRA_ARMS["rec8"]  # a capacity arm run on request counts too


def test_gpu_extraction_benchmark_times_every_batch_and_precision(benchmark_script):
    # benchmarks/extract_speed_gpu.py on the CPU: the measuring and the table, not the GPU's figures
    mod = benchmark_script("extract_speed_gpu")
    from faceattr.inference.bundle import Bundle
    bundle = Bundle.load()
    vaes = {v: bundle.load_vae(v) for v in bundle.views}
    faces = np.random.default_rng(2).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    speeds = mod.measure(faces, vaes, device="cpu")
    assert len(speeds) == len(mod.BATCHES) * len(mod.PRECISIONS) and all(v > 0 for v in speeds.values())
    md = mod.table({"device": "cpu", "torch": torch.__version__, "faces": 16, "faces_per_s": speeds})
    assert "| default | auto |" in md and "| 4096 | float32 |" in md


def test_the_gpu_script_takes_the_packed_extra_faces(tmp_path, random_vgg, benchmark_script):
    """issue 31: the GPU script and its data packing take --extra-faces like faceattr train."""
    import json
    gpu, pack = benchmark_script("train_views_gpu"), benchmark_script("pack_training_data")
    extra = np.random.default_rng(4).integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)
    arrays, psnr, _ = pack.jpeg_pack(extra, 92)
    record = {"source": "faces", "count": 20, "sha256": "c" * 64}
    np.savez(tmp_path / "extra_crops.npz", **arrays, record=json.dumps(record))
    faces, back = pack.unpack_extra(tmp_path)
    assert faces.shape == (20, 64, 64, 3) and back == record and psnr > 30
    crops = np.random.default_rng(0).integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)
    t = gpu.make_trainer(_args(tmp_path, init="none", augment="", extra_share=0.25), "relu3_1", crops, random_vgg,
                         tmp_path / "x", device="cpu", extra=faces, extra_record=back)
    assert (t.cfg.extra_share, t.cfg.extra_faces_count, t.cfg.extra_faces_sha256) == (0.25, 20, "c" * 64)
    assert len(t.images) == 84 and t.feed.n_main == 64
    assert pack.unpack_extra(tmp_path / "nothing") == (None, {})
