"""Training throughput per view: plain float32 against the trainer's own path, in one run.

    python -m benchmarks.train_speed --root CELEBA_MINI

For each view (relu1_1 ... relu5_1) it times full Algorithm 1 steps (batch 64, the shipped model
size, the real VGG19) after warm-up steps, three ways on the same networks and batches:
- plain float32: Algorithm 1 written the straightforward way (one forward; the critic's loss
  back-propagated to the critic, then eq. 8 back-propagated to the VAE through the critic a second
  time; losses as printed, in float32; contiguous tensors). The reference for the target;
- the trainer's step code forced to float32 (what the trainer's own changes give without bf16);
- the trainer's default path (bfloat16 autocast + channels_last on CPUs with AMX, or CUDA).
Writes benchmarks/results/train_speed.json and .md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.nn.taps import LAYER_NAMES
from faceattr.device import cpu_description, machine_description
from faceattr.nn.losses import layer_weight
from faceattr.train import Runtime, Trainer
from faceattr.nn.models import to_float_images
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"



def plain_algorithm1_step(t: "Trainer", x: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, one step, as one would first write it: one forward; the critic's loss
    back-propagated to the critic, then eq. 8 back-propagated to the VAE through the critic a second
    time; losses as printed, in float32. The reference ``Trainer.train_step`` is tested against
    (same networks after the same steps) and timed against (benchmarks/train_speed.py)."""
    cfg, tap = t.cfg, t.model_cfg.critic_input_layer
    x_hat, mean, logvar = t.vae(x, t.nets.noise)
    with torch.no_grad():
        f_x = t.loss_net(x, t.layers_needed)
    f_xhat = t.loss_net(x_hat, t.layers_needed)
    d_real, d_fake = t.critic(f_x[tap]), t.critic(f_xhat[tap])
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
    rec = t.reference["scale"] * sum(layer_weight(l) * 0.5 * (f_x[l] - f_xhat[l]).pow(2).mean()
                                       for l in t.model_cfg.layers)
    loss_vae = cfg.alpha * kl + cfg.beta * rec - cfg.gan_label * d_fake.mean()
    loss_critic = cfg.gan_label * (d_fake.mean() - d_real.mean())
    t.nets.opt_vae.zero_grad()
    t.nets.opt_critic.zero_grad()
    loss_critic.backward(inputs=list(t.critic.parameters()), retain_graph=True)
    loss_vae.backward(inputs=list(t.vae.parameters()))
    t.nets.opt_vae.step()
    t.nets.opt_critic.step()
    with torch.no_grad():
        for p in t.critic.parameters():
            p.clamp_(-cfg.clip, cfg.clip)
    return loss_vae


def timing_trainer(view: str, images, loss_net, precision: str, n_batches: int) -> tuple[Trainer, list]:
    """A CPU trainer for one view at the shipped size (batch 64, the reference terms computed) and
    ``n_batches`` ready input batches: the set-up every training-speed benchmark times against."""
    t = Trainer(ModelConfig(layers=(view,)), TrainConfig(batch_size=64, reference_images=64), images,
                "/tmp/faceattr-train-speed", loss_net, Runtime("cpu", precision, progress=False))
    return t, [to_float_images(t.images[i * 64:(i + 1) * 64], t.place.fmt) for i in range(n_batches)]


def images_per_s(view: str, images, loss_net, mode: str, steps: int, warmup: int = 2) -> float:
    """``mode``: "plain" (plain_algorithm1_step), "float32" (the trainer's step in float32), "auto"."""
    t, batches = timing_trainer(view, images, loss_net, "auto" if mode == "auto" else "float32", warmup + steps)
    step = (lambda x: plain_algorithm1_step(t, x)) if mode == "plain" else (lambda x: t.train_step(x)["loss"])
    for x in batches[:warmup]:
        step(x)
    start = time.perf_counter()
    for x in batches[warmup:]:
        step(x).item()
    return steps * 64 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    images = CelebA.load(args.root, "train", max_images=64 * (args.steps + 2)).crops()
    loss_net = load_loss_network()
    rows = {}
    for view in LAYER_NAMES:
        plain = images_per_s(view, images, loss_net, "plain", args.steps)
        f32 = images_per_s(view, images, loss_net, "float32", args.steps)
        fast = images_per_s(view, images, loss_net, "auto", args.steps)
        rows[view] = {"plain_float32_images_per_s": round(plain, 2), "trainer_float32_images_per_s": round(f32, 2),
                      "trainer_images_per_s": round(fast, 2), "speedup": round(fast / plain, 2),
                      "speedup_over_trainer_float32": round(fast / f32, 2)}
        print(view, rows[view], flush=True)
    mean_speedup = sum(r["speedup"] for r in rows.values()) / len(rows)
    mean_precision = sum(r["speedup_over_trainer_float32"] for r in rows.values()) / len(rows)
    result = {"machine": machine_description(), "batch_size": 64, "timed_steps": args.steps, "views": rows, "mean_speedup": round(mean_speedup, 2),
              "mean_speedup_over_trainer_float32": round(mean_precision, 2)}
    write_text(OUT / "train_speed.json", json.dumps(result, indent=1))
    md = ["| view | plain float32 images/s | trainer in float32 | trainer | speed-up over plain float32 | "
          "over the trainer in float32 |", "|---|---|---|---|---|---|"]
    md += [f"| {v} | {r['plain_float32_images_per_s']} | {r['trainer_float32_images_per_s']} | "
           f"{r['trainer_images_per_s']} | {r['speedup']}x | {r['speedup_over_trainer_float32']}x |"
           for v, r in rows.items()]
    md.append(f"| **mean** | | | | **{mean_speedup:.2f}x** | {mean_precision:.2f}x |")
    write_text(OUT / "train_speed.md", f"`python -m benchmarks.train_speed` on {torch.get_num_threads()} CPU threads "
               f"({cpu_description()}), batch 64, {args.steps} timed steps per cell, "
               "the three columns in one run.\n\n" + "\n".join(md) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
