"""``faceattr export onnx``: the shipped bundle exported and run with onnxruntime on real faces
gives torch float32's features, probabilities and decisions; the model describes itself; the
export refuses clearly and writes nothing half."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceattr.cli import main

ort = pytest.importorskip("onnxruntime", reason="the ONNX export needs the [onnx] extra (onnx, onnxruntime)")
pytest.importorskip("onnx", reason="the ONNX export needs the [onnx] extra (onnx, onnxruntime)")

# The bounds the export is held to (issue 45), and what it reaches here (torch's float32 path
# against onnxruntime's, on 256 celeba-mini test faces, AMD EPYC Zen 4): features 4.2e-6,
# probabilities 1.4e-6, decisions all equal.
FEATURE_TOLERANCE = PROBABILITY_TOLERANCE = 1e-4
DECISIONS_EQUAL = 0.999


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model"
    r = CliRunner().invoke(main, ["export", "onnx", str(out)])
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.weights
@pytest.mark.celeba
def test_onnxruntime_gives_torchs_float32_answers_on_real_faces(exported, celeba_root):
    from faceattr.data.celeba import CelebA
    from faceattr.inference.bundle import Bundle
    from faceattr.inference.encoder import MultiViewEncoder
    from faceattr.inference.heads import LinearHeads
    faces = CelebA.load(celeba_root, "test", max_images=256).crops(progress=False)
    session = ort.InferenceSession(str(exported / "model.onnx"))
    feats, probs, decisions = session.run(None, {"faces": faces})
    bundle = Bundle.load()
    ref = MultiViewEncoder.from_bundle(bundle, bundle.head_views(), device="cpu", precision="float32").encode(faces)
    heads = LinearHeads(bundle.heads(), "cpu")
    scores = heads.scores(ref)
    np.testing.assert_allclose(feats, ref, atol=FEATURE_TOLERANCE)
    np.testing.assert_allclose(probs, heads.probabilities(scores).numpy(), atol=PROBABILITY_TOLERANCE)
    assert decisions.dtype == bool and (decisions == (scores.numpy() > 0)).mean() >= DECISIONS_EQUAL


@pytest.mark.weights
def test_the_model_carries_its_description_and_the_folder_its_readme(exported):
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    from faceattr.inference.bundle import Bundle
    meta = ort.InferenceSession(str(exported / "model.onnx")).get_modelmeta().custom_metadata_map
    assert json.loads(meta["attributes"]) == list(ATTRIBUTE_NAMES) and meta["decision"] == "accuracy"
    bundle = Bundle.load()
    assert json.loads(meta["views"]) == {v: bundle.view_entry(v)["sha256"] for v in bundle.head_views()}
    assert "non-commercial" in meta["licence"] and len(json.loads(meta["thresholds"])) == 40
    assert len(json.loads(meta["preprocessing"])["template_64"]) == 5
    text = (exported / "README.md").read_text()
    assert "onnxruntime" in text and "left eye" in text and sorted(p.name for p in exported.iterdir()) == \
        ["README.md", "model.onnx"]


@pytest.mark.weights
def test_the_readmes_example_runs_as_written(exported, monkeypatch):
    import re
    code = re.search(r"```python\n(.*?)```", (exported / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(exported)
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.weights
def test_the_balanced_rule_exports_its_thresholds(tmp_path):
    from faceattr.inference.bundle import Bundle
    r = CliRunner().invoke(main, ["export", "onnx", str(tmp_path / "m"), "--decision", "balanced"])
    assert r.exit_code == 0, r.output
    meta = ort.InferenceSession(str(tmp_path / "m" / "model.onnx")).get_modelmeta().custom_metadata_map
    expected = Bundle.load().heads()["threshold_balanced"]
    np.testing.assert_allclose(json.loads(meta["thresholds"]), expected, atol=1e-5)


def test_the_export_refuses_clearly_and_leaves_nothing_behind(tmp_path):
    from conftest import TINY_BUNDLE
    run = CliRunner().invoke
    args = ["--weights", str(TINY_BUNDLE)]
    assert run(main, ["export", "onnx", str(tmp_path / "a"), *args]).exit_code == 0
    r = run(main, ["export", "onnx", str(tmp_path / "a"), *args])
    assert r.exit_code == 1 and "holds a model already (model.onnx); --overwrite replaces it" in r.output
    assert run(main, ["export", "onnx", str(tmp_path / "a"), *args, "--overwrite"]).exit_code == 0
    r = run(main, ["export", "onnx", str(tmp_path / "b"), *args, "--views", "relu9_1"])
    assert r.exit_code == 1 and "unknown view(s) relu9_1" in r.output
    r = run(main, ["export", "onnx", str(tmp_path / "b"), *args, "--views", "relu3_1"])
    assert r.exit_code == 1 and "the heads of" in r.output and "faceattr heads fit" in r.output
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    r = run(main, ["export", "onnx", str(tmp_path / "notes"), *args])
    assert r.exit_code == 1 and "not an export's (mine.txt)" in r.output
    r = run(main, ["export", "onnx", str(tmp_path / "c"), "--weights", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "no manifest.json" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "notes"]  # no temporary folder left


def test_a_failed_export_leaves_no_half_written_model(tmp_path, monkeypatch):
    from conftest import TINY_BUNDLE
    from faceattr import onnx_export as mod

    def broken(path, meta):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(mod, "_add_metadata", broken)
    with pytest.raises(OSError):
        mod.export_onnx(tmp_path / "m", TINY_BUNDLE)
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.weights
@pytest.mark.celeba
def test_the_model_gives_the_attributes_predict_aligned_gives(exported, celeba_root):
    """The issue's 'done when': the same faces, through `faceattr predict --aligned` and through
    onnxruntime, get the same attributes (up to scores at the threshold: predict may run in
    bfloat16 on this CPU, the model in float32)."""
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    from faceattr.data.celeba import CelebA
    ds = CelebA.load(celeba_root, "test", max_images=16)
    r = CliRunner().invoke(main, ["predict", *map(str, ds.paths()), "--aligned", "--format", "json"])
    records = json.loads(r.stdout)
    by_predict = np.array([[rec["faces"][0]["attributes"][n]["present"] for n in ATTRIBUTE_NAMES] for rec in records])
    (_, probs, decisions) = ort.InferenceSession(str(exported / "model.onnx")).run(None, {"faces": ds.crops(progress=False)})
    assert (by_predict == decisions).mean() >= 0.99
    by_predict_p = np.array([[rec["faces"][0]["attributes"][n]["probability"] for n in ATTRIBUTE_NAMES] for rec in records])
    np.testing.assert_allclose(probs, by_predict_p, atol=0.02)


def test_a_readme_the_user_had_in_out_dir_is_not_replaced(tmp_path):
    from conftest import TINY_BUNDLE
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "README.md").write_text("mine")
    r = CliRunner().invoke(main, ["export", "onnx", str(tmp_path / "m"), "--weights", str(TINY_BUNDLE)])
    assert r.exit_code == 1 and "holds a README.md already; not replaced" in r.output
    assert (tmp_path / "m" / "README.md").read_text() == "mine" and sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md"]
