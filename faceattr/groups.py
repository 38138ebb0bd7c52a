"""Accuracy by group: ``faceattr benchmark celeba --by Male,Young`` (or ``--by groups.csv``).

A grouping splits the evaluated faces: by one of the 40 attributes (``Male``: "Male" and "not
Male", from the labels) or by a CSV of ``file,group`` rows for any other grouping. For each
grouping, each attribute and each group: accuracy, balanced accuracy, true- and false-positive
rate, positive rate and the number of faces, from fairlearn's ``MetricFrame`` over scikit-learn's
``multilabel_confusion_matrix`` (one call per grouping gives every attribute's counts per group).
Then per attribute the largest gap between groups in accuracy and in true-positive rate (the
difference in equal opportunity) and the worst group's accuracy, with the same 95 % people-level
bootstrap intervals as the benchmark's means (``faceattr.intervals``). A group of fewer than
``MIN_GROUP_FACES`` faces is reported with a warning, without intervals, and left out of the gaps.
Decisions are the sign rule's (the paper's).
"""
from __future__ import annotations

import csv
import difflib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.attributes import ATTRIBUTE_NAMES
from .errors import InputError
from .intervals import column_intervals

MIN_GROUP_FACES = 20  # below this a group's rates are reported, but neither intervals nor gaps
GROUP_METRICS = ("accuracy", "balanced_accuracy", "true_positive_rate", "false_positive_rate", "positive_rate")


class SmallGroupWarning(UserWarning):
    """A group has too few faces for an interval (``MIN_GROUP_FACES``)."""


@dataclass(frozen=True)
class Grouping:
    """One way of splitting the faces: its ``name`` and each face's group (``labels``, (n,) str)."""

    name: str
    labels: np.ndarray

    @property
    def groups(self) -> list[str]:
        return sorted(set(self.labels.tolist()))


