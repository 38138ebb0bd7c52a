"""``faceattr benchmark celeba``: Table 1 of the paper, reproduced on any CelebA copy."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from importlib import resources
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text
from .data.attributes import ATTRIBUTE_NAMES, N_ATTRIBUTES
from .data.celeba import CelebA
from .inference.heads import fit_linear_heads

BASELINES = ("majority", "pixels", "pca", "views")
PIXEL_SIDE = 32  # the pixels baseline downsamples the 64x64 crop to 32x32 (3,072 values) by 2x2 means
PCA_DIM = 500


def paper_table() -> dict[str, dict[str, float]]:
    """The paper's Table 1: {method: {attribute: accuracy %, ..., "Average": %}}."""
    text = resources.files("faceattr").joinpath("data/table1_celeba_attributes.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    return {r["method"]: {k: float(v) for k, v in r.items() if k != "method"} for r in rows}


PAPER_ROW = "VAE-WGAN (paper)"


def accuracy_report(scores: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and balanced accuracy per attribute from decision scores (> 0 = present)."""
    pred = scores > 0
    acc = (pred == y.astype(bool)).mean(0)
    pos, neg = y.astype(bool), ~y.astype(bool)
    tpr = np.where(pos.sum(0) > 0, (pred & pos).sum(0) / np.maximum(pos.sum(0), 1), np.nan)
    tnr = np.where(neg.sum(0) > 0, (~pred & neg).sum(0) / np.maximum(neg.sum(0), 1), np.nan)
    bal = np.nanmean(np.stack([tpr, tnr]), axis=0)
    return {"mean_accuracy": float(acc.mean()), "per_attribute": dict(zip(ATTRIBUTE_NAMES, map(float, acc))),
            "balanced_accuracy": dict(zip(ATTRIBUTE_NAMES, map(float, bal))),
            "mean_balanced_accuracy": float(np.nanmean(bal))}


def apply_heads(heads: dict, x: np.ndarray) -> np.ndarray:
    return x @ heads["weight"].T.astype(np.float64) + heads["bias"]


def majority_scores(y_train: np.ndarray, n: int) -> np.ndarray:
    sign = np.where(y_train.mean(0) >= 0.5, 1.0, -1.0)
    return np.tile(sign, (n, 1))


def pixel_features(crops: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    """(N, 64, 64, 3) uint8 -> (N, side*side*3) float32 in [0, 1], by block means."""
    f = 64 // side
    x = crops.reshape(len(crops), side, f, side, f, 3).mean(axis=(2, 4)) / 255.0
    return x.reshape(len(crops), -1).astype(np.float32)


class FeatureCache:
    """Multi-view features of a dataset, on disk keyed by the weights' sha256 and the image list."""

    def __init__(self, bundle, views=None, device=None, batch_size: int | None = None, cache_dir=None):
        self.bundle = bundle
        self.views = list(views) if views else bundle.views
        self.device, self.batch_size = device, batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._encoder = None
        self.timings: dict[str, float] = {}

    def key(self, ds: CelebA) -> str:
        # The views' own hashes, not the bundle's: refitting the heads must not invalidate features.
        views = ",".join(f"{v}:{self.bundle.view_entry(v)['sha256']}" for v in self.views)
        return hashlib.sha256(f"{views}|{ds.cache_key()}".encode()).hexdigest()[:20]

    def features(self, ds: CelebA, crops: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
        from . import cache
        return cache.cached_array(f"features-{self.key(ds)}.npy", lambda a: a.shape[0] == len(ds),
                                  lambda: self._compute(ds, crops, progress), folder=self.cache_dir)

    def _compute(self, ds: CelebA, crops: np.ndarray | None, progress: bool) -> np.ndarray:
        t = time.perf_counter()
        if crops is None:
            crops = ds.crops(progress=progress)
        self.timings["decode_s"] = self.timings.get("decode_s", 0) + time.perf_counter() - t
        if self._encoder is None:
            from .inference.encoder import MultiViewEncoder
            self._encoder = MultiViewEncoder.from_bundle(self.bundle, self.views, device=self.device,
                                                         batch_size=self.batch_size)
        t = time.perf_counter()
        out = []
        chunks = range(0, len(crops), 2048)
        if progress:
            from tqdm import tqdm
            chunks = tqdm(chunks, desc=f"extracting {ds.split}", unit="chunk")
        for s in chunks:
            out.append(self._encoder.encode(crops[s:s + 2048]))
        feats = np.concatenate(out) if out else np.zeros((0, self._encoder.n_features), np.float32)
        self.timings["extract_s"] = self.timings.get("extract_s", 0) + time.perf_counter() - t
        self.timings["extract_images"] = self.timings.get("extract_images", 0) + len(crops)
        return feats


def view_slices(bundle, views) -> dict[str, slice]:
    out, start = {}, 0
    for v in views:
        d = bundle.manifest["views"][v]["model_config"]["latent_dim"]
        out[v] = slice(start, start + d)
        start += d
    return out


def run_benchmark(root, split: str = "test", heads: str = "pretrained", views=None,
                  baselines=("majority",), max_images: int | None = None, out="benchmark-results",
                  batch_size: int | None = None, device=None, weights="pretrained", progress: bool = True) -> dict:
    """Evaluate the attribute heads (shipped, or fitted on ROOT's train split with C chosen on val)
    and the chosen baselines on ``split`` of ROOT. Writes results.json, results.md, results.csv and
    per_attribute.png to ``out`` atomically, and returns the results."""
    from .inference.bundle import Bundle
    if heads not in ("pretrained", "fit"):
        raise ValueError(f"heads must be 'pretrained' or 'fit', got {heads!r}")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    bundle = Bundle.load(weights)
    views = list(views) if views else bundle.views
    if heads == "pretrained":
        shipped_views = bundle.manifest["heads"].get("views", bundle.views)
        if views != shipped_views:
            raise ValueError(f"the shipped heads use views {shipped_views}; use --heads fit for {views}")
    # Every dataset is loaded (and its images checked to exist) before any work starts.
    eval_ds = CelebA.load(root, split, max_images=max_images)
    if heads == "fit" or baselines:
        train_ds = CelebA.load(root, "train", max_images=max_images)
        val_ds = CelebA.load(root, "val", max_images=max_images)
    cache = FeatureCache(bundle, views, device, batch_size)
    t0 = time.perf_counter()
    eval_crops = eval_ds.crops(progress=progress)
    decode_s = time.perf_counter() - t0
    x_eval = cache.features(eval_ds, eval_crops, progress)
    results: dict = {"split": split, "n_images": len(eval_ds), "root": str(eval_ds.root), "heads": heads,
                     "views": views, "weights_sha256": bundle.sha256, "baselines": {}}
    t = time.perf_counter()
    if heads == "pretrained":
        h = bundle.heads()
    else:
        h = fit_linear_heads(cache.features(train_ds, progress=progress), train_ds.labels,
                             cache.features(val_ds, progress=progress), val_ds.labels)
    scores = apply_heads(h, x_eval)
    heads_s = time.perf_counter() - t
    results.update(accuracy_report(scores, eval_ds.labels))
    if "majority" in baselines:
        results["baselines"]["majority"] = accuracy_report(majority_scores(train_ds.labels, len(eval_ds)),
                                                           eval_ds.labels)
    if "views" in baselines:
        xt, xv = cache.features(train_ds), cache.features(val_ds)
        for v, sl in view_slices(bundle, views).items():
            hv = fit_linear_heads(xt[:, sl], train_ds.labels, xv[:, sl], val_ds.labels)
            results["baselines"][f"view {v}"] = accuracy_report(apply_heads(hv, x_eval[:, sl]), eval_ds.labels)
    if "pixels" in baselines or "pca" in baselines:
        crops = [train_ds.crops(), val_ds.crops(), eval_crops]
        if "pixels" in baselines:
            pt, pv, pe = (pixel_features(c) for c in crops)
            hp = fit_linear_heads(pt, train_ds.labels, pv, val_ds.labels)
            results["baselines"][f"pixels {PIXEL_SIDE}x{PIXEL_SIDE}"] = accuracy_report(apply_heads(hp, pe), eval_ds.labels)
        if "pca" in baselines:
            from sklearn.decomposition import PCA
            full = [c.reshape(len(c), -1).astype(np.float32) / 255.0 for c in crops]
            pca = PCA(n_components=min(PCA_DIM, len(full[0]) - 1), svd_solver="randomized", random_state=0).fit(full[0])
            zt, zv, ze = (pca.transform(f) for f in full)
            hq = fit_linear_heads(zt, train_ds.labels, zv, val_ds.labels)
            results["baselines"][f"pca{pca.n_components_}"] = accuracy_report(apply_heads(hq, ze), eval_ds.labels)
    results["paper_table1"] = paper_table()
    ext = cache.timings
    results["throughput"] = {
        "decode_images_per_s": len(eval_ds) / decode_s if decode_s > 0 else None,
        "extract_images_per_s": (ext["extract_images"] / ext["extract_s"]) if ext.get("extract_s") else None,
        "heads_images_per_s": len(eval_ds) / heads_s if heads == "pretrained" and heads_s > 0 else None,
    }
    write_outputs(results, out)
    return results


def markdown_table(results: dict) -> str:
    """Our rows beside every row of the paper's Table 1, in percent."""
    paper = results["paper_table1"]
    rows = [("faceattr (ours, " + results["heads"] + " heads)", results)]
    rows += [(f"baseline: {k}", v) for k, v in results["baselines"].items()]
    head = "| method | " + " | ".join(a.replace("_", " ") for a in ATTRIBUTE_NAMES) + " | Average |"
    sep = "|---" * (N_ATTRIBUTES + 2) + "|"
    lines = [f"CelebA `{results['split']}` split, {results['n_images']} images; weights sha256 "
             f"{results['weights_sha256'][:12]}. Accuracy in %.", "", head, sep]
    for name, r in rows:
        cells = [f"{100 * r['per_attribute'][a]:.1f}" for a in ATTRIBUTE_NAMES]
        lines.append(f"| **{name}** | " + " | ".join(cells) + f" | **{100 * r['mean_accuracy']:.2f}** |")
    for method, vals in paper.items():
        cells = [f"{vals[a]:.0f}" for a in ATTRIBUTE_NAMES]
        lines.append(f"| {method} (paper, official test split) | " + " | ".join(cells) + f" | {vals['Average']:.2f} |")
    return "\n".join(lines) + "\n"


def summary_text(results: dict) -> str:
    paper = results["paper_table1"].get(PAPER_ROW, {}).get("Average")
    lines = [f"faceattr on {results['split']} ({results['n_images']} images): mean accuracy "
             f"{100 * results['mean_accuracy']:.2f}%, mean balanced accuracy {100 * results['mean_balanced_accuracy']:.2f}%"]
    for k, v in results["baselines"].items():
        lines.append(f"  baseline {k}: {100 * v['mean_accuracy']:.2f}%")
    if paper is not None:
        lines.append(f"  paper's VAE-WGAN (official test split, 12x the training data): {paper:.2f}%")
    return "\n".join(lines)


def write_outputs(results: dict, out) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", json.dumps(results, indent=1))
    write_text(out / "results.md", summary_text(results) + "\n\n" + markdown_table(results))
    buf = io.StringIO()
    w = csv.writer(buf)
    methods = [("faceattr", results)] + list(results["baselines"].items())
    w.writerow(["attribute"] + [m for m, _ in methods] + [f"{k} (paper)" for k in results["paper_table1"]])
    for a in ATTRIBUTE_NAMES:
        w.writerow([a] + [f"{r['per_attribute'][a]:.4f}" for _, r in methods]
                   + [f"{v[a] / 100:.2f}" for v in results["paper_table1"].values()])
    w.writerow(["mean"] + [f"{r['mean_accuracy']:.4f}" for _, r in methods]
               + [f"{v['Average'] / 100:.4f}" for v in results["paper_table1"].values()])
    write_text(out / "results.csv", buf.getvalue())
    bar_chart(results, out / "per_attribute.png")


def bar_chart(results: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ours = [100 * results["per_attribute"][a] for a in ATTRIBUTE_NAMES]
    paper = [results["paper_table1"][PAPER_ROW][a] for a in ATTRIBUTE_NAMES] if PAPER_ROW in results["paper_table1"] else None
    fig, ax = plt.subplots(figsize=(14, 4.5))
    x = np.arange(N_ATTRIBUTES)
    ax.bar(x - 0.2, ours, 0.4, label=f"faceattr ({results['split']}, n={results['n_images']})")
    if paper:
        ax.bar(x + 0.2, paper, 0.4, label="paper VAE-WGAN (official test)")
    ax.set_xticks(x, [a.replace("_", " ") for a in ATTRIBUTE_NAMES], rotation=75, fontsize=8)
    ax.set_ylim(40, 100)
    ax.set_ylabel("accuracy (%)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
