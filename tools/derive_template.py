"""Derive CELEBA_TEMPLATE (faceattr/faces/align.py): mean MTCNN landmarks on CelebA aligned images.

    python -m tools.derive_template --root CELEBA_MINI -n 2000
"""
import argparse
import json

import numpy as np

from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.faces.detect import FaceDetector
from faceattr.faces.images import load_rgb


def main():
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    ap.add_argument("-n", type=int, default=2000)
    args = ap.parse_args()
    ds = CelebA.load(args.root, "train", max_images=args.n)
    det = FaceDetector(device="cpu")
    pts = []
    for p in ds.paths():
        faces = sorted(det.detect(load_rgb(p)), key=lambda f: -f.confidence)
        if faces:
            pts.append(faces[0].landmarks)
    pts = np.stack(pts)
    out = {"images": len(ds), "detected": len(pts), "mean": np.round(pts.mean(0), 2).tolist(),
           "std": np.round(pts.std(0), 2).tolist()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
