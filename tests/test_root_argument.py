"""Where the project's scripts find a CelebA folder: --root, else $FACEATTR_CELEBA_MINI, never a
path of the machine they were written on."""
import argparse
import re
from pathlib import Path

import pytest

from faceattr.data.celeba import ROOT_ENV, add_root_argument

REPO = Path(__file__).resolve().parent.parent


def test_root_comes_from_the_option_or_the_variable(monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    with pytest.raises(SystemExit):
        ap.parse_args([])  # neither: a usage error naming --root
    assert ap.parse_args(["--root", "A"]).root == "A"
    monkeypatch.setenv(ROOT_ENV, "/data/celeba")
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    assert ap.parse_args([]).root == "/data/celeba" and ap.parse_args(["--root", "B"]).root == "B"


def test_no_script_defaults_to_a_path_outside_the_repository():
    scripts = [p for folder in ("benchmarks", "experiments", "tools", "examples", "scripts", "faceattr")
               for p in (REPO / folder).rglob("*.py")]
    bad = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in scripts
           for m in re.finditer(r"default=[\"'](\.\./|/)[^\"']*[\"']", p.read_text(encoding="utf-8"))]
    assert not bad, bad
