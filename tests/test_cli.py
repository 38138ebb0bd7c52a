import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.cli import main
from faceattr.nn import checkpoint as ckpt

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def test_predict_json_schema(runner):
    r = runner.invoke(main, ["predict", str(PHOTO), "--format", "json"])
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert len(records) == 1 and records[0]["file"] == str(PHOTO) and records[0]["error"] is None
    face = records[0]["faces"][0]
    assert len(face["box"]) == 4 and 0.9 < face["confidence"] <= 1 and len(face["landmarks"]) == 5
    assert list(face["attributes"]) == list(ATTRIBUTE_NAMES)
    smiling = face["attributes"]["Smiling"]
    assert set(smiling) == {"present", "probability", "score"} and 0 <= smiling["probability"] <= 1
    assert smiling["present"] == (smiling["score"] > 0)


def test_predict_table_and_csv(runner):
    r = runner.invoke(main, ["predict", str(PHOTO)])
    assert r.exit_code == 0 and "face 1/1" in r.stdout and "Smiling" in r.stdout
    r = runner.invoke(main, ["predict", str(PHOTO), "--format", "csv"])
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("file,frame,time_s,face,error,x1") and len(lines) == 2
    assert len(lines[1].split(",")) == 10 + 3 * 40


def test_predict_directory_with_bad_files_goes_on(runner, tmp_path, celeba_root):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    Image.open(PHOTO).save(d / "sub" / "a.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (d / "empty.png").write_bytes(b"")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(d / "blank.png")
    (d / "notes.txt").write_text("ignored: not an image extension")
    r = runner.invoke(main, ["predict", str(d), "--format", "json"])
    assert r.exit_code == 1
    recs = {Path(x["file"]).name: x for x in json.loads(r.stdout)}
    assert set(recs) == {"a.png", "broken.jpg", "empty.png", "blank.png"}
    assert recs["a.png"]["faces"] and recs["a.png"]["error"] is None
    assert recs["blank.png"]["faces"] == [] and recs["blank.png"]["error"] is None
    assert "cannot read as an image" in recs["broken.jpg"]["error"]
    assert "empty" in recs["empty.png"]["error"]
    assert "broken.jpg" in r.stderr


def test_predict_aligned_skips_detection(runner, celeba_root):
    img = celeba_root / "img_align_celeba" / "000002.jpg"
    r = runner.invoke(main, ["predict", str(img), "--aligned", "--format", "json"])
    assert r.exit_code == 0, r.output
    face = json.loads(r.stdout)[0]["faces"][0]
    assert face["box"] is None and len(face["attributes"]) == 40


def test_predict_missing_path_is_that_inputs_error_and_the_others_go_on(runner):
    r = runner.invoke(main, ["predict", str(PHOTO), "/no/such/photo.jpg", "--format", "json"])
    assert r.exit_code == 1
    good, missing = json.loads(r.stdout)
    assert good["error"] is None and len(good["faces"]) == 1
    assert missing["file"] == "/no/such/photo.jpg" and "no such file" in missing["error"]
    assert "error: /no/such/photo.jpg: no such file" in r.stderr


def test_predict_says_how_many_files_a_folder_scan_skipped(runner, tmp_path):
    (tmp_path / "a.png").write_bytes(PHOTO.read_bytes())
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "raw.cr2").write_bytes(b"x")
    r = runner.invoke(main, ["predict", str(tmp_path), "--format", "json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1
    assert "skipped 2 file(s) without an image extension" in r.stderr


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".npz"])
def test_extract_formats(runner, tmp_path, celeba_root, ext):
    imgs = [str(celeba_root / "img_align_celeba" / f) for f in ("000002.jpg", "000003.jpg")]
    out = tmp_path / f"feats{ext}"
    r = runner.invoke(main, ["extract", *imgs, "--aligned", "--out", str(out)])
    assert r.exit_code == 0, r.output
    if ext == ".npz":
        z = np.load(out)
        assert z["features"].shape == (2, 500) and list(z["faces"]) == [0, 0] and z["files"][0].endswith("000002.jpg")
    else:
        import pandas as pd
        df = pd.read_csv(out) if ext == ".csv" else pd.read_parquet(out)
        assert df.shape == (2, 504) and list(df.columns[:5]) == ["file", "frame", "time_s", "face", "relu1_1__z000"]
        assert list(df["frame"]) == [-1, -1] and df["time_s"].isna().all()
    assert not list(tmp_path.glob(".*.tmp"))


