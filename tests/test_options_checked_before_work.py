"""Every option is checked before the work it would spoil, and says what is wrong with it (the
third audit's L2-L9, L19, M4): the transformer's parameters, heads fit's rules and output, train's
folders, the extra faces' identity and the cache's listing."""
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main

from conftest import TINY_BUNDLE, write_celeba_tree

run = CliRunner().invoke


def test_views_given_as_one_string_are_view_names_not_letters():
    from faceattr.inference.transformer import MultiViewVAEFeatures
    t = MultiViewVAEFeatures(weights=str(TINY_BUNDLE), views="relu3_1").fit()
    assert t.views_ == ["relu3_1"]
    assert MultiViewVAEFeatures(weights=str(TINY_BUNDLE), views="relu3_1,relu4_1").fit().views_ == ["relu3_1", "relu4_1"]
    with pytest.raises(ValueError, match="view 'relu9_1' not in"):
        MultiViewVAEFeatures(weights=str(TINY_BUNDLE), views="relu9_1").fit()


@pytest.mark.parametrize("bad", [True, False, 0, 2.0, "64"])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused_by_fit(bad):
    from faceattr.inference.transformer import MultiViewVAEFeatures
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer or None, got {bad!r}"):
        MultiViewVAEFeatures(weights=str(TINY_BUNDLE), batch_size=bad, align="celeba").fit()


@pytest.fixture
def small_root(tmp_path) -> Path:
    return write_celeba_tree(tmp_path / "root", n=12)


@pytest.mark.parametrize("rule,words", [
    ("bogus", "decision rule must be 'balanced', 'precision>=P' or 'recall>=R'"),
    ("precision>=abc", "'abc' is not a number"),
    ("precision>=nan", "precision must be above 0 and at most 1, got nan"),
    ("recall>=2", "recall must be above 0 and at most 1, got 2"),
    ("recall>=0", "recall must be above 0 and at most 1, got 0"),
])
def test_heads_fit_refuses_a_bad_rule_before_fitting(small_root, tmp_path, monkeypatch, rule, words):
    from faceattr.inference import heads_fit
    monkeypatch.setattr(heads_fit, "fit_linear_heads", lambda *a, **k: pytest.fail("fitted before the rule was checked"))
    r = run(main, ["heads", "fit", "--root", str(small_root), "--out", str(tmp_path / "hb"), "--decision", rule,
                   "--weights", str(TINY_BUNDLE)])
    assert r.exit_code == 1 and words in r.output, r.output
    assert not (tmp_path / "hb").exists()


def test_heads_fit_refuses_an_out_it_cannot_make_before_fitting(small_root, monkeypatch):
    from faceattr.inference import heads_fit
    monkeypatch.setattr(heads_fit, "fit_linear_heads", lambda *a, **k: pytest.fail("fitted before --out was checked"))
    r = run(main, ["heads", "fit", "--root", str(small_root), "--out", "/proc/hb_proc", "--weights", str(TINY_BUNDLE)])
    assert r.exit_code == 1 and "/proc/hb_proc: cannot write here" in r.output, r.output


def test_heads_fit_says_which_attributes_keep_the_sign_rule(tmp_path):
    """An attribute with one class in val has no threshold to choose: the bundle records it and
    the command says so, rather than storing the sign rule under the rule's name."""
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    from faceattr.inference.bundle import Bundle
    root = write_celeba_tree(tmp_path / "root", n=30)
    attr = root / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    bald = ATTRIBUTE_NAMES.index("Bald")
    for i in range(2, len(lines)):  # nobody is bald
        cells = lines[i].split()
        cells[1 + bald] = "-1"
        lines[i] = " ".join(cells)
    attr.write_text("\n".join(lines) + "\n")
    r = run(main, ["heads", "fit", "--root", str(root), "--out", str(tmp_path / "hb"), "--decision", "recall>=0.9",
                   "--weights", str(TINY_BUNDLE)])
    assert r.exit_code == 0, r.output
    fallback = Bundle.load(tmp_path / "hb").manifest["heads"]["sign_rule_fallback"]
    assert "Bald" in fallback["balanced"] and "Bald" in fallback["recall>=0.9"]
    assert "recall>=0.9:" in r.stderr and "keep the sign rule" in r.stderr and "Bald" in r.stderr


def test_train_follows_a_link_to_a_folder_and_names_a_link_to_a_file(tmp_path):
    from faceattr.train import run_folder
    (tmp_path / "t2").mkdir()
    os.symlink(tmp_path / "t2", tmp_path / "t2link")
    assert run_folder(tmp_path / "t2link") == (tmp_path / "t2").resolve()
    (tmp_path / "afile").write_text("x")
    os.symlink(tmp_path / "afile", tmp_path / "filelink")
    with pytest.raises(NotADirectoryError, match="filelink: is a link to .*afile, which is not a folder"):
        run_folder(tmp_path / "filelink")
    with pytest.raises(NotADirectoryError, match="afile: is a file, not a folder"):
        run_folder(tmp_path / "afile")


def test_train_names_an_extra_faces_file_as_a_file(small_root, tmp_path):
    (tmp_path / "afile").write_text("x")
    r = run(main, ["train", "--root", str(small_root), "--extra-faces", str(tmp_path / "afile")])
    assert r.exit_code == 2 and "afile: is a file, not a folder" in r.output, r.output
    r = run(main, ["train", "--root", str(small_root), "--extra-faces", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "nothing: does not exist" in r.output, r.output


def test_max_images_bounds_the_extra_faces_too(tmp_path):
    """The third audit's L19: --max-images 4 with 9 extra faces draws from 4 of them."""
    from faceattr.data.extra_faces import load_extra_faces
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, face in enumerate(np.random.default_rng(0).integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)):
        Image.fromarray(face).save(folder / f"{i}.png")
    faces, record = load_extra_faces(folder, use_cache=False, max_faces=4)
    assert len(faces) == 4 and record["count"] == 4
    assert "at most N of --extra-faces" in " ".join(run(main, ["train", "--help"]).output.split())


def test_the_extra_faces_are_known_by_their_pixels_not_their_names_and_sizes(tmp_path, monkeypatch):
    """The third audit's M4: a face rewritten with other pixels at the same size is a new set,
    for the cache and for the sha256 a resume compares."""
    from faceattr.data.extra_faces import load_extra_faces
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "e2"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "a.ppm")
    first, r1 = load_extra_faces(folder)
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(folder / "a.ppm")  # the same size in bytes
    second, r2 = load_extra_faces(folder)
    assert r1["sha256"] != r2["sha256"] and first.max() == 0 and second.min() == 200


def test_the_cache_command_counts_and_clears_extra_faces_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path))
    np.save(tmp_path / "extra-faces-0123456789abcdef0123.npy", np.zeros((2, 64, 64, 3), np.uint8))
    assert ": 1 files" in run(main, ["cache"]).output
    assert "removed 1 files" in run(main, ["cache", "--clear"]).output
    assert not list(tmp_path.glob("extra-faces-*"))
