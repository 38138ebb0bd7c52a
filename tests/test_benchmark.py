import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_celeba_tree
from faceattr.benchmark import paper_table
from faceattr.cli import main


def test_paper_table_shipped_in_package():
    t = paper_table()
    assert t["VAE-WGAN (paper)"]["Average"] == pytest.approx(88.88)
    assert len(t["VAE-WGAN (paper)"]) == 41


@pytest.mark.slow
def test_end_to_end_on_a_real_slice(tmp_path, celeba_root, quick_svms):
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(celeba_root), "--max-images", "100",
                                  "--baselines", "majority,views", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["n_images"] == 100 and res["split"] == "test" and len(res["per_attribute"]) == 40
    assert len(res["balanced_accuracy"]) == 40 and res["weights_sha256"]
    assert res["mean_accuracy"] > res["baselines"]["majority"]["mean_accuracy"]
    assert "view relu3_1" in res["baselines"] and "VAE-WGAN (paper)" in res["paper_table1"]
    assert res["throughput"]["extract_images_per_s"] > 0
    md = (out / "results.md").read_text()
    assert "FaceTracer" in md and "faceattr (ours" in md
    assert (out / "results.csv").is_file() and (out / "per_attribute.png").stat().st_size > 1000
    assert "mean accuracy" in r.output


@pytest.mark.parametrize("under_celeba", [False, True])
def test_fit_heads_on_synthetic_tree(tmp_path, under_celeba, quick_svms):
    write_celeba_tree(tmp_path / "data", n=30, under_celeba=under_celeba)
    out = tmp_path / "res"
    baselines = "majority,pixels,pca" + ("" if under_celeba else ",hidden")
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(tmp_path / "data"), "--heads", "fit",
                                  "--baselines", baselines, "--views", "relu1_1,relu3_1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["n_images"] == 10 and res["heads"] == "fit" and res["views"] == ["relu1_1", "relu3_1"]
    assert {"majority", "pixels 32x32"} <= set(res["baselines"])
    assert any(k.startswith("pca") for k in res["baselines"])
    if not under_celeba:
        assert res["baselines"]["hidden relu3_1"]["dims"] == 4096 and "hidden relu2_1" not in res["baselines"]
        # both views' 8,192 hidden values by PCA to 200 (the latents' width), capped by 10 train faces
        assert res["baselines"]["hidden all views"]["dims"] == 9


@pytest.mark.slow
def test_vgg19_baseline_picks_its_layer_on_val(tmp_path, celeba_root, quick_svms):
    from faceattr.benchmark import VGG19_LAYERS, BenchmarkConfig, evaluate
    res, _ = evaluate(celeba_root, ("val", "test"), BenchmarkConfig(baselines=("vgg19",), max_images=60, progress=False))
    for split in ("val", "test"):
        row = res[split]["baselines"]["vgg19"]
        assert row["layer"] in VGG19_LAYERS and set(row["val_mean_accuracy_by_layer"]) == set(VGG19_LAYERS)
        assert row["val_mean_accuracy"] == max(row["val_mean_accuracy_by_layer"].values())
        assert 0.5 < row["mean_accuracy"] <= 1
    assert res["val"]["baselines"]["vgg19"]["mean_accuracy"] == pytest.approx(
        res["val"]["baselines"]["vgg19"]["val_mean_accuracy"], abs=1e-6)


def test_vgg19_baseline_says_where_its_weights_come_from(tmp_path, celeba_root, monkeypatch):
    from faceattr.nn import vgg
    monkeypatch.setattr(vgg, "find_weight_sources", lambda: [])
    monkeypatch.delenv("FACEATTR_VGG19_WEIGHTS", raising=False)
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(celeba_root), "--baselines", "vgg19",
                                  "--max-images", "10", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "vgg19 baseline needs the VGG19 ImageNet weights" in r.output
    assert "faceattr[train]" in r.output


def test_wrong_root_and_missing_images(tmp_path):
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(tmp_path)])
    assert r.exit_code == 1 and "no list_attr_celeba.txt" in r.output
    base = write_celeba_tree(tmp_path / "d", n=6)
    (base / "img_align_celeba" / "000003.jpg").unlink()
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(tmp_path / "d"), "--split", "test"])
    assert r.exit_code == 1 and "000003.jpg" in r.output
    base = write_celeba_tree(tmp_path / "t", n=6)
    (base / "img_align_celeba" / "000001.jpg").unlink()  # a train image: checked before any extraction
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(tmp_path / "t"), "--split", "test",
                                  "--out", str(tmp_path / "res")])
    assert r.exit_code == 1 and "000001.jpg" in r.output and not (tmp_path / "res").exists()


def test_bad_baseline_name(tmp_path, celeba_root):
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(celeba_root), "--baselines", "magic",
                                  "--max-images", "10", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "unknown baseline" in r.output


