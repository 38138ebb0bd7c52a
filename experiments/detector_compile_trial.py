"""torch.compile of MTCNN's three networks, float32: detection time on celeba-mini test photos
against the shipped (eager) networks, and what the compile costs in a new process.

    python -m experiments.detector_compile_trial --root CELEBA_MINI --photos 256

Prints the compile-and-first-batch seconds, then each detector's seconds per pass over the
photos, alternating, twice. Outputs are not compared. Tried for issue 44; not shipped (a CLI
would pay the compile in every process).
"""
from __future__ import annotations

import argparse
import time

import torch

from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import cpu_description
from faceattr.faces.detect import FaceDetector, Sensitivity
from faceattr.faces.images import load_rgb

from benchmarks.detector_tolerance import variant_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--photos", type=int, default=256)
    args = ap.parse_args()
    imgs = [load_rgb(p) for p in CelebA.load(args.root, "test").paths()[: args.photos]]
    eager = FaceDetector(second_pass=Sensitivity())
    t0 = time.perf_counter()
    compiled = variant_of(eager, tuple(torch.compile(n, dynamic=True) for n in eager.mtcnn))
    print(cpu_description())
    with torch.inference_mode():
        compiled.detect_batch(imgs[:64])
        print(f"compile and first batch: {time.perf_counter() - t0:.1f} s", flush=True)
        eager.detect_batch(imgs[:32])  # warm-up
        for _ in range(2):
            for name, d in (("eager", eager), ("compiled", compiled)):
                t = time.perf_counter()
                d.detect_batch(imgs)
                print(f"{name}: {time.perf_counter() - t:.2f} s for {len(imgs)} photos", flush=True)


if __name__ == "__main__":
    main()
