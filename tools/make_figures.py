"""Redraw the README's figures from the shipped bundle, so they never show weights we no longer ship.

    python -m tools.make_figures --root CELEBA_MINI

Each figure is the README's own command run on fixed inputs: the first test faces of celeba-mini
in file order (the ones lacking the attribute for ``manipulate``) and ``examples/astronaut.png``.
Writes docs/figures/{reconstruct,sample_relu3_1,interpolate,manipulate_smiling,
manipulate_eyeglasses,tsne_half,annotate_astronaut}.png; the training figure
(train_relu3_1_gpu_epoch5.png) is a record of the GPU run and is left as it is.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from faceattr.atomic import copy_file
from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.data.celeba import CelebA, add_root_argument

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"


def faceattr(*args: str) -> None:
    cmd = [sys.executable, "-m", "faceattr.cli", *args]
    print("faceattr", " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def first_without(ds: CelebA, attribute: str, skip: int = 0) -> Path:
    col = ATTRIBUTE_NAMES.index(attribute)
    rows = [i for i in range(len(ds)) if ds.labels[i, col] == 0]
    return ds.paths()[rows[skip]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    args = ap.parse_args()
    test = CelebA.load(args.root, "test")
    first = [str(f) for f in test.paths()[:8]]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        faceattr("reconstruct", "--aligned", *first, "--out", str(t / "reconstruct.png"))
        faceattr("sample", "--view", "relu3_1", "-n", "32", "--seed", "0", "--out", str(t / "sample_relu3_1.png"))
        faceattr("interpolate", "--aligned", first[0], first[3], "--steps", "11", "--out", str(t / "interpolate.png"))
        faceattr("manipulate", "--aligned", str(first_without(test, "Smiling")), "--attribute", "Smiling",
                 "--strength", "2", "--out", str(t / "manipulate_smiling.png"))
        faceattr("manipulate", "--aligned", str(first_without(test, "Eyeglasses", skip=2)), "--attribute",
                 "Eyeglasses", "--strength", "2", "--out", str(t / "manipulate_eyeglasses.png"))
        faceattr("tsne", "--root", args.root, "-n", "625", "--out", str(t / "tsne.png"))
        with Image.open(t / "tsne.png") as im:
            im.resize((im.width // 2, im.height // 2), Image.LANCZOS).save(t / "tsne_half.png")
        faceattr("predict", str(REPO / "examples" / "astronaut.png"), "--annotate", str(t / "annotated"))
        shutil.copy(next((t / "annotated").glob("*.png")), t / "annotate_astronaut.png")
        for f in ("reconstruct", "sample_relu3_1", "interpolate", "manipulate_smiling", "manipulate_eyeglasses",
                  "tsne_half", "annotate_astronaut"):
            copy_file(t / f"{f}.png", FIGURES / f"{f}.png")  # each figure whole, or the old one stays
    print(f"figures in {FIGURES}")


if __name__ == "__main__":
    main()
