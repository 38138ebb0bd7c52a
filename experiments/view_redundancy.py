"""How much of each view's latent the other four views already carry.

    python -m experiments.view_redundancy --root CELEBA_MINI [--views DIR]

Every fine-tuning round raised the views alone far more than the multi-view feature they are
concatenated into. This measures why, with no training: per view, the share of its 100-d latent
means' variance on val that a ridge regression from the other four views' latents (fitted on
train) explains, and how many principal components hold 90% and 99% of the standardised 500-d
multi-view feature's variance. Writes experiments/results/view_redundancy.json and .md (``--name``
another stem).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceattr.atomic import write_text
from faceattr.data.celeba import add_root_argument

OUT = Path(__file__).resolve().parent / "results"


def explained_by_others(train: np.ndarray, val: np.ndarray, width: int, alpha: float = 1.0) -> list[float]:
    """Per block of ``width`` columns: R^2 on val of a ridge fit (on train) from all other columns."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler
    if train.shape[1] % width or train.shape[1] // width < 2:
        raise ValueError(f"features of width {train.shape[1]} do not split into several views of {width}")
    scaler = StandardScaler().fit(train.astype(np.float64))  # zero-variance columns keep scale 1
    xt, xv = scaler.transform(train.astype(np.float64)), scaler.transform(val.astype(np.float64))
    out = []
    for start in range(0, xt.shape[1], width):
        own = np.zeros(xt.shape[1], bool)
        own[start:start + width] = True
        fit = Ridge(alpha=alpha).fit(xt[:, ~own], xt[:, own])
        resid = ((fit.predict(xv[:, ~own]) - xv[:, own]) ** 2).sum()
        total = ((xv[:, own] - xv[:, own].mean(axis=0)) ** 2).sum()
        out.append(float(1 - resid / total))
    return out


def components_for(train: np.ndarray, shares=(0.9, 0.99)) -> dict[str, int]:
    """Principal components of the standardised features needed to hold each share of the variance."""
    from sklearn.preprocessing import StandardScaler
    xt = StandardScaler().fit_transform(train.astype(np.float64))  # centred too
    var = np.linalg.svd(xt, compute_uv=False) ** 2
    cum = np.cumsum(var) / var.sum()
    return {f"{s:g}": int(np.searchsorted(cum, s) + 1) for s in shares}


def main() -> None:
    from faceattr.data.celeba import CelebA
    from faceattr.inference.encoder import MultiViewEncoder
    from faceattr.nn import checkpoint as ckpt
    from faceattr.nn.taps import LAYER_NAMES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--views", default=str(Path(__file__).resolve().parents[1] / "pretrained"),
                    help="folder with view_relu1_1.pt ... view_relu5_1.pt (default: the shipped bundle)")
    ap.add_argument("--name", default="view_redundancy", help="stem of the results files")
    args = ap.parse_args()
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise SystemExit(f"--name {args.name!r}: expected a plain file stem")
    vaes = {v: ckpt.view_from(ckpt.load(Path(args.views) / f"view_{v}.pt")) for v in LAYER_NAMES}
    enc = MultiViewEncoder(vaes, device="cpu")
    feats = {s: enc.encode(CelebA.load(args.root, s).crops()) for s in ("train", "val")}
    width = vaes[LAYER_NAMES[0]].cfg.latent_dim
    r2 = dict(zip(LAYER_NAMES, explained_by_others(feats["train"], feats["val"], width)))
    comps = components_for(feats["train"])
    result = {"split": "val", "explained_by_other_views": r2, "components_for_variance": comps,
              "dims": int(feats["train"].shape[1])}
    write_text(OUT / f"{args.name}.json", json.dumps(result, indent=1))
    views = "" if Path(args.views).resolve() == (Path(__file__).resolve().parents[1] / "pretrained") \
        else f" --views {args.views}"
    views += "" if args.name == "view_redundancy" else f" --name {args.name}"
    md = [f"`python -m experiments.view_redundancy --root CELEBA_MINI{views}`: the share of each "
          f"view's {width}-d latent-mean variance on val that a ridge regression (alpha 1, fitted on train, "
          "standardised features) from the other four views' latents explains.", "",
          "| view | " + " | ".join(LAYER_NAMES) + " |", "|---|" + "---|" * len(LAYER_NAMES),
          "| explained by the other four | " + " | ".join(f"{r2[v]:.3f}" for v in LAYER_NAMES) + " |", "",
          f"Principal components of the standardised {result['dims']}-d multi-view feature (train) holding 90% "
          f"of its variance: {comps['0.9']}; 99%: {comps['0.99']}."]
    write_text(OUT / f"{args.name}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
