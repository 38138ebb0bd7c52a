"""Decisions a user can choose (issue 30): the paper's sign rule, or per-attribute thresholds."""
import json

import numpy as np

from faceattr.faces.options import FaceOptions
import pytest
from click.testing import CliRunner

from conftest import TINY_BUNDLE, write_celeba_tree
from faceattr.cli import main
from faceattr.inference.heads import operating_point

PHOTO = str(TINY_BUNDLE.parents[2] / "examples" / "astronaut.png")


def test_operating_points_meet_their_targets_on_the_data_they_were_chosen_on():
    rng = np.random.default_rng(0)
    y = (rng.random((2000, 3)) < [0.05, 0.5, 0.2]).astype(int)
    s = rng.normal(size=y.shape) + 2 * y
    for rule, check in [("precision>=0.9", lambda p, r: p >= 0.9), ("recall>=0.8", lambda p, r: r >= 0.8)]:
        pred = s > operating_point(s, y, rule)
        tp = (pred & (y == 1)).sum(0)
        assert all(check(tp[a] / pred[:, a].sum(), tp[a] / y[:, a].sum()) for a in range(3)), rule
    bal = lambda t: (((s > t) & (y == 1)).sum(0) / y.sum(0) + ((s <= t) & (y == 0)).sum(0) / (1 - y).sum(0)) / 2
    best = bal(operating_point(s, y, "balanced"))
    assert (best >= bal(np.zeros(3)) - 1e-9).all() and best[0] > bal(np.zeros(3))[0] + 0.1  # the rare one gains
    with pytest.raises(ValueError, match="decision rule must be"):
        operating_point(s, y, "f1")


def test_one_class_attributes_keep_the_sign_rule():
    y = np.zeros((10, 1), int)
    assert operating_point(np.arange(10.0)[:, None], y, "balanced")[0] == 0


def test_the_shipped_bundle_carries_the_balanced_point(pretrained_bundle):
    heads = pretrained_bundle.heads()
    assert heads["threshold_balanced"].shape == (40,)
    assert set(pretrained_bundle.manifest["heads"]["operating_points"]) == {"accuracy", "balanced"}


def test_decision_through_the_python_api_the_cli_and_the_server():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from faceattr import AttributePredictor
    from faceattr.serve import create_app
    by_rule = {}
    for rule in ("accuracy", "balanced"):
        p = AttributePredictor(decision=rule)
        rec = p.predict_images([PHOTO])[0].to_dict()
        assert rec["decision"] == rule
        by_rule[rule] = {n: a["present"] for n, a in rec["faces"][0]["attributes"].items()}
        scores = np.array([rec["faces"][0]["attributes"][n]["score"] for n in by_rule[rule]])
        assert list(by_rule[rule].values()) == list(scores > p.heads.threshold(rule))
        r = CliRunner().invoke(main, ["predict", PHOTO, "--format", "json", "--decision", rule])
        assert r.exit_code == 0 and json.loads(r.stdout)[0]["faces"] == rec["faces"]
    assert by_rule["accuracy"] != by_rule["balanced"]  # the rule moves some decisions, not the probabilities
    with TestClient(create_app()) as client:
        r = client.post("/predict", params={"decision": "balanced"}, files={"file": ("a.png", open(PHOTO, "rb"))})
        assert r.status_code == 200 and r.json()["decision"] == "balanced"
        assert {n: a["present"] for n, a in r.json()["faces"][0]["attributes"].items()} == by_rule["balanced"]
        bad = client.post("/predict", params={"decision": "lucky"}, files={"file": ("a.png", open(PHOTO, "rb"))})
        assert bad.status_code == 400 and "'lucky'" in bad.json()["detail"]
    r = CliRunner().invoke(main, ["predict", PHOTO, "--decision", "lucky"])
    assert r.exit_code == 1 and "not among these heads' operating points: accuracy, balanced" in r.output


def test_heads_fit_writes_a_new_bundle_with_its_operating_points(tmp_path, quick_svms):
    root = write_celeba_tree(tmp_path / "data", n=30)
    out = tmp_path / "mine"
    r = CliRunner().invoke(main, ["heads", "fit", "--root", str(root), "--out", str(out), "--weights", str(TINY_BUNDLE),
                                  "--decision", "balanced", "--decision", "recall>=0.9"])
    assert r.exit_code == 0, r.output
    from faceattr import AttributePredictor
    p = AttributePredictor(out, decision="recall>=0.9", faces=FaceOptions(align="celeba"))
    assert set(p.heads.thresholds) == {"accuracy", "balanced", "recall>=0.9"}
    assert p.predict_images([str(next((root / "img_align_celeba").iterdir()))])[0].decision == "recall>=0.9"
    again = CliRunner().invoke(main, ["heads", "fit", "--root", str(root), "--out", str(out), "--weights", str(TINY_BUNDLE)])
    assert again.exit_code == 1 and "already exists" in again.output
    assert not list(tmp_path.glob(".mine.partial-*"))


def test_the_benchmark_reports_both_rules_with_f1_and_auc(tmp_path, quick_svms):
    from faceattr.benchmark import BenchmarkConfig, evaluate, rules_table
    root = write_celeba_tree(tmp_path / "data", n=30)
    res, _ = evaluate(root, ("test",), BenchmarkConfig("fit", baselines=("majority", "pixels"), weights=TINY_BUNDLE,
                                                      progress=False, use_cache=False))
    t = res["test"]
    assert {"mean_f1", "mean_roc_auc", "f1", "roc_auc"} <= set(t) and set(t["decision_rules"]) == {"balanced"}
    assert set(t["baselines"]["pixels 32x32"]["decision_rules"]) == {"balanced"}
    assert t["baselines"]["majority"]["mean_roc_auc"] == pytest.approx(0.5)
    assert "| balanced |" in rules_table(t)
