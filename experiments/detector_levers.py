"""What each cheaper arithmetic for MTCNN gives, before any tolerance benchmark: detection time on
celeba-mini test photos (the batched path's ``FaceDetector.detect_batch``, defaults: second
search on) and how far the faces move from float32's.

    python -m experiments.detector_levers --root CELEBA_MINI --photos 512

Variants (each stage's network computes in its own type; proposals, boxes and NMS stay float32,
faceattr/faces/mtcnn.py):
- ``float32``: the shipped detector;
- ``bf16 rnet+onet``: the second and third networks in bfloat16;
- ``bf16 all``: all three;
- ``int8 linear``: dynamic int8 quantisation of the second and third networks' linear layers.

Each variant is timed in turn, alternating, median of ``--repeats`` passes after a warm-up.
Reported per variant: photos/s, speed-up against float32 in the same run, photos whose number of
faces differs, and the landmark distance (median, 99th percentile, max) of faces matched to
float32's by box IoU >= 0.5. Writes experiments/results/detector_levers.json and .md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import cpu_description, machine_description
from faceattr.faces.detect import FaceDetector, Sensitivity
from faceattr.faces.images import load_rgb

from benchmarks.detector_tolerance import bf16_copy, int8_copy, iou, variant_of

RESULTS = Path(__file__).resolve().parent / "results"


def variants(base: FaceDetector) -> dict[str, FaceDetector]:
    pnet, rnet, onet = base.mtcnn
    return {"float32": base, "bf16 rnet+onet": variant_of(base, (pnet, bf16_copy(rnet), bf16_copy(onet))),
            "bf16 all": variant_of(base, (bf16_copy(pnet), bf16_copy(rnet), bf16_copy(onet))),
            "int8 linear": variant_of(base, (pnet, int8_copy(rnet), int8_copy(onet)))}


def compare(ref: list, other: list) -> dict:
    """Photos whose face count differs; landmark distances of faces matched by IoU >= 0.5."""
    differ, dists, unmatched = 0, [], 0
    for r, o in zip(ref, other):
        differ += len(r) != len(o)
        for f in r:
            best = max(o, key=lambda g: iou(f.box, g.box), default=None)
            if best is None or iou(f.box, best.box) < 0.5:
                unmatched += 1
                continue
            dists += list(np.linalg.norm(f.landmarks - best.landmarks, axis=1))
    d = np.asarray(dists) if dists else np.zeros(1)
    return {"photos_face_count_differs": differ, "reference_faces_unmatched": unmatched,
            "landmark_px": {"median": float(np.median(d)), "p99": float(np.percentile(d, 99)), "max": float(d.max())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--photos", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    imgs = [load_rgb(p) for p in CelebA.load(args.root, "test").paths()[: args.photos]]
    found_by = variants(FaceDetector(second_pass=Sensitivity()))
    times = {k: [] for k in found_by}
    faces = {}
    with torch.inference_mode():
        for d in found_by.values():
            d.detect_batch(imgs[:32])  # warm-up: oneDNN kernels, allocator
        for _ in range(args.repeats):
            for name, d in found_by.items():
                t0 = time.perf_counter()
                faces[name] = d.detect_batch(imgs)
                times[name].append(time.perf_counter() - t0)
    rows = {}
    for name in found_by:
        med = statistics.median(times[name])
        rows[name] = {"photos_per_s": len(imgs) / med, "speedup": statistics.median(times["float32"]) / med,
                      "seconds": times[name], **compare(faces["float32"], faces[name])}
        print(name, json.dumps(rows[name]), flush=True)
    write_text(RESULTS / "detector_levers.json", json.dumps({"machine": machine_description(), "photos": len(imgs),
                                                            "repeats": args.repeats, "variants": rows}, indent=1))
    md = [f"`python -m experiments.detector_levers --root CELEBA_MINI --photos {len(imgs)}` on {cpu_description()}: "
          f"detection only (FaceDetector.detect_batch, second search on), median of {args.repeats} passes, "
          "alternating; landmarks of faces matched to float32's by IoU >= 0.5.", "",
          "| variant | photos/s | against float32 | photos whose face count differs | landmark px: median / p99 / max |",
          "|---|---|---|---|---|"]
    for name, r in rows.items():
        lm = r["landmark_px"]
        md.append(f"| {name} | {r['photos_per_s']:.1f} | {r['speedup']:.2f}x | {r['photos_face_count_differs']} | "
                  f"{lm['median']:.2f} / {lm['p99']:.2f} / {lm['max']:.2f} |")
    write_text(RESULTS / "detector_levers.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
