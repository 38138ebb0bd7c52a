"""bfloat16 against float32 on this CPU, for extraction and for a training step, in one run:
the measurement behind ``precision="auto"`` (faceattr.device.BF16_CPU_FEATURES).

    python -m benchmarks.precision_speed --root CELEBA_MINI

Extraction: the shipped five views' encoders (MultiViewEncoder, BN folded, batches of 64) on val
faces, faces/s, median of ``--repeats``. Training: full Algorithm 1 steps (batch 64, the shipped
model size, the real VGG19) of the trainer for each ``--views``, images/s, median of ``--steps``
timed steps after one warm-up. The two precisions alternate repeat by repeat, so a change in the
machine's load hits both. Writes benchmarks/results/precision_speed_VENDOR.json and .md (amd,
intel: the rule differs by vendor), with the CPU model and its bf16 features.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from benchmarks.train_speed import timing_trainer
from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import cpu_description, cpu_vendor, machine_description, use_bf16
from faceattr.inference.bundle import Bundle
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"
PRECISIONS = ("float32", "bf16")
VENDOR_NAMES = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}


def results_name() -> str:
    return "precision_speed_" + VENDOR_NAMES.get(cpu_vendor(), "other")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--faces", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--views", nargs="+", default=["relu1_1", "relu3_1", "relu5_1"])
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    crops = CelebA.load(args.root, "val", max_images=max(args.faces, 64)).crops()
    bundle = Bundle.load()
    encoders = {p: MultiViewEncoder.from_bundle(bundle, device="cpu", precision=p) for p in PRECISIONS}
    for enc in encoders.values():
        enc.encode(crops[:64])  # warm-up
    extract = {p: [] for p in PRECISIONS}
    for _ in range(args.repeats):
        for p, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(crops[: args.faces])
            extract[p].append(args.faces / (time.perf_counter() - t0))
    extract_fps = {p: statistics.median(v) for p, v in extract.items()}
    print("extraction faces/s", extract_fps, flush=True)

    loss_net = load_loss_network()
    train = {}
    for view in args.views:
        trainers = {p: timing_trainer(view, crops, loss_net, p, 1) for p in PRECISIONS}
        for t, batches in trainers.values():
            t.train_step(batches[0])  # warm-up
        times = {p: [] for p in PRECISIONS}
        for _ in range(args.steps):
            for p, (t, batches) in trainers.items():
                t0 = time.perf_counter()
                t.train_step(batches[0])
                times[p].append(time.perf_counter() - t0)
        train[view] = {p: 64 / statistics.median(v) for p, v in times.items()}
        print("training images/s", view, train[view], flush=True)

    auto = "bf16" if use_bf16(torch.device("cpu"), "auto") else "float32"
    result = {"machine": machine_description(), "auto_chooses": auto,
              "extraction_faces_per_s": extract_fps, "extraction_speedup": extract_fps["bf16"] / extract_fps["float32"],
              "training_images_per_s": train,
              "training_speedup": {v: r["bf16"] / r["float32"] for v, r in train.items()},
              "faces": args.faces, "repeats": args.repeats, "timed_steps": args.steps}
    write_text(OUT / f"{results_name()}.json", json.dumps(result, indent=1))
    command = " ".join(["python -m benchmarks.precision_speed"] + sys.argv[1:])
    md = [f"`{command}` on {cpu_description()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}. `precision=\"auto\"` chooses **{auto}** here.", "",
          "| work | float32 | bf16 + channels_last | bf16 / float32 |", "|---|---|---|---|",
          f"| extraction, five views, faces/s (median of {args.repeats}) | {extract_fps['float32']:.0f} | "
          f"{extract_fps['bf16']:.0f} | {result['extraction_speedup']:.2f}x |"]
    for v, r in train.items():
        md.append(f"| training step {v}, images/s (median of {args.steps}) | {r['float32']:.1f} | {r['bf16']:.1f} | "
                  f"{r['bf16'] / r['float32']:.2f}x |")
    write_text(OUT / f"{results_name()}.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
