import pickle

import joblib
import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from conftest import TINY_BUNDLE, TINY_FEATURES
from faceattr import MultiViewVAEFeatures


@pytest.fixture(scope="module")
def celeba_paths(celeba_root):
    from faceattr.data.celeba import CelebA
    ds = CelebA.load(celeba_root, "test", max_images=40)
    return [str(p) for p in ds.paths()], ds.labels


def test_transform_celeba_aligned(celeba_paths):
    paths, _ = celeba_paths
    f = MultiViewVAEFeatures(align="celeba").fit()
    x = f.transform(paths[:6])
    assert x.shape == (6, 500) and x.dtype == np.float32 and np.isfinite(x).all()
    names = f.get_feature_names_out()
    assert names[0] == "relu1_1__z000" and names[217] == "relu3_1__z017" and len(names) == 500


def test_align_none_takes_uint8_faces_and_flat_floats(real_faces):
    f = MultiViewVAEFeatures(TINY_BUNDLE, align="none").fit()
    a = f.transform(real_faces[:4])
    b = f.transform(real_faces[:4].reshape(4, -1).astype(np.float32) / 255.0)
    np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="12288 columns"):
        f.transform(np.zeros((2, 10)))


def test_views_subset_and_pandas_output(celeba_paths):
    paths, _ = celeba_paths
    f = MultiViewVAEFeatures(TINY_BUNDLE, align="celeba", views=["relu3_1"]).set_output(transform="pandas")
    df = f.fit_transform(paths[:3])
    assert df.shape == (3, 4) and list(df.columns) == [f"relu3_1__z00{j}" for j in range(4)]


def test_no_face_nan_gives_nan_row_and_warning_never_a_shifted_row(celeba_paths, tmp_path):
    paths, _ = celeba_paths
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (120, 120, 120)).save(blank)
    f = MultiViewVAEFeatures(align="auto", no_face="nan").fit()
    with pytest.warns(UserWarning, match=r"no face found in input\(s\) 1 \(.*blank.png\): their rows are NaN"):
        x = f.transform([paths[0], str(blank), paths[1]])
    assert np.isnan(x[1]).all() and np.isfinite(x[[0, 2]]).all() and list(f.no_face_) == [1]
    ref = f.transform([paths[1]])
    np.testing.assert_allclose(x[2], ref[0], atol=1e-4)


def test_no_face_image_encodes_the_whole_image_and_names_the_input(celeba_paths, tmp_path):
    from faceattr.faces.prepare import whole_image_face
    paths, _ = celeba_paths
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (120, 120, 120)).save(blank)
    f = MultiViewVAEFeatures(align="auto").fit()
    with pytest.warns(UserWarning, match=r"input\(s\) 1 \(.*blank.png\): the whole image, centred and resized"):
        x = f.transform([paths[0], str(blank)])
    assert np.isfinite(x).all() and list(f.no_face_) == [1]
    whole = MultiViewVAEFeatures(align="none").fit().transform(whole_image_face(str(blank))[None])
    np.testing.assert_allclose(x[1], whole[0], atol=1e-4)


def test_no_face_error_raises_naming_the_inputs(tmp_path):
    from faceattr.errors import InputError
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (120, 120, 120)).save(blank)
    with pytest.raises(InputError, match=r"no face found in input\(s\) 0 \(.*blank.png\) \(no_face='error'"):
        MultiViewVAEFeatures(no_face="error").fit().transform([str(blank)])
    with pytest.raises(ValueError, match="no_face must be one of image, nan, error, got 'skip'"):
        MultiViewVAEFeatures(no_face="skip").fit()


def test_the_readme_pipeline_line_works_on_photos_where_some_have_no_face(celeba_paths, tmp_path):
    """The issue-46 report: a Pipeline with LinearSVC refused NaN when 2 of 600 photos had no face."""
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC
    paths, labels = celeba_paths
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (120, 120, 120)).save(blank)
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    smiling = labels[:, ATTRIBUTE_NAMES.index("Smiling")]
    X, y = list(paths[:20]) + [str(blank)], np.r_[smiling[:20], 0]
    assert 0 < y.sum() < len(y)
    with pytest.warns(UserWarning, match="blank.png"):
        pipe = Pipeline([("f", MultiViewVAEFeatures()), ("svm", LinearSVC())]).fit(X, y)
    assert pipe.named_steps["f"].no_face_.tolist() == [20] and len(pipe.predict(X[:3])) == 3


