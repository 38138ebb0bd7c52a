"""The 40 linear attribute heads: fitting (linear SVMs, C chosen on val, Platt calibration on val)
and applying them as one (40 x features) matrix product."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

DEFAULT_CS = (0.001, 0.01, 0.1)
SVM_MAX_ITER = 300  # L-BFGS iterations per C: converged on celeba-mini's features well before this


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """P(y=1 | s) = sigmoid(a * s + b), fitted by logistic regression on held-out scores."""
    from sklearn.linear_model import LogisticRegression
    if y.min() == y.max():
        return 0.0, float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))
    lr = LogisticRegression(C=1e4).fit(scores.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def fit_linear_svms(x: np.ndarray, y: np.ndarray, c: float, max_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised squared-hinge linear SVMs (LinearSVC's default objective), one per column
    of ``y``, fitted jointly by L-BFGS in float64:

        min_w,b  0.5 * ||w||^2 + C * sum_i max(0, 1 - t_i (w . x_i + b))^2,   t_i = +-1

    The intercept is not regularised. All 40 problems share every matrix product, so this is
    seconds where 40 liblinear fits take minutes on two cores.
    """
    xt = torch.as_tensor(x, dtype=torch.float64)
    t = torch.as_tensor(np.asarray(y), dtype=torch.float64) * 2 - 1  # (n, k) in {-1, 1}
    k = t.shape[1]
    w = torch.zeros(xt.shape[1], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter or SVM_MAX_ITER, tolerance_grad=1e-7,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        margin = torch.clamp(1 - t * (xt @ w + b), min=0)
        loss = 0.5 * (w * w).sum() + c * (margin * margin).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().T.copy(), b.detach().numpy().copy()


def fit_linear_heads(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                     cs=DEFAULT_CS) -> dict[str, np.ndarray]:
    """One linear SVM per attribute on standardised features; C per attribute by val accuracy.

    Returns arrays ``weight`` (k, D) and ``bias`` (k,) acting on raw features (the
    standardisation is folded in), Platt ``platt_a``/``platt_b`` (k,) fitted on val, ``C`` (k,),
    ``val_accuracy`` (k,) and ``threshold_balanced`` (k,), the "balanced" operating point on val.
    """
    from sklearn.preprocessing import StandardScaler
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    if y_train.ndim != 2 or y_val.ndim != 2 or y_train.shape[1] != y_val.shape[1]:
        raise InputError(f"labels must be (n, k) arrays with the same k, got {y_train.shape} and {y_val.shape}")
    scaler = StandardScaler().fit(x_train)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    xt, xv = (x_train - scaler.mean_) / scale, (x_val - scaler.mean_) / scale
    best_acc = np.full(y_train.shape[1], -1.0)
    w_best = np.zeros((y_train.shape[1], x_train.shape[1]))
    b_best, c_best = np.zeros(y_train.shape[1]), np.zeros(y_train.shape[1])
    for c in cs:
        w, b = fit_linear_svms(xt, y_train, c)
        acc = ((xv @ w.T + b > 0) == y_val).mean(axis=0)
        better = acc > best_acc
        best_acc[better], w_best[better], b_best[better], c_best[better] = acc[better], w[better], b[better], c
    val_scores = xv @ w_best.T + b_best
    platt = np.array([_platt(val_scores[:, a], y_val[:, a]) for a in range(y_train.shape[1])])
    out = {"weight": w_best / scale, "bias": b_best - (w_best * scaler.mean_ / scale).sum(axis=1),
           "platt_a": platt[:, 0], "platt_b": platt[:, 1], "C": c_best, "val_accuracy": best_acc,
           "threshold_balanced": operating_point(val_scores, y_val, "balanced")}
    return {k: v.astype(np.float32) for k, v in out.items()}


# ---- operating points: the rule that turns a score into "present" ------------------------------
# "accuracy": the sign of the SVM score, the paper's rule (its accuracies are measured with it).
# "balanced": per attribute, the threshold on val scores that maximises balanced accuracy (the
# mean of the true positive and true negative rates), so rare attributes are found.
DECISION_RULES = ("accuracy", "balanced")
DEFAULT_DECISION = "accuracy"


def _ranked(scores: np.ndarray, y: np.ndarray):
    """Per cut k (the k highest scores called present, k = 0..n): true and false positives, and
    the threshold midway between the k-th and (k+1)-th score."""
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], y[order].astype(bool)
    tp = np.concatenate([[0], np.cumsum(pos)])
    fp = np.concatenate([[0], np.cumsum(~pos)])
    edges = np.concatenate([[s[0] + 1.0], s, [s[-1] - 1.0]]) if len(s) else np.array([1.0, -1.0])
    return tp, fp, (edges[:-1] + edges[1:]) / 2


RULE_FORMS = "'balanced', 'precision>=P' or 'recall>=R' (P and R in (0, 1])"


def parse_rule(rule: str) -> tuple[str, float | None]:
    """("balanced", None), ("precision", P) or ("recall", R) of a decision rule; a ValueError
    naming the rule otherwise, so a bad rule is refused before any fitting."""
    name, _, target = str(rule).partition(">=")
    if name not in ("balanced", "precision", "recall") or (name != "balanced") != bool(target):
        raise InputError(f"decision rule must be {RULE_FORMS}, got {rule!r}")
    if name == "balanced":
        return name, None
    try:
        goal = float(target)
    except ValueError:
        raise InputError(f"decision rule {rule!r}: {target!r} is not a number; expected {RULE_FORMS}") from None
    if not 0.0 < goal <= 1.0:  # NaN fails this too
        raise InputError(f"decision rule {rule!r}: {name} must be above 0 and at most 1, got {target}")
    return name, goal


