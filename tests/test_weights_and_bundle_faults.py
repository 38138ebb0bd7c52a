"""Faults on the files faceattr owns (VGG19 weights, the bundle's manifest and files, outputs): each
is an error that names the file, and nothing is left half-written."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"



def test_junk_vgg_weights_are_a_named_error_without_unsafe_advice(tmp_path, celeba_root):
    import argparse
    import torch
    junk = tmp_path / "junk.pth"
    torch.save(argparse.Namespace(a=1), junk)  # torch's refusal would advise weights_only=False
    r = CliRunner().invoke(main, ["train", "--root", str(celeba_root), "--vgg-weights", str(junk),
                                  "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and f"{junk}: cannot read as VGG19 weights" in r.output
    assert "weights_only" not in r.output and "Traceback" not in r.output


def _bundle_copy(tmp_path):
    from faceattr.inference.bundle import default_bundle_dir
    dst = tmp_path / "bundle"
    shutil.copytree(default_bundle_dir(), dst)
    return dst


def test_sample_with_tampered_weights_is_a_named_error(tmp_path):
    b = _bundle_copy(tmp_path)
    with open(b / "view_relu3_1.pt", "r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00" * 16)
    r = CliRunner().invoke(main, ["sample", "--weights", str(b), "--out", str(tmp_path / "s.png")])
    assert r.exit_code == 1 and "view_relu3_1.pt: sha256 does not match" in r.output


@pytest.mark.parametrize("cmd", [["sample", "-n", "2"], ["reconstruct", "--aligned", "IMG"],
                                 ["tsne", "--root", "ROOT", "-n", "16"]])
def test_unwritable_out_is_refused_first(tmp_path, celeba_root, cmd):
    (tmp_path / "f").write_text("x")
    img = str(celeba_root / "img_align_celeba" / "000002.jpg")
    args = [img if a == "IMG" else str(celeba_root) if a == "ROOT" else a for a in cmd]
    r = CliRunner().invoke(main, args + ["--out", str(tmp_path / "f" / "x.png")])
    assert r.exit_code == 1 and "f/x.png: cannot write here" in r.output and "Traceback" not in r.output


def test_manifest_that_is_not_an_object(tmp_path):
    from faceattr.inference.bundle import Bundle, BundleError
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="manifest.json: expected a JSON object, got list"):
        Bundle.load(tmp_path)


def test_same_size_replacement_with_restored_mtime_is_caught(tmp_path):
    from faceattr.inference.bundle import Bundle, BundleError
    b = _bundle_copy(tmp_path)
    bundle = Bundle.load(b)
    bundle.heads()  # verified once, remembered
    path = b / bundle.manifest["heads"]["file"]
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[300] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(BundleError, match="sha256 does not match"):
        bundle.heads()


def test_put_arrays_never_leaves_a_mismatched_manifest(tmp_path, monkeypatch):
    from faceattr.inference import bundle as bundle_mod
    b = _bundle_copy(tmp_path)
    bundle = bundle_mod.Bundle.load(b)
    before = bundle.attribute_vectors()

    def crash(self):
        raise KeyboardInterrupt  # killed between writing the new file and the manifest
    monkeypatch.setattr(bundle_mod.Bundle, "save_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        bundle.put_arrays("attribute_vectors", {k: v * 2 for k, v in before.items()})
    again = bundle_mod.Bundle.load(b)
    for k, v in again.attribute_vectors().items():  # sha256 verified: the old, intact file
        np.testing.assert_array_equal(v, before[k])
    monkeypatch.undo()
    old_mode = os.umask(0o022)
    try:
        new = again.put_arrays("attribute_vectors", {k: v * 2 for k, v in before.items()})
    finally:
        os.umask(old_mode)
    assert bundle_mod.Bundle.load(b).attribute_vectors()["relu3_1"][0, 0] == 2 * before["relu3_1"][0, 0]
    assert (b / "manifest.json").stat().st_mode & 0o777 == 0o644 and new.stat().st_mode & 0o777 == 0o644


def test_tsne_of_identical_faces_is_an_error_not_a_crash(pretrained_bundle, real_faces):
    from faceattr import generate
    same = np.repeat(real_faces[:1], 16, axis=0)
    with pytest.raises(ValueError, match="only 1 distinct latent codes"):
        generate.tsne_map(pretrained_bundle, same, side=4)
