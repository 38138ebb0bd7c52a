"""Photos of mixed sizes: MTCNN's second and third stages once for the candidates of all photos
(the default, faceattr.faces.mtcnn.SatTable) against once per same-size group (as before), on the
same photos in one process, alternating, median of ``--repeats``:

    python -m experiments.mixed_size_detection --root CELEBA_MINI

celeba-mini test images resized to ``--sizes`` distinct sizes (the same count of each). Writes
experiments/results/mixed_size_detection.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from PIL import Image

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA
from faceattr.device import cpu_description
from faceattr.faces.detect import FaceDetector

OUT = Path(__file__).resolve().parent / "results"


def per_group(det: FaceDetector, groups):
    return [det._detect_same_size(g) for g in groups]


def together(det: FaceDetector, groups):
    return det._detect_groups(groups)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--sizes", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    det = FaceDetector()
    paths = CelebA.load(args.root, "test").paths()[: args.photos]
    per = args.photos // args.sizes
    groups = []
    for k in range(args.sizes):
        scale = 0.8 + 0.15 * k
        imgs = [Image.open(p).convert("RGB") for p in paths[k * per:(k + 1) * per]]
        imgs = [im.resize((int(178 * scale), int(218 * scale))) for im in imgs]
        groups.append([det.detection_copy(im) for im in imgs])
    times = {"per size group (before)": [], "all sizes together": []}
    for fn in (per_group, together):  # warm-up
        fn(det, groups)
    for _ in range(args.repeats):
        for name, fn in zip(times, (per_group, together)):
            t = time.perf_counter()
            faces = fn(det, groups)
            times[name].append(time.perf_counter() - t)
    found = sum(len(f) for g in faces for f in g)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {"cpu": cpu_description(), "photos": per * args.sizes, "sizes": args.sizes, "seconds": times,
           "median_s": med, "speedup": med["per size group (before)"] / med["all sizes together"], "faces": found}
    write_text(OUT / "mixed_size_detection.json", json.dumps(res, indent=1))
    md = (f"`python -m experiments.mixed_size_detection --root CELEBA_MINI` on {res['cpu']}: detection of "
          f"{res['photos']} celeba-mini photos in {args.sizes} sizes; stages 2 and 3 per size group "
          f"{med['per size group (before)']:.2f} s, for all sizes together {med['all sizes together']:.2f} s "
          f"({res['speedup']:.2f}x; median of {args.repeats}, alternating); {found} faces.\n")
    write_text(OUT / "mixed_size_detection.md", md)
    print(md)


if __name__ == "__main__":
    main()