def operating_point(scores: np.ndarray, y: np.ndarray, rule: str) -> np.ndarray:
    """Thresholds (k,) on decision scores (n, k), chosen on labelled faces y (n, k) in {0, 1}; a
    score above its attribute's threshold means present. ``rule``:

    - "balanced": maximise balanced accuracy;
    - "precision>=P": the lowest threshold whose precision reaches P (finds the most positives at
      that precision); "recall>=R": the highest threshold whose recall reaches R.

    An attribute whose labels are all one class (or no cut meets the target) keeps 0, the sign
    rule (``sign_rule_attributes`` lists them). Used for the shipped "balanced" point on
    celeba-mini val, and by ``faceattr heads fit`` on a user's own labelled faces.
    """
    name, goal = parse_rule(rule)
    cuts = (_cut(scores[:, a], y[:, a], name, goal) for a in range(scores.shape[1]))
    return np.array([0.0 if c is None else c for c in cuts], np.float32)


def sign_rule_attributes(scores: np.ndarray, y: np.ndarray, rule: str) -> list[int]:
    """The attributes for which ``operating_point`` found no threshold and kept the sign rule."""
    name, goal = parse_rule(rule)
    return [a for a in range(scores.shape[1]) if _cut(scores[:, a], y[:, a], name, goal) is None]


def _cut(scores: np.ndarray, y: np.ndarray, name: str, goal: float | None) -> float | None:
    """One attribute's threshold under the rule, or None where there is none to choose."""
    npos = int(y.sum())
    if npos in (0, len(y)):
        return None
    tp, fp, cut = _ranked(scores, y)
    if name == "balanced":
        return float(cut[int(np.argmax(tp / npos + 1 - fp / (len(y) - npos)))])
    ok = tp / np.maximum(tp + fp, 1) >= goal if name == "precision" else tp / npos >= goal
    ok[0] = False  # calling nothing present meets no precision, and recall >= R > 0 never
    if not ok.any():
        return None
    return float(cut[np.flatnonzero(ok)[-1] if name == "precision" else np.flatnonzero(ok)[0]])


def numeric_features(features):
    """``features`` as a float array, or a ValueError that says what they are instead (strings,
    objects): never torch's TypeError. Tensors pass as they are."""
    if isinstance(features, torch.Tensor):
        return features
    x = np.asarray(features)
    if x.dtype.kind not in "biuf":
        try:
            x = x.astype(np.float32)
        except (TypeError, ValueError):
            raise InputError(f"features must be numbers, got an array of dtype {x.dtype} "
                             f"(first value {x.flat[0]!r})" if x.size else
                             f"features must be numbers, got dtype {x.dtype}") from None
    return np.require(x, None, ["W"])  # a read-only one (a memory-mapped cache) is copied: torch warns


class LinearHeads:
    """Heads on a device: scores = X @ W.T + b, probabilities = sigmoid(a * score + b')."""

    def __init__(self, arrays: dict, device="cpu"):
        self.device = torch.device(device)
        self.weight = torch.as_tensor(arrays["weight"], dtype=torch.float32, device=self.device)
        self.bias = torch.as_tensor(arrays["bias"], dtype=torch.float32, device=self.device)
        k = len(self.bias)
        self.platt_a = torch.as_tensor(arrays.get("platt_a", np.ones(k)), dtype=torch.float32, device=self.device)
        self.platt_b = torch.as_tensor(arrays.get("platt_b", np.zeros(k)), dtype=torch.float32, device=self.device)
        if self.weight.ndim != 2 or self.bias.shape != self.weight.shape[:1]:
            raise InputError(f"heads need a (k, D) weight and a (k,) bias, got {tuple(self.weight.shape)} "
                             f"and {tuple(self.bias.shape)}")
        # decision rule -> thresholds (k,) on the scores; "accuracy" is the sign
        self.thresholds = {"accuracy": np.zeros(k, np.float32)}
        self.thresholds.update({key[len("threshold_"):]: np.asarray(v, np.float32)
                                for key, v in arrays.items() if key.startswith("threshold_")})

    def threshold(self, rule: str = DEFAULT_DECISION) -> np.ndarray:
        """The thresholds of decision ``rule``: "accuracy" (the sign), or one the heads carry."""
        if rule not in self.thresholds:
            raise InputError(f"decision rule {rule!r} is not among these heads' operating points: "
                             f"{', '.join(self.thresholds)}")
        return self.thresholds[rule]

    @property
    def n_features(self) -> int:
        return self.weight.shape[1]

    @torch.inference_mode()
    def scores(self, features) -> torch.Tensor:
        x = torch.as_tensor(numeric_features(features), dtype=torch.float32, device=self.device)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"features must be (n, {self.n_features}), got {tuple(x.shape)}")
        return torch.addmm(self.bias, x, self.weight.T)  # (n, 40)

    @torch.inference_mode()
    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(scores * self.platt_a + self.platt_b)


def decision_scores(arrays: dict, features: np.ndarray) -> np.ndarray:
    """SVM scores (n, k) of heads given as arrays (``fit_linear_heads``'s or the bundle's)."""
    return LinearHeads(arrays).scores(features).numpy()