def parse_by(by: str) -> list[str] | Path:
    """What ``--by`` asks for: attribute names (checked) or the path of a group CSV."""
    text = (by or "").strip()
    if text.lower().endswith(".csv") or Path(text).is_file():
        return Path(text)
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise InputError(f"--by {by!r} names no attribute: give attributes (e.g. Male,Young) or a CSV of file,group")
    for n in names:
        if n not in ATTRIBUTE_NAMES:
            near = difflib.get_close_matches(n, ATTRIBUTE_NAMES, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; the attributes are {', '.join(ATTRIBUTE_NAMES)}"
            raise InputError(f"--by: {n!r} is not one of the 40 attributes{hint}")
    return names


def groupings_of(by, files: list[str], labels: np.ndarray) -> list[Grouping]:
    """The groupings ``by`` (``parse_by``'s answer or its text) asks for, on faces ``files``
    whose attribute labels are ``labels`` (n, 40) in {0, 1}."""
    asked = parse_by(by) if isinstance(by, str) else by
    if isinstance(asked, Path):
        return [grouping_from_csv(asked, files)]
    out = []
    for name in asked:
        has = labels[:, ATTRIBUTE_NAMES.index(name)] > 0
        out.append(Grouping(name, np.where(has, name, f"not {name}")))
    return out


def grouping_from_csv(path: Path, files: list[str]) -> Grouping:
    """A grouping read from ``path``: rows ``file,group`` (a header ``file,group`` is allowed);
    every evaluated file must have a group, files of other splits may be there too."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"--by {path}: cannot read the group CSV ({e})") from None
    if rows and [c.strip().lower() for c in rows[0]] == ["file", "group"]:
        rows = rows[1:]
    group = {}
    for number, r in enumerate(rows, start=1):
        if len(r) != 2 or not r[0].strip() or not r[1].strip():
            raise InputError(f"--by {path}, row {number}: expected file,group, got {','.join(r)!r}")
        group[Path(r[0].strip()).name] = r[1].strip()
    missing = [f for f in files if f not in group]
    if missing:
        raise InputError(f"--by {path}: {len(missing)} of the {len(files)} evaluated images have no group, "
                         f"e.g. {', '.join(missing[:5])}")
    return Grouping(path.stem, np.array([group[f] for f in files]))


def counts_by_group(y: np.ndarray, pred: np.ndarray, grouping: Grouping):
    """fairlearn ``MetricFrame`` of scikit-learn's per-attribute confusion counts: its
    ``by_group`` holds, for each group, a (40, 2, 2) array [[tn, fp], [fn, tp]] per attribute."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import multilabel_confusion_matrix
    return MetricFrame(metrics={"counts": multilabel_confusion_matrix}, y_true=y.astype(int),
                       y_pred=pred.astype(int), sensitive_features=grouping.labels)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """{metric: (40,)} from (40, 2, 2) confusion counts; NaN where a rate has no faces to count."""
    tn, fp, fn, tp = (counts[:, i, j].astype(float) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    n, pos, neg = tn + fp + fn + tp, fn + tp, tn + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr, fpr = tp / pos, fp / neg
        return {"accuracy": (tp + tn) / n, "balanced_accuracy": np.nanmean(np.stack([tpr, 1 - fpr]), axis=0),
                "true_positive_rate": tpr, "false_positive_rate": fpr, "positive_rate": (tp + fp) / n}


def _weighted_rates(w: np.ndarray, correct: np.ndarray, tp: np.ndarray, pos: np.ndarray) -> tuple:
    """(B, 40) accuracy and true-positive rate of one group under each draw's face weights."""
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (w @ correct) / w.sum(1, keepdims=True)
        tpr = (w @ tp) / (w @ pos)
    return acc, tpr


def group_report(y: np.ndarray, pred: np.ndarray, grouping: Grouping, weights: np.ndarray) -> dict:
    """One grouping's report (see the module's docstring); ``weights`` (B, n) are the bootstrap's."""
    frame = counts_by_group(y, pred, grouping)
    groups = grouping.groups
    by = {g: rates(np.asarray(frame.by_group.loc[g, "counts"])) for g in groups}
    faces = {g: int((grouping.labels == g).sum()) for g in groups}
    small = [g for g in groups if faces[g] < MIN_GROUP_FACES]
    for g in small:
        warnings.warn(f"--by {grouping.name}: group {g!r} has {faces[g]} faces (fewer than {MIN_GROUP_FACES}); "
                      "its rates are reported without intervals and left out of the gaps", SmallGroupWarning,
                      stacklevel=3)
    pos, predicted = y.astype(bool), pred.astype(bool)
    correct, tp = (predicted == pos).astype(np.float32), (predicted & pos).astype(np.float32)
    draws = {g: _weighted_rates(weights * (grouping.labels == g), correct, tp, pos.astype(np.float32))
             for g in groups if g not in small}
    spans = {g: (column_intervals(acc), column_intervals(tpr)) for g, (acc, tpr) in draws.items()}
    gap_spans = _gap_intervals(draws)
    attributes = {}
    for a, name in enumerate(ATTRIBUTE_NAMES):
        per = {g: {**{m: _num(by[g][m][a]) for m in GROUP_METRICS}, "faces": faces[g]} for g in groups}
        for g, (acc, tpr) in spans.items():
            per[g]["accuracy_interval"], per[g]["true_positive_rate_interval"] = acc[a], tpr[a]
        attributes[name] = {"by_group": per, **_gaps(per, list(draws), gap_spans, a)}
    return {"groups": faces, "small_groups": small, "decision": "accuracy (the sign rule)", "attributes": attributes}


def _gap_intervals(draws: dict) -> dict:
    """{"accuracy" / "true_positive_rate" / "worst_accuracy": per attribute, the interval of the
    largest gap between the groups with draws (and of the worst group's accuracy) over the
    same draws}, all attributes at once; {} for fewer than two such groups."""
    if len(draws) < 2:
        return {}
    out = {}
    for k, metric in enumerate(("accuracy", "true_positive_rate")):
        stack = np.stack([d[k] for d in draws.values()])  # (groups, B, 40)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a draw without positives in a group
            out[metric] = column_intervals(np.nanmax(stack, 0) - np.nanmin(stack, 0))
    out["worst_accuracy"] = column_intervals(np.min(np.stack([d[0] for d in draws.values()]), 0))
    return out


def _gaps(per: dict, kept: list[str], spans: dict, a: int) -> dict:
    """The largest gap between the groups with intervals (accuracy, true-positive rate) and the
    worst group's accuracy, each with its interval (``_gap_intervals``)."""
    if len(kept) < 2:
        return {"accuracy_gap": None, "true_positive_rate_gap": None, "worst_group": None, "worst_accuracy": None}
    out = {}
    for metric in ("accuracy", "true_positive_rate"):
        vals = np.array([per[g][metric] if per[g][metric] is not None else np.nan for g in kept])
        out[f"{metric}_gap"] = _num(np.nanmax(vals) - np.nanmin(vals)) if np.isfinite(vals).sum() >= 2 else None
        out[f"{metric}_gap_interval"] = spans[metric][a] if out[f"{metric}_gap"] is not None else None
    acc = {g: per[g]["accuracy"] for g in kept}
    worst = min(acc, key=acc.get)
    out.update(worst_group=worst, worst_accuracy=acc[worst], worst_accuracy_interval=spans["worst_accuracy"][a])
    return out


def _num(v) -> float | None:
    v = float(v)
    return round(v, 5) if np.isfinite(v) else None


# ---- what a run writes: groups.csv, groups.md, groups.png -------------------------------------

def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _pct_interval(v, lo_hi) -> str:
    return _pct(v) + (f" [{100 * lo_hi[0]:.1f}, {100 * lo_hi[1]:.1f}]" if lo_hi else "")


def by_gap(report: dict) -> list[str]:
    """The attributes, the widest accuracy gap first (those without a gap last)."""
    att = report["attributes"]
    return sorted(att, key=lambda n: -(att[n]["accuracy_gap"] if att[n]["accuracy_gap"] is not None else -1))


def groups_csv(reports: dict) -> str:
    """One row per grouping, attribute and group: faces, the five rates, the two intervals."""
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["grouping", "attribute", "group", "faces", *GROUP_METRICS, "accuracy_low", "accuracy_high",
                "true_positive_rate_low", "true_positive_rate_high"])
    for grouping, rep in reports.items():
        for name in ATTRIBUTE_NAMES:
            for g, r in rep["attributes"][name]["by_group"].items():
                ai, ti = r.get("accuracy_interval") or ["", ""], r.get("true_positive_rate_interval") or ["", ""]
                w.writerow([grouping, name, g, r["faces"], *("" if r[m] is None else r[m] for m in GROUP_METRICS),
                            *ai, *ti])
    return buf.getvalue()


def groups_markdown(reports: dict, split: str) -> str:
    """Per grouping, a table of the attributes sorted by their accuracy gap."""
    lines = [f"# Accuracy by group ({split} split)", "",
             "Sign rule. In %, each with its 95 % people-level bootstrap interval; TPR: true-positive rate; "
             "gap: the largest difference between groups (the TPR gap is the difference in equal opportunity).", ""]
    for grouping, rep in reports.items():
        groups = list(rep["groups"])
        lines += [f"## By {grouping}", "", ", ".join(f"{g}: {n:,} faces" for g, n in rep["groups"].items()) + ".", ""]
        if rep["small_groups"]:
            lines += [f"Fewer than {MIN_GROUP_FACES} faces, so no interval and left out of the gaps: "
                      f"{', '.join(rep['small_groups'])}.", ""]
        lines += ["| attribute | " + " | ".join(f"accuracy, {g}" for g in groups) + " | accuracy gap | "
                  + " | ".join(f"TPR, {g}" for g in groups) + " | TPR gap | worst group |",
                  "|---" * (2 * len(groups) + 4) + "|"]
        for name in by_gap(rep):
            a = rep["attributes"][name]
            per = a["by_group"]
            cells = [_pct_interval(per[g]["accuracy"], per[g].get("accuracy_interval")) for g in groups]
            cells.append(_pct_interval(a["accuracy_gap"], a.get("accuracy_gap_interval")))
            cells += [_pct(per[g]["true_positive_rate"]) for g in groups]
            cells.append(_pct_interval(a["true_positive_rate_gap"], a.get("true_positive_rate_gap_interval")))
            cells.append(f"{a['worst_group']} ({_pct(a['worst_accuracy'])})" if a["worst_group"] else "-")
            lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def groups_figure(reports: dict, path, title: str) -> None:
    """groups.png: one panel per grouping; per attribute (widest accuracy gap at the top) each
    group's accuracy with its interval."""
    from .figures import Margins, new_figure, save_png
    fig = new_figure(6.6 * len(reports), 11)
    axes = np.atleast_1d(fig.subplots(1, len(reports), squeeze=False)[0])
    for ax, (grouping, rep) in zip(axes, reports.items()):
        order = by_gap(rep)[::-1]  # matplotlib draws the first row at the bottom
        ys = np.arange(len(order))
        groups = list(rep["groups"])
        for k, g in enumerate(groups):
            offset = (k - (len(groups) - 1) / 2) * 0.25
            acc = np.array([np.nan if rep["attributes"][n]["by_group"][g]["accuracy"] is None else
                            100 * rep["attributes"][n]["by_group"][g]["accuracy"] for n in order])
            iv = [rep["attributes"][n]["by_group"][g].get("accuracy_interval") for n in order]
            err = np.array([[a - 100 * i[0], 100 * i[1] - a] if i else [0, 0] for a, i in zip(acc, iv)]).T
            ax.errorbar(acc, ys + offset, xerr=err, fmt="o", ms=4, capsize=2, lw=1,
                        label=f"{g} ({rep['groups'][g]:,} faces)")
        ax.set_yticks(ys, [n.replace("_", " ") for n in order], fontsize=8)
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.set_xlabel("accuracy (%), 95 % interval over people")
        ax.set_title(f"by {grouping}: widest gap at the top", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.suptitle(title, fontsize=11)
    # left and between: room for the longest attribute name at 8 points
    save_png(fig, path, Margins(left=1.35, top=0.75, between=1.45), n_columns=len(reports))