def test_vgg19_features_take_read_only_crops_in_chunks_without_a_warning(random_vgg):
    import warnings
    from faceattr.benchmark import vgg19_features
    crops = np.random.default_rng(0).integers(0, 256, (70, 64, 64, 3), dtype=np.uint8)
    whole = vgg19_features(crops, "relu2_1", random_vgg, batch=70)
    crops.setflags(write=False)  # as a memory-mapped crop cache hands them over
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chunked = vgg19_features(crops, "relu2_1", random_vgg, batch=32)  # 32 + 32 + 6
    assert chunked.shape == (70, 128 * 16) and np.isfinite(chunked).all()
    np.testing.assert_allclose(chunked, whole, rtol=2e-2, atol=2e-2)


@pytest.mark.slow
def test_feature_ceiling_reads_the_shipped_encoders_five_ways(celeba_root, benchmark_script, quick_svms):
    from faceattr.data.celeba import CelebA
    from faceattr.inference.bundle import Bundle
    fc = benchmark_script("feature_ceiling")
    bundle = Bundle.load("pretrained")
    data = {s: CelebA.load(celeba_root, s, max_images=60) for s in fc.SPLITS}
    crops = {s: d.crops(progress=False) for s, d in data.items()}
    y = {s: np.asarray(d.labels) for s, d in data.items()}
    r = fc.encoder_readings(bundle, {"val": crops["val"]})["val"]
    # the means read from the hidden layers are the shipped feature
    assert np.abs(r["mean"] - bundle_features(bundle, crops["val"])).max() < 0.05
    assert r["logvar"].shape == (60, 500) and r["hidden"].shape == (60, 5 * 4096)
    rows = fc.readings(bundle, crops, y, pca_dims=(20,))
    assert [row["dims"] for row in rows.values()] == [500, 500, 1000, 20]
    assert all(0.5 < row["val"] <= 1 and 0.5 < row["test"] <= 1 for row in rows.values())


def bundle_features(bundle, crops):
    from faceattr.inference.encoder import MultiViewEncoder
    return MultiViewEncoder.from_bundle(bundle, device="cpu").encode(crops)


def test_hidden_baseline_encodes_each_split_once(tmp_path, monkeypatch, quick_svms):
    from faceattr import benchmark
    from faceattr.benchmark import evaluate
    from faceattr.inference.encoder import MultiViewEncoder
    write_celeba_tree(tmp_path / "data", n=30)
    calls, hidden = [], MultiViewEncoder.hidden
    monkeypatch.setattr(MultiViewEncoder, "hidden", lambda self, faces: calls.append(len(faces)) or hidden(self, faces))
    res, _ = evaluate(tmp_path / "data", ("val", "test"),
                      benchmark.BenchmarkConfig("fit", ("relu1_1", "relu3_1"), ("hidden",), progress=False))
    assert len(calls) == 2 * 3  # two views x (train, val, test), val asked for twice by its row
    assert {"hidden relu1_1", "hidden relu3_1", "hidden all views"} <= set(res["val"]["baselines"])


def test_no_cache_is_a_parameter_not_a_changed_environment(tmp_path, monkeypatch):
    import os
    write_celeba_tree(tmp_path / "data", n=30)
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("FACEATTR_CACHE", str(cache_dir))
    monkeypatch.delenv("FACEATTR_NO_CACHE", raising=False)
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(tmp_path / "data"), "--no-cache",
                                  "--out", str(tmp_path / "res")])
    assert r.exit_code == 0, r.output
    assert "FACEATTR_NO_CACHE" not in os.environ  # nothing leaks into later calls in this process
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
    r = CliRunner().invoke(main, ["benchmark", "celeba", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 0 and any(cache_dir.glob("features-*.npy"))  # the next call caches again


def test_the_chart_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    import matplotlib
    from faceattr.benchmark import bar_chart
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    before = matplotlib.get_backend()
    matplotlib.use("pdf")  # a caller's own choice (a notebook's inline backend, say)
    results = {"per_attribute": {a: 0.8 for a in ATTRIBUTE_NAMES}, "paper_table1": paper_table(),
               "split": "test", "n_images": 3}
    try:
        bar_chart(results, tmp_path / "c.png")
        assert matplotlib.get_backend() == "pdf" and (tmp_path / "c.png").stat().st_size > 1000
    finally:
        matplotlib.use(before)


def test_the_vgg19_baseline_runs_where_device_says(tmp_path, celeba_root, monkeypatch, quick_svms):
    from faceattr import benchmark
    from faceattr.nn import vgg
    asked = []
    real = vgg.load_loss_network

    def record(weights=None, device="cpu"):
        asked.append(str(device))
        return real(weights, device)
    monkeypatch.setattr(vgg, "load_loss_network", record)
    benchmark.evaluate(celeba_root, ("val",), benchmark.BenchmarkConfig(baselines=("vgg19",), max_images=12,
                                                                         device="cpu", progress=False))
    assert asked == ["cpu"]
