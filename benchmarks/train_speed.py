"""Training throughput per view: plain float32 against the trainer's own path, in one run.

    python benchmarks/train_speed.py --root ../shared/data/celeba-mini

For each view (relu1_1 ... relu5_1) it times full Algorithm 1 steps (batch 64, the shipped model
size, the real VGG19) after warm-up steps, first in float32 with contiguous tensors, then with
the trainer's default path (bfloat16 autocast + channels_last on CPUs with AMX, or CUDA).
Writes benchmarks/results/train_speed.json and .md.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from faceattr.atomic import write_text
from faceattr.celeba import CelebA
from faceattr.config import LAYER_NAMES, ModelConfig, TrainConfig
from faceattr.device import cpu_has_bf16_matrix_units
from faceattr.trainer import Trainer, to_float_images
from faceattr.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"


def images_per_s(view: str, images, loss_net, precision: str, steps: int, warmup: int = 2) -> float:
    t = Trainer(ModelConfig(layers=(view,)), TrainConfig(batch_size=64, reference_images=64), images,
                "/tmp/faceattr-train-speed", loss_net, device="cpu", precision=precision, progress=False)
    t._compute_reference()
    batches = [to_float_images(t.images[i * 64:(i + 1) * 64], t.fmt) for i in range(warmup + steps)]
    for x in batches[:warmup]:
        t.train_step(x)
    start = time.perf_counter()
    for x in batches[warmup:]:
        t.train_step(x)["loss"].item()
    return steps * 64 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/celeba-mini")
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    images = CelebA.load(args.root, "train", max_images=64 * (args.steps + 2)).crops()
    loss_net = load_loss_network()
    rows = {}
    for view in LAYER_NAMES:
        f32 = images_per_s(view, images, loss_net, "float32", args.steps)
        fast = images_per_s(view, images, loss_net, "auto", args.steps)
        rows[view] = {"float32_images_per_s": round(f32, 2), "trainer_images_per_s": round(fast, 2),
                      "speedup": round(fast / f32, 2)}
        print(view, rows[view], flush=True)
    mean_speedup = sum(r["speedup"] for r in rows.values()) / len(rows)
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "amx_bf16": cpu_has_bf16_matrix_units(), "torch": torch.__version__},
              "batch_size": 64, "timed_steps": args.steps, "views": rows, "mean_speedup": round(mean_speedup, 2)}
    write_text(OUT / "train_speed.json", json.dumps(result, indent=1))
    md = ["| view | float32 images/s | trainer images/s | speed-up |", "|---|---|---|---|"]
    md += [f"| {v} | {r['float32_images_per_s']} | {r['trainer_images_per_s']} | {r['speedup']}x |" for v, r in rows.items()]
    md.append(f"| **mean** | | | **{mean_speedup:.2f}x** |")
    write_text(OUT / "train_speed.md", f"`python benchmarks/train_speed.py` on {torch.get_num_threads()} CPU threads "
               f"(amx_bf16: {cpu_has_bf16_matrix_units()}), batch 64, {args.steps} timed steps per cell.\n\n"
               + "\n".join(md) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
