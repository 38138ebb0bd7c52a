"""Accuracy by group (faceattr.groups, ``faceattr benchmark celeba --by``): the per-group numbers
against a small case computed by hand, against fairlearn's MetricFrame with scikit-learn's metrics
attribute by attribute, the gaps and their intervals, the requests it refuses, and the files a
run writes. Also: the benchmark's metrics are scikit-learn's, and give what the hand-written
formulas they replaced gave."""
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.errors import InputError
from faceattr.groups import (MIN_GROUP_FACES, Grouping, SmallGroupWarning, group_report, groupings_of,
                             parse_by)
from faceattr.intervals import person_weights

from conftest import TINY_BUNDLE, write_celeba_tree


def _one_attribute_case():
    """8 faces, groups a (5 faces) and b (3), attribute 0 labelled and predicted by hand."""
    y = np.zeros((8, 40), np.uint8)
    pred = np.zeros((8, 40), bool)
    y[:, 0] = [1, 1, 1, 0, 0, 1, 0, 0]
    pred[:, 0] = [1, 1, 0, 1, 0, 0, 0, 1]
    return y, pred, Grouping("g", np.array(["a"] * 5 + ["b"] * 3))


def test_per_group_rates_match_a_case_counted_by_hand():
    y, pred, grouping = _one_attribute_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)
        rep = group_report(y, pred, grouping, np.ones((3, 8), np.float32))
    a, b = (rep["attributes"][ATTRIBUTE_NAMES[0]]["by_group"][g] for g in "ab")
    # a: labels 1 1 1 0 0, predicted 1 1 0 1 0: tp 2, fn 1, fp 1, tn 1
    assert (a["accuracy"], a["true_positive_rate"], a["false_positive_rate"], a["positive_rate"]) == (0.6, 0.66667, 0.5, 0.6)
    assert a["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-5)
    # b: labels 1 0 0, predicted 0 0 1: tp 0, fn 1, fp 1, tn 1
    assert (b["accuracy"], b["true_positive_rate"], b["false_positive_rate"], b["positive_rate"]) == (0.33333, 0.0, 0.5, 0.33333)
    assert (a["faces"], b["faces"]) == (5, 3)


def test_per_group_rates_are_fairlearns_metricframe_with_sklearns_metrics():
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    rng = np.random.default_rng(1)
    n = 400
    y = (rng.random((n, 40)) < rng.random(40)).astype(np.uint8)
    pred = rng.random((n, 40)) < 0.4
    grouping = Grouping("g", rng.choice(["x", "y", "z"], n))
    rep = group_report(y, pred, grouping, person_weights(np.arange(n), n_draws=50))
    metrics = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
               "true_positive_rate": true_positive_rate, "false_positive_rate": false_positive_rate,
               "positive_rate": selection_rate}
    for a in (0, 7, 39):
        frame = MetricFrame(metrics=metrics, y_true=y[:, a], y_pred=pred[:, a], sensitive_features=grouping.labels)
        for g in "xyz":
            for m in metrics:
                assert rep["attributes"][ATTRIBUTE_NAMES[a]]["by_group"][g][m] == pytest.approx(
                    frame.by_group.loc[g, m], abs=1e-5), (a, g, m)
        assert rep["attributes"][ATTRIBUTE_NAMES[a]]["accuracy_gap"] == pytest.approx(
            frame.difference()["accuracy"], abs=1e-5)
        assert rep["attributes"][ATTRIBUTE_NAMES[a]]["worst_accuracy"] == pytest.approx(
            frame.group_min()["accuracy"], abs=1e-5)


def test_gap_intervals_cover_a_real_gap_and_a_group_of_people_repeated_widens_its_interval():
    rng = np.random.default_rng(2)
    people = np.repeat(np.arange(800), 5)  # each person's five faces alike: what clustering does
    y = rng.integers(0, 2, (800, 40)).astype(np.uint8)
    right = rng.random((800, 40)) < np.where(np.arange(800) < 400, 0.9, 0.7)[:, None]
    y, pred = y[people], np.where(right, y, 1 - y).astype(bool)[people]
    grouping = Grouping("g", np.where(people < 400, "good", "poor"))
    rep = group_report(y, pred, grouping, person_weights(people, n_draws=300))
    for name in ATTRIBUTE_NAMES[:5]:
        a = rep["attributes"][name]
        lo, hi = a["accuracy_gap_interval"]
        assert lo <= a["accuracy_gap"] <= hi and lo > 0.1 and hi < 0.3, name  # the true gap: 0.2
        assert a["worst_group"] == "poor"
    faces = group_report(y, pred, grouping, person_weights(np.arange(len(people)), n_draws=300))
    width = lambda r: np.subtract(*r["attributes"]["Male"]["by_group"]["good"]["accuracy_interval"][::-1])  # noqa: E731
    assert width(rep) > 1.5 * width(faces)


