"""The benchmark's people-level bootstrap (faceattr.intervals): its means are the plain ones when
every face counts once, a person counted many times widens the interval, a rerun gives the same
numbers, and the benchmark's results carry the intervals."""
import json

import numpy as np
import pytest

from faceattr import intervals as iv
from faceattr.benchmark import accuracy_report
from faceattr.errors import DatasetError, InputError

from conftest import TINY_BUNDLE, write_celeba_tree


def _case(n_people: int, faces_each: int, seed: int = 0):
    """Scores and labels where each person's faces are copies of one face: what clustering by
    person does to a per-face bootstrap, at its extreme."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (n_people, 40)).astype(np.uint8)
    scores = (rng.normal(size=(n_people, 40)) + (y - 0.5)).astype(np.float32)
    return np.repeat(scores, faces_each, 0), np.repeat(y, faces_each, 0), np.repeat(np.arange(n_people), faces_each)


def test_with_every_face_counted_once_the_means_are_the_plain_ones():
    scores, y, _ = _case(300, 1)
    plain = accuracy_report(scores, y)
    once = iv.weighted_means(scores, y, np.ones((1, len(y)), np.float32))
    for m in iv.METRICS:
        assert once[m][0] == pytest.approx(plain[m], abs=1e-6), m


def test_the_weighted_auc_is_sklearns_with_the_draws_weights_ties_included():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(5)
    y = rng.random((120, 40)) < 0.4
    scores = np.round(rng.normal(size=(120, 40)) + y, 1).astype(np.float32)  # rounded: many ties
    w = iv.person_weights(rng.integers(0, 30, 120), n_draws=5)
    auc = iv.weighted_auc(scores, y, w)
    for b in range(5):
        for a in (0, 7, 39):
            assert auc[b, a] == pytest.approx(roc_auc_score(y[:, a], scores[:, a], sample_weight=w[b]), abs=1e-5)


def test_a_person_repeated_widens_the_interval_that_faces_would_give():
    scores, y, people = _case(60, 10)
    by_people = iv.interval(iv.weighted_means(scores, y, iv.person_weights(people))["mean_accuracy"])
    by_faces = iv.interval(iv.weighted_means(scores, y, iv.person_weights(np.arange(len(y))))["mean_accuracy"])
    assert by_people[1] - by_people[0] > 2 * (by_faces[1] - by_faces[0])


def test_the_bootstrap_is_seeded_and_each_draw_takes_as_many_people_as_there_are():
    people = np.repeat(np.arange(7), 3)
    a, b = iv.person_weights(people), iv.person_weights(people)
    assert np.array_equal(a, b) and a.shape == (iv.N_DRAWS, 21)
    assert (a.sum(1) == 21).all() and not np.array_equal(a, iv.person_weights(people, seed=1))
    with pytest.raises(InputError, match="at least 2 people"):
        iv.person_weights(np.zeros(5))


def test_the_paired_difference_of_a_row_with_itself_is_zero():
    scores, y, people = _case(50, 2)
    d = iv.weighted_means(scores, y, iv.person_weights(people))
    diff = iv.paired_differences(d, d)
    assert all(diff[m]["mean"] == 0 and diff[m]["interval"] == [0, 0] for m in iv.METRICS)


def test_people_are_read_from_the_identity_list_and_a_missing_one_is_named(tmp_path):
    from faceattr.data.celeba import CelebA
    root = write_celeba_tree(tmp_path / "d", n=6)
    ds = CelebA.load(root, "all")
    assert ds.people() is None
    (root / "identity_CelebA.txt").write_text("".join(f"{f} {i % 2}\n" for i, f in enumerate(ds.files[:5])))
    with pytest.raises(DatasetError, match="1 image\\(s\\) have no person, e.g. 000006.jpg"):
        ds.people()
    (root / "identity_CelebA.txt").write_text("".join(f"{f} {i % 2}\n" for i, f in enumerate(ds.files)))
    assert ds.people().tolist() == [0, 1, 0, 1, 0, 1]


def test_the_benchmark_results_carry_intervals_and_say_what_was_resampled(tmp_path):
    from faceattr.benchmark import BenchmarkConfig, run_benchmark
    root = write_celeba_tree(tmp_path / "d", n=30)
    res = run_benchmark(root, "test", BenchmarkConfig("fit", baselines=("majority",), weights=TINY_BUNDLE,
                                                       progress=False, use_cache=False), tmp_path / "out")
    assert res["bootstrap"]["resampled"].startswith("faces: the folder has no identity_CelebA.txt")
    lo, hi = res["intervals"]["mean_accuracy"]
    assert lo <= res["mean_accuracy"] <= hi
    assert set(res["baselines"]["majority"]["difference_from_ours"]) == set(iv.METRICS)
    assert "balanced" in res["decision_rules"] and res["decision_rules"]["balanced"]["intervals"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["intervals"] == res["intervals"]
    assert "Intervals: 95 %" in (tmp_path / "out" / "results.md").read_text()
