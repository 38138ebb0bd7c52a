"""What predict and the transformer give for awkward inputs: annotations that replace nothing,
videos without frames, rows without a face, special files, names with newlines, AVIF, empty inputs."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def predictor():
    from faceattr.inference.predictor import AttributePredictor
    return AttributePredictor()


# ---- --annotate ----------------------------------------------------------------------
def test_annotating_into_the_input_folder_replaces_nothing(runner, tmp_path):
    Image.open(PHOTO).save(tmp_path / "face.png")
    Image.open(PHOTO).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "face.jpg")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = runner.invoke(main, ["predict", str(tmp_path), "--annotate", str(tmp_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} was overwritten"
    made = sorted(p.name for p in tmp_path.iterdir() if p.name not in before)
    assert made == ["face.jpg.annotated.png", "face.png.annotated.png"]
    # A second run does not replace the first run's annotations: each is that input's error.
    first = {n: (tmp_path / n).read_bytes() for n in made}
    r = runner.invoke(main, ["predict", str(tmp_path / "face.png"), "--annotate", str(tmp_path)])
    assert r.exit_code == 1 and "already exists; not overwritten" in r.output
    assert {n: (tmp_path / n).read_bytes() for n in made} == first


def test_unwritable_annotate_folder_is_refused_before_the_models_load(runner, monkeypatch):
    import faceattr.inference.predictor as predictor_mod

    def no_models(*a, **k):
        raise AssertionError("the models were loaded before --annotate was checked")
    monkeypatch.setattr(predictor_mod.AttributePredictor, "__init__", no_models)
    r = runner.invoke(main, ["predict", str(PHOTO), "--annotate", "/proc/faceattr-annotations", "--format", "json"])
    assert r.exit_code == 1 and "cannot write here" in r.output and "/proc" in r.output
    assert "[" not in r.stdout


def test_an_input_that_vanishes_before_annotation_is_still_drawn(predictor, tmp_path, monkeypatch):
    import faceattr.faces.finder as pipeline_mod
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    shutil.copy(PHOTO, a)
    shutil.copy(PHOTO, b)
    real = pipeline_mod.prepare_many

    def prepare_then_delete(items, *args, **kw):
        out = real(items, *args, **kw)
        for item in items:
            Path(item).unlink()  # gone after detection
        return out
    monkeypatch.setattr(pipeline_mod, "prepare_many", prepare_then_delete)
    records = list(predictor.iter_records([str(a), str(b)], annotate_dir=tmp_path / "ann"))
    assert [r["error"] for r in records] == [None, None]
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["a.png.annotated.png", "b.png.annotated.png"]


def test_a_late_annotation_failure_is_that_inputs_error(predictor, tmp_path, monkeypatch):
    import faceattr.inference.annotate as annotate_mod
    real = annotate_mod.save_annotated

    def fail_for_b(img, record, folder, used, scale=1.0):
        if record["file"].endswith("b.png"):
            raise OSError(28, "No space left on device")
        return real(img, record, folder, used, scale=scale)
    monkeypatch.setattr(annotate_mod, "save_annotated", fail_for_b)
    for n in ("a.png", "b.png"):
        shutil.copy(PHOTO, tmp_path / n)
    records = list(predictor.iter_records([str(tmp_path / "a.png"), str(tmp_path / "b.png")],
                                          annotate_dir=tmp_path / "ann"))
    assert records[0]["error"] is None and records[0]["faces"]
    assert "annotation not written" in records[1]["error"] and "No space left" in records[1]["error"]


# ---- a video with no frames ------------------------------------------------------------------
def test_a_video_stream_with_no_frames_is_that_files_error(runner, tmp_path):
    av = pytest.importorskip("av")
    empty = tmp_path / "empty.avi"  # AVI keeps a stream with no frames (MP4 drops the stream)
    with av.open(str(empty), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    with av.open(str(empty)) as check:
        assert len(check.streams.video) == 1
    r = runner.invoke(main, ["predict", str(empty), str(PHOTO), "--format", "json"])
    assert r.exit_code == 1
    records = json.loads(r.stdout)
    assert [rec["file"] for rec in records] == [str(empty), str(PHOTO)]
    assert records[0]["error"] == f"{empty}: the video stream has no frames"
    assert records[1]["error"] is None


# ---- the nit on strings: predict on features --------------------------------------------
def test_a_nan_row_gives_no_decision_and_a_warning_naming_it(predictor):
    from faceattr.inference.predictor import UndecidedWarning
    feats = np.zeros((3, predictor.encoder.n_features), np.float32)
    feats[1] = np.nan
    with pytest.warns(UndecidedWarning, match=r"nobody\.jpg"):
        out = predictor.predict(feats, names=["a.jpg", "nobody.jpg", "c.jpg"])
    assert np.ma.isMaskedArray(out)
    assert out.mask[1].all() and not out.mask[0].any() and not out.mask[2].any()


def test_a_string_array_given_to_predict_is_a_clear_error(predictor):
    with pytest.raises(ValueError, match="features must be numbers"):
        predictor.predict(np.array([["a"] * predictor.encoder.n_features]))




# ---- what a path really is ----------------------------------------------------------------
def test_special_files_get_a_record_that_says_what_they_are(runner, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(PHOTO, d / "good.png")
    (d / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(d / "pipe.png")
    r = runner.invoke(main, ["predict", str(d), "/dev/zero", "--format", "json"])
    errors = {Path(rec["file"]).name: rec["error"] for rec in json.loads(r.stdout)}
    assert errors["good.png"] is None
    assert "broken symbolic link" in errors["gone.jpg"]
    assert "FIFO" in errors["pipe.png"]
    assert "device" in errors["zero"] and "no such file" not in errors["zero"]


def test_a_proc_file_is_read_not_called_empty():
    from faceattr.faces.images import ImageError, load_rgb
    with pytest.raises(ImageError) as e:
        load_rgb("/proc/self/status")
    assert "empty" not in str(e.value) and "cannot read as an image" in str(e.value)


# ---- names with newlines ------------------------------------------------------------------
def test_a_name_with_a_newline_keeps_tables_and_counts_whole(runner, tmp_path):
    odd = tmp_path / "two\nlines.png"
    shutil.copy(PHOTO, odd)
    r = runner.invoke(main, ["predict", str(odd)])
    assert r.exit_code == 0
    first = r.stdout.splitlines()[0]
    assert "two\\nlines.png" in first and "face 1/1" in first
    out = tmp_path / "f.csv"
    r = runner.invoke(main, ["extract", str(odd), str(PHOTO), "--out", str(out)])
    assert r.exit_code == 0, r.output
    import pandas as pd
    rows = len(pd.read_csv(out))
    assert f"({rows} rows in all)" in r.output and rows == 2



# ---- nits --------------------------------------------------------------------------------------
def test_avif_files_in_a_folder_are_read_like_named_ones(tmp_path):
    from faceattr.inference.predictor import collect_inputs
    (tmp_path / "face.avif").write_bytes(b"")
    assert [p.name for p in collect_inputs([tmp_path])[0]] == ["face.avif"]



def test_an_empty_list_and_an_empty_array_fail_alike_in_transform():
    from faceattr.inference.transformer import MultiViewVAEFeatures
    t = MultiViewVAEFeatures(align="none").fit([np.zeros((64, 64, 3), np.uint8)])
    messages = []
    for empty in ([], np.zeros((0, 64, 64, 3), np.uint8)):
        with pytest.raises(ValueError) as e:
            t.transform(empty)
        messages.append(str(e.value))
    assert all("while a minimum of 1 is required by MultiViewVAEFeatures" in m for m in messages), messages
