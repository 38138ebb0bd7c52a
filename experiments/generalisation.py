"""Do the shipped views know their training faces better than faces they never saw? Per view, its
own VGG19-layer reconstruction error of the latent mean and its KL per face, on train and on val
faces of celeba-mini, and the val / train ratio (faceattr.nn.generalisation):

    python -m experiments.generalisation --root CELEBA_MINI [--faces 512] [--weights DIR]

Writes experiments/results/generalisation.json and .md with the CPU named. The same measure is
printed at each epoch's end by `faceattr train`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA
from faceattr.device import cpu_description
from faceattr.inference.bundle import Bundle
from faceattr.nn.generalisation import generalisation
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--faces", type=int, default=512)
    ap.add_argument("--weights", default="pretrained")
    ap.add_argument("--name", default="generalisation", help="results file name (without extension)")
    args = ap.parse_args()
    bundle, net = Bundle.load(args.weights), load_loss_network()
    train = CelebA.load(args.root, "train", max_images=args.faces).crops(progress=False)
    val = CelebA.load(args.root, "val", max_images=args.faces).crops(progress=False)
    rows = {v: generalisation(bundle.load_vae(v), net, train, val) for v in bundle.views}
    res = {"cpu": cpu_description(), "weights_sha256": bundle.sha256, "faces": args.faces, "views": rows}
    write_text(OUT / f"{args.name}.json", json.dumps(res, indent=1))
    md = [f"`python -m experiments.generalisation --root CELEBA_MINI --faces {args.faces}` (bundle "
          f"{bundle.sha256[:12]}): each view's reconstruction error of the latent mean (its own VGG19 "
          f"layer, eq. 6 unscaled) and KL per face, on {args.faces} celeba-mini train and {args.faces} val faces.",
          "", "| view | train error | val error | val / train | KL train | KL val |", "|---|---|---|---|---|---|"]
    md += [f"| {v} | {r['train_rec']:.4g} | {r['held_out_rec']:.4g} | {r['rec_ratio']:.3f} | {r['train_kl']:.1f} | "
           f"{r['held_out_kl']:.1f} |" for v, r in rows.items()]
    write_text(OUT / f"{args.name}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
