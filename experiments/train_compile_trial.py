"""Does torch.compile speed up the trainer's step on this CPU? A trial, not a trainer feature.

    python -m experiments.train_compile_trial --root CELEBA_MINI --view relu3_1

Times Algorithm 1 steps (batch 64, bf16 + channels_last, the real VGG19) eager, then with
torch.compile applied to the VAE, to the VAE and the critic, and to the VAE, critic and VGG, each
in a fresh trainer, interleaved with eager runs. Inductor cannot compile the backward of
replication padding on channels_last tensors (torch 2.14.1), so for this trial the decoder's
replication padding is rewritten as concatenation of edge rows and columns (the same values).
Writes experiments/results/train_compile_trial.json and .md.
"""
from __future__ import annotations

import argparse
import json
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


from benchmarks.train_speed import timing_trainer
from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.train import CriticPair
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"


def replicate_pad1(x):
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], 2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], 3)


class ReplicatePad1(nn.Module):
    def forward(self, x):
        return replicate_pad1(x)


def _conv_replicate(self, input, weight, bias):
    return F.conv2d(replicate_pad1(input), weight, bias, self.stride, 0, self.dilation, self.groups)


def compilable(vae: nn.Module) -> None:
    for module in list(vae.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReplicationPad2d):
                setattr(module, name, ReplicatePad1())
            elif isinstance(child, nn.Conv2d) and child.padding_mode == "replicate":
                child._conv_forward = types.MethodType(_conv_replicate, child)


def run(view, images, loss_net, compiled: tuple[str, ...], steps: int) -> dict:
    t, batches = timing_trainer(view, images, loss_net, "auto", 2 + steps)
    if "vae" in compiled:
        compilable(t.vae)
        t.nets.vae_step = torch.compile(t.vae)
    if "critic" in compiled:
        t.nets.critic_step = torch.compile(CriticPair(t.critic))
    if "vgg" in compiled:
        t.nets.step_loss_net = torch.compile(t.nets.step_loss_net)
    start = time.perf_counter()
    for x in batches[:2]:
        t.train_step(x)["loss"].item()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for x in batches[2:]:
        t.train_step(x)["loss"].item()
    return {"images_per_s": steps * 64 / (time.perf_counter() - start), "first_two_steps_s": warm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--view", default="relu3_1")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    images = CelebA.load(args.root, "train", max_images=64 * (args.steps + 2)).crops()
    loss_net = load_loss_network()
    rows = []
    for compiled in [(), ("vae",), (), ("vae", "critic"), (), ("vae", "critic", "vgg")]:
        torch._dynamo.reset()
        r = {"compiled": "+".join(compiled) or "eager", **run(args.view, images, loss_net, compiled, args.steps)}
        rows.append(r)
        print(json.dumps(r), flush=True)
    write_text(OUT / "train_compile_trial.json", json.dumps({"view": args.view, "steps": args.steps,
                                                              "torch": torch.__version__, "rows": rows}, indent=1))
    md = ["| compiled | images/s | first two steps (s, incl. compiling) |", "|---|---|---|"]
    md += [f"| {r['compiled']} | {r['images_per_s']:.1f} | {r['first_two_steps_s']:.1f} |" for r in rows]
    write_text(OUT / "train_compile_trial.md", f"`python -m experiments.train_compile_trial --view {args.view}` "
               f"({torch.get_num_threads()} CPU threads, bf16 + channels_last, batch 64, {args.steps} timed steps "
               "per row, rows in the order run):\n\n" + "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
