"""Photos per second end to end (decode, detect, align, encode, 40 heads): the batched path against
the one-photo-at-a-time path this project had before it, in one run.

    python -m benchmarks.photo_speed --root CELEBA_MINI

Two sets: celeba-mini's aligned test images as they are (178x218 JPEGs, one face each), and
4000x3000 JPEG photos (quality 90) made here by pasting 3 celeba-mini faces, enlarged to 500-700
px, on a smooth background. The one-at-a-time path is the former code: every photo decoded in
full, MTCNN at full resolution in its default memory layout, its faces encoded on their own. The batched path is
``AttributePredictor.predict_images``: decoding and warping in a thread pool, large JPEGs decoded
at reduced size, detection on a copy of at most 640 px in batches of same-size photos (second and third MTCNN
stages crop all candidates at once, faceattr/faces/mtcnn.py), encoder
batches across photos, MTCNN in channels_last. The encoder-only path is the ceiling if finding
faces were free: the same photos' faces, found first untimed, only encoded and scored; "finding
faces' share" is the part of the batched path's time that is not encoding. Writes
benchmarks/results/photo_speed.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import cpu_description, machine_description
from faceattr.faces.align import warp_face
from faceattr.faces.detect import FaceDetector
from faceattr.faces.images import load_rgb
from faceattr.inference.predictor import AttributePredictor

OUT = Path(__file__).resolve().parent / "results"


def make_big_photos(celeba_paths: list[Path], folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        bg = rng.integers(40, 200, (30, 40, 3), dtype=np.uint8)
        canvas = Image.fromarray(bg).resize((4000, 3000), Image.BICUBIC).filter(ImageFilter.GaussianBlur(8))
        for k in range(3):
            face = Image.open(celeba_paths[(3 * i + k) % len(celeba_paths)]).convert("RGB")
            side = int(rng.integers(500, 700))
            face = face.resize((side, int(side * 218 / 178)), Image.BICUBIC)
            canvas.paste(face, (200 + k * 1250 + int(rng.integers(0, 200)), int(rng.integers(200, 3000 - face.size[1] - 200))))
        path = folder / f"photo_{i:03d}.jpg"
        canvas.save(path, quality=90)
        out.append(path)
    return out


def one_at_a_time(predictor: AttributePredictor, paths: list[Path]) -> int:
    """The former path: full decode, full-resolution MTCNN, each photo's faces encoded alone."""
    from facenet_pytorch import MTCNN
    mtcnn, threshold = MTCNN(keep_all=True, device="cpu"), FaceDetector().threshold  # its default layout
    faces_found = 0
    for p in paths:
        img = load_rgb(p)
        boxes, probs, points = mtcnn.detect(img, landmarks=True)  # facenet-pytorch's own detect_face
        found = [] if boxes is None else [pt for pr, pt in zip(probs, points) if pr >= threshold]
        if found:
            crops = np.stack([warp_face(img, pt) for pt in found])
            predictor.score_faces(crops)
            faces_found += len(found)
    return faces_found


def batched(predictor: AttributePredictor, paths: list[Path]) -> int:
    return sum(len(r["faces"]) for r in predictor.predict_images([str(p) for p in paths]))


def encoder_only(predictor: AttributePredictor, paths: list[Path]) -> tuple[int, float]:
    """The ceiling if finding faces were free: the same photos' faces, found and aligned first
    (untimed), then only encoded and scored. Returns faces and the seconds spent encoding."""
    prepared = predictor.pipeline.finder.faces([str(p) for p in paths])
    faces = np.concatenate([p.faces for p in prepared])
    t0 = time.perf_counter()
    predictor.pipeline.encode(faces)
    return len(faces), time.perf_counter() - t0


PATHS = {"one_at_a_time": one_at_a_time, "batched": batched, "encoder_only": encoder_only}


def time_in_fresh_process(label: str, paths: list[Path]) -> tuple[float, int]:
    """Seconds and faces found for one pass of ``label`` over ``paths``, in a new Python process
    (after a warm-up on 2 photos there), so that neither path inherits the other's thread pools,
    OpenMP teams, oneDNN kernel caches or allocator state; a user's CLI run is a fresh process too."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(map(str, paths)))
    try:
        # --root . only satisfies the parser: a worker reads its photos from the paths file
        out = subprocess.run([sys.executable, "-m", "benchmarks.photo_speed", "--root", ".", "--worker", label,
                              "--paths-file", f.name],
                             check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]).stdout
    finally:
        os.unlink(f.name)
    seconds, faces = json.loads(out.strip().splitlines()[-1])
    return seconds, faces


def worker(label: str, paths_file: str) -> None:
    paths = [Path(p) for p in Path(paths_file).read_text().splitlines()]
    predictor = AttributePredictor(device="cpu")
    PATHS[label](predictor, paths[:2])  # warm-up: model load, thread pools, oneDNN kernels
    t0 = time.perf_counter()
    faces = PATHS[label](predictor, paths)
    seconds = time.perf_counter() - t0
    if isinstance(faces, tuple):  # the path timed itself
        faces, seconds = faces
    print(json.dumps([seconds, faces]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--celeba", type=int, default=256, help="CelebA-sized photos")
    ap.add_argument("--big", type=int, default=8, help="4000x3000 photos")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", choices=list(PATHS), help=argparse.SUPPRESS)
    ap.add_argument("--paths-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.paths_file)
    celeba = CelebA.load(args.root, "test").paths()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"celeba 178x218": celeba[: args.celeba],
                "photos 4000x3000, 3 faces": make_big_photos(celeba, Path(tmp), args.big)}
        for name, paths in sets.items():
            times = {label: [] for label in PATHS}
            faces = {}
            for _ in range(args.repeats):  # the two paths alternate, each pass in a fresh process
                for label in PATHS:
                    seconds, faces[label] = time_in_fresh_process(label, paths)
                    times[label].append(seconds)
            pps = {k: len(paths) / statistics.median(v) for k, v in times.items()}
            rows[name] = {"photos": len(paths), "photos_per_s": pps, "speedup": pps["batched"] / pps["one_at_a_time"],
                          # of the batched path's time, what is not encoding: decode, detect, align
                          "finding_share": 1 - pps["batched"] / pps["encoder_only"],
                          "faces_found": faces, "seconds": times}
            print(name, json.dumps(rows[name]), flush=True)
    result = {"machine": machine_description(), "repeats": args.repeats, "sets": rows}
    write_text(OUT / "photo_speed.json", json.dumps(result, indent=1))
    md = [f"`python -m benchmarks.photo_speed` on {cpu_description()}, {torch.get_num_threads()} threads; "
          f"photos/s end to end (decode, detect, align, encode, heads), median of {args.repeats} "
          f"passes, each path's passes in fresh processes, alternating.", "",
          "| photos | one at a time (before) | batched | speed-up | encoder only (the ceiling) | "
          "finding faces' share of batched | faces found (before / batched) |",
          "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        md.append(f"| {name} ({r['photos']}) | {r['photos_per_s']['one_at_a_time']:.1f} | "
                  f"{r['photos_per_s']['batched']:.1f} | {r['speedup']:.1f}x | "
                  f"{r['photos_per_s']['encoder_only']:.1f} | {100 * r['finding_share']:.0f}% | "
                  f"{r['faces_found']['one_at_a_time']} / {r['faces_found']['batched']} |")
    write_text(OUT / "photo_speed.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
