"""Heads for photos without a second set: which faces should the 40 heads be fitted on so that the
photo path (detect + align) scores as CelebA's crop does, and the crop path does not fall?

    python -m experiments.photo_heads --root CELEBA_MINI

Each split (train, val, test) is encoded twice with the shipped views: CelebA's own crop (as
``--aligned`` and the shipped heads' fit) and the photo path (``FaceFinder`` with the defaults:
MTCNN, the largest face, 5-point alignment, the second search). Then three head sets, each by
the shipped recipe (``fit_linear_heads``: C per attribute on val, Platt on val):

- ``crop``: fitted on the crops of train, C on the crops of val (the shipped heads' recipe);
- ``photo``: fitted on photo-path faces of train, C on those of val;
- ``both``: fitted on both (each train image twice: its crop and its photo-path face), C on both
  of val;

and each is scored on test through both paths, on the test faces the photo path found. Features
are cached in ``--cache`` (default: a temporary folder). Writes experiments/results/photo_heads.json
and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import machine_description
from faceattr.faces.finder import FaceFinder
from faceattr.inference.bundle import Bundle
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.inference.heads import decision_scores, fit_linear_heads

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS = ("train", "val", "test")


def photo_faces(paths) -> tuple[np.ndarray, np.ndarray]:
    """The photo path's aligned face of each image (blank where none), and the mask of found."""
    found = FaceFinder().faces([str(p) for p in paths])
    blank = np.zeros((64, 64, 3), np.uint8)
    faces = np.stack([p.faces[0] if len(p.faces) else blank for p in found])
    return faces, np.array([len(p.faces) > 0 for p in found])


def split_features(root, split, encoder, cache: Path, max_images) -> dict:
    """{"crop": (n, D), "photo": (n, D), "found": (n,), "labels": (n, 40)} of one split, cached."""
    path = cache / f"{split}-{max_images or 'all'}.npz"
    if path.exists():
        return dict(np.load(path))
    ds = CelebA.load(root, split, max_images=max_images)
    faces, found = photo_faces(ds.paths())
    out = {"crop": encoder.encode(ds.crops(progress=False)), "photo": encoder.encode(faces),
           "found": found, "labels": ds.labels}
    np.savez(path, **out)
    return out


def head_sets(data: dict) -> dict:
    tr, va = data["train"], data["val"]
    ok_t, ok_v = tr["found"], va["found"]
    return {
        "crop": fit_linear_heads(tr["crop"], tr["labels"], va["crop"], va["labels"]),
        "photo": fit_linear_heads(tr["photo"][ok_t], tr["labels"][ok_t], va["photo"][ok_v], va["labels"][ok_v]),
        "both": fit_linear_heads(np.concatenate([tr["crop"], tr["photo"][ok_t]]),
                                 np.concatenate([tr["labels"], tr["labels"][ok_t]]),
                                 np.concatenate([va["crop"], va["photo"][ok_v]]),
                                 np.concatenate([va["labels"], va["labels"][ok_v]])),
    }


def scored(heads, x, y) -> dict:
    """Mean accuracy and balanced accuracy under the sign rule and under the heads' balanced rule."""
    from faceattr.benchmark import accuracy_report
    s = decision_scores(heads, x)
    sign, bal = accuracy_report(s, y), accuracy_report(s, y, heads["threshold_balanced"])
    return {"accuracy": sign["mean_accuracy"], "balanced_accuracy": sign["mean_balanced_accuracy"],
            "balanced_rule_accuracy": bal["mean_accuracy"], "balanced_rule_balanced_accuracy": bal["mean_balanced_accuracy"],
            "per_attribute": [round(v, 4) for v in sign["per_attribute"].values()]}


def markdown(result: dict) -> str:
    lines = ["# Which faces to fit the heads on (test split)", "",
             f"`{result['command']}` on {result['machine']}; {result['faces']} test faces the photo path found "
             f"(of {result['images']}). Means over the 40 attributes in %: accuracy and balanced accuracy under "
             "the sign rule, then accuracy / balanced accuracy under the heads' balanced rule.", "",
             "| heads fitted on | crop: accuracy | photo: accuracy | photo minus crop | crop: balanced accuracy | "
             "photo: balanced accuracy | crop, balanced rule | photo, balanced rule |", "|---|---|---|---|---|---|---|---|"]
    for name, r in result["heads"].items():
        c, p = r["crop"], r["photo"]
        lines.append(f"| {name} | {100 * c['accuracy']:.2f} | {100 * p['accuracy']:.2f} | "
                     f"{100 * (p['accuracy'] - c['accuracy']):+.2f} | {100 * c['balanced_accuracy']:.2f} | "
                     f"{100 * p['balanced_accuracy']:.2f} | {100 * c['balanced_rule_accuracy']:.2f} / "
                     f"{100 * c['balanced_rule_balanced_accuracy']:.2f} | {100 * p['balanced_rule_accuracy']:.2f} / "
                     f"{100 * p['balanced_rule_balanced_accuracy']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--cache", default=None, help="folder for the features (default: a temporary one)")
    ap.add_argument("--out", default=str(RESULTS / "photo_heads"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    bundle = Bundle.load()
    encoder = MultiViewEncoder.from_bundle(bundle, bundle.head_views())
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache or tmp)
        cache.mkdir(parents=True, exist_ok=True)
        data = {s: split_features(args.root, s, encoder, cache, args.max_images) for s in SPLITS}
    te = data["test"]
    ok = te["found"]
    result = {"images": int(len(ok)), "faces": int(ok.sum()), "machine": machine_description()["cpu"], "heads": {}}
    for name, heads in head_sets(data).items():
        result["heads"][name] = {k: scored(heads, te[k][ok], te["labels"][ok]) for k in ("crop", "photo")}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["command"] = "python -m experiments.photo_heads --root CELEBA_MINI" + (
        f" --max-images {args.max_images}" if args.max_images else "")
    write_text(args.out + ".json", json.dumps(result, indent=1))
    write_text(args.out + ".md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
