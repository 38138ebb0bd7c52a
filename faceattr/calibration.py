"""How well the calibrated probabilities mean what they say, on the evaluated faces: expected
calibration error and Brier score per attribute, and the reliability curves behind
``calibration.png`` (scikit-learn's ``calibration_curve``)."""
from __future__ import annotations

import numpy as np

N_BINS = 10  # equal-width probability bins of the ECE and the reliability curves
WORST = 5  # attributes drawn on their own: those with the largest ECE


def expected_calibration_error(probabilities: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """The faces' mean |predicted probability - observed frequency| over equal-width bins, each bin
    weighted by its share of the faces (0: perfectly calibrated)."""
    p, y = np.asarray(probabilities, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    pred = np.bincount(bins, weights=p, minlength=n_bins)
    seen = np.bincount(bins, weights=y, minlength=n_bins)
    filled = count > 0
    return float((np.abs(pred[filled] - seen[filled])).sum() / len(p))


def calibration_report(probabilities: np.ndarray, y: np.ndarray, names) -> dict:
    """ECE and Brier score per attribute and in the mean, and the reliability curves (predicted
    against observed, per bin) pooled over the attributes and of the WORST by ECE."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss
    ece = {n: expected_calibration_error(probabilities[:, a], y[:, a]) for a, n in enumerate(names)}
    brier = {n: float(brier_score_loss(y[:, a], probabilities[:, a])) for a, n in enumerate(names)}

    def curve(p, t):
        observed, predicted = calibration_curve(t, p, n_bins=N_BINS, strategy="uniform")
        return {"predicted": np.round(predicted, 4).tolist(), "observed": np.round(observed, 4).tolist()}
    worst = sorted(ece, key=ece.get, reverse=True)[:WORST]
    curves = {"pooled": curve(probabilities.ravel(), y.ravel())}
    curves.update({n: curve(probabilities[:, list(names).index(n)], y[:, list(names).index(n)]) for n in worst})
    return {"ece": ece, "brier": brier, "mean_ece": float(np.mean(list(ece.values()))),
            "mean_brier": float(np.mean(list(brier.values()))),
            "pooled_ece": expected_calibration_error(probabilities, y), "worst": worst, "reliability": curves}


def reliability_figure(report: dict, path, title: str) -> None:
    """calibration.png: the pooled reliability curve and the worst attributes', beside the diagonal."""
    from .figures import Margins, new_figure, save_png
    fig = new_figure(6.4, 5.6, dpi=110)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    for name, c in report["reliability"].items():
        pooled = name == "pooled"
        label = (f"all 40 pooled (ECE {100 * report['pooled_ece']:.1f} pts)" if pooled
                 else f"{name.replace('_', ' ')} (ECE {100 * report['ece'][name]:.1f} pts)")
        ax.plot(c["predicted"], c["observed"], marker="o", ms=4 if not pooled else 6, lw=2.5 if pooled else 1.2,
                color="black" if pooled else None, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="observed frequency", title=title)
    ax.legend(loc="lower right", fontsize=8, frameon=True, framealpha=0.9)
    ax.grid(alpha=0.3)
    save_png(fig, path, Margins(left=0.75, top=0.4, bottom=0.6))
