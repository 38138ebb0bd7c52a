"""The detector tolerance (benchmarks/detector_tolerance.py, docs/performance.md): a small run of
the benchmark passes the shipped detector against itself and fails a detector that finds other
faces; the face matching and the composed group photos behave as the benchmark says."""
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.detector_tolerance import (CANVAS, TOLERANCE, compare_faces, compose_group_photos, matched_pairs,
                                           measure, variant_of)
from faceattr.faces.detect import Face

REPO = Path(__file__).resolve().parents[1]


def _face(x, y, size=40.0, shift=0.0):
    lm = np.array([[x + 10, y + 12], [x + 30, y + 12], [x + 20, y + 22], [x + 12, y + 30], [x + 28, y + 30]], float)
    return Face((x, y, x + size, y + size), 0.99, lm + shift)


def test_faces_are_matched_one_to_one_at_iou_half_and_their_landmarks_measured():
    ref = [[_face(0, 0), _face(100, 100)], [_face(0, 0)]]
    other = [[_face(2, 0, shift=1.0), _face(300, 300)], [_face(0, 0), _face(1, 1)]]
    assert len(matched_pairs(ref[0], other[0])) == 1  # the far face matches nothing
    c = compare_faces(ref, other)
    assert (c["matched"], c["lost"], c["added"]) == (2, 1, 2)
    assert c["same_count_share"] == 0.5
    # the matched shifted face: each landmark moved by (2 + 1, 1) px; the other pair not at all
    assert c["landmark_px"]["max"] == pytest.approx(np.hypot(3, 1))
    assert c["landmark_px"]["median"] == pytest.approx(np.hypot(3, 1) / 2)


def test_group_photos_are_the_same_for_a_seed_and_differ_for_another(celeba_root):
    from faceattr.data.celeba import CelebA
    from faceattr.faces.images import load_rgb
    imgs = [load_rgb(p) for p in CelebA.load(celeba_root, "test", max_images=20).paths()]
    a, b, c = compose_group_photos(imgs, 3), compose_group_photos(imgs, 3), compose_group_photos(imgs, 3, seed=1)
    assert all(p.size == CANVAS for p in a)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


def _small(reference):
    return {"float32": reference, "two levels fewer": variant_of(reference, min_face_size=40)}


@pytest.mark.weights
def test_a_small_tolerance_run_passes_the_shipped_detector_and_fails_a_changed_one(celeba_root):
    result = measure(celeba_root, n_celeba=24, n_harder=8, repeats=1, make_variants=_small)
    same, changed = result["variants"]["float32"], result["variants"]["two levels fewer"]
    assert same["holds"] and all(c["value"] == 0 for k, c in same["checks"].items() if k != "same_count_photos")
    assert result["harder_faces"] >= 8  # the group photos hold several faces the detector finds
    # a smallest face of 40 px loses the small faces of the group photos and moves landmarks
    assert not changed["holds"] and not changed["checks"]["matched_faces"]["holds"]


def test_docs_state_the_tolerance_the_benchmark_checks():
    text = (REPO / "docs" / "performance.md").read_text()
    section = text[text.index("## Detector tolerance"):]
    stated = [float(v) for v in re.findall(r"\*\*([\d.]+) ?(?:%|px|points)\*\*", section)[:6]]
    assert stated == [100 * TOLERANCE.same_count_photos, 100 * TOLERANCE.matched_faces, TOLERANCE.landmark_median_px,
                      TOLERANCE.landmark_p99_px, TOLERANCE.mean_accuracy_points, TOLERANCE.male_accuracy_points]
