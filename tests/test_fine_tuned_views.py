"""Fine-tuned views written as bundle view files that keep their history: the recipe study's arms
(experiments/recipe_multiview.py --write-views) and plain ``faceattr train --init`` runs
(tools/finetuned_views.py), as tools/build_pretrained.py then records them."""
import json

import pytest
import torch

from faceattr.inference.bundle import Bundle
from faceattr.nn import checkpoint as ckpt
from faceattr.nn.taps import LAYER_NAMES


def _fine_tuned_run(bundle: Bundle, view: str, run, **meta):
    """A run folder whose view.pt differs from the bundle's ``view`` and says it started from it."""
    tuned = bundle.load_vae(view)
    with torch.no_grad():
        next(tuned.parameters()).add_(0.01)
    run.mkdir(parents=True)
    cfg = {"init_sha256": bundle.manifest["views"][view]["sha256"], **meta.pop("train_config", {})}
    ckpt.save_view(tuned, run / "view.pt", meta={**meta, "train_config": cfg})
    return tuned


def test_recipe_views_are_written_as_bundle_files_that_keep_their_history(tmp_path, real_faces, benchmark_script):
    mod, build = benchmark_script("recipe_multiview"), benchmark_script("build_pretrained")
    bundle = Bundle.load()
    base = bundle.manifest["views"]["relu3_1"]
    run = tmp_path / "runs" / "relu3_1" / "rec4"
    tuned = _fine_tuned_run(bundle, "relu3_1", run, steps=400, epochs=1, latent={"kl_per_sample": 30.0},
                            train_config={"beta": 4.0})
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
    with pytest.raises(SystemExit, match="not fine-tuned from the bundle.s view view_relu3_1.pt"):
        mod.write_views(arms, tmp_path / "runs", bundle, study, tmp_path / "other", real_faces[:64])


def test_a_train_run_is_written_with_its_seconds_and_the_whole_lineage(tmp_path, real_faces, benchmark_script):
    mod, build = benchmark_script("finetuned_views"), benchmark_script("build_pretrained")
    bundle = Bundle.load()
    base = bundle.manifest["views"]["relu4_1"]
    run = tmp_path / "run"
    _fine_tuned_run(bundle, "relu4_1", run, steps=20, epochs=1,
                    train_config={"beta": 4.0, "batch_size": 64, "init": "pretrained:relu4_1"})
    log = [{"event": "start", "train_config": {"batch_size": 64}},
           {"kl": 1.0, "step": 10, "images_per_s": 64.0}, {"kl": 1.0, "step": 20, "images_per_s": 32.0},
           {"event": "epoch_end", "epoch": 1, "step": 20}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    assert mod.logged_seconds(run) == 10 + 20  # 640 images at 64/s, then 640 at 32/s

    runs = mod.parse_runs([f"relu4_1={run}"])
    assert runs == {"relu4_1": run / "view.pt"}
    out = tmp_path / "views"
    mod.write_views(runs, bundle, out, real_faces[:64], device="test CPU")
    for v in LAYER_NAMES:
        if v != "relu4_1":
            assert (out / f"view_{v}.pt").read_bytes() == (bundle.root / f"view_{v}.pt").read_bytes()
    entry = build.view_entries(out, bundle.manifest["views"])["relu4_1"]
    assert entry["steps"] == base["steps"] + 20 and entry["epochs"] == base["epochs"]
    assert entry["fine_tune"] == {"steps": 20, "epochs": 1, "run": "faceattr train", "device": "test CPU",
                                  "seconds": 30.0}
    lineage = entry["fine_tuned_from"]
    assert lineage["sha256"] == base["sha256"] and lineage["steps"] == base["steps"]
    if "fine_tune" in base:  # the shipped view was itself fine-tuned: its record travels along, nested
        assert lineage["fine_tune"] == base["fine_tune"] and lineage["fine_tuned_from"] == base["fine_tuned_from"]
    assert entry["train_config"]["beta"] == 4.0 and entry["storage"] == "float16"

    with pytest.raises(SystemExit, match="relu9_1=x: expected VIEW=RUN_DIR"):
        mod.parse_runs(["relu9_1=x"])
    with pytest.raises(SystemExit, match="not found"):
        mod.parse_runs([f"relu4_1={tmp_path / 'nothing'}"])
    with pytest.raises(SystemExit, match="not fine-tuned from the bundle's view view_relu3_1.pt"):
        mod.write_views({"relu3_1": run / "view.pt"}, bundle, tmp_path / "other", real_faces[:64], device="x")


def test_a_view_handed_over_in_float16_keeps_the_rounding_it_measured(tmp_path, real_faces, benchmark_script):
    # tools/train_views_gpu.py stores its views in float16 after measuring what that moves;
    # measured again from the float16 file it would read 0
    mod = benchmark_script("finetuned_views")
    bundle = Bundle.load()
    run = tmp_path / "run"
    tuned = _fine_tuned_run(bundle, "relu5_1", run, steps=8, epochs=0, train_config={"batch_size": 256})
    ckpt.save_view(tuned, run / "view.pt", dtype=torch.float16,
                   meta={**ckpt.load(run / "view.pt")["meta"], "float16_storage_max_latent_change": 0.0123})
    metas = mod.write_views({"relu5_1": run / "view.pt"}, bundle, tmp_path / "views", real_faces[:64],
                            device="NVIDIA H200", run="tools/train_views_gpu.py")
    assert metas["relu5_1"]["float16_storage_max_latent_change"] == 0.0123
    assert metas["relu5_1"]["fine_tune"]["run"] == "tools/train_views_gpu.py"
