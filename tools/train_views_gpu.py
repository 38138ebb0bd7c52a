"""Train all five shipped views at the paper's settings on one GPU, in one prepared run.

Needs ``.gpu/`` from ``tools/pack_training_data.py``. Each view trains in its own process
(the five share the GPU), with the paper's hyperparameters (batch 64, Adam 5e-4 halved each
epoch, 5 epochs, alpha 1, beta 0.5, labels +-10, clip 0.01) and the balancing of docs/method.md. Writes to
``--out``: ``view_<layer>.pt`` (encoder + decoder, float16) per view, ``runs.tar.gz`` (metrics
logs, reconstruction grids, configs) and ``summary.json``.

    python -m tools.train_views_gpu --data .gpu --out $OUT

The tree a device call carries is at most 64 MiB, and the tracked views (43 MB) with ``.gpu/``
(64 MB) are more: stage them in two calls through the device's /tmp, which lives while the
machine stays warm (an ignored file that exists here but is not carried is removed there), e.g.
call 1 carries ``.gpu/train_crops.npz`` and two views and copies them to /tmp/stage, call 2
carries the VGG19 file and the other three and copies /tmp/stage back before training (the views
untracked for the calls with ``git rm --cached``, restored after with ``git reset``).

A run longer than one device call (at most 10 minutes) goes in two: the first with
``--time-limit`` under the call's limit and ``--runs runs/gpu`` (ignored by git, so it stays on a
warm machine between calls, unlike /tmp on a fresh one), the second with the same arguments plus
``--resume``, which continues every view from its checkpoint (same result as one run).

Speed trial (``--trial-steps N``, default 0 = off): before training, each of ``--variants`` runs
N timed steps of relu1_1 (the slowest view) and the fastest variant trains every view:
- ``eager``: the trainer as it is;
- ``compile``: ``torch.compile`` of the VAE and the critic (``Runtime(compile=True)``);
- ``batch256``: batch 256 with the learning rate x2 (square-root scaling), a quarter of the updates.
The choice and every variant's images/s go to ``summary.json``. The recipe options of the study
(``--init pretrained``, ``--lr``, ``--lr-decay``, ``--rec-weight``, ``--kl-weight``, ``--augment``,
``--decorrelate``)
pass through to every view, so the winner of experiments/recipe_study.py trains here unchanged.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch


from faceattr.nn import checkpoint as ckpt
from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.nn.taps import LAYER_NAMES

REPO = Path(__file__).resolve().parents[1]  # the subprocesses run as python -m tools.train_views_gpu from here

VIEWS = LAYER_NAMES


VARIANTS = {"eager": {}, "compile": {"compile": True}, "batch256": {"batch_size": 256, "lr_scale": 2.0}}


def make_trainer(args, view: str, crops, net, out: Path, variant: str = "eager", device="auto",
                 extra=None, extra_record: dict | None = None):
    """The trainer of one view with the run's recipe and a speed variant; ``extra`` the packed
    unlabeled faces (faceattr train --extra-faces) with their record, when --extra-faces."""
    from faceattr.train import FaceFeed, Runtime, Trainer, load_init
    v = VARIANTS[variant]
    mix = {}
    if extra is not None:
        mix = {"extra_faces": extra_record["source"], "extra_share": getattr(args, "extra_share", None),
               "extra_faces_count": extra_record["count"], "extra_faces_sha256": extra_record["sha256"]}
    batch = v.get("batch_size", TrainConfig.batch_size)
    tcfg = TrainConfig(epochs=args.epochs, seed=VIEWS.index(view), epoch_images=args.epoch_images,
                       batch_size=batch, lr=args.lr * v.get("lr_scale", 1.0), lr_decay=args.lr_decay,
                       alpha=args.kl_weight, beta=args.rec_weight,
                       augment=tuple(a for a in args.augment.split(",") if a),
                       init=f"pretrained:{view}" if args.init == "pretrained" else None, **mix)
    cfg, state = ModelConfig(layers=(view,)), None
    if tcfg.init:
        cfg, state = load_init(tcfg)
    terms = []
    if args.decorrelate > 0:
        # The other views are the shipped bundle's, frozen: every view is kept apart from the others as
        # they were, not as they are becoming in the processes training beside it.
        from experiments.decorrelate import Decorrelation, other_view_latents
        terms = [Decorrelation(args.decorrelate, other_view_latents("pretrained", cfg, crops, device))]
    feed = FaceFeed(crops, extra, description=f"{len(crops)} train-split faces packed by tools/pack_training_data.py")
    return Trainer(cfg, tcfg, feed, out, net, Runtime(device, progress=False, compile=v.get("compile", False)),
                   state, terms)


WARMUP_STEPS = 3


def speed_trial(args, crops, net, steps: int, variants, device="auto", warmup: int = WARMUP_STEPS) -> dict:
    """images/s of each variant over ``steps`` timed steps (after ``warmup`` steps) of relu1_1."""
    from faceattr.nn.models import to_float_images
    out = {}
    for variant in variants:
        t = make_trainer(args, "relu1_1", crops, net, Path(args.runs) / "_trial" / variant, variant, device)
        b = t.cfg.batch_size
        x, idx = to_float_images(t.images[:b], t.place.fmt), torch.arange(b, device=t.device)
        for _ in range(warmup):
            t.train_step(x, idx)
        if t.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            t.train_step(x, idx)
        if t.device.type == "cuda":
            torch.cuda.synchronize()
        out[variant] = steps * b / (time.perf_counter() - t0)
        print("trial", variant, round(out[variant], 1), "images/s", flush=True)
    return out


def train_one(args) -> None:
    from tools.pack_training_data import unpack, unpack_extra
    from faceattr.nn.vgg import load_loss_network
    torch.backends.cudnn.benchmark = True
    crops, _ = unpack(Path(args.data) / "train_crops.npz")
    extra, record = unpack_extra(args.data) if args.extra_faces else (None, {})
    if args.extra_faces and extra is None:
        raise SystemExit(f"--extra-faces: no extra_crops.npz in {args.data} (pack_training_data --extra-faces DIR)")
    net = load_loss_network(Path(args.data) / "vgg19_caffe_fp16.pt")
    trainer = make_trainer(args, args.view, crops, net, Path(args.runs) / args.view, args.variant,
                           extra=extra, extra_record=record)
    t = time.perf_counter()
    res = trainer.fit(resume=args.resume, time_limit_s=args.time_limit)
    if res.steps < trainer.cfg.epochs * trainer.steps_per_epoch:
        # the call's time is up before the epochs: hand over the view so far, with its history
        # (init_sha256, steps) so it can be bundled; --resume continues from the checkpoint
        trainer.save_view(measure_latent=True)
        res = dataclasses.replace(res, latent=trainer.last_latent)
    print(json.dumps({"view": args.view, "steps": res.steps, "epochs": res.epochs,
                      "seconds": round(time.perf_counter() - t, 1), "latent": res.latent}), flush=True)


def fp16_drift(view_file: Path, crops) -> dict:
    """How far float16 storage moves the latent means, on 1,024 training faces."""
    return ckpt.float16_drift(ckpt.load_view(view_file, "cuda" if torch.cuda.is_available() else "cpu"),
                              crops[:1024])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=".gpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="runs/gpu", help="the views' run folders (checkpoints, logs)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=420.0)
    ap.add_argument("--epoch-images", type=int, default=None,
                    help="faces drawn per epoch (default: one pass over the data)")
    ap.add_argument("--resume", action="store_true", help="continue each view from --runs/VIEW/checkpoint.pt")
    ap.add_argument("--init", choices=["none", "pretrained"], default="none",
                    help="pretrained: fine-tune the shipped views (fresh critics)")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--lr-decay", type=float, default=TrainConfig.lr_decay)
    ap.add_argument("--kl-weight", type=float, default=TrainConfig.alpha)
    ap.add_argument("--rec-weight", type=float, default=TrainConfig.beta)
    ap.add_argument("--augment", default="")
    ap.add_argument("--decorrelate", type=float, default=0.0,
                    help="the decorrelation study's term (experiments/decorrelate.py): keep each view's latent "
                         "apart from the shipped others'")
    ap.add_argument("--extra-faces", action="store_true",
                    help="mix the unlabeled faces packed in --data (extra_crops.npz) into the batches")
    ap.add_argument("--extra-share", type=float, default=None,
                    help="share of each batch from the extra faces (default: in proportion to the sizes)")
    ap.add_argument("--trial-steps", type=int, default=0, help="time each --variants for N steps first")
    ap.add_argument("--variants", default="eager,compile,batch256")
    ap.add_argument("--variant", default="eager", choices=list(VARIANTS), help="what trains (set by the trial)")
    ap.add_argument("--view", choices=VIEWS)
    args = ap.parse_args()
    if args.view:
        return train_one(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    summary = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "views": {}, "recipe": {k: getattr(args, k) for k in (
                   "init", "lr", "lr_decay", "kl_weight", "rec_weight", "augment", "decorrelate", "epochs", "epoch_images",
                   "extra_faces", "extra_share")}}
    if args.trial_steps and not args.resume:
        from tools.pack_training_data import unpack
        from faceattr.nn.vgg import load_loss_network
        crops, _ = unpack(Path(args.data) / "train_crops.npz")
        net = load_loss_network(Path(args.data) / "vgg19_caffe_fp16.pt")
        summary["trial_images_per_s"] = speed_trial(args, crops, net, args.trial_steps, args.variants.split(","))
        args.variant = max(summary["trial_images_per_s"], key=summary["trial_images_per_s"].get)
    summary["variant"] = args.variant
    recipe = ["--lr", str(args.lr), "--lr-decay", str(args.lr_decay), "--kl-weight", str(args.kl_weight),
              "--rec-weight", str(args.rec_weight), "--augment", args.augment, "--init", args.init,
              "--decorrelate", str(args.decorrelate), "--variant", args.variant]
    recipe += (["--extra-faces"] if args.extra_faces else []) + (
        ["--extra-share", str(args.extra_share)] if args.extra_share is not None else [])
    procs = {v: subprocess.Popen([sys.executable, "-m", "tools.train_views_gpu", "--data", args.data, "--out", args.out,
                                  "--runs", args.runs, "--epochs", str(args.epochs),
                                  "--time-limit", str(args.time_limit), "--view", v] + recipe
                                 + (["--epoch-images", str(args.epoch_images)] if args.epoch_images else [])
                                 + (["--resume"] if args.resume else []),
                                 stdout=subprocess.PIPE, text=True, cwd=REPO) for v in VIEWS}
    for v, p in procs.items():
        stdout, _ = p.communicate()
        print(v, "exit", p.returncode, stdout.strip()[-2000:], flush=True)
        lines = [l for l in stdout.splitlines() if l.startswith("{")]
        summary["views"][v] = json.loads(lines[-1]) if lines else {"error": p.returncode}
    summary["wall_s"] = round(time.perf_counter() - t, 1)
    from tools.pack_training_data import unpack
    crops, _ = unpack(Path(args.data) / "train_crops.npz")
    for v in VIEWS:
        run = Path(args.runs) / v
        src = run / "view.pt" if (run / "view.pt").is_file() else run / "checkpoint.pt"
        if not src.is_file():
            continue
        obj = ckpt.load(src)
        vae = ckpt.view_from(obj)
        meta = obj.get("meta", {}) if src.name == "view.pt" else {}
        summary["views"][v]["fp16_drift"] = fp16_drift(src, crops)
        meta["float16_storage_max_latent_change"] = summary["views"][v]["fp16_drift"]["max_abs_diff"]
        ckpt.save_view(vae, out / f"view_{v}.pt", meta=meta, dtype=torch.float16)
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for f in sorted(Path(args.runs).rglob("*")):
            if f.is_file() and f.suffix in (".jsonl", ".png"):
                tar.add(f, arcname=str(f.relative_to(args.runs)))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
