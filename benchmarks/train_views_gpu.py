"""Train all five shipped views at the paper's settings on one GPU, in one prepared run.

Needs ``.gpu/`` from ``benchmarks/pack_training_data.py``. Each view trains in its own process
(the five share the GPU), with the paper's hyperparameters (batch 64, Adam 5e-4 halved each
epoch, 5 epochs, alpha 1, beta 0.5, labels +-10, clip 0.01) and the SPEC's balancing. Writes to
``--out``: ``view_<layer>.pt`` (encoder + decoder, float16) per view, ``runs.tar.gz`` (metrics
logs, reconstruction grids, configs) and ``summary.json``.

    python benchmarks/train_views_gpu.py --data .gpu --out $OUT

A run longer than one device call (at most 10 minutes) goes in two: the first with
``--time-limit`` under the call's limit and ``--runs runs/gpu`` (ignored by git, so it stays on a
warm machine between calls, unlike /tmp on a fresh one), the second with the same arguments plus
``--resume``, which continues every view from its checkpoint (same result as one run).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceattr import checkpoint as ckpt  # noqa: E402
from faceattr.nn.config import ModelConfig, TrainConfig  # noqa: E402
from faceattr.nn.taps import LAYER_NAMES  # noqa: E402

VIEWS = LAYER_NAMES


def train_one(args) -> None:
    from benchmarks.pack_training_data import unpack
    from faceattr.trainer import Trainer
    from faceattr.nn.vgg import load_loss_network
    torch.backends.cudnn.benchmark = True
    crops, _ = unpack(Path(args.data) / "train_crops.npz")
    net = load_loss_network(Path(args.data) / "vgg19_caffe_fp16.pt")
    seed = VIEWS.index(args.view)
    trainer = Trainer(ModelConfig(layers=(args.view,)),
                      TrainConfig(epochs=args.epochs, seed=seed, epoch_images=args.epoch_images),
                      crops, Path(args.runs) / args.view, net, device="auto", progress=False)
    t = time.perf_counter()
    res = trainer.fit(resume=args.resume, time_limit_s=args.time_limit)
    print(json.dumps({"view": args.view, "steps": res.steps, "epochs": res.epochs,
                      "seconds": round(time.perf_counter() - t, 1), "latent": res.latent}), flush=True)


@torch.no_grad()
def fp16_drift(view_file: Path, crops) -> dict:
    """How far float16 storage moves the latent means, on 1,024 training faces."""
    from faceattr.nn.models import to_float_images
    vae32 = ckpt.load_view(view_file, "cuda" if torch.cuda.is_available() else "cpu")
    dev = next(vae32.parameters()).device
    vae16 = ckpt.load_view(view_file, dev)
    for p in vae16.state_dict().values():
        if p.is_floating_point():
            p.copy_(p.half().float())
    x = to_float_images(torch.from_numpy(crops[:1024]).to(dev))
    m32, m16 = vae32.encoder(x)[0], vae16.encoder(x)[0]
    return {"max_abs_diff": float((m32 - m16).abs().max()), "latent_std": float(m32.std()),
            "mean_abs_diff": float((m32 - m16).abs().mean())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=".gpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="/tmp/faceattr-runs")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=420.0)
    ap.add_argument("--epoch-images", type=int, default=None,
                    help="faces drawn per epoch (default: one pass over the data)")
    ap.add_argument("--resume", action="store_true", help="continue each view from --runs/VIEW/checkpoint.pt")
    ap.add_argument("--view", choices=VIEWS)
    args = ap.parse_args()
    if args.view:
        return train_one(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    procs = {v: subprocess.Popen([sys.executable, __file__, "--data", args.data, "--out", args.out,
                                  "--runs", args.runs, "--epochs", str(args.epochs),
                                  "--time-limit", str(args.time_limit), "--view", v]
                                 + (["--epoch-images", str(args.epoch_images)] if args.epoch_images else [])
                                 + (["--resume"] if args.resume else []),
                                 stdout=subprocess.PIPE, text=True) for v in VIEWS}
    summary = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "views": {}}
    for v, p in procs.items():
        stdout, _ = p.communicate()
        print(v, "exit", p.returncode, stdout.strip()[-2000:], flush=True)
        lines = [l for l in stdout.splitlines() if l.startswith("{")]
        summary["views"][v] = json.loads(lines[-1]) if lines else {"error": p.returncode}
    summary["wall_s"] = round(time.perf_counter() - t, 1)
    from benchmarks.pack_training_data import unpack
    crops, _ = unpack(Path(args.data) / "train_crops.npz")
    for v in VIEWS:
        run = Path(args.runs) / v
        src = run / "view.pt" if (run / "view.pt").is_file() else run / "checkpoint.pt"
        if not src.is_file():
            continue
        obj = ckpt.load(src)
        vae = ckpt.view_from(obj)
        meta = obj.get("meta", {}) if src.name == "view.pt" else {}
        ckpt.save_view(vae, out / f"view_{v}.pt", meta=meta, dtype=torch.float16)
        summary["views"][v]["fp16_drift"] = fp16_drift(src, crops)
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for f in sorted(Path(args.runs).rglob("*")):
            if f.is_file() and f.suffix in (".jsonl", ".png"):
                tar.add(f, arcname=str(f.relative_to(args.runs)))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