def test_extract_bad_extension(runner, tmp_path):
    r = runner.invoke(main, ["extract", str(PHOTO), "--out", str(tmp_path / "x.xlsx")])
    assert r.exit_code == 1 and "unknown output format" in r.output


def test_extract_checks_out_before_any_work(runner, tmp_path, monkeypatch):
    from faceattr.inference import extract as extract_mod
    monkeypatch.setattr(extract_mod, "iter_features", lambda *a, **k: pytest.fail("computed before checking --out"))
    (tmp_path / "file").write_text("x")
    r = runner.invoke(main, ["extract", str(PHOTO), "--out", str(tmp_path / "file" / "feats.csv")])
    assert r.exit_code == 1 and "file/feats.csv: cannot write here" in r.output


def test_extract_names_inputs_without_faces(runner, tmp_path):
    Image.new("RGB", (200, 200), (128, 128, 128)).save(tmp_path / "blank.png")
    out = tmp_path / "f.csv"
    r = runner.invoke(main, ["extract", str(tmp_path / "blank.png"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"no face found: {tmp_path / 'blank.png'}" in r.stderr and "no face in any input" in r.stderr
    import pandas as pd
    assert len(pd.read_csv(out)) == 0 and list(pd.read_csv(out).columns[:5]) == ["file", "frame", "time_s", "face",
                                                                                 "relu1_1__z000"]


@pytest.mark.slow
def test_train_cli_tiny_run(runner, tmp_path, celeba_root):
    r = runner.invoke(main, ["train", "--root", str(celeba_root), "--layer", "relu1_1", "--max-images", "64",
                             "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "2 steps, 1 epochs" in r.output and "active latent dimensions" in r.output
    assert "note: 2 updates is a short run" in r.output
    assert (tmp_path / "run" / "view.pt").is_file() and (tmp_path / "run" / "reconstructions_epoch1.png").is_file()


@pytest.mark.slow
def test_train_cli_resumes_a_run_folder(runner, tmp_path, celeba_root):
    # --out is a folder: an existing run folder must be accepted, not refused as "is a directory"
    args = ["train", "--root", str(celeba_root), "--layer", "relu1_1", "--max-images", "32", "--batch-size", "32",
            "--out", str(tmp_path / "run")]
    assert runner.invoke(main, [*args, "--epochs", "1"]).exit_code == 0
    r = runner.invoke(main, [*args, "--epochs", "2", "--resume"])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [rec["step"] for rec in records if "step" in rec]
    assert steps[-1] == 2 and "2 steps, 2 epochs" in r.output
    r = runner.invoke(main, [*args, "--epochs", "1"])
    assert r.exit_code == 1 and "--resume" in r.output


def test_train_cli_wrong_root(runner, tmp_path):
    r = runner.invoke(main, ["train", "--root", str(tmp_path)])
    assert r.exit_code == 1 and "no list_attr_celeba.txt" in r.output


def test_every_face_or_only_the_largest(runner, tmp_path, celeba_root):
    canvas = Image.new("RGB", (900, 520), (30, 30, 30))
    canvas.paste(Image.open(PHOTO).convert("RGB"), (0, 0))  # 512x512 photo, face ~90 px wide
    small = Image.open(celeba_root / "img_align_celeba" / "000002.jpg").convert("RGB")
    canvas.paste(small, (600, 100))  # aligned face ~70 px wide
    path = tmp_path / "two.png"
    canvas.save(path)
    r = runner.invoke(main, ["predict", str(path), "--format", "json"])
    faces = json.loads(r.stdout)[0]["faces"]
    assert len(faces) == 2
    areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
    assert areas[0] >= areas[1]  # largest first
    r = runner.invoke(main, ["predict", str(path), "--format", "json", "--largest-face"])
    only = json.loads(r.stdout)[0]["faces"]
    assert len(only) == 1 and only[0]["box"] == faces[0]["box"]

