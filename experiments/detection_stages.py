"""Where batched detection spends its time: ``FaceDetector.detect_batch`` on celeba-mini test
photos, timed per MTCNN stage (wall clock, median of ``--repeats`` after a warm-up).

    python -m experiments.detection_stages --root CELEBA_MINI [--photos 256] [--repeats 3]

To compare two versions of the code in one session, run the same file against an older checkout:
``PYTHONPATH=OLD_CHECKOUT python experiments/detection_stages.py --root CELEBA_MINI --tag before``. Writes
experiments/results/detection_stages_TAG.json with the CPU named.
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

from PIL import Image

STAGES = ("summed_area_tables", "area_resize", "_propose", "_refine", "_output")
OUT = Path(__file__).resolve().parent / "results"


def timed_stages(mtcnn_module, totals: dict) -> None:
    """Wrap the module's stage functions so every call adds its wall time to ``totals``."""
    for name in STAGES:
        f = getattr(mtcnn_module, name)

        @functools.wraps(f)
        def timed(*a, _f=f, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                totals[_name] = totals.get(_name, 0.0) + time.perf_counter() - t0
        setattr(mtcnn_module, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="a CelebA folder in the official layout")
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tag", default="now")
    args = ap.parse_args()
    import faceattr
    from faceattr.atomic import write_text
    from faceattr.data.celeba import CelebA
    from faceattr.device import machine_description
    from faceattr.faces import mtcnn
    from faceattr.faces.detect import FaceDetector
    imgs = [Image.open(p).convert("RGB") for p in CelebA.load(args.root, "test", max_images=args.photos).paths()]
    det = FaceDetector()
    det.detect_batch(imgs[:32])
    runs = []
    timed_stages(mtcnn, totals := {})
    for _ in range(args.repeats):
        totals.clear()
        t0 = time.perf_counter()
        faces = sum(len(f) for f in det.detect_batch(imgs))
        runs.append({"total_s": time.perf_counter() - t0, **totals})
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    res = {"machine": machine_description(), "code": str(Path(faceattr.__file__).parent), "photos": len(imgs),
           "faces": faces, "median_s": med, "photos_per_s": len(imgs) / med["total_s"], "runs": runs}
    write_text(OUT / f"detection_stages_{args.tag}.json", json.dumps(res, indent=1))
    print(json.dumps({"photos_per_s": res["photos_per_s"], **{k: round(v, 3) for k, v in med.items()}}))


if __name__ == "__main__":
    main()
