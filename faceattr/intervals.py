"""95 % bootstrap intervals of a benchmark's means that resample people, not faces.

CelebA's faces cluster by person (celeba-mini's test split: 1,699 faces of 602 people): resampling faces as if they were
independent gives intervals too narrow. Each bootstrap draw takes as many people as the split has,
with replacement, and every face of a drawn person counts as often as the person was drawn
(``person_weights``). The means (accuracy, balanced accuracy, F1 and ROC AUC over the 40
attributes) are computed from weighted counts for all draws at once, not draw by draw.
Where a folder has no identity list, each face is its own person, and the results say so.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

N_DRAWS = 1000
LEVEL = 0.95
SEED = 0
METRICS = ("mean_accuracy", "mean_balanced_accuracy", "mean_f1", "mean_roc_auc")


def person_weights(people: np.ndarray, n_draws: int = N_DRAWS, seed: int = SEED) -> np.ndarray:
    """(n_draws, n_faces) float32: how often each face counts in each draw of people."""
    people = np.asarray(people)
    ids, face_person = np.unique(people, return_inverse=True)
    if len(ids) < 2:
        raise InputError(f"a bootstrap over people needs at least 2 people, got {len(ids)}")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(ids), (n_draws, len(ids)))
    counts = np.zeros((n_draws, len(ids)), np.float32)
    np.add.at(counts, (np.arange(n_draws)[:, None], drawn), 1.0)
    return counts[:, face_person]


def weighted_means(scores: np.ndarray, y: np.ndarray, weights: np.ndarray, thresholds=None,
                   auc: bool = True) -> dict:
    """{metric: (n_draws,)} of the means over attributes under each draw's face weights; without
    ``auc`` the ROC AUC is left out (it does not depend on the thresholds: a decision rule's is
    its row's)."""
    pred = scores > (0 if thresholds is None else np.asarray(thresholds))
    pos = y.astype(bool)
    w = weights.astype(np.float32)
    total = w.sum(1, keepdims=True)  # (B, 1)
    tp, fp = w @ (pred & pos), w @ (pred & ~pos)  # (B, 40) weighted counts
    npos = w @ pos.astype(np.float32)
    nneg = total - npos
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (tp + (nneg - fp)) / total
        tpr, tnr = tp / npos, (nneg - fp) / nneg
        bal = np.nanmean(np.stack([tpr, tnr]), axis=0)
        f1 = 2 * tp / np.maximum(tp + fp + npos, 1e-12)
    out = {"mean_accuracy": acc.mean(1), "mean_balanced_accuracy": np.nanmean(bal, axis=1), "mean_f1": f1.mean(1)}
    if auc:
        out["mean_roc_auc"] = np.nanmean(weighted_auc(scores, pos, w), axis=1)
    return out


def weighted_auc(scores: np.ndarray, pos: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B, 40) ROC AUC of each attribute under each draw's weights (ties counted half): the
    weighted Mann-Whitney statistic, the weight of (positive, negative) pairs ranked right.

    Per attribute, the weights of the smaller class are summed up in score order once for all
    draws; each face of the other class reads, by a binary search, the weight of those ranked
    on its other side (and half of those tied with it). The running sum is over the smaller
    class, not over all faces: it is the one step that cannot be vectorised across faces."""
    wt = np.ascontiguousarray(w.T, np.float32)  # (n, B): a face's weights in every draw, one row
    out = np.full((len(w), scores.shape[1]), np.nan, np.float32)
    for a in range(scores.shape[1]):
        w_pos, w_neg = wt[pos[:, a]], wt[~pos[:, a]]  # (faces of the class, B)
        if len(w_pos) <= len(w_neg):  # each negative: the positives above it
            total, beyond = _weight_beyond(scores[pos[:, a], a], w_pos, scores[~pos[:, a], a])
            pairs = np.einsum("ij,ij->j", w_neg, total - beyond)
        else:  # each positive: the negatives below it
            _, beyond = _weight_beyond(scores[~pos[:, a], a], w_neg, scores[pos[:, a], a])
            pairs = np.einsum("ij,ij->j", w_pos, beyond)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, a] = pairs / (w_pos.sum(0) * w_neg.sum(0))
    return out


def _weight_beyond(scored: np.ndarray, weights: np.ndarray, queries: np.ndarray):
    """((B,) the total of ``weights`` (faces x B, scored ``scored``), (q, B) for each score of
    ``queries`` the weight of the faces scored below it plus half of those tied with it)."""
    order = np.argsort(scored, kind="stable")
    running = _running_sum(np.concatenate([np.zeros((1, weights.shape[1]), np.float32), weights[order]]))
    strictly = np.searchsorted(scored[order], queries, "left")
    or_tied = np.searchsorted(scored[order], queries, "right")
    return running[-1], 0.5 * (running[strictly] + running[or_tied])


def _running_sum(rows: np.ndarray) -> np.ndarray:
    """``np.cumsum(rows, axis=0)``, the same sums in the same order, row by row: numpy's cumsum
    down the first axis of a (faces, draws) array runs about 3x slower than one vector addition
    per row."""
    for i in range(1, len(rows)):
        np.add(rows[i], rows[i - 1], out=rows[i])
    return rows


def interval(draws: np.ndarray, level: float = LEVEL) -> list[float]:
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return [round(float(lo), 5), round(float(hi), 5)]


def column_intervals(draws: np.ndarray, level: float = LEVEL) -> list[list[float] | None]:
    """``interval`` of each column of ``draws`` (B, k) at once; None for a column without a
    finite draw (a group without positives in any draw)."""
    finite = np.isfinite(draws).any(0)
    out: list[list[float] | None] = [None] * draws.shape[1]
    if finite.any():
        lo, hi = np.nanpercentile(draws[:, finite], [50 * (1 - level), 50 * (1 + level)], axis=0)
        for k, a in enumerate(np.flatnonzero(finite)):
            out[a] = [round(float(lo[k]), 5), round(float(hi[k]), 5)]
    return out


def rule_intervals(scores, y, weights, thresholds, row: dict) -> dict:
    """{metric: [low, high]} of a row under another decision rule; its ROC AUC is the row's."""
    out = {m: interval(v) for m, v in weighted_means(scores, y, weights, thresholds, auc=False).items()}
    return {**out, "mean_roc_auc": row["mean_roc_auc"]}


def paired_differences(ours: dict, theirs: dict) -> dict:
    """{metric: {"mean", "interval"}} of ours minus theirs, draw by draw (the same faces)."""
    return {m: {"mean": round(float(np.nanmean(ours[m] - theirs[m])), 5), "interval": interval(ours[m] - theirs[m])}
            for m in METRICS}
