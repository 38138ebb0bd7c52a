"""Recipe study at a fixed budget: which training lever makes the shipped views' features better?

    python -m experiments.recipe_study --root CELEBA_MINI --views relu3_1 --updates 300

Every arm starts from the shipped view (``TrainConfig.init = "pretrained:VIEW"``, fresh critic) and
gets the same number of extra updates at the same learning rate (one epoch, no decay), so arms
differ only in their lever:

- ``control``: the paper's setting (alpha 1, beta 0.5, no augmentation): what the updates alone give;
- ``rec2`` / ``rec4``: reconstruction weight x2 / x4 (more latent capacity: less KL pressure);
- ``flip``: horizontal-flip augmentation;
- ``rec8`` (only with ``--arms rec8``): reconstruction weight x8, whether capacity keeps paying;
- ``best``: the best capacity arm (if it beat control on val) with flip (if flip beat control);
  not trained again when that is a single arm already run (the row says ``same_as``).

Per view and arm it reports, on celeba-mini's val split: mean accuracy of 40 linear SVMs on the
100-d latent means (fitted on train, C chosen on val: ``faceattr.inference.heads.fit_linear_heads``, the
shipped report's protocol), KL per face, active latent dimensions and the feature reconstruction
error (eq. 6 on the view's own layers, from the latent mean, unscaled). Choices use val only;
``--test`` scores the chosen arm of each view on the test split once, at the end.

``--base DIR`` names the bundle the arms start from (default: the installed one). The study's
rows record each base view's sha256 and a later call refuses another base, so that a newly shipped
bundle cannot slip into the study half-way. The study in benchmarks/results started from the
views shipped at commit b49b762: ``git archive b49b762 pretrained | tar -x -C DIR`` and pass
``--base DIR/pretrained``.

Runs live in ``--runs`` (default ``~/.cache/faceattr/recipe_study``, outside the work tree so they
survive a fresh checkout); rerunning the same command resumes each arm from its checkpoint and
skips arms already evaluated. Results: experiments/results/recipe_study.json and .md, rewritten
after every arm.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from faceattr.nn import checkpoint as ckpt
from faceattr.atomic import write_text
from faceattr.cache import cache_dir
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.nn.taps import LAYER_NAMES
from faceattr.device import autocast, cpu_description, memory_format, use_bf16
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.inference.heads import fit_linear_heads
from faceattr.nn.losses import reconstruction_loss
from faceattr.inference.bundle import Bundle
from faceattr.train import Runtime, Trainer, latent_statistics
from faceattr.nn.models import to_float_images
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"
PAPER = TrainConfig()
ARMS = {
    "control": {},
    "rec2": {"beta": 2 * PAPER.beta},
    "rec4": {"beta": 4 * PAPER.beta},
    "flip": {"augment": ("flip",)},
}
# Beyond the study's arms, run on request (--arms rec8): does capacity keep paying past x4?
EXTRA_ARMS = {"rec8": {"beta": 8 * PAPER.beta}}
ALL_ARMS = {**ARMS, **EXTRA_ARMS}
CAPACITY_ARMS = ("rec2", "rec4", "rec8")


def best_arm(rows: dict) -> dict:
    """The combination of the levers that beat control on val (capacity, then flip)."""
    missing = [a for a in ARMS if a not in rows]
    if missing:
        raise SystemExit(f"the best arm needs {', '.join(missing)} first (--arms)")
    control = rows["control"]["val_accuracy"]
    lever = {}
    capacity = max((a for a in CAPACITY_ARMS if a in rows), key=lambda a: rows[a]["val_accuracy"])
    if rows[capacity]["val_accuracy"] > control:
        lever.update(ALL_ARMS[capacity])
    if rows["flip"]["val_accuracy"] > control:
        lever.update(ARMS["flip"])
    return lever


@torch.no_grad()
def evaluate(vae, crops: dict, labels: dict, loss_net, device, bf16: bool) -> dict:
    enc = MultiViewEncoder({vae.cfg.name: vae}, device=device)
    feats = {s: enc.encode(c) for s, c in crops.items()}
    heads = fit_linear_heads(feats["train"], labels["train"], feats["val"], labels["val"])
    val = torch.from_numpy(crops["val"])
    stats = latent_statistics(vae.encoder, val, device, bf16)
    fmt = memory_format(device, bf16)
    total, n = 0.0, 0
    for chunk in val.split(256):
        x = to_float_images(chunk.to(device), fmt)
        with autocast(device, bf16):
            x_hat = vae.decoder(vae.encoder(x)[0])
            f_x, f_xhat = loss_net(x, vae.cfg.layers), loss_net(x_hat, vae.cfg.layers)
        total += float(reconstruction_loss(f_x, f_xhat, vae.cfg.layers)) * len(chunk)
        n += len(chunk)
    return {"val_accuracy": float(heads["val_accuracy"].mean()), "kl_per_face": stats["kl_per_sample"],
            "active_dims": stats["active_dims"], "reconstruction_error": total / n, "heads": heads}


def test_accuracy(vae, heads: dict, crops: np.ndarray, labels: np.ndarray, device) -> float:
    feats = MultiViewEncoder({vae.cfg.name: vae}, device=device).encode(crops)
    pred = feats @ heads["weight"].T + heads["bias"] > 0
    return float((pred == labels).mean())


def write_results(result: dict) -> None:
    write_text(OUT / "recipe_study.json", json.dumps(result, indent=1))
    md = [" and ".join(f"`{c}`" for c in result.get("commands", [result["command"]])), "",
          f"Every arm: {result['updates']} extra updates (batch {result['batch_size']}, lr {result['lr']}, "
          f"no decay) from the shipped view, fresh critic. Val split ({result['n_val']} faces): mean "
          "accuracy of 40 linear SVMs on the 100-d latent means (C on val), KL per face (nats), active "
          "latent dims (Var > 0.01), feature reconstruction error (eq. 6, own layers, from the mean). "
          f"Gain per 1,000 updates is against the shipped view. CPU: {result['machine']['cpu']}.", "",
          "| view | arm | lever | val accuracy | gain / 1k updates | KL / face | active dims | rec. error | "
          "images/s | test accuracy |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for view, rows in result["views"].items():
        shipped = rows.get("shipped", {}).get("val_accuracy")
        for arm, r in rows.items():
            gain = "" if arm == "shipped" or shipped is None else \
                f"{100 * (r['val_accuracy'] - shipped) / r['updates'] * 1000:+.2f}"
            test = "" if r.get("test_accuracy") is None else f"{100 * r['test_accuracy']:.2f}%"
            ips = "" if r.get("images_per_s") is None else f"{r['images_per_s']:.1f}"
            label = f"{arm} (= {r['same_as']})" if r.get("same_as") else arm
            md.append(f"| {view} | {label} | {json.dumps(r.get('lever', {}))} | {100 * r['val_accuracy']:.2f}% | "
                      f"{gain} | {r['kl_per_face']:.1f} | {r['active_dims']} | {r['reconstruction_error']:.2f} | "
                      f"{ips} | {test} |")
    md.append(f"| | raw pixels 32x32 | | {100 * result['pixels_val_accuracy']:.2f}% | | | | | | |"
              if result.get("pixels_val_accuracy") else "")
    write_text(OUT / "recipe_study.md", "\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--views", nargs="+", default=["relu3_1"], choices=LAYER_NAMES)
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=PAPER.batch_size)
    ap.add_argument("--arms", nargs="+", default=[*ARMS, "best"], choices=[*ALL_ARMS, "best"])
    ap.add_argument("--runs", default=str(cache_dir() / "recipe_study"))
    ap.add_argument("--base", default=None, help="bundle the arms start from (default: the installed one)")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "float32"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument("--test", action="store_true", help="score each view's chosen arm on test (once, at the end)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    bf16 = use_bf16(device, args.precision)
    runs = Path(args.runs).expanduser()
    crops, labels = {}, {}
    for s in ("train", "val") + (("test",) if args.test else ()):
        ds = CelebA.load(args.root, s)
        crops[s], labels[s] = ds.crops(), ds.labels
    loss_net = load_loss_network()
    path = OUT / "recipe_study.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    same = (result.get("updates"), result.get("lr"), result.get("batch_size")) == (args.updates, args.lr, args.batch_size)
    if not same:
        result = {"views": {}}
    command = "python -m experiments.recipe_study " + shlex.join(sys.argv[1:])
    commands = result.setdefault("commands", [result["command"]] if "command" in result else [])
    if command not in commands:
        commands.append(command)
    result.update(command=commands[0],
                  updates=args.updates, lr=args.lr, batch_size=args.batch_size, n_val=len(labels["val"]),
                  machine={"cpu": cpu_description(), "torch": torch.__version__, "bf16": bf16,
                           "threads": torch.get_num_threads(), "python": platform.python_version()})
    if "pixels_val_accuracy" not in result:
        from faceattr.benchmark import pixel_features
        result["pixels_val_accuracy"] = float(fit_linear_heads(
            pixel_features(crops["train"]), labels["train"], pixel_features(crops["val"]),
            labels["val"])["val_accuracy"].mean())
    bundle = Bundle.load(args.base)
    for view in args.views:
        rows = result["views"].setdefault(view, {})
        heads = {}
        base_sha = bundle.view_entry(view)["sha256"]
        if "shipped" not in rows:
            r = evaluate(bundle.load_vae(view), crops, labels, loss_net, device, bf16)
            heads["shipped"] = r.pop("heads")
            rows["shipped"] = {**r, "updates": 0, "sha256": base_sha}
            write_results(result)
        if rows["shipped"].setdefault("sha256", base_sha) != base_sha:
            raise SystemExit(f"{view}: the study's rows start from view sha256 {rows['shipped']['sha256'][:12]}, "
                             f"but {bundle.root} holds {base_sha[:12]}; pass that bundle as --base")
        print(view, "shipped", json.dumps(rows["shipped"]), flush=True)
        for arm in args.arms:
            if arm in rows:
                continue
            lever = best_arm(rows) if arm == "best" else ALL_ARMS[arm]
            same = [a for a, lv in ALL_ARMS.items() if a in rows and lv == lever]
            if arm == "best" and same:  # one lever (or none) won: that arm already is the best
                rows[arm] = {**rows[same[0]], "same_as": same[0]}
                write_results(result)
                print(view, arm, "= " + same[0], flush=True)
                continue
            tcfg = TrainConfig(epochs=1, lr=args.lr, lr_decay=1.0, batch_size=args.batch_size,
                               epoch_images=args.updates * args.batch_size, init=f"pretrained:{view}",
                               checkpoint_every=50, log_every=10, **lever)
            # init names the base's view; init_sha256 says which file it was, whatever --base held.
            init_path = bundle.file(bundle.view_entry(view))  # sha256 checked against the base's manifest
            init, tcfg.init_sha256 = ckpt.load(init_path), base_sha
            out = runs / view / arm
            trainer = Trainer(ModelConfig.from_dict(init["model_config"]), tcfg, crops["train"], out, loss_net,
                              Runtime(device, args.precision, progress=False), init["state_dict"])
            t0 = time.perf_counter()
            trainer.fit(resume=True)
            seconds = time.perf_counter() - t0
            log = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l]
            ips = [rec["images_per_s"] for rec in log if "images_per_s" in rec]
            r = evaluate(ckpt.load_view(out / "view.pt"), crops, labels, loss_net, device, bf16)
            heads[arm] = r.pop("heads")
            rows[arm] = {**r, "updates": trainer.step, "lever": lever, "train_seconds_this_call": seconds,
                         "images_per_s": float(np.median(ips)) if ips else None}
            write_results(result)
            print(view, arm, json.dumps(rows[arm]), flush=True)
        if args.test:
            arm = max((a for a in rows), key=lambda a: rows[a]["val_accuracy"])
            run_dir = runs / view / rows[arm].get("same_as", arm)
            vae = bundle.load_vae(view) if arm == "shipped" else ckpt.load_view(run_dir / "view.pt")
            h = heads.get(arm) or evaluate(vae, crops, labels, loss_net, device, bf16)["heads"]
            rows[arm]["test_accuracy"] = test_accuracy(vae, h, crops["test"], labels["test"], device)
            write_results(result)
    write_results(result)


if __name__ == "__main__":
    main()