def test_unreadable_file_gives_nan_row_naming_it(tmp_path, celeba_paths):
    paths, _ = celeba_paths
    bad = tmp_path / "bad.jpg"
    bad.write_text("x")
    with pytest.warns(UserWarning, match="bad.jpg: cannot read as an image"):
        x = MultiViewVAEFeatures(TINY_BUNDLE, align="celeba").fit().transform([str(bad), paths[0]])
    assert np.isnan(x[0]).all() and np.isfinite(x[1]).all()


def test_unfitted_and_bad_params():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        MultiViewVAEFeatures(TINY_BUNDLE).transform(["x.jpg"])
    with pytest.raises(ValueError, match="align must be one of"):
        MultiViewVAEFeatures(TINY_BUNDLE, align="sideways").fit()
    with pytest.raises(ValueError, match="view 'relu9_9' not in"):
        MultiViewVAEFeatures(TINY_BUNDLE, views=["relu9_9"]).fit()


def test_clone_pickle_joblib_round_trip(tmp_path, celeba_paths):
    paths, _ = celeba_paths
    f = MultiViewVAEFeatures(TINY_BUNDLE, align="celeba", batch_size=7).fit()
    x = f.transform(paths[:3])
    assert clone(f).get_params() == f.get_params()
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_allclose(g.transform(paths[:3]), x, atol=1e-5)
    joblib.dump(f, tmp_path / "f.joblib")
    h = joblib.load(tmp_path / "f.joblib")
    np.testing.assert_allclose(h.transform(paths[:3]), x, atol=1e-5)


def test_pickled_state_holds_only_cpu_tensors(celeba_paths):
    """What makes a CUDA-fitted transformer load on a CPU-only machine: the pickled state keeps
    CPU state dicts, never device modules (those are rebuilt lazily on the loading machine)."""
    import torch
    f = MultiViewVAEFeatures(TINY_BUNDLE, align="celeba").fit()
    f.transform(celeba_paths[0][:1])  # builds the device encoder
    assert f._pipeline is not None
    state = f.__getstate__()
    assert "_pipeline" not in state
    for cfg, sd in state["view_states_"].values():
        assert all(t.device == torch.device("cpu") for t in sd.values())


def test_pipeline_on_paths(celeba_root):
    from sklearn.preprocessing import StandardScaler
    from faceattr.data.celeba import CelebA
    ds = CelebA.load(celeba_root, "test", max_images=300)
    paths, male = [str(p) for p in ds.paths()], ds.labels[:, 20]
    pipe = Pipeline([("features", MultiViewVAEFeatures(align="celeba")), ("scale", StandardScaler()),
                     ("svm", LinearSVC(C=0.001))])
    pipe.fit(paths[:250], male[:250])
    pred = pipe.predict(paths[250:])
    assert pred.shape == (50,)
    assert (pred == male[250:]).mean() >= 0.8  # measured 0.9 and above; the majority class is 0.58


def test_auto_alignment_on_a_photo():
    from pathlib import Path
    photo = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
    x = MultiViewVAEFeatures().fit().transform([str(photo)])
    assert x.shape == (1, 500) and np.isfinite(x).all()


def test_cuda_fitted_transformer_falls_back_to_the_cpu(celeba_paths, monkeypatch):
    import torch
    paths, _ = celeba_paths
    expected = MultiViewVAEFeatures(TINY_BUNDLE, align="celeba").fit().transform(paths[:2])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    f = MultiViewVAEFeatures(TINY_BUNDLE, align="celeba", device="cuda").fit()  # fitting needs no device
    blob = pickle.dumps(f)
    with pytest.warns(UserWarning, match="device='cuda' but CUDA is not available here; using the CPU"):
        g = pickle.loads(blob)
    assert g.device == "cpu"
    np.testing.assert_allclose(g.transform(paths[:2]), expected, atol=1e-5)


def test_the_tiny_test_bundle_is_what_its_script_writes(tmp_path, benchmark_script):
    """tests/data/tiny_bundle is checked in; its script rebuilds one of the same shape."""
    import json
    import sys
    sys.path.insert(0, str(TINY_BUNDLE.parents[2] / "scripts"))
    from make_tiny_bundle import write_tiny_bundle
    fresh = json.loads((write_tiny_bundle(tmp_path / "b").root / "manifest.json").read_text())
    kept = json.loads((TINY_BUNDLE / "manifest.json").read_text())
    assert {v: e["model_config"] for v, e in fresh["views"].items()} == \
        {v: e["model_config"] for v, e in kept["views"].items()}
    assert MultiViewVAEFeatures(TINY_BUNDLE, align="none").fit().n_features_out_ == TINY_FEATURES
