"""What the recipe study's per-view gains give the 500-d multi-view feature, on val.

    python benchmarks/recipe_multiview.py --root ../shared/data/celeba-mini

Reads benchmarks/results/recipe_study.json and the study's runs; for each view takes the arm with
the best val accuracy (the shipped view where no arm beat it, or where the study has not reached
the view yet) and fits the 40 linear heads on the five views' concatenated latent means (train,
C on val), beside the same for the five shipped views: the protocol of the shipped report. Val
only; nothing is shipped. Writes benchmarks/results/recipe_multiview.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceattr.atomic import write_text
from faceattr.cache import cache_dir
from faceattr.data.celeba import CelebA
from faceattr.device import cpu_description
from faceattr.inference.bundle import Bundle
from faceattr.inference.encoder import MultiViewEncoder
from faceattr.inference.heads import fit_linear_heads
from faceattr.nn import checkpoint as ckpt
from faceattr.nn.taps import LAYER_NAMES

OUT = Path(__file__).resolve().parent / "results"


def chosen_arms(study: dict) -> dict[str, str]:
    """Per view, the arm of best val accuracy in the study ("shipped" for views it has not run)."""
    out = {}
    for view in LAYER_NAMES:
        rows = study.get("views", {}).get(view, {})
        out[view] = max(rows, key=lambda a: rows[a]["val_accuracy"]) if rows else "shipped"
        out[view] = rows.get(out[view], {}).get("same_as", out[view])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="../shared/data/celeba-mini")
    ap.add_argument("--runs", default=str(cache_dir() / "recipe_study"))
    args = ap.parse_args()
    study = json.loads((OUT / "recipe_study.json").read_text())
    arms = chosen_arms(study)
    bundle = Bundle.load()
    crops, labels = {}, {}
    for s in ("train", "val"):
        ds = CelebA.load(args.root, s)
        crops[s], labels[s] = ds.crops(), ds.labels

    def val_accuracy(vaes: dict) -> tuple[float, list[float]]:
        enc = MultiViewEncoder(vaes)
        feats = {s: enc.encode(c) for s, c in crops.items()}
        heads = fit_linear_heads(feats["train"], labels["train"], feats["val"], labels["val"])
        return float(heads["val_accuracy"].mean()), heads["val_accuracy"].tolist()

    shipped = {v: bundle.load_vae(v) for v in LAYER_NAMES}
    chosen = {v: shipped[v] if arms[v] == "shipped" else ckpt.load_view(Path(args.runs) / v / arms[v] / "view.pt")
              for v in LAYER_NAMES}
    acc_shipped, per_attr_shipped = val_accuracy(shipped)
    acc_chosen, per_attr_chosen = val_accuracy(chosen)
    res = {"machine": cpu_description(), "arms": arms, "updates_per_arm": study.get("updates"),
           "val_accuracy": {"shipped": acc_shipped, "chosen": acc_chosen},
           "per_attribute": {"shipped": per_attr_shipped, "chosen": per_attr_chosen},
           "view_val_accuracy": {v: study.get("views", {}).get(v, {}).get(a, {}).get("val_accuracy")
                                 for v, a in arms.items()}}
    write_text(OUT / "recipe_multiview.json", json.dumps(res, indent=1))
    md = [f"`python benchmarks/recipe_multiview.py` on {cpu_description()}: val mean accuracy of the 40 "
          "linear heads on the 500-d multi-view feature (fitted on train, C on val), with each view's "
          f"best recipe-study arm ({study.get('updates')} extra updates) against the five shipped views.", "",
          "| features | " + " | ".join(LAYER_NAMES) + " | multi-view val |",
          "|---|" + "---|" * (len(LAYER_NAMES) + 1),
          "| shipped views | " + " | ".join("shipped" for _ in LAYER_NAMES) + f" | {100 * acc_shipped:.2f}% |",
          "| each view's best arm | " + " | ".join(arms[v] for v in LAYER_NAMES) + f" | {100 * acc_chosen:.2f}% |"]
    write_text(OUT / "recipe_multiview.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
