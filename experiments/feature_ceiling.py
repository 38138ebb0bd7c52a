"""What the shipped encoders know, read without any training: the multi-view feature (the five
views' 100-d latent means) against wider readings of the same five encoders, each with the
shipped protocol (40 linear SVMs on standardised features, fitted on train, C per attribute
chosen on val). It tells whether the gap to a frozen VGG19 is in the 500-d bottleneck (the
hidden layers would close it) or in the encoders themselves (they would not).

    python -m experiments.feature_ceiling --root CELEBA_MINI

Readings: the latent means with the shipped C grid and with a 7-value grid from 1e-4; means and
log-variances together (1,000-d); and all five views' pre-latent activations (5 x 4,096)
reduced by PCA to 500 (the latents' width) and to 1,000 (the vgg19 baseline's width). Choose
by val; test is reported beside it. Writes experiments/results/feature_ceiling.json and .md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from faceattr.atomic import write_text
from faceattr.benchmark import pca_then
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.inference.bundle import Bundle
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.inference.heads import DEFAULT_CS, decision_scores, fit_linear_heads

OUT = Path(__file__).resolve().parent / "results"
SPLITS = ("train", "val", "test")
WIDE_CS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def encoder_readings(bundle: Bundle, crops: dict) -> dict[str, dict[str, np.ndarray]]:
    """{split: {"mean": (N, 500), "logvar": (N, 500), "hidden": (N, 5 * 4096)}} of the bundle's views."""
    out = {s: {"mean": [], "logvar": [], "hidden": []} for s in crops}
    for v in bundle.views:
        vae = bundle.load_vae(v)
        enc = MultiViewEncoder({v: vae}, device="cpu")
        for s, c in crops.items():
            h = enc.hidden(c)[v]
            with torch.inference_mode():  # the latent heads in float32, as the shipped encoder does
                ht = torch.from_numpy(h)
                out[s]["mean"].append(vae.encoder.mean(ht).numpy())
                out[s]["logvar"].append(vae.encoder.logvar(ht).numpy())
            out[s]["hidden"].append(h)
    return {s: {k: np.concatenate(v, axis=1) for k, v in d.items()} for s, d in out.items()}


def score(x: dict, y: dict, cs=DEFAULT_CS) -> dict:
    heads = fit_linear_heads(x["train"], y["train"], x["val"], y["val"], cs=cs)
    test = float(((decision_scores(heads, x["test"]) > 0) == y["test"]).mean())
    return {"dims": int(x["train"].shape[1]), "val": float(heads["val_accuracy"].mean()), "test": test}


def readings(bundle: Bundle, crops: dict, y: dict, pca_dims=(500, 1000)) -> dict[str, dict]:
    r = encoder_readings(bundle, crops)
    rows = {
        "latent means (the shipped feature)": score({s: r[s]["mean"] for s in SPLITS}, y),
        "latent means, C from 1e-4 (7 values)": score({s: r[s]["mean"] for s in SPLITS}, y, WIDE_CS),
        "latent means and log-variances": score(
            {s: np.concatenate([r[s]["mean"], r[s]["logvar"]], axis=1) for s in SPLITS}, y),
    }
    hidden = [r[s]["hidden"] for s in SPLITS]
    del r
    for dim in pca_dims:
        z = dict(zip(SPLITS, pca_then(hidden[0], hidden[1:], dim)))
        rows[f"all views' pre-latent activations, PCA to {dim}"] = score(z, y)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--weights", default="pretrained", help="bundle folder (default: the shipped one)")
    ap.add_argument("--max-images", type=int, default=None,
                    help="first N faces of each split, for a quick look (give it its own --name)")
    ap.add_argument("--name", default="feature_ceiling", help="stem of the results files")
    args = ap.parse_args()
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise SystemExit(f"--name {args.name!r}: expected a plain file stem")
    bundle = Bundle.load(args.weights)
    data = {s: CelebA.load(args.root, s, max_images=args.max_images) for s in SPLITS}
    crops = {s: d.crops() for s, d in data.items()}
    y = {s: np.asarray(d.labels) for s, d in data.items()}
    rows = readings(bundle, crops, y)
    result = {"weights_sha256": bundle.sha256, "n_images": {s: len(d) for s, d in data.items()}, "rows": rows}
    write_text(OUT / f"{args.name}.json", json.dumps(result, indent=1))
    md = [f"`python -m experiments.feature_ceiling`: the shipped bundle (sha256 {bundle.sha256[:12]}) read "
          "five ways, each with 40 linear SVMs fitted on train, C per attribute chosen on val; mean accuracy "
          "over the 40 attributes.", "",
          "| reading of the five encoders | dims | val | test |", "|---|---|---|---|"]
    md += [f"| {k} | {r['dims']:,} | {100 * r['val']:.2f}% | {100 * r['test']:.2f}% |" for k, r in rows.items()]
    write_text(OUT / f"{args.name}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
