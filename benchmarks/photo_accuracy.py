"""Where the photo path loses accuracy: the same test faces through CelebA's own crop and through
detection and alignment, scored against list_attr_celeba.txt with the shipped heads.

    python -m benchmarks.photo_accuracy --root CELEBA_MINI

Every image of the split is detected once (MTCNN, the largest face: what ``MultiViewVAEFeatures``
and ``--largest-face`` give); each arm then warps the same landmarks to 64x64 its own way and
encodes the crops with the shipped views:

- ``celeba crop``: CelebA's aligned image cropped as in training (``--aligned``), no detection;
- ``photo, 5 points``: the shipped fit, all five landmarks counted alike;
- ``photo, eyes first``: eyes 1, nose 0.5, mouth corners 0.25 each (a smile moves the mouth);
- ``photo, eyes and nose``: the mouth left out of the fit;
- ``photo, eyes only``: the two eyes alone fix rotation, scale and position.

Per arm: mean accuracy over the 40 attributes and per attribute (the sign rule), on the faces
every arm found, and the mean absolute pixel difference (0-255) of its crop from CelebA's, split
by Smiling. ``--photo-heads`` adds an arm whose 40 heads are fitted on photo-path features of
the train split (C on val, as the shipped heads), which needs detection on both. Writes
benchmarks/results/photo_accuracy.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceattr.atomic import write_text
from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import machine_description
from faceattr.faces.align import warp_face
from faceattr.faces.finder import FaceFinder
from faceattr.faces.images import load_rgb
from faceattr.faces.options import FaceOptions
from faceattr.inference.bundle import Bundle
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.inference.heads import decision_scores, fit_linear_heads

RESULTS = Path(__file__).resolve().parent / "results"
FITS = {"photo, 5 points": (1, 1, 1, 1, 1), "photo, eyes first": (1, 1, 0.5, 0.25, 0.25),
        "photo, eyes and nose": (1, 1, 0.5, 0, 0), "photo, eyes only": (1, 1, 0, 0, 0)}
SMILING = ATTRIBUTE_NAMES.index("Smiling")
SHOWN = ("High_Cheekbones", "Smiling", "Heavy_Makeup", "Attractive", "Mouth_Slightly_Open", "Male")


def landmarks_of(paths) -> list:
    """The largest face's landmarks of each photo (None where none was found)."""
    found = FaceFinder(FaceOptions(largest_face=True)).faces([str(p) for p in paths])
    return [p.detections[0].landmarks if p.detections else None for p in found]


def photo_crops(paths, landmarks, weights) -> np.ndarray:
    blank = np.zeros((64, 64, 3), np.uint8)
    return np.stack([blank if lm is None else warp_face(load_rgb(p), lm, weights=weights)
                     for p, lm in zip(paths, landmarks)])


def accuracy(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return ((scores > 0) == (labels > 0)).mean(0)


def split_faces(ds, encoder, fits, celeba: bool = True) -> dict:
    """{arm: (crops, features)} of one split, and the mask of faces every photo arm found."""
    paths = ds.paths()
    lms = landmarks_of(paths)
    out = {"celeba crop": ds.crops(progress=False)} if celeba else {}
    for name, w in fits.items():
        out[name] = photo_crops(paths, lms, w)
    found = np.array([lm is not None for lm in lms])
    return {k: (v, encoder.encode(v)) for k, v in out.items()}, found


def row(scores, labels, crops, celeba, smiling) -> dict:
    acc = accuracy(scores, labels)
    diff = np.abs(crops.astype(np.int16) - celeba.astype(np.int16)).mean((1, 2, 3))
    return {"mean_accuracy": float(acc.mean()), "per_attribute": dict(zip(ATTRIBUTE_NAMES, map(float, acc))),
            "pixel_difference_smiling": float(diff[smiling].mean()),
            "pixel_difference_not_smiling": float(diff[~smiling].mean())}


def markdown(result: dict) -> str:
    rows = result["arms"]
    base = rows["celeba crop"]
    head = "| arm | mean accuracy | " + " | ".join(SHOWN) + " | crop difference, smiling / not |"
    lines = [f"# Photo path against CelebA's crop ({result['split']} split)", "",
             f"`{result['command']}` on {result['machine']}; {result['faces']} faces that every arm found "
             f"({result['missed']} of {result['images']} images gave no face). Accuracy in %, the sign rule; "
             "per attribute, the difference from the CelebA crop in points; crop difference: mean absolute "
             "pixel difference (0-255) from CelebA's crop.", "", head, "|" + "---|" * (len(SHOWN) + 3)]
    for name, r in rows.items():
        cells = [f"{100 * r['mean_accuracy']:.2f}"]
        for a in SHOWN:
            d = 100 * (r["per_attribute"][a] - base["per_attribute"][a])
            cells.append(f"{100 * r['per_attribute'][a]:.1f}" if name == "celeba crop" else f"{d:+.1f}")
        cells.append(f"{r['pixel_difference_smiling']:.1f} / {r['pixel_difference_not_smiling']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _machine() -> str:
    m = machine_description()
    return f"{m['cpu']}, torch {m['torch']}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--photo-heads", action="store_true", help="add heads fitted on the photo path's train features")
    ap.add_argument("--out", default=str(RESULTS / "photo_accuracy"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    bundle = Bundle.load()
    encoder = MultiViewEncoder.from_bundle(bundle, bundle.head_views())
    heads = bundle.heads()
    ds = CelebA.load(args.root, args.split, max_images=args.max_images)
    arms, found = split_faces(ds, encoder, FITS)
    labels, smiling = ds.labels[found], ds.labels[found, SMILING] > 0
    celeba = arms["celeba crop"][0][found]
    result = {"split": args.split, "images": len(ds), "faces": int(found.sum()), "missed": int((~found).sum()),
              "machine": _machine(), "arms": {}}
    for name, (crops, feats) in arms.items():
        result["arms"][name] = row(decision_scores(heads, feats[found]), labels, crops[found], celeba, smiling)
    if args.photo_heads:
        result["arms"]["photo, 5 points, photo heads"] = photo_heads_row(args, encoder, arms, found, labels, celeba,
                                                                          smiling)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["command"] = "python -m benchmarks.photo_accuracy --root CELEBA_MINI" + (
        " --photo-heads" if args.photo_heads else "") + (f" --max-images {args.max_images}" if args.max_images else "")
    write_text(args.out + ".json", json.dumps(result, indent=1))
    write_text(args.out + ".md", markdown(result))
    print(markdown(result))


def photo_heads_row(args, encoder, arms, found, labels, celeba, smiling) -> dict:
    """Heads fitted on photo-path features of train (C and calibration on val), scored on the
    split's photo-path features."""
    fit = {}
    for split in ("train", "val"):
        ds = CelebA.load(args.root, split, max_images=args.max_images)
        sub, ok = split_faces(ds, encoder, {"photo, 5 points": FITS["photo, 5 points"]}, celeba=False)
        fit[split] = (sub["photo, 5 points"][1][ok], ds.labels[ok])
    heads = fit_linear_heads(fit["train"][0], fit["train"][1], fit["val"][0], fit["val"][1])
    crops, feats = arms["photo, 5 points"]
    return row(decision_scores(heads, feats[found]), labels, crops[found], celeba, smiling)


if __name__ == "__main__":
    main()
