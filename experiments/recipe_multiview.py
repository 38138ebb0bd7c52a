"""What the recipe study's per-view gains give the 500-d multi-view feature, on val.

    python -m experiments.recipe_multiview --root CELEBA_MINI

Reads experiments/results/recipe_study.json and the study's runs; for each view takes the arm with
the best val accuracy (the base view where no arm beat it, or where the study has not reached
the view yet) and fits the 40 linear heads on the five views' concatenated latent means (train,
C on val), beside the same for the five base views (``--base``, as for the study): the protocol
of the shipped report. Val only. Writes experiments/results/recipe_multiview.json and .md with the CPU named.

``--write-views DIR`` also writes the chosen views as a bundle's view files (float16, as shipped,
with the fine-tune's record in their meta) for ``tools/build_pretrained.py --views-from DIR``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceattr.atomic import write_text
from faceattr.cache import cache_dir
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import cpu_description
from faceattr.inference.bundle import Bundle, BundleError
from tools.view_files import write_view_set
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


def write_views(arms: dict, runs: Path, bundle: Bundle, study: dict, out: Path, crops) -> None:
    """The chosen views as a bundle's ``view_<layer>.pt`` files. A fine-tuned view keeps the record
    of the view it started from, and its totals (steps, epochs) count both trainings."""
    fine_tuned = {v: (runs / v / arm / "view.pt",
                      {"recipe_study_arm": arm, "device": cpu_description(),
                       "seconds": study["views"][v][arm].get("train_seconds_this_call")})
                  for v, arm in arms.items() if arm != "shipped"}
    try:
        metas = write_view_set(bundle, out, fine_tuned, crops[:1024])
    except BundleError as e:
        raise SystemExit(str(e)) from None
    for v, new in metas.items():
        print(f"{out / f'view_{v}.pt'}: {arms[v]} ({new['steps']} steps), float16 moves latents by <= "
              f"{new['float16_storage_max_latent_change']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--runs", default=str(cache_dir() / "recipe_study"))
    ap.add_argument("--base", default=None,
                    help="the bundle the study started from (recipe_study.py --base; default: the installed one)")
    ap.add_argument("--arms", nargs="+", default=None, metavar="VIEW=ARM",
                    help="override the choice for some views, e.g. relu4_1=rec4 (default: best val per view)")
    ap.add_argument("--write-views", default=None, metavar="DIR",
                    help="also write the chosen views as bundle view files into DIR")
    args = ap.parse_args()
    study = json.loads((OUT / "recipe_study.json").read_text())
    arms = chosen_arms(study)
    for pair in args.arms or []:
        view, _, arm = pair.partition("=")
        if view not in arms or not (arm == "shipped" or arm in study.get("views", {}).get(view, {})):
            raise SystemExit(f"--arms {pair}: expected VIEW=ARM with an arm the study has run for that view")
        arms[view] = study["views"][view].get(arm, {}).get("same_as", arm) if arm != "shipped" else arm
    bundle = Bundle.load(args.base)
    for v, rows in study.get("views", {}).items():
        sha = rows.get("shipped", {}).get("sha256")
        if sha and sha != bundle.view_entry(v)["sha256"]:
            raise SystemExit(f"{v}: the study started from view sha256 {sha[:12]}, {bundle.root} holds "
                             f"{bundle.view_entry(v)['sha256'][:12]}; pass the study's base bundle as --base")
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
    command = " ".join(["python -m experiments.recipe_multiview"] + [a.replace(str(Path.home()), "~")
                                                                  for a in sys.argv[1:]])
    md = [f"`{command}` on {cpu_description()}: val mean accuracy of the 40 "
          "linear heads on the 500-d multi-view feature (fitted on train, C on val), with each view's "
          f"best recipe-study arm ({study.get('updates')} extra updates) against the five views the study "
          "started from.", "",
          "| features | " + " | ".join(LAYER_NAMES) + " | multi-view val |",
          "|---|" + "---|" * (len(LAYER_NAMES) + 1),
          "| the study's base views | " + " | ".join("shipped" for _ in LAYER_NAMES)
          + f" | {100 * acc_shipped:.2f}% |",
          ("| each view's best arm | " if not args.arms else "| chosen arms | ")
          + " | ".join(arms[v] for v in LAYER_NAMES) + f" | {100 * acc_chosen:.2f}% |"]
    write_text(OUT / "recipe_multiview.md", "\n".join(md) + "\n")
    print("\n".join(md))
    if args.write_views:
        write_views(arms, Path(args.runs), bundle, study, Path(args.write_views), crops["val"])


if __name__ == "__main__":
    main()
