"""A corpus of bad and awkward inputs: every good input gets its result, every bad one a named
error, in one batch (predict, extract, the transformer)."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """name -> (path, expected error fragment or None for a good input)."""
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    Image.open(PHOTO).save(d / "good.png")
    Image.open(PHOTO).convert("RGB").save(d / "good.jpg", quality=90)
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("not an image at all")
    (d / "truncated.jpg").write_bytes((d / "good.jpg").read_bytes()[:2000])
    Image.fromarray(rng.integers(0, 255, (15, 15, 3), dtype=np.uint8)).save(d / "tiny15.png")  # 12-19 px
    Image.fromarray(rng.integers(0, 255, (19, 30, 3), dtype=np.uint8)).save(d / "tiny19.png")
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / "tiny8.png")
    Image.open(PHOTO).convert("L").save(d / "grey.png")
    Image.open(PHOTO).convert("RGBA").save(d / "rgba.png")
    return {
        "good.png": (d / "good.png", None), "good.jpg": (d / "good.jpg", None),
        "grey.png": (d / "grey.png", None), "rgba.png": (d / "rgba.png", None),
        "empty.jpg": (d / "empty.jpg", "file is empty"), "text.png": (d / "text.png", "cannot read as an image"),
        "truncated.jpg": (d / "truncated.jpg", "cannot read as an image"),
        "tiny15.png": (d / "tiny15.png", "smaller than the minimum face size of 20"),
        "tiny19.png": (d / "tiny19.png", "smaller than the minimum face size of 20"),
        "tiny8.png": (d / "tiny8.png", "too small for a face"),
        "missing.png": (d / "missing.png", "no such file"),
    }


def test_predict_over_the_corpus(corpus):
    paths = [str(p) for p, _ in corpus.values()]
    r = CliRunner().invoke(main, ["predict", *paths, "--format", "json"])
    assert r.exit_code == 1
    recs = {Path(x["file"]).name: x for x in json.loads(r.stdout)}
    assert set(recs) == set(corpus)
    for name, (path, err) in corpus.items():
        if err is None:
            assert recs[name]["error"] is None and len(recs[name]["faces"]) == 1, name
        else:
            assert str(path) in recs[name]["error"] and err in recs[name]["error"], (name, recs[name]["error"])


def test_extract_over_the_corpus(corpus, tmp_path):
    out = tmp_path / "f.parquet"
    r = CliRunner().invoke(main, ["extract", *[str(p) for p, _ in corpus.values()], "--out", str(out)])
    assert r.exit_code == 1
    import pandas as pd
    df = pd.read_parquet(out)
    good = {str(p) for p, e in corpus.values() if e is None}
    assert set(df["file"]) == good and len(df) == len(good)
    for path, err in corpus.values():
        if err is not None:
            assert f"error: {path}: " in r.stderr and err in r.stderr


def test_transformer_over_the_corpus_and_odd_objects(corpus):
    from faceattr import MultiViewVAEFeatures
    items = [str(p) for p, _ in corpus.values()] + [None, 7, (PHOTO.read_bytes()), b""]
    with pytest.warns(UserWarning) as caught:
        x = MultiViewVAEFeatures().fit().transform(items)
    ok = [e is None for _, e in corpus.values()] + [False, False, True, False]
    assert x.shape == (len(items), 500)
    assert np.isfinite(x[ok]).all() and np.isnan(x[~np.array(ok)]).all()
    text = "\n".join(str(w.message) for w in caught)
    assert "not an image; expected a path, encoded bytes" in text and "no image data (0 bytes)" in text
    np.testing.assert_allclose(x[-2], x[0], atol=1e-5)  # bytes decode like the file


def test_align_none_refuses_floats_outside_unit_range():
    from faceattr import MultiViewVAEFeatures
    f = MultiViewVAEFeatures(align="none").fit()
    faces = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3))
    faces[1] *= 255  # 0-255 floats: would be clipped to near-white
    with pytest.warns(UserWarning, match=r"float image values must be in \[0, 1\], got \[0"):
        x = f.transform(faces)
    assert np.isfinite(x[0]).all() and np.isnan(x[1]).all()


def test_float_pil_image_in_unit_range_is_not_black():
    from faceattr.faces.images import load_rgb
    a = np.full((40, 40), 0.5, dtype=np.float32)
    assert abs(np.asarray(load_rgb(Image.fromarray(a, "F"))).mean() - 128) < 2


def test_array_inputs_are_checked_against_the_pixel_limit(monkeypatch):
    from faceattr.faces import images
    from faceattr.faces.images import ImageError, load_rgb
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    with pytest.raises(ImageError, match="above the limit"):
        load_rgb(np.zeros((101, 100, 3), np.uint8))


def test_large_photo_is_detected_on_a_smaller_copy_and_mapped_back():
    from faceattr.faces.detect import DETECT_MAX_SIDE, FaceDetector
    det = FaceDetector()
    small = Image.open(PHOTO).convert("RGB")
    (ref,) = det.detect(small)
    k = 6.25  # 512 -> 3200 px
    big = small.resize((round(512 * k),) * 2, Image.BICUBIC)
    copy, scale = det.detection_copy(big)
    assert max(copy.size) == DETECT_MAX_SIDE and scale == pytest.approx(DETECT_MAX_SIDE / 3200)
    (face,) = det.detect(big)
    np.testing.assert_allclose(face.box, np.array(ref.box) * k, atol=4 * k)
    np.testing.assert_allclose(face.landmarks, ref.landmarks * k, atol=4 * k)


def test_detection_failure_is_that_inputs_error_and_the_batch_goes_on():
    from faceattr.faces.detect import FaceDetector
    from faceattr.faces.prepare import prepare_many
    det = FaceDetector()
    real = det._run_mtcnn

    def flaky(stack):
        """MTCNN that fails on any batch holding a black photo."""
        if (stack.reshape(len(stack), -1).max(axis=1) == 0).any():
            raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
        return real(stack)
    det._run_mtcnn = flaky
    black = Image.new("RGB", Image.open(PHOTO).size)
    out = prepare_many([str(PHOTO), black, str(PHOTO)], "auto", det)  # one same-size batch
    assert len(out[0].faces) == 1 and len(out[2].faces) == 1
    assert out[1].faces.shape[0] == 0
    assert out[1].error.startswith("<Image>") and "face detection failed (RuntimeError" in out[1].error


def test_min_face_size_larger_than_the_image():
    r = CliRunner().invoke(main, ["predict", str(PHOTO), "--min-face-size", "600", "--format", "json"])
    assert r.exit_code == 1 and "smaller than the minimum face size of 600" in r.stdout
