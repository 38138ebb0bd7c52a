"""Build a weights bundle: record the five view files in the manifest, fit the 40 heads on the
500-d multi-view features (train split, C on val, Platt calibration on val), compute the attribute
vectors, and report val and test accuracies beside the paper's Table 1.

    python -m tools.build_pretrained --root CELEBA_MINI [--views-from DIR]

``--views-from DIR`` first copies DIR/view_relu*_1.pt into the bundle (e.g. the recipe study's
fine-tuned views); without it the bundle's own view files are used. Every number comes from
``faceattr.benchmark.evaluate``, the protocol of ``faceattr benchmark celeba``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceattr.atomic import copy_file, write_text
from faceattr.benchmark import PAPER_ROW, BenchmarkConfig, evaluate, paper_table
from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.generate import compute_attribute_vectors
from faceattr.inference.bundle import BUNDLE_FORMAT, MANIFEST, PREPROCESSING, Bundle, sha256_file
from faceattr.nn.checkpoint import load
from faceattr.nn.taps import LAYER_NAMES
from faceattr.data.celeba import add_root_argument

REPO = Path(__file__).resolve().parents[1]
PIXELS = "pixels 32x32"
META_RECORDS = ("history", "reference", "final", "storage", "training_device", "training_seconds", "fine_tune",
                "fine_tuned_from", "float16_storage_max_latent_change")


def view_entries(bundle_dir: Path, old: dict) -> dict:
    views = {}
    for v in LAYER_NAMES:
        f = bundle_dir / f"view_{v}.pt"
        obj = load(f)
        meta = obj.get("meta", {})
        sha = sha256_file(f)
        kept = old.get(v, {}) if old.get(v, {}).get("sha256") == sha else {}  # same file: keep its record
        views[v] = {**kept, "file": f.name, "sha256": sha, "model_config": obj["model_config"],
                    "train_config": meta.get("train_config", kept.get("train_config", {})),
                    "epochs": meta.get("epochs", kept.get("epochs")), "steps": meta.get("steps", kept.get("steps")),
                    "latent": meta.get("latent", kept.get("latent")),
                    "data": meta.get("data") or kept.get("data", "celeba-mini train split")}
        for k in META_RECORDS:  # a new file's own account of how it was made
            if k in meta:
                views[v][k] = meta[k]
    return views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--bundle", default=str(REPO / "pretrained"))
    ap.add_argument("--views-from", default=None, help="copy view_relu*_1.pt from this folder first")
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    bundle_dir, results_dir = Path(args.bundle), Path(args.results)
    if args.views_from:
        for v in LAYER_NAMES:
            copy_file(Path(args.views_from) / f"view_{v}.pt", bundle_dir / f"view_{v}.pt")
    old = json.loads((bundle_dir / MANIFEST).read_text()) if (bundle_dir / MANIFEST).is_file() else {}
    bundle = Bundle(bundle_dir, {**old, "format": BUNDLE_FORMAT, "preprocessing": PREPROCESSING,
                                 "views": view_entries(bundle_dir, old.get("views", {})),
                                 "licence": "CelebA: non-commercial research only; see MODEL_CARD.md"})
    bundle.save_manifest()

    res, heads = evaluate(args.root, ("val", "test"),
                          BenchmarkConfig("fit", baselines=("majority", "pixels", "views"), weights=bundle_dir))
    val, test = res["val"], res["test"]
    for v in LAYER_NAMES:
        e = bundle.manifest["views"][v]
        e["val_accuracy_single_view"] = round(val["baselines"][f"view {v}"]["mean_accuracy"], 4)
        e["test_accuracy_single_view"] = round(test["baselines"][f"view {v}"]["mean_accuracy"], 4)
        e["beats_pixels_on_val"] = bool(val["baselines"][f"view {v}"]["mean_accuracy"]
                                        > val["baselines"][PIXELS]["mean_accuracy"])
    bundle.manifest["metrics"] = {
        "test_split": f"celeba-mini test ({test['n_images']:,} faces)",
        "multi_view_mean_accuracy": round(test["mean_accuracy"], 4),
        "multi_view_val_mean_accuracy": round(val["mean_accuracy"], 4),
        "majority_mean_accuracy": round(test["baselines"]["majority"]["mean_accuracy"], 4),
        "pixels_32x32_mean_accuracy": round(test["baselines"][PIXELS]["mean_accuracy"], 4),
        "pixels_32x32_val_mean_accuracy": round(val["baselines"][PIXELS]["mean_accuracy"], 4),
        "paper_vae_wgan_mean_accuracy": paper_table()[PAPER_ROW]["Average"] / 100}
    bundle.put_arrays(
        "heads", heads, views=bundle.views,
        kind="40 linear SVMs (squared hinge, L2), C per attribute from {0.001, 0.01, 0.1} by val accuracy, "
             "Platt-calibrated on val",
        data="celeba-mini train (fit), val (C and calibration)",
        test_mean_accuracy=round(test["mean_accuracy"], 4), val_mean_accuracy=round(val["mean_accuracy"], 4),
        test_per_attribute={a: round(test["per_attribute"][a], 4) for a in ATTRIBUTE_NAMES})
    vectors, data = compute_attribute_vectors(bundle, args.root)
    bundle.put_arrays("attribute_vectors", vectors, data=data)  # this tool builds the shipped bundle itself
    report = {"val": val, "test": test}
    write_text(results_dir / "pretrained_report.json", json.dumps(report, indent=1))
    write_text(results_dir / "pretrained_report.md", report_markdown(report))
    print(report_markdown(report))


def report_markdown(report: dict) -> str:
    paper = paper_table()[PAPER_ROW]
    test, val = report["test"], report["val"]
    names = [("multi-view (5 x 100-d)", None)] + [(f"single view {v}", f"view {v}") for v in LAYER_NAMES] + \
        [("raw pixels 32x32, linear SVM", PIXELS), ("majority class", "majority")]

    def row(r, key):
        return r if key is None else r["baselines"][key]
    lines = [f"`python -m tools.build_pretrained`: test split of celeba-mini ({test['n_images']:,} faces), "
             "accuracy in %; the paper's row is on the official CelebA test split (19,962 faces) with 12x our "
             "training data. Every row: 40 linear SVMs fitted on train, C chosen on val.", "",
             "| attribute | " + " | ".join(n for n, _ in names) + " | paper VAE-WGAN |",
             "|---" * (len(names) + 2) + "|"]
    for a in ATTRIBUTE_NAMES:
        lines.append(f"| {a} | " + " | ".join(f"{100 * row(test, k)['per_attribute'][a]:.1f}" for _, k in names)
                     + f" | {paper[a]:.0f} |")
    lines.append("| **mean** | " + " | ".join(f"**{100 * row(test, k)['mean_accuracy']:.2f}**" for _, k in names)
                 + f" | **{paper['Average']:.2f}** |")
    lines.append("| mean balanced accuracy | " + " | ".join(f"{100 * row(test, k)['mean_balanced_accuracy']:.2f}"
                                                         for _, k in names) + " | - |")
    lines.append("| mean accuracy on val | " + " | ".join(f"{100 * row(val, k)['mean_accuracy']:.2f}"
                                                       for _, k in names) + " | - |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
