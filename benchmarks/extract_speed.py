"""Feature-extraction throughput: a plain float32 loop against the library's path, in one run;
and photos/s through detection + alignment.

    python -m benchmarks.extract_speed --root CELEBA_MINI

- naive: one face at a time through the five encoders, float32, autograd on (what a first
  implementation does);
- library: faceattr.inference.encoder.MultiViewEncoder (BatchNorm folded into the convolutions, batches
  of its default size, also swept over --batch-sizes,
  inference mode, bfloat16 autocast and
  channels_last where the CPU has AMX), as MultiViewVAEFeatures and `faceattr predict` use it;
- photos: MTCNN detection + 5-point alignment of CelebA aligned images (178x218) as photos.
Writes benchmarks/results/extract_speed.json and .md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.faces.detect import FaceDetector
from faceattr.device import cpu_description, machine_description
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.faces.prepare import prepare
from faceattr.inference.bundle import Bundle
from faceattr.nn.models import to_float_images

OUT = Path(__file__).resolve().parent / "results"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    ap.add_argument("--naive", type=int, default=200)
    ap.add_argument("--faces", type=int, default=4096)
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=[16, 32, 64, 128, 256],
                    help="encoder batch sizes to sweep (library path)")
    args = ap.parse_args()
    ds = CelebA.load(args.root, "test")
    faces = ds.crops()[: args.faces]
    bundle = Bundle.load()
    vaes = {v: bundle.load_vae(v) for v in bundle.views}

    encoders = [vaes[v].encoder.float().eval() for v in bundle.views]
    x = to_float_images(torch.from_numpy(faces[: args.naive]))

    def naive_loop():
        for i in range(len(x)):
            torch.cat([e(x[i:i + 1])[0] for e in encoders], 1).detach()

    naive = len(x) / median_seconds(naive_loop, args.repeats)

    by_batch = {}
    for bs in args.batch_sizes:
        e = MultiViewEncoder(vaes, device="cpu", batch_size=bs)
        e.encode(faces[:256])  # warm-up
        by_batch[bs] = len(faces) / median_seconds(lambda: e.encode(faces), args.repeats)
    enc = MultiViewEncoder(vaes, device="cpu")  # the library's default batch size
    enc.encode(faces[:256])
    library = len(faces) / median_seconds(lambda: enc.encode(faces), args.repeats)
    feats = enc.encode(faces)
    ref = MultiViewEncoder(vaes, device="cpu", precision="float32").encode(faces[:256])
    max_diff = float(np.abs(ref - feats[:256]).max())

    det = FaceDetector(device="cpu")
    paths = ds.paths()[: args.photos]
    prepare(paths[0], "auto", det)
    start = time.perf_counter()
    found = sum(len(prepare(p, "auto", det).faces) for p in paths)
    photos = len(paths) / (time.perf_counter() - start)

    result = {"machine": machine_description(),
              "views": bundle.views, "naive_float32_faces_per_s": round(naive, 1),
              "library_faces_per_s": round(library, 1), "library_batch_size": enc.batch_size,
              "speedup": round(library / naive, 1),
              "library_faces_per_s_by_batch_size": {str(k): round(v, 1) for k, v in by_batch.items()},
              "library_vs_float32_max_abs_feature_diff": round(max_diff, 4),
              "feature_std": round(float(feats.std()), 4),
              "photos_per_s_detect_align": round(photos, 2), "photos": len(paths), "faces_found": found, "repeats": args.repeats}
    write_text(OUT / "extract_speed.json", json.dumps(result, indent=1))
    write_text(OUT / "extract_speed.md",
               f"`python -m benchmarks.extract_speed` on {torch.get_num_threads()} CPU threads "
               f"({cpu_description()}), five views (500-d):\n\n"
               f"Median of {args.repeats} timed repeats.\n\n| path | faces/s |\n|---|---|\n"
               f"| naive float32 loop, one face at a time | {naive:.1f} |\n"
               f"| library (BN folded, batches of {enc.batch_size}, inference mode, bf16 + channels_last) | {library:.1f} |\n"
               f"| speed-up | {library / naive:.1f}x |\n\n"
               "Library path by encoder batch size (same run, median of each):\n\n| batch | faces/s |\n|---|---|\n"
               + "".join(f"| {k} | {v:.1f} |\n" for k, v in by_batch.items()) + "\n"
               f"Detection + alignment (MTCNN + one warp): {photos:.2f} photos/s on {len(paths)} CelebA images "
               f"({found} faces). Largest feature difference bf16 vs float32: {max_diff:.4f} "
               f"(feature std {feats.std():.3f}).\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
