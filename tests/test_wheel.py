"""The package as a user installs it: the built wheel (and sdist) carry the weights bundle, and
the unpacked wheel predicts from a folder outside the repository."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (the [test] extra)")
    out = tmp_path_factory.mktemp("dist")
    for target in ("wheel", "sdist"):
        # No build isolation: no network is needed, the build backend is already installed.
        subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", target, "-d", str(out)],
                       cwd=REPO, check=True, capture_output=True)
    return out


def test_wheel_lists_every_bundle_file_with_its_sha256(dist):
    from faceattr.inference.bundle import Bundle
    bundle = Bundle.load(REPO / "pretrained")
    expected = {e["file"]: e["sha256"] for e in bundle._entries()}
    assert len(expected) == len(bundle.views) + 2  # views, heads, attribute vectors
    (wheel,) = dist.glob("faceattr-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "faceattr/weights/manifest.json" in names and "faceattr/weights/MODEL_CARD.md" in names
        licences = {n.rsplit("/", 1)[-1] for n in names if "/licenses/" in n}
        assert {"LICENSE", "WEIGHTS-LICENSE.md"} <= licences, licences
        # the page works from the wheel, offline
        assert {f"faceattr/static/{f}" for f in ("index.html", "page.js", "page.css", "favicon.svg")} <= names
        assert "faceattr/py.typed" in names
        for f, sha in expected.items():
            assert hashlib.sha256(z.read(f"faceattr/weights/{f}")).hexdigest() == sha, f


def test_sdist_carries_the_bundle(dist):
    (sdist,) = dist.glob("faceattr-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"pretrained/manifest.json", "pretrained/view_relu3_1.pt", "faceattr/cli.py",
            "pyproject.toml"} <= names


@pytest.mark.slow
def test_unpacked_wheel_predicts_outside_the_repository(dist, tmp_path):
    (wheel,) = dist.glob("faceattr-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(REPO / "examples" / "astronaut.png", work / "photo.png")
    env = {k: v for k, v in os.environ.items() if k not in ("FACEATTR_PRETRAINED", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    probe = subprocess.run(
        [sys.executable, "-c", "import faceattr, faceattr.inference.bundle as p; "
         "print(faceattr.__file__); print(p.default_bundle_dir()); print(p.Bundle.load().sha256)"],
        cwd=work, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert Path(probe[0]).is_relative_to(site)
    assert Path(probe[1]) == site / "faceattr" / "weights"
    from faceattr.inference.bundle import Bundle
    assert probe[2] == Bundle.load(REPO / "pretrained").sha256
    out = subprocess.run([sys.executable, "-m", "faceattr.cli", "predict", "photo.png", "--format", "json"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (record,) = json.loads(out.stdout)
    assert record["file"] == "photo.png" and record["error"] is None
    assert len(record["faces"]) == 1 and len(record["faces"][0]["attributes"]) == 40


def test_no_bundle_error_names_every_way(monkeypatch, tmp_path):
    from faceattr.inference import bundle
    monkeypatch.delenv("FACEATTR_PRETRAINED", raising=False)
    monkeypatch.setattr(bundle, "PACKAGED", tmp_path / "a")
    monkeypatch.setattr(bundle, "IN_CLONE", tmp_path / "b")
    with pytest.raises(bundle.BundleError) as e:
        bundle.Bundle.load()
    for way in ("pip install", "FACEATTR_PRETRAINED", "--weights"):
        assert way in str(e.value)
