"""Build pretrained/: verify the five view files, fit the 40 heads on the 500-d multi-view features
(train split, C on val, Platt calibration on val), compute the attribute vectors, write
manifest.json, and report test accuracies beside the paper's Table 1.

    python benchmarks/build_pretrained.py --root ../shared/data/celeba-mini

The views themselves come from benchmarks/train_views_gpu.py (or ``faceattr train`` per layer).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceattr.atomic import atomic_path, write_text
from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.benchmark import (FeatureCache, accuracy_report, apply_heads, majority_scores, pixel_features,
                                view_slices, paper_table, PAPER_ROW)
from faceattr.data.celeba import CelebA
from faceattr.nn.checkpoint import load
from faceattr.nn.config import LAYER_NAMES
from faceattr.generate import attribute_vectors
from faceattr.inference.heads import fit_linear_heads
from faceattr.inference.bundle import BUNDLE_FORMAT, MANIFEST, PREPROCESSING, Bundle, sha256_file

REPO = Path(__file__).resolve().parents[1]
DATA_NOTE = ("celeba-mini train split (13,603 real CelebA aligned faces, identity-disjoint from val/test), "
             "64x64 crops of box (30, 40, 168, 178); for the GPU run the crops travelled as JPEG quality 92 "
             "(PSNR 40.1 dB against the exact crops)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/celeba-mini")
    ap.add_argument("--bundle", default=str(REPO / "pretrained"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    bundle_dir, results_dir = Path(args.bundle), Path(args.results)
    gpu = json.loads((REPO / "benchmarks/results/training/gpu_summary.json").read_text())

    views = {}
    for v in LAYER_NAMES:
        f = bundle_dir / f"view_{v}.pt"
        obj = load(f)
        meta = obj.get("meta", {})
        tc = meta.get("train_config", {})
        final = {k: round(meta.get("final", {}).get(k, float("nan")), 4)
                 for k in ("kl", "rec", "rec_scaled", "gan", "critic", "wasserstein")}
        views[v] = {"file": f.name, "sha256": sha256_file(f), "model_config": obj["model_config"],
                    "train_config": tc, "data": DATA_NOTE, "epochs": meta.get("epochs"),
                    "steps": meta.get("steps"), "final_losses": final, "latent": meta.get("latent"),
                    "storage": "float16", "training_device": gpu["device"],
                    "training_seconds": gpu["views"][v]["seconds"],
                    "float16_storage_max_latent_change": gpu["views"][v]["fp16_drift"]["max_abs_diff"]}
    manifest = {"format": BUNDLE_FORMAT, "preprocessing": PREPROCESSING, "views": views,
                "licence": "CelebA: non-commercial research only; see MODEL_CARD.md"}
    write_text(bundle_dir / MANIFEST, json.dumps(manifest, indent=1))

    bundle = Bundle.load(bundle_dir)
    splits = {s: CelebA.load(args.root, s) for s in ("train", "val", "test")}
    cache = FeatureCache(bundle)
    feats = {s: cache.features(ds, progress=True) for s, ds in splits.items()}
    y = {s: ds.labels for s, ds in splits.items()}

    heads = fit_linear_heads(feats["train"], y["train"], feats["val"], y["val"])
    with atomic_path(bundle_dir / "heads.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **heads)
    report = {"multi_view": accuracy_report(apply_heads(heads, feats["test"]), y["test"]),
              "multi_view_val": accuracy_report(apply_heads(heads, feats["val"]), y["val"]),
              "majority": accuracy_report(majority_scores(y["train"], len(y["test"])), y["test"]),
              "views": {}, "views_val": {}}
    pix = {s: pixel_features(ds.crops()) for s, ds in splits.items()}
    hp = fit_linear_heads(pix["train"], y["train"], pix["val"], y["val"])
    report["pixels_32x32"] = accuracy_report(apply_heads(hp, pix["test"]), y["test"])
    report["pixels_32x32_val"] = accuracy_report(apply_heads(hp, pix["val"]), y["val"])
    for v, sl in view_slices(bundle, bundle.views).items():
        hv = fit_linear_heads(feats["train"][:, sl], y["train"], feats["val"][:, sl], y["val"])
        report["views"][v] = accuracy_report(apply_heads(hv, feats["test"][:, sl]), y["test"])
        report["views_val"][v] = accuracy_report(apply_heads(hv, feats["val"][:, sl]), y["val"])
        views[v]["val_accuracy_single_view"] = round(report["views_val"][v]["mean_accuracy"], 4)
        views[v]["beats_pixels_on_val"] = bool(report["views_val"][v]["mean_accuracy"]
                                              > report["pixels_32x32_val"]["mean_accuracy"])
        views[v]["test_accuracy_single_view"] = round(report["views"][v]["mean_accuracy"], 4)

    av = attribute_vectors(feats["train"], y["train"], view_slices(bundle, bundle.views))
    with atomic_path(bundle_dir / "attribute_vectors.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **av)

    manifest["heads"] = {"file": "heads.npz", "sha256": sha256_file(bundle_dir / "heads.npz"),
                         "views": bundle.views, "kind": "40 linear SVMs (squared hinge, L2), C per attribute "
                         "from {0.001, 0.01, 0.1} by val accuracy, Platt-calibrated on val",
                         "data": "celeba-mini train (fit), val (C and calibration)",
                         "test_mean_accuracy": round(report["multi_view"]["mean_accuracy"], 4),
                         "val_mean_accuracy": round(report["multi_view_val"]["mean_accuracy"], 4),
                         "test_per_attribute": {a: round(report["multi_view"]["per_attribute"][a], 4)
                                                for a in ATTRIBUTE_NAMES}}
    manifest["attribute_vectors"] = {"file": "attribute_vectors.npz",
                                     "sha256": sha256_file(bundle_dir / "attribute_vectors.npz"),
                                     "data": "celeba-mini train: mean latent of up to 2,000 positive faces "
                                             "minus that of up to 2,000 negative faces, per attribute and view"}
    manifest["metrics"] = {"test_split": "celeba-mini test (1,699 faces)",
                           "multi_view_mean_accuracy": round(report["multi_view"]["mean_accuracy"], 4),
                           "majority_mean_accuracy": round(report["majority"]["mean_accuracy"], 4),
                           "pixels_32x32_mean_accuracy": round(report["pixels_32x32"]["mean_accuracy"], 4),
                           "paper_vae_wgan_mean_accuracy": paper_table()[PAPER_ROW]["Average"] / 100}
    write_text(bundle_dir / MANIFEST, json.dumps(manifest, indent=1))
    write_text(results_dir / "pretrained_report.json", json.dumps(report, indent=1))
    write_text(results_dir / "pretrained_report.md", report_markdown(report))
    print(report_markdown(report))


def report_markdown(report: dict) -> str:
    paper = paper_table()[PAPER_ROW]
    rows = [("multi-view (5 x 100-d)", report["multi_view"])]
    rows += [(f"single view {v}", r) for v, r in report["views"].items()]
    rows += [("raw pixels 32x32, linear SVM", report["pixels_32x32"]), ("majority class", report["majority"])]
    lines = ["Test split of celeba-mini (1,699 faces), accuracy in %; the paper's row is on the official "
             "CelebA test split (19,962 faces) with 12x our training data.", "",
             "| attribute | " + " | ".join(n for n, _ in rows) + " | paper VAE-WGAN |",
             "|---" * (len(rows) + 2) + "|"]
    for a in ATTRIBUTE_NAMES:
        lines.append(f"| {a} | " + " | ".join(f"{100 * r['per_attribute'][a]:.1f}" for _, r in rows)
                     + f" | {paper[a]:.0f} |")
    lines.append("| **mean** | " + " | ".join(f"**{100 * r['mean_accuracy']:.2f}**" for _, r in rows)
                 + f" | **{paper['Average']:.2f}** |")
    lines.append("| mean balanced accuracy | " + " | ".join(f"{100 * r['mean_balanced_accuracy']:.2f}" for _, r in rows)
                 + " | - |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
