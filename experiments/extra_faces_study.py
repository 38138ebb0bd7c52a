"""Do more faces help the views? A fixed-budget comparison from the shipped views, per view: the
same extra updates with celeba-mini alone (the control) and with unlabeled extra faces at each
``--shares`` (a share of every batch, or "prop": in proportion to the two sets' sizes). For every
arm: the view's own val accuracy (40 SVMs on its 100-d latent, fitted on train, C on val), the
multi-view val accuracy with that view replaced, and the val / train reconstruction-error ratio.
Chosen by val only; test is looked at once, at the end, by whoever ships a winner.

    python -m experiments.extra_faces_study --root CELEBA_MINI --extra FACES_DIR [--updates 400]

Resumable: every arm is a `faceattr train` run folder under ``--runs`` (checkpointed; a killed or
SIGSTOPped study continues where it stopped, a finished arm is not run again), and the results
file is rewritten after each arm, so partial results are never lost. Pause it with SIGSTOP while a
speed benchmark runs, resume with SIGCONT. Writes experiments/results/extra_faces_study.json/.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceattr.atomic import write_text
from faceattr.device import cpu_description

OUT = Path(__file__).resolve().parent / "results"
BATCH = 64
# The shipped views' own loss weights carry over (a fine-tune with other weights moves the view
# away from what it was trained for, whatever the data); their learning rate is scaled to BATCH.
RECIPE_FIELDS = ("alpha", "beta", "gan_label", "clip", "rec_balance", "reference_images")
CHECKPOINT_EVERY = 25  # updates: a killed session loses at most this many
EVAL_FACES = 512  # train and val faces for the generalisation ratio
# Every arm trains in bfloat16 whatever the CPU, so arms run in different sessions (and on CPUs
# where precision="auto" would choose differently) differ only in their data.
PRECISION = "bf16"


SHIPPED = "shipped"  # the starting point, not trained further: what every arm is compared with


def arms(shares: list[str]) -> dict[str, float | None | str]:
    out: dict = {SHIPPED: SHIPPED, "control": "none"}
    for s in shares:
        out[f"extra {s}"] = None if s == "prop" else float(s)
    return out


def shipped_recipe(bundle, view: str) -> dict:
    """The view's training weights as the bundle's manifest records them, its lr scaled to BATCH."""
    shipped = bundle.view_entry(view)["train_config"]
    return {**{k: shipped[k] for k in RECIPE_FIELDS}, "lr": shipped["lr"] * BATCH / shipped["batch_size"]}


def run_arm(args, view: str, name: str, share, bundle) -> Path | None:
    """The arm's fine-tuned view file, training (or resuming) it first when it is not there yet
    (None for the shipped view itself)."""
    if share == SHIPPED:
        return None
    from faceattr.nn.config import TrainConfig
    from faceattr.train import Runtime, train_view
    out = Path(args.runs) / view / name.replace(" ", "_")
    if (out / "view.pt").is_file():
        return out / "view.pt"
    extra = {} if share == "none" else {"extra_faces": args.extra, "extra_share": share}
    cfg = TrainConfig(init=f"pretrained:{view}", epochs=1, batch_size=BATCH, epoch_images=args.updates * BATCH,
                      checkpoint_every=CHECKPOINT_EVERY, **shipped_recipe(bundle, view), **extra)
    train_view(args.root, out, cfg, resume=(out / "checkpoint.pt").is_file(), runtime=Runtime(precision=PRECISION, progress=False))
    return out / "view.pt"


def evaluate(args, view: str, view_file: Path | None, data) -> dict:
    from faceattr.inference.encoder import MultiViewEncoder
    from faceattr.inference.heads import fit_linear_heads
    from faceattr.nn import checkpoint as ckpt
    from faceattr.nn.generalisation import generalisation
    vae = data["bundle"].load_vae(view) if view_file is None else ckpt.load_view(view_file)
    enc = MultiViewEncoder({view: vae})
    own = {s: enc.encode(data["crops"][s]) for s in ("train", "val")}
    y = data["labels"]
    alone = fit_linear_heads(own["train"], y["train"], own["val"], y["val"])
    multi = {s: data["shipped"][s].copy() for s in ("train", "val")}
    for s in multi:
        multi[s][:, data["slices"][view]] = own[s]
    together = fit_linear_heads(multi["train"], y["train"], multi["val"], y["val"])
    gen = generalisation(vae, data["loss_net"], data["crops"]["train"][:EVAL_FACES], data["crops"]["val"][:EVAL_FACES])
    return {"view_val_accuracy": float(alone["val_accuracy"].mean()),
            "multi_view_val_accuracy": float(together["val_accuracy"].mean()),
            "val_over_train_error": gen["rec_ratio"], "train_error": gen["train_rec"], "val_error": gen["held_out_rec"],
            "file": "pretrained" if view_file is None else str(view_file)}


def load_data(root):
    from faceattr.data.celeba import CelebA
    from faceattr.inference.bundle import Bundle
    from faceattr.inference.feature_cache import FeatureCache
    from faceattr.nn.vgg import load_loss_network
    bundle = Bundle.load()
    ds = {s: CelebA.load(root, s) for s in ("train", "val")}
    cache = FeatureCache(bundle)
    return {"crops": {s: d.crops(progress=False) for s, d in ds.items()},
            "labels": {s: np.asarray(d.labels) for s, d in ds.items()},
            "shipped": {s: np.asarray(cache.features(d)) for s, d in ds.items()},
            "slices": bundle.view_slices(), "loss_net": load_loss_network(), "views": bundle.views,
            "bundle": bundle}


def write_results(res: dict) -> None:
    write_text(OUT / "extra_faces_study.json", json.dumps(res, indent=1))
    cpus = sorted({r["cpu"] for rows in res["views"].values() for r in rows.values()})
    md = [f"`python -m experiments.extra_faces_study --root CELEBA_MINI --extra {res['extra']} --updates "
          f"{res['updates']}` on {' and '.join(cpus)} (each arm's CPU and precision are in the JSON): {res['updates']} extra updates per arm (batch {BATCH}; each view's "
          f"own loss weights, its lr scaled to the batch) from each shipped view; val only. The extra faces were not checked against CelebA's people.", "",
          "| view | arm | view val acc. | multi-view val acc. | train error | val error | val / train error |",
          "|---|---|---|---|---|---|---|"]
    md += [f"| {v} | {a} | {100 * r['view_val_accuracy']:.2f}% | {100 * r['multi_view_val_accuracy']:.2f}% | "
           f"{r.get('train_error', float('nan')):.4g} | {r.get('val_error', float('nan')):.4g} | "
           f"{r['val_over_train_error']:.3f} |" for v, rows in res["views"].items() for a, r in rows.items()]
    write_text(OUT / "extra_faces_study.md", "\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--extra", required=True, help="the folder of unlabeled faces")
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--shares", default="prop,0.25")
    # the widest val/train gap first (experiments/results/generalisation.md), so a short session
    # still answers for the view most likely to gain
    ap.add_argument("--views", default="relu5_1,relu4_1,relu2_1,relu3_1,relu1_1")
    ap.add_argument("--runs", default="runs/extra_faces_study")
    args = ap.parse_args()
    path = OUT / "extra_faces_study.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    if res.get("updates", args.updates) != args.updates:
        raise SystemExit(f"{path} holds arms of {res['updates']} updates; --updates {args.updates} would mix "
                         "budgets (move the file aside to start a new comparison)")
    res.update({"cpu": cpu_description(), "extra": Path(args.extra).name, "updates": args.updates})
    res.setdefault("views", {})
    data = load_data(args.root)
    for view in args.views.split(","):
        for name, share in arms(args.shares.split(",")).items():
            if name in res["views"].get(view, {}):
                continue
            row = evaluate(args, view, run_arm(args, view, name, share, data["bundle"]), data)
            trained = {} if share == SHIPPED else {"precision": PRECISION}
            res["views"].setdefault(view, {})[name] = {**row, "cpu": cpu_description(), **trained}
            write_results(res)
            print(view, name, res["views"][view][name], flush=True)


if __name__ == "__main__":
    main()