def test_a_group_under_the_minimum_is_warned_about_and_gets_no_interval_or_gap():
    y, pred, _ = _one_attribute_case()
    y, pred = np.repeat(y, 5, 0), np.repeat(pred, 5, 0)  # 40 faces
    grouping = Grouping("g", np.array(["big"] * (40 - MIN_GROUP_FACES + 1) + ["small"] * (MIN_GROUP_FACES - 1)))
    with pytest.warns(SmallGroupWarning, match="group 'small' has 19 faces"):
        rep = group_report(y, pred, grouping, person_weights(np.arange(40), n_draws=20))
    att = rep["attributes"][ATTRIBUTE_NAMES[0]]
    assert rep["small_groups"] == ["small"] and "accuracy_interval" not in att["by_group"]["small"]
    assert att["by_group"]["small"]["accuracy"] is not None and att["accuracy_gap"] is None


@pytest.mark.parametrize("by, message", [
    ("", "names no attribute"), (" , ", "names no attribute"),
    ("Male,Yung", "'Yung' is not one of the 40 attributes; did you mean Young"),
    ("Gender", "'Gender' is not one of the 40 attributes; the attributes are 5_o_Clock_Shadow"),
])
def test_by_that_names_no_known_attribute_is_refused_naming_it(by, message):
    with pytest.raises(InputError, match=message):
        parse_by(by)


def test_a_group_csv_must_give_every_evaluated_file_a_group(tmp_path):
    files = ["000001.jpg", "000002.jpg", "000003.jpg"]
    labels = np.zeros((3, 40), np.uint8)
    csv_path = tmp_path / "skin.csv"
    csv_path.write_text("file,group\n000001.jpg,light\nimg_align_celeba/000002.jpg,dark\n000099.jpg,dark\n")
    with pytest.raises(InputError, match=r"skin.csv: 1 of the 3 evaluated images have no group, e.g. 000003.jpg"):
        groupings_of(str(csv_path), files, labels)
    csv_path.write_text("000001.jpg,light\n000002.jpg,dark\n000003.jpg,light\n")
    (g,) = groupings_of(str(csv_path), files, labels)
    assert g.name == "skin" and g.labels.tolist() == ["light", "dark", "light"]
    csv_path.write_text("000001.jpg,light,extra\n")
    with pytest.raises(InputError, match="row 1: expected file,group"):
        groupings_of(str(csv_path), files, labels)
    with pytest.raises(InputError, match="cannot read the group CSV"):
        groupings_of(str(tmp_path / "missing.csv"), files, labels)


def test_grouping_by_an_attribute_splits_on_its_labels():
    labels = np.zeros((4, 40), np.uint8)
    labels[[0, 2], ATTRIBUTE_NAMES.index("Male")] = 1
    (g,) = groupings_of("Male", ["a", "b", "c", "d"], labels)
    assert g.labels.tolist() == ["Male", "not Male", "Male", "not Male"]


