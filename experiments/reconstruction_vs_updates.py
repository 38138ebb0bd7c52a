"""How much a view's reconstructions resemble their inputs, for views trained for different numbers
of updates: numbers for the question "after how much training do reconstructions look like the face
they came from?" (the shortest run measured is 62 updates).

    python -m experiments.reconstruction_vs_updates LABEL=VIEW.pt [LABEL=VIEW.pt ...] \
        --root CELEBA_MINI --name relu3_1

Each view encodes the first ``-n`` faces of the val split (never trained on) and decodes the latent
mean. Reported per view, in the loss network's own terms and in pixels:
- ``rec``: the view's weighted feature reconstruction term (100/C^2) L_l against its own input,
  beside ``rec_other`` (the same reconstructions against another face of the set) and
  ``rec_average_face`` (the set's average face offered as every reconstruction: an output that
  carries nothing of its input);
- ``identified``: the share of reconstructions whose nearest input, by that feature distance among
  all ``n`` inputs, is their own input (chance: 1/n), and the same in pixels;
- ``pixel_mse`` against the input.
Writes ``experiments/results/reconstruction_vs_updates_{name}.json/.md`` and a PNG: 8 inputs on the
top row, then one row of reconstructions per view in the order given.
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import torch

from faceattr.nn import checkpoint as ckpt
from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.grid import save_grid
from faceattr.nn.losses import feature_loss, layer_weight
from faceattr.nn.models import to_float_images
from faceattr.nn.vgg import load_loss_network

OUT = Path(__file__).resolve().parent / "results"


def pairwise_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, d), (n, d) -> (n, n) squared distances; row i: reconstruction i against every input."""
    return (a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)).clamp_min(0)


@torch.inference_mode()
def measure(vae, x: torch.Tensor, loss_net, layers) -> tuple[dict, torch.Tensor]:
    mean, _ = vae.encoder(x)
    x_hat = vae.decoder(mean)  # (n, 3, 64, 64)
    f_x, f_hat = loss_net(x, layers), loss_net(x_hat, layers)
    f_avg = loss_net(x.mean(0, keepdim=True), layers)
    f_other = {l: f.roll(1, 0) for l, f in f_x.items()}

    def rec(target, output=f_hat):
        return sum(layer_weight(l) * feature_loss(target[l], output[l]).item() for l in layers)

    # Squared distance with each layer weighted as in eq. 6, per pair of faces.
    d = sum(layer_weight(l) * pairwise_sq(f_hat[l].flatten(1).float(), f_x[l].flatten(1).float()) for l in layers)
    d_pix = pairwise_sq(x_hat.flatten(1), x.flatten(1))
    own = torch.arange(len(x))
    return {
        "rec": rec(f_x), "rec_other": rec(f_other),
        "rec_average_face": rec(f_x, {l: f.expand_as(f_x[l]) for l, f in f_avg.items()}),
        "identified": float((d.argmin(1) == own).float().mean()),
        "identified_pixels": float((d_pix.argmin(1) == own).float().mean()),
        "pixel_mse": float((x_hat - x).pow(2).mean()),
    }, x_hat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("views", nargs="+", help="LABEL=path/to/view.pt (a view file or a training checkpoint)")
    add_root_argument(ap)
    ap.add_argument("-n", type=int, default=256, help="val faces")
    ap.add_argument("--name", default="relu3_1", help="suffix of the output files")
    args = ap.parse_args()
    ds = CelebA.load(args.root, "val", max_images=args.n)
    x = to_float_images(torch.from_numpy(ds.crops(progress=False).copy()))
    loss_net = load_loss_network().eval()
    rows, recons = {}, []
    for spec in args.views:
        label, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"{spec!r}: expected LABEL=path/to/view.pt")
        obj = ckpt.load(path)
        vae = ckpt.view_from(obj)
        meta = obj.get("meta", {})
        row, x_hat = measure(vae, x, loss_net, vae.cfg.layers)
        row.update(layers=list(vae.cfg.layers), steps=meta.get("steps", obj.get("step")),
                   epochs=meta.get("epochs", obj.get("epoch")))
        rows[label] = row
        recons.append(x_hat[:8])
        print(label, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    stem = f"reconstruction_vs_updates_{args.name}"
    result = {"split": "val", "n": len(x), "chance_identified": 1 / len(x), "views": rows}
    write_text(OUT / f"{stem}.json", json.dumps(result, indent=1))
    save_grid(OUT / f"{stem}.png", [x[:8]] + recons, per_row=8)
    md = [f"`python -m experiments.reconstruction_vs_updates {shlex.join(args.views)} --name {args.name}`: "
          f"{len(x)} val faces (never trained on); {stem}.png shows 8 inputs, then one row per view.",
          "", "| view | updates | rec (own input) | rec (another face) | rec (average face) | identified, features | "
          "identified, pixels | pixel MSE |", "|---|---|---|---|---|---|---|---|"]
    md += [f"| {k} | {r['steps']} | {r['rec']:.1f} | {r['rec_other']:.1f} | {r['rec_average_face']:.1f} | "
           f"{100 * r['identified']:.1f}% | {100 * r['identified_pixels']:.1f}% | {r['pixel_mse']:.4f} |"
           for k, r in rows.items()]
    md.append(f"\nChance for 'identified' (the nearest of the {len(x)} inputs is the face's own): "
              f"{100 / len(x):.2f}%.")
    write_text(OUT / f"{stem}.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
