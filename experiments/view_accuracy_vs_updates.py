"""Single-view and multi-view val accuracy for sets of views trained for different numbers of
updates, beside raw pixels: does longer training move each view towards docs/method.md's bar (a shipped
view must beat raw pixels on val)?

    python -m experiments.view_accuracy_vs_updates LABEL=DIR [LABEL=DIR ...] --root CELEBA_MINI

Each DIR holds view_relu1_1.pt ... view_relu5_1.pt (``pretrained/``, or the ``--out`` of
``tools/train_views_gpu.py``). The protocol is the shipped report's: latent means from the
library's encoder, 40 linear SVMs on standardised features fitted on train with C chosen per
attribute on val (``faceattr.inference.heads.fit_linear_heads``); raw pixels are 2x2 block means to 32x32.
Writes experiments/results/view_accuracy_vs_updates.json and .md (``--name`` another stem, for a
comparison that should not replace that table).
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from faceattr.nn import checkpoint as ckpt
from faceattr.atomic import write_text
from faceattr.benchmark import pca_then, pixel_features
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.nn.config import ModelConfig
from faceattr.nn.taps import LAYER_NAMES
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.inference.heads import fit_linear_heads

OUT = Path(__file__).resolve().parent / "results"
VIEW_WIDTH = ModelConfig().latent_dim  # the paper's latent width, every shipped view's


def val_accuracy(x: dict, y: dict) -> float:
    return float(fit_linear_heads(x["train"], y["train"], x["val"], y["val"])["val_accuracy"].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="LABEL=DIR with the five view files")
    add_root_argument(ap)
    ap.add_argument("--name", default="view_accuracy_vs_updates", help="stem of the results files")
    ap.add_argument("--views", default=",".join(LAYER_NAMES),
                    help="comma-separated views to score alone (default all; the multi-view is always scored)")
    args = ap.parse_args()
    alone = [v for v in args.views.split(",") if v]
    if not alone or set(alone) - set(LAYER_NAMES):
        raise SystemExit(f"--views {args.views!r}: expected some of {', '.join(LAYER_NAMES)}")
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise SystemExit(f"--name {args.name!r}: expected a plain file stem")
    splits = {s: CelebA.load(args.root, s) for s in ("train", "val")}
    crops = {s: ds.crops() for s, ds in splits.items()}
    y = {s: ds.labels for s, ds in splits.items()}
    px = {s: pixel_features(c) for s, c in crops.items()}
    pixels = val_accuracy(px, y)
    # The bar compares a 100-d view with 3,072 pixel values; pixels at a view's width say how much
    # of that bar is width rather than what the view learned.
    pixels_narrow = val_accuracy(dict(zip(px, pca_then(px["train"], [px["val"]], VIEW_WIDTH))), y)
    print("pixels", round(pixels, 4), f"pixels PCA {VIEW_WIDTH}", round(pixels_narrow, 4), flush=True)
    rows = {}
    for spec in args.sets:
        label, _, folder = spec.partition("=")
        if not folder:
            raise SystemExit(f"{spec!r}: expected LABEL=DIR")
        files = {v: Path(folder) / f"view_{v}.pt" for v in LAYER_NAMES}
        objs = {v: ckpt.load(f) for v, f in files.items()}
        vaes = {v: ckpt.view_from(o) for v, o in objs.items()}
        steps = {v: o.get("meta", {}).get("steps") for v, o in objs.items()}
        enc = MultiViewEncoder(vaes, device="cpu")
        feats = {s: enc.encode(c) for s, c in crops.items()}
        d = vaes[LAYER_NAMES[0]].cfg.latent_dim
        single = {v: val_accuracy({s: f[:, i * d:(i + 1) * d] for s, f in feats.items()}, y)
                  for i, v in enumerate(LAYER_NAMES) if v in alone}
        rows[label] = {"steps": steps, "views": single, "multi_view": val_accuracy(feats, y)}
        print(label, json.dumps(rows[label]), flush=True)
    result = {"split": "val", "pixels_32x32": pixels, f"pixels_32x32_pca{VIEW_WIDTH}": pixels_narrow, "sets": rows}
    write_text(OUT / f"{args.name}.json", json.dumps(result, indent=1))
    name = "" if args.name == "view_accuracy_vs_updates" else f" --name {args.name}"
    if alone != list(LAYER_NAMES):
        name += f" --views {','.join(alone)}"
    sets = shlex.join(args.sets).replace(str(Path.home()), "~")
    md = [f"`python -m experiments.view_accuracy_vs_updates {sets}{name}`: mean val accuracy "
          "over the 40 attributes (C chosen on val, as in the shipped report).", "",
          "| views | updates per view | " + " | ".join(LAYER_NAMES) + " | multi-view |",
          "|---|---|" + "---|" * (len(LAYER_NAMES) + 1)]
    for label, r in rows.items():
        steps = sorted({s for s in r["steps"].values() if s is not None})
        md.append(f"| {label} | {', '.join(map(str, steps))} | "
                  + " | ".join(f"{100 * r['views'][v]:.2f}%" if v in r["views"] else "" for v in LAYER_NAMES)
                  + f" | {100 * r['multi_view']:.2f}% |")
    md.append("| raw pixels 32x32 | | " + " | ".join(f"{100 * pixels:.2f}%" for _ in LAYER_NAMES) + " | |")
    md.append(f"| raw pixels 32x32, PCA to {VIEW_WIDTH} (a view's width) | | "
              + " | ".join(f"{100 * pixels_narrow:.2f}%" for _ in LAYER_NAMES) + " | |")
    write_text(OUT / f"{args.name}.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
