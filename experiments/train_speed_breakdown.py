"""Where a training step's time goes, float32 against the trainer's path: convolutions vs the rest.

    python -m experiments.train_speed_breakdown --root CELEBA_MINI

Profiles real Algorithm 1 steps (batch 64, the shipped model size, the real VGG19) for each view, in
plain float32 and in the trainer's own path (bfloat16 autocast + channels_last on AMX CPUs), and
splits the operators' self CPU time into convolutions (forward and backward) and everything else
(batch norm, activations, residual adds, dtype casts, optimiser, ...).

Why: the speed-up of a whole step, (C32 + R32) / (C16 + R16), can never exceed the larger of the
two parts' own speed-ups C32/C16 and R32/R16. So these two ratios bound what any scheduling of
the same work can reach on this CPU. Writes experiments/results/train_speed_breakdown.json and .md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


from benchmarks.train_speed import timing_trainer
from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.nn.taps import LAYER_NAMES
from faceattr.device import cpu_description, machine_description
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"


def is_convolution(op_name: str) -> bool:
    return "conv" in op_name.lower()


def breakdown(view: str, images, loss_net, precision: str, steps: int, warmup: int = 2) -> dict:
    """Seconds per step spent in convolution operators and in all other operators."""
    t, batches = timing_trainer(view, images, loss_net, precision, warmup + steps)
    for x in batches[:warmup]:
        t.train_step(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for x in batches[warmup:]:
            t.train_step(x)["loss"].item()
    conv = other = 0.0
    for event in prof.key_averages():
        if is_convolution(event.key):
            conv += event.self_cpu_time_total
        else:
            other += event.self_cpu_time_total
    return {"conv_s": conv / 1e6 / steps, "other_s": other / 1e6 / steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    images = CelebA.load(args.root, "train", max_images=64 * (args.steps + 2)).crops()
    loss_net = load_loss_network()
    rows = {}
    for view in LAYER_NAMES:
        f32 = breakdown(view, images, loss_net, "float32", args.steps)
        fast = breakdown(view, images, loss_net, "auto", args.steps)
        row = {"float32": f32, "trainer": fast,
               "conv_speedup": f32["conv_s"] / fast["conv_s"],
               "other_speedup": f32["other_s"] / fast["other_s"],
               "step_speedup": (f32["conv_s"] + f32["other_s"]) / (fast["conv_s"] + fast["other_s"]),
               "conv_share_trainer": fast["conv_s"] / (fast["conv_s"] + fast["other_s"])}
        row["ceiling"] = max(row["conv_speedup"], row["other_speedup"])
        rows[view] = row
        print(view, json.dumps(row), flush=True)
    result = {"machine": machine_description(), "batch_size": 64, "profiled_steps": args.steps, "views": rows}
    write_text(OUT / "train_speed_breakdown.json", json.dumps(result, indent=1))
    md = ["| view | conv s/step f32 -> trainer | other s/step f32 -> trainer | conv speed-up | other speed-up | "
          "step speed-up (profiled) | conv share of a trainer step |", "|---|---|---|---|---|---|---|"]
    for v, r in rows.items():
        md.append(f"| {v} | {r['float32']['conv_s']:.2f} -> {r['trainer']['conv_s']:.2f} | "
                  f"{r['float32']['other_s']:.2f} -> {r['trainer']['other_s']:.2f} | {r['conv_speedup']:.2f}x | "
                  f"{r['other_speedup']:.2f}x | {r['step_speedup']:.2f}x | {100 * r['conv_share_trainer']:.0f}% |")
    write_text(OUT / "train_speed_breakdown.md",
               f"`python -m experiments.train_speed_breakdown` on {torch.get_num_threads()} CPU threads "
               f"({cpu_description()}), batch 64, {args.steps} profiled steps per cell; "
               "operator self CPU time under torch.profiler.\n\n" + "\n".join(md) + "\n\n"
               "A step's speed-up cannot exceed the larger of the conv and other speed-ups.\n")


if __name__ == "__main__":
    main()
