"""No command replaces a file it did not make, and no input is ever an output of the same run:
the generative commands, attribute-vectors, predict --annotate (the third audit's M5, L1, L17)."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main

from conftest import TINY_BUNDLE

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
run = CliRunner().invoke


@pytest.fixture
def face(tmp_path) -> Path:
    """A ready 64x64 face as a CelebA-sized aligned image, so --aligned needs no detection."""
    path = tmp_path / "photo.png"
    Image.open(PHOTO).convert("RGB").resize((178, 218)).save(path)
    return path


def test_reconstruct_never_writes_over_its_own_input_even_with_overwrite(face):
    before = face.read_bytes()
    for extra in ([], ["--overwrite"]):
        r = run(main, ["reconstruct", str(face), "--aligned", "--out", str(face), "--weights", str(TINY_BUNDLE), *extra])
        assert r.exit_code == 1 and "is also an input of this command" in r.output, r.output
    assert face.read_bytes() == before


def test_sample_refuses_an_existing_out_unless_overwrite(tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("the user's notes")
    args = ["sample", "-n", "2", "--out", str(notes), "--weights", str(TINY_BUNDLE)]
    r = run(main, args)
    assert r.exit_code == 1 and "already exists; not replaced (--overwrite replaces it)" in r.output
    assert notes.read_text() == "the user's notes"
    assert run(main, args + ["--overwrite"]).exit_code == 0 and Image.open(notes).format == "PNG"


def test_the_python_api_never_replaces_a_file_either(tmp_path):
    from faceattr import generate
    from faceattr.inference.bundle import Bundle
    out = tmp_path / "s.png"
    out.write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        generate.sample(Bundle.load(TINY_BUNDLE), "relu3_1", 2, out=out)
    assert out.read_text() == "mine"


@pytest.mark.parametrize("args,words", [
    (["manipulate", "X", "--attribute", "Smiling", "--strength", "1e30"], "1e+30 is not in the range -3.0<=x<=3.0"),
    (["interpolate", "X", "X", "--steps", "200000"], "200000 is not in the range 2<=x<=64"),
    (["manipulate", "X", "--attribute", "Smiling", "--steps", "65"], "65 is not in the range 2<=x<=64"),
    (["tsne", "--root", ".", "-n", "1000000"], "1000000 is not in the range 4<=x<=4096"),
])
def test_generative_bounds_are_refused_before_any_work(face, args, words):
    args = [str(face) if a == "X" else a for a in args]
    r = run(main, args + ["--out", str(face.with_name("o.png"))])
    assert r.exit_code == 2 and words in r.output, r.output


def test_the_generate_functions_check_their_bounds_too():
    from faceattr.generate_limits import check_steps, check_strength
    for bad in (1, 65, 2.5, True):
        with pytest.raises(ValueError, match="steps must be a whole number from 2 to 64"):
            check_steps(bad)
    for bad in (1e30, float("nan"), -3.5):
        with pytest.raises(ValueError, match="strength must be a number from -3 to 3"):
            check_strength(bad)


def test_attribute_vectors_never_rewrite_the_installed_bundle(tmp_path):
    from faceattr.inference.bundle import Bundle
    shipped = Bundle.load()
    manifest = (shipped.root / "manifest.json").read_text()
    r = run(main, ["attribute-vectors", "--root", str(tmp_path)])
    assert r.exit_code == 1 and "is the bundle installed with faceattr, which is never rewritten" in r.output
    assert (shipped.root / "manifest.json").read_text() == manifest
    assert (shipped.root / shipped.manifest["attribute_vectors"]["file"]).is_file()


def test_attribute_vectors_refuse_an_existing_out_before_any_work(tmp_path):
    out = tmp_path / "v.npz"
    out.write_text("mine")
    r = run(main, ["attribute-vectors", "--root", str(tmp_path), "--out", str(out)])
    assert r.exit_code == 1 and "already exists; not replaced" in r.output and out.read_text() == "mine"


def test_a_second_annotate_run_reads_no_picture_the_first_drew(tmp_path):
    folder = tmp_path / "ann1"
    folder.mkdir()
    Image.open(PHOTO).convert("RGB").resize((256, 256)).save(folder / "a.jpg")
    args = ["predict", str(folder), "--annotate", str(folder), "--format", "json", "--weights", str(TINY_BUNDLE)]
    first = run(main, args)
    assert first.exit_code == 0 and (folder / "a.jpg.annotated.png").is_file(), first.output
    second = run(main, args)
    assert [Path(r["file"]).name for r in json.loads(second.stdout)] == ["a.jpg"]
    assert "skipped 1 picture(s) drawn by an earlier --annotate" in second.stderr
    assert second.exit_code == 1  # a.jpg's annotation is there already: that input's error, nothing replaced


def test_a_csv_cell_that_starts_like_a_formula_is_written_as_text(tmp_path, monkeypatch):
    from faceattr.inference.formats import csv_rows, spreadsheet_text
    assert spreadsheet_text("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert spreadsheet_text("+1") == "'+1" and spreadsheet_text("photo.jpg") == "photo.jpg"
    row = csv_rows({"file": "=cmd|calc.jpg", "error": "=cmd|calc.jpg: no such file", "faces": []})[0]
    assert row[0] == "'=cmd|calc.jpg" and row[4] == "'=cmd|calc.jpg: no such file"
    path = tmp_path / "=cmd|calc.jpg"
    Image.open(PHOTO).convert("RGB").resize((128, 128)).save(path, "JPEG")
    monkeypatch.chdir(tmp_path)
    r = run(main, ["predict", path.name, "--format", "csv", "--weights", str(TINY_BUNDLE)])
    assert r.stdout.splitlines()[1].startswith("'=cmd|calc.jpg,"), r.stdout[:200]
