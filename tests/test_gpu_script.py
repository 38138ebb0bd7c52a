"""benchmarks/train_views_gpu.py on the CPU: everything but the GPU timing."""
import importlib.util
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _script(name: str = "train_views_gpu"):
    sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(tmp_path, **kw):
    a = dict(epochs=1, epoch_images=None, lr=1e-4, lr_decay=1.0, kl_weight=1.0, rec_weight=1.0, augment="flip",
             init="pretrained", runs=str(tmp_path))
    a.update(kw)
    return Namespace(**a)


def test_trainers_carry_the_recipe_and_the_variant(tmp_path, random_vgg):
    gpu = _script()
    crops = np.random.default_rng(0).integers(0, 255, (300, 64, 64, 3), dtype=np.uint8)
    t = gpu.make_trainer(_args(tmp_path), "relu3_1", crops, random_vgg, tmp_path / "a", "batch256", device="cpu")
    assert t.cfg.batch_size == 256 and t.cfg.lr == 2e-4 and t.cfg.beta == 1.0 and t.cfg.augment == ("flip",)
    assert t.cfg.init == "pretrained:relu3_1"
    from faceattr.inference.bundle import Bundle
    shipped = Bundle.load().load_vae("relu3_1").state_dict()
    for k, v in t.vae.state_dict().items():
        assert torch.allclose(v.float(), shipped[k].float()), k  # fine-tuning starts from the shipped view


def test_speed_trial_times_every_variant(tmp_path, random_vgg):
    gpu = _script()
    crops = np.random.default_rng(1).integers(0, 255, (300, 64, 64, 3), dtype=np.uint8)
    # One variant: each builds a full-size trainer, and batch256's steps alone take half a minute here.
    res = gpu.speed_trial(_args(tmp_path, init="none"), crops, random_vgg, 1, ["eager"], device="cpu")
    assert set(res) == {"eager"} and res["eager"] > 0


def test_recipe_study_best_arm_combines_the_levers_that_beat_control():
    mod = _script("recipe_study")

    def rows(**acc):
        return {arm: {"val_accuracy": acc[arm]} for arm in ("control", "rec2", "rec4", "flip")}
    assert mod.best_arm(rows(control=.870, rec2=.871, rec4=.872, flip=.8705)) == {**mod.ARMS["rec4"], **mod.ARMS["flip"]}
    assert mod.best_arm(rows(control=.870, rec2=.873, rec4=.872, flip=.869)) == mod.ARMS["rec2"]  # = an arm already run
    assert mod.best_arm(rows(control=.870, rec2=.869, rec4=.868, flip=.870)) == {}  # = control
    extra = rows(control=.870, rec2=.871, rec4=.872, flip=.869)
    extra["rec8"] = {"val_accuracy": .875}
    assert mod.best_arm(extra) == mod.EXTRA_ARMS["rec8"]  # a capacity arm run on request counts too


def test_recipe_views_are_written_as_bundle_files_that_keep_their_history(tmp_path, real_faces):
    mod, build = _script("recipe_multiview"), _script("build_pretrained")
    from faceattr.inference.bundle import Bundle
    from faceattr.nn import checkpoint as ckpt
    from faceattr.nn.taps import LAYER_NAMES
    bundle = Bundle.load()
    base = bundle.manifest["views"]["relu3_1"]
    tuned = bundle.load_vae("relu3_1")
    with torch.no_grad():
        next(tuned.parameters()).add_(0.01)  # a view that differs from the shipped one
    run = tmp_path / "runs" / "relu3_1" / "rec4"
    run.mkdir(parents=True)
    ckpt.save_view(tuned, run / "view.pt", meta={"steps": 400, "epochs": 1, "latent": {"kl_per_sample": 30.0},
                                                 "train_config": {"beta": 4.0, "init_sha256": base["sha256"]}})
    arms = {v: "shipped" for v in LAYER_NAMES} | {"relu3_1": "rec4"}
    study = {"views": {"relu3_1": {"rec4": {"val_accuracy": 0.87, "train_seconds_this_call": 600.0}}}}
    out = tmp_path / "views"
    mod.write_views(arms, tmp_path / "runs", bundle, study, out, real_faces[:64])

    for v in LAYER_NAMES:
        if v != "relu3_1":  # untouched views are the shipped files, byte for byte
            assert (out / f"view_{v}.pt").read_bytes() == (bundle.root / f"view_{v}.pt").read_bytes()
    obj = ckpt.load(out / "view_relu3_1.pt")
    assert all(t.dtype == torch.float16 for t in obj["state_dict"].values() if t.is_floating_point())
    meta = obj["meta"]
    assert meta["steps"] == base["steps"] + 400 and meta["fine_tuned_from"]["sha256"] == base["sha256"]
    assert meta["fine_tune"]["recipe_study_arm"] == "rec4" and 0 < meta["float16_storage_max_latent_change"] < 0.05
    entry = build.view_entries(out, bundle.manifest["views"])["relu3_1"]  # what the manifest will say
    assert entry["steps"] == base["steps"] + 400 and entry["fine_tuned_from"]["sha256"] == base["sha256"]
    assert entry["epochs"] == base["epochs"] and entry["fine_tune"]["epochs"] == 1
    assert entry["train_config"]["beta"] == 4.0 and entry["storage"] == "float16"

    ckpt.save_view(tuned, run / "view.pt", meta={"steps": 400, "epochs": 1, "train_config": {"init_sha256": "0" * 64}})
    with pytest.raises(SystemExit, match="not fine-tuned from the shipped relu3_1"):
        mod.write_views(arms, tmp_path / "runs", bundle, study, tmp_path / "other", real_faces[:64])
