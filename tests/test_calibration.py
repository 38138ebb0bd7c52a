"""The benchmark's calibration report (faceattr.calibration): the ECE is near 0 for probabilities
that are what they say and large for ones that are not; the benchmark writes it and its figure."""
import numpy as np

from faceattr.calibration import calibration_report, expected_calibration_error
from faceattr.data.attributes import ATTRIBUTE_NAMES

from conftest import TINY_BUNDLE, write_celeba_tree


def test_the_ece_of_perfectly_calibrated_probabilities_is_near_zero():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    assert expected_calibration_error(p, rng.uniform(size=p.size) < p) < 0.005


def test_the_ece_of_badly_calibrated_probabilities_is_large():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200_000)
    overconfident = np.where(p > 0.5, 1.0, 0.0)  # says 0 or 1 where the truth is p
    assert expected_calibration_error(overconfident, rng.uniform(size=p.size) < p) > 0.2
    assert expected_calibration_error(np.full(4, 0.9), np.array([0, 0, 0, 0])) == 0.9


def test_the_report_names_the_worst_attributes_and_their_curves():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=(5000, 40))
    y = rng.uniform(size=p.shape) < p
    y[:, 7] = rng.uniform(size=5000) < 0.5  # attribute 7's probabilities mean nothing
    r = calibration_report(p, y, ATTRIBUTE_NAMES)
    assert r["worst"][0] == ATTRIBUTE_NAMES[7] and set(r["reliability"]) == {"pooled", *r["worst"]}
    assert 0 <= r["mean_brier"] <= 1 and len(r["ece"]) == 40


def test_the_benchmark_writes_the_calibration_and_its_figure(tmp_path):
    from PIL import Image
    from faceattr.benchmark import BenchmarkConfig, run_benchmark
    root = write_celeba_tree(tmp_path / "d", n=30)
    res = run_benchmark(root, "test", BenchmarkConfig("fit", baselines=(), weights=TINY_BUNDLE, progress=False,
                                                       use_cache=False), tmp_path / "out")
    assert set(res["calibration"]["ece"]) == set(ATTRIBUTE_NAMES)
    assert Image.open(tmp_path / "out" / "calibration.png").size[0] > 400
    assert "expected calibration error" in (tmp_path / "out" / "results.md").read_text()