def test_benchmark_by_writes_the_group_report_and_refuses_a_bad_by_before_any_work(tmp_path):
    from faceattr.cli import main
    root = write_celeba_tree(tmp_path / "d", n=150)
    out = tmp_path / "out"
    args = ["benchmark", "celeba", "--root", str(root), "--heads", "fit", "--weights", str(TINY_BUNDLE),
            "--no-cache", "--out", str(out)]
    bad = CliRunner().invoke(main, args + ["--by", "Male,Bogus"])
    assert bad.exit_code != 0 and "'Bogus' is not one of the 40 attributes" in bad.output
    assert not out.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)
        ok = CliRunner().invoke(main, args + ["--by", "Male,Young"])
    assert ok.exit_code == 0, ok.output
    assert "groups.csv, groups.md, groups.png" in ok.output
    from faceattr.benchmark import files_written
    saved_files = sorted(f.name for f in out.iterdir())
    assert saved_files == sorted(files_written(with_groups=True))
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["groups"]) == {"Male", "Young"}
    md = (out / "groups.md").read_text()
    assert "## By Male" in md and "## By Young" in md and "accuracy gap" in md
    rows = (out / "groups.csv").read_text().splitlines()
    assert rows[0].startswith("grouping,attribute,group,faces,accuracy") and len(rows) == 1 + 2 * 40 * 2
    assert (out / "groups.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Accuracy by group, the widest gaps" in (out / "results.md").read_text()


def _hand_written_report(scores, y):
    """The formulas faceattr.benchmark used before scikit-learn's metrics replaced them."""
    from scipy.stats import rankdata
    pred, pos = scores > 0, y.astype(bool)
    tp = (pred & pos).sum(0)
    tpr = np.where(pos.sum(0) > 0, tp / np.maximum(pos.sum(0), 1), np.nan)
    tnr = np.where((~pos).sum(0) > 0, (~pred & ~pos).sum(0) / np.maximum((~pos).sum(0), 1), np.nan)
    ranks = rankdata(scores, axis=0)
    npos, nneg = pos.sum(0), len(y) - pos.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * pos).sum(0) - npos * (npos + 1) / 2) / (npos * nneg)
    return {"acc": (pred == pos).mean(0), "bal": np.nanmean(np.stack([tpr, tnr]), 0),
            "f1": 2 * tp / np.maximum(pred.sum(0) + pos.sum(0), 1), "auc": np.where((npos > 0) & (nneg > 0), auc, np.nan)}


def test_the_benchmarks_sklearn_metrics_give_what_the_hand_written_ones_gave():
    from faceattr.benchmark import accuracy_report
    rng = np.random.default_rng(3)
    y = (rng.random((300, 40)) < 0.3).astype(np.uint8)
    y[:, 5] = 0  # one class only: balanced accuracy is that class's recall, AUC undefined
    y[:, 6] = 1
    scores = np.round(rng.normal(size=(300, 40)) + y, 1)  # rounded: ties in the ranks
    scores[:, 7] = -1  # nothing predicted: F1 0
    rep, hand = accuracy_report(scores, y), _hand_written_report(scores, y)
    for key, mine in (("per_attribute", "acc"), ("balanced_accuracy", "bal"), ("f1", "f1"), ("roc_auc", "auc")):
        got = np.array([rep[key][a] for a in ATTRIBUTE_NAMES])
        np.testing.assert_allclose(got, hand[mine], atol=1e-12, equal_nan=True, err_msg=key)


def test_the_benchmarks_one_call_metrics_equal_sklearns_column_by_column():
    """accuracy_report calls scikit-learn once over the 40 columns; each column alone agrees."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score
    from faceattr.benchmark import accuracy_report
    rng = np.random.default_rng(4)
    y = rng.random((200, 40)) < 0.3
    y[:, 2], y[:, 3] = False, True
    scores = np.round(rng.normal(size=(200, 40)) + y, 1)
    rep, pred = accuracy_report(scores, y), scores > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn on a column of one class
        for a, name in enumerate(ATTRIBUTE_NAMES):
            assert rep["per_attribute"][name] == pytest.approx(accuracy_score(y[:, a], pred[:, a]), abs=1e-12)
            assert rep["balanced_accuracy"][name] == pytest.approx(balanced_accuracy_score(y[:, a], pred[:, a]), abs=1e-12)
            assert rep["f1"][name] == pytest.approx(f1_score(y[:, a], pred[:, a], zero_division=0.0), abs=1e-12)
            if a in (2, 3):
                assert np.isnan(rep["roc_auc"][name])
            else:
                assert rep["roc_auc"][name] == pytest.approx(roc_auc_score(y[:, a], scores[:, a]), abs=1e-12)


def test_benchmark_never_replaces_a_file_already_in_out_unless_overwrite(tmp_path):
    from faceattr.cli import main
    root = write_celeba_tree(tmp_path / "d", n=60)
    out = tmp_path / "out"
    out.mkdir()
    (out / "groups.md").write_text("the user's notes")
    args = ["benchmark", "celeba", "--root", str(root), "--heads", "fit", "--weights", str(TINY_BUNDLE),
            "--baselines", "", "--no-cache", "--out", str(out), "--by", "Male"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code != 0 and "groups.md: already exists" in refused.output
        assert sorted(f.name for f in out.iterdir()) == ["groups.md"]  # refused before any work
        assert (out / "groups.md").read_text() == "the user's notes"
        replaced = CliRunner().invoke(main, args + ["--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert "## By Male" in (out / "groups.md").read_text()
