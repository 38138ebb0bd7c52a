"""How far 5-point alignment lands from CelebA's own alignment, in 64x64 crop pixels.

    python -m benchmarks.alignment_error --root CELEBA_MINI -n 100

For each aligned test image, MTCNN's landmarks give a photo->crop map; the face centre and the crop
corners are mapped by it and by the template's own map (which reproduces the training crop).
"""
import argparse
import json

import numpy as np

from faceattr.faces.align import CELEBA_TEMPLATE, photo_to_face_matrix
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.faces.detect import FaceDetector
from faceattr.faces.images import load_rgb

ap = argparse.ArgumentParser()
add_root_argument(ap)
ap.add_argument("-n", type=int, default=100)
args = ap.parse_args()
det = FaceDetector(device="cpu")
m0 = photo_to_face_matrix(CELEBA_TEMPLATE)
pts = np.array([[99, 109, 1], [30, 40, 1], [168, 40, 1], [30, 178, 1], [168, 178, 1]], float)
centre, corner = [], []
for p in CelebA.load(args.root, "test", max_images=args.n).paths():
    faces = det.detect(load_rgb(p))
    if faces:
        d = np.linalg.norm(pts @ photo_to_face_matrix(faces[0].landmarks).T - pts @ m0.T, axis=1)
        centre.append(d[0])
        corner.append(d[1:].max())
print(json.dumps({"images": args.n, "detected": len(centre),
                  "centre_median_px": round(float(np.median(centre)), 2),
                  "centre_p90_px": round(float(np.percentile(centre, 90)), 2),
                  "worst_corner_median_px": round(float(np.median(corner)), 2)}))
